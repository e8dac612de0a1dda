"""The int8 .tflite as a list of ops with symbolic shapes, ready for code generation.

Shapes are symbolic in the sequence length n: a dimension is (a, b), meaning
a * n + b (a in {0, 1}). The ids input is [1, n]; every other shape follows by
each op's shape rule, so the generated Eval runs on the n real tokens only
(the graph itself is written for L = 256). At n = L every shape equals the
flatbuffer's (checked), so full-length inference is the same code.

Constants whose shape contains L where a computed operand has n (the position
table) are read as their first n rows; that is only valid when the rows are the
outermost non-unit axis, which `_adapt_const` checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from embbert.errors import UserError

from ..tflite_model import TfliteModel

Dim = tuple[int, int]  # a * n + b; or a str: a C expression known only at run time (attention.py's row tiles)


class AotUnsupported(UserError):
    """The model holds something the aot code generator cannot emit."""


def dim_eval(d: Dim, n: int) -> int:
    return d[0] * n + d[1]


def dim_c(d: Dim) -> str:
    if isinstance(d, str):
        return d
    a, b = d
    if a == 0:
        return str(b)
    if a != 1:
        raise AotUnsupported(f"dimension {a}*n+{b} is not linear in one n")
    return "n" if b == 0 else f"(n + {b})" if b > 0 else f"(n - {-b})"


@dataclass
class Tensor:
    index: int
    name: str
    dtype: str  # int8, int32, bool
    static_shape: list[int]
    scale: list[float] | None
    zero_point: int
    data: np.ndarray | None  # constants
    shape: list[Dim] | None = None  # symbolic, set by shape inference

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def s(self) -> float:
        return self.scale[0]


@dataclass
class Op:
    index: int
    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    L: int


_DTYPES = {"INT8": "int8", "INT32": "int32", "BOOL": "bool"}


def read_graph(data: bytes) -> Graph:
    mm = TfliteModel(data)
    if mm.subgraphs != 1:
        raise AotUnsupported(f"{mm.subgraphs} subgraphs; the aot backend takes one")
    tensors = []
    for i in range(len(mm.g.tensors)):
        if mm.dtype(i) not in _DTYPES:
            raise AotUnsupported(f"tensor {mm.name(i)} has type {mm.dtype(i)}")
        scale, zero_points = mm.quantization(i)
        tensors.append(Tensor(i, mm.name(i), _DTYPES[mm.dtype(i)], mm.shape(i), scale,
                              zero_points[0] if zero_points else 0, mm.const(i)))
    ops = [Op(k, mm.kind(op), [int(x) for x in op.inputs], [int(x) for x in op.outputs], mm.options(op))
           for k, op in enumerate(mm.ops)]
    inputs, outputs = mm.inputs, mm.outputs
    if len(inputs) != 1 or tensors[inputs[0]].dtype != "int32" or len(tensors[inputs[0]].static_shape) != 2:
        raise AotUnsupported("the aot backend takes one int32 ids input of shape [1, L]")
    graph = Graph(tensors, ops, inputs, outputs, L=tensors[inputs[0]].static_shape[1])
    infer_shapes(graph)
    return graph


# ---------------------------------------------------------------- shapes

def _static(shape: list[int]) -> list[Dim]:
    return [(0, d) for d in shape]


def _adapt_const(t: Tensor, like: list[Dim], L: int) -> list[Dim]:
    """A constant beside a computed operand: its L-long axis becomes n (first n rows)."""
    shape = _static(t.static_shape)
    off = len(like) - len(shape)
    sym_axes = [i for i, d in enumerate(shape)
                if 0 <= i + off < len(like) and like[i + off][0] == 1 and dim_eval(like[i + off], L) == d[1] and d[1] != 1]
    if not sym_axes:
        return shape
    if len(sym_axes) > 1 or any(d[1] != 1 for d in shape[:sym_axes[0]]):
        raise AotUnsupported(f"constant {t.name} {t.static_shape} cannot be cut to n rows")
    ax = sym_axes[0]
    shape[ax] = like[ax + off]
    return shape


def _shape(g: Graph, i: int, like: list[Dim] | None = None) -> list[Dim]:
    t = g.tensors[i]
    if t.shape is not None:
        return t.shape
    if t.is_const:
        return _adapt_const(t, like, g.L) if like is not None else _static(t.static_shape)
    raise AotUnsupported(f"tensor {t.name} used before it is computed")


def _broadcast(a: list[Dim], b: list[Dim]) -> list[Dim]:
    r = max(len(a), len(b))
    a = [(0, 1)] * (r - len(a)) + a
    b = [(0, 1)] * (r - len(b)) + b
    out = []
    for x, y in zip(a, b):
        out.append(y if x == (0, 1) else x)
    return out


def _reshape(src: list[Dim], target: list[int], L: int) -> list[Dim]:
    out, used = [], set()
    for v in target:
        match = next((k for k, d in enumerate(src) if k not in used and d[0] == 1 and dim_eval(d, L) == v), None)
        if match is not None:
            used.add(match)
            out.append(src[match])
        else:
            out.append((0, v))
    return out


def _const_ints(g: Graph, i: int) -> list[int]:
    t = g.tensors[i]
    if not t.is_const:
        raise AotUnsupported(f"{t.name} must be a constant")
    return [int(x) for x in np.asarray(t.data).reshape(-1)]


def infer_shapes(g: Graph) -> None:
    L = g.L
    g.tensors[g.inputs[0]].shape = [(0, 1), (1, 0)]
    for op in g.ops:
        ins = op.inputs
        k = op.kind
        computed = [g.tensors[i].shape for i in ins if i >= 0 and g.tensors[i].shape is not None]
        like = max(computed, key=len) if computed else None
        if k in ("EQUAL", "LESS", "ADD", "MUL", "SUB", "SELECT_V2", "SQUARED_DIFFERENCE"):
            out = []
            for i in ins:
                out = _broadcast(out, _shape(g, i, like))
            op.options["in_shapes"] = [_shape(g, i, like) for i in ins]
        elif k in ("CAST", "RSQRT", "LOGISTIC", "SOFTMAX", "TANH", "QUANTIZE"):
            out = list(_shape(g, ins[0]))
        elif k == "GATHER":
            params, idx = _shape(g, ins[0]), _shape(g, ins[1])
            ax = op.options["axis"] % len(params)
            out = params[:ax] + idx + params[ax + 1:]
        elif k == "CONCATENATION":
            shapes = [_shape(g, i, like) for i in ins]
            ax = op.options["axis"] % len(shapes[0])
            a = sum(s[ax][0] for s in shapes)
            b = sum(s[ax][1] for s in shapes)
            out = list(shapes[0])
            out[ax] = (a, b)
            op.options["in_shapes"] = shapes
        elif k == "FULLY_CONNECTED":
            x, w = _shape(g, ins[0]), g.tensors[ins[1]].static_shape
            out = x[:-1] + [(0, w[0])] if op.options.get("keepNumDims") else [_rows(x), (0, w[0])]
        elif k in ("MEAN", "SUM"):
            x = _shape(g, ins[0])
            axes = [a % len(x) for a in _const_ints(g, ins[1])]
            if op.options.get("keepDims"):
                out = [(0, 1) if i in axes else d for i, d in enumerate(x)]
            else:
                out = [d for i, d in enumerate(x) if i not in axes]
        elif k == "TRANSPOSE":
            x = _shape(g, ins[0])
            out = [x[p] for p in _const_ints(g, ins[1])]
        elif k == "RESHAPE":
            out = _reshape(_shape(g, ins[0]), g.tensors[op.outputs[0]].static_shape, L)
        elif k == "PAD":
            x = _shape(g, ins[0])
            p = _const_ints(g, ins[1])
            out = [(d[0], d[1] + p[2 * i] + p[2 * i + 1]) for i, d in enumerate(x)]
        elif k == "CONV_2D":
            x, w = _shape(g, ins[0]), g.tensors[ins[1]].static_shape
            if op.options["padding"] != 1 or op.options["strideH"] != 1 or op.options["strideW"] != 1 \
                    or op.options["dilationHFactor"] != 1 or op.options["dilationWFactor"] != 1:
                raise AotUnsupported(f"CONV_2D {op.index}: only VALID, stride 1, dilation 1")
            out = [x[0], (x[1][0], x[1][1] - w[1] + 1), (x[2][0], x[2][1] - w[2] + 1), (0, w[0])]
        elif k == "DEPTHWISE_CONV_2D":
            x, w = _shape(g, ins[0]), g.tensors[ins[1]].static_shape  # w [1, kh, kw, C]
            o = op.options
            if o["padding"] != 1 or o["strideH"] != 1 or o["strideW"] != 1 or o["dilationHFactor"] != 1 \
                    or o["dilationWFactor"] != 1 or o["depthMultiplier"] != 1:
                raise AotUnsupported(f"DEPTHWISE_CONV_2D {op.index}: only VALID, stride 1, dilation 1, multiplier 1")
            out = [x[0], (x[1][0], x[1][1] - w[1] + 1), (x[2][0], x[2][1] - w[2] + 1), (0, w[3])]
        elif k == "BATCH_MATMUL":
            a, b = _shape(g, ins[0]), _shape(g, ins[1])
            if op.options.get("adjX"):
                raise AotUnsupported("BATCH_MATMUL with adj_x")
            cols = b[-2] if op.options.get("adjY") else b[-1]
            out = _broadcast(a[:-2], b[:-2]) + [a[-2], cols]
        elif k == "STRIDED_SLICE":
            x = _shape(g, ins[0])
            begin, end, strides = (_const_ints(g, i) for i in ins[1:4])
            o = op.options
            if o.get("ellipsisMask") or o.get("newAxisMask") or o.get("shrinkAxisMask") or o.get("offset"):
                raise AotUnsupported("STRIDED_SLICE with ellipsis/new-axis/shrink masks")
            ranges, out = [], []
            for i, d in enumerate(x):
                if strides[i] != 1:
                    raise AotUnsupported("STRIDED_SLICE with a stride other than 1")
                s = (0, 0) if o["beginMask"] >> i & 1 else _norm(begin[i], d)
                e = d if o["endMask"] >> i & 1 else _norm(end[i], d)
                ranges.append((s, e))
                out.append((e[0] - s[0], e[1] - s[1]))
            op.options["ranges"] = ranges
        else:
            raise AotUnsupported(f"op {k} (op {op.index}) is not in the aot code generator yet")
        g.tensors[op.outputs[0]].shape = out
        static = g.tensors[op.outputs[0]].static_shape
        if [dim_eval(d, L) for d in out] != static:
            raise AotUnsupported(f"op {op.index} {k}: shape {out} at n={L} is not {static}")


def _rows(x: list[Dim]) -> Dim:
    sym = [d for d in x[:-1] if d[0]]
    if len(sym) > 1 or any(d[1] != 1 for d in x[:-1] if not d[0]):
        raise AotUnsupported("FULLY_CONNECTED without keep_num_dims on a tensor with several row axes")
    return sym[0] if sym else (0, int(np.prod([d[1] for d in x[:-1]])))


def _norm(v: int, d: Dim) -> Dim:
    return (d[0], d[1] + v) if v < 0 else (0, v)
