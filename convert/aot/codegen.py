"""Emit model_aot.h / model_aot.cc: the int8 graph as straight-line C++.

Prepare happens here, in Python (quant.py mirrors TFLite-Micro's Prepare);
Eval is the generated `embbert_aot::Infer(ids, n, logits)`, which calls
TFLite-Micro's reference kernels (headers from the pinned wheels, see
headers.py), the few kernels in firmware/src/backends/aot/aot_ops.h and the
kernels of firmware/src/backends/aot/kernels/<KERNELS>/ (the board's choice:
TFLite-Micro's reference, or ours, bit-exact with it).

- Weights are `static const` arrays (flash on a microcontroller).
- Activations live in one static arena at offsets planned from each tensor's
  lifetime by convert/arena_plan.py (the planner of TFLite-Micro's offline plan
  too: first fit in several orders, the smallest kept; 16-byte aligned; in-place
  ops), sized for n = L, with each op's scratch (`_scratch_bytes`). Attention
  chains run in tiles of query rows (attention.py), a causal PAD is read by its
  conv (causal_conv.py) and, for the optimized kernels, a BATCH_MATMUL reads its
  RHS untransposed (rhs_transpose.py), so no L x L score map and no padded or
  transposed copy is ever stored.
- Shapes are C expressions in n (graph.py), so Infer computes only the n real
  tokens; n = L is the full-length graph, op for op.
"""

from __future__ import annotations

import numpy as np

from embbert.tokenizer import PAD_ID

from .. import arena_plan
from ..arena_plan import Buffer, align, plan
from ..rewrites.schedule import best_order
from . import attention, causal_conv, quant, rhs_transpose
from .graph import AotUnsupported, Dim, Graph, Op, Tensor, dim_c, dim_eval

_CTYPE = {"int8": "int8_t", "int32": "int32_t", "bool": "bool"}
_SIZE = {"int8": 1, "int32": 4, "bool": 1}


# ---------------------------------------------------------------- arena plan

# The kernels under the generated code (firmware/src/backends/aot/kernels/<name>/,
# chosen per board: board.toml build.aot_kernels): TFLite-Micro's reference
# kernels, or ours, bit-exact with them.
KERNELS = ("reference", "optimized")


def matmul_scratch_bytes(depth: int) -> int:
    """kernels/optimized/matmul.h ScratchBytes: 4 rows of depth (rounded up to 4) as int16."""
    return 4 * ((depth + 3) // 4) * 4 * 2


def _transposed_rhs_bytes(g: Graph, op: Op) -> int:
    """BATCH_MATMUL without adj_y on the reference kernels: the RHS transposed into
    scratch first (kernels/reference/batch_matmul.h, as batch_matmul.cc)."""
    if op.kind == "BATCH_MATMUL" and not op.options.get("adjY"):
        return align(int(np.prod(g.tensors[op.inputs[1]].static_shape)))
    return 0


def _depthwise_1d(g: Graph, op: Op) -> bool:
    """DEPTHWISE_CONV_2D along one axis: input [1, 1, W, C], filter [1, 1, taps, C], VALID, stride,
    dilation and depth multiplier 1 (kernels' DepthwiseConv1D)."""
    o = op.options
    xs, ws = g.tensors[op.inputs[0]].shape, g.tensors[op.inputs[1]].static_shape
    return (o.get("padding") == 1 and o.get("strideW", 1) == o.get("strideH", 1) == 1
            and o.get("dilationWFactor", 1) == o.get("dilationHFactor", 1) == 1 and o.get("depthMultiplier", 1) == 1
            and len(xs) == 4 and xs[0] == xs[1] == (0, 1) and ws[:2] == [1, 1])


def pack_depthwise_weights(w: np.ndarray, kernels: str) -> np.ndarray:
    """w [taps, C] as the kernels want it: reference, TFLite's layout; optimized
    (kernels/optimized/depthwise_conv.h), per channel the taps padded with zeros
    to a multiple of 4, each 4 as [w0 w2 w1 w3] (SXTB16 -> (w0, w1), SXTB16 ROR 8 -> (w2, w3))."""
    if kernels == "reference":
        return w
    taps, channels = w.shape
    padded = np.zeros((channels, (taps + 3) // 4 * 4), np.int8)
    padded[:, :taps] = w.T
    return padded.reshape(channels, -1, 4)[:, :, [0, 2, 1, 3]].reshape(channels, -1)


def _depthwise_scratch_bytes(out_len: int, taps: int) -> int:
    """kernels/optimized/depthwise_conv.h DepthwiseConvScratchBytes: one int16 column."""
    return 2 * ((out_len + 3) // 4 * 4 + (taps + 3) // 4 * 4 + 4)


def _scratch_bytes(g: Graph, op: Op, kernels: str = "reference") -> int:
    """Per-op scratch (MEAN/SUM: an int32 sum per output element; BATCH_MATMUL
    without adj_y on the reference kernels: the transposed RHS; optimized matmuls:
    matmul_scratch_bytes, 4 rows of x or 4 columns of the RHS)."""
    if op.kind in ("MEAN", "SUM"):
        return 4 * int(np.prod(g.tensors[op.outputs[0]].static_shape))
    if op.kind == attention.KIND:
        return attention.scratch_bytes(g, op, kernels)
    if kernels == "reference" and op.kind == "SOFTMAX" and g.tensors[op.inputs[0]].shape[-1][0]:
        return g.tensors[op.inputs[0]].static_shape[-1]  # kernels/reference/softmax.h: one full row of L keys
    if kernels == "optimized" and op.kind in ("FULLY_CONNECTED", "BATCH_MATMUL"):
        return matmul_scratch_bytes(g.tensors[op.inputs[0]].static_shape[-1])
    size = _transposed_rhs_bytes(g, op)
    if kernels == "optimized" and op.kind == "DEPTHWISE_CONV_2D" and _depthwise_1d(g, op):
        size += _depthwise_scratch_bytes(g.tensors[op.outputs[0]].static_shape[2], g.tensors[op.inputs[1]].static_shape[2])
    return size


def fully_connected_in_place(g: Graph, op: Op, kernels: str) -> bool:
    """kernels/<kernels>/fully_connected.h FullyConnectedInPlace: ours may write over x
    when its rows are as long as out's and depth is a multiple of 4 (reference: never)."""
    if kernels != "optimized" or op.kind != "FULLY_CONNECTED":
        return False
    units, depth = g.tensors[op.inputs[1]].static_shape
    return units == depth and depth % 4 == 0


def depthwise_in_place(g: Graph, op: Op, kernels: str) -> bool:
    """kernels/<kernels>/depthwise_conv.h DepthwiseConvInPlace: ours may write over x when
    out has x's shape (a causal conv, its PAD folded in); the reference kernel never."""
    return kernels == "optimized" and op.kind == "DEPTHWISE_CONV_2D" and _depthwise_1d(g, op) \
        and g.tensors[op.inputs[0]].shape == g.tensors[op.outputs[0]].shape


def _inplace_inputs(g: Graph, op: Op, kernels: str) -> list[int] | None:
    """The inputs op may write over besides arena_plan.INPLACE_OPS' (None: none)."""
    if op.kind == attention.KIND:
        return attention.inplace_inputs(op)
    if fully_connected_in_place(g, op, kernels) or depthwise_in_place(g, op, kernels):
        return [op.inputs[0]]
    return None


def _planning_graph(g: Graph, kernels: str) -> arena_plan.Graph:
    """What convert/arena_plan.py needs of g, sized for n = L, with each op's `_scratch_bytes`."""
    live = [t for t in g.tensors if not t.is_const]
    return arena_plan.Graph(
        [op.kind for op in g.ops], [[t for t in op.inputs if t >= 0 and not g.tensors[t].is_const] for op in g.ops],
        [list(op.outputs) for op in g.ops], {t.index: int(np.prod(t.static_shape)) * _SIZE[t.dtype] for t in live},
        {t.index: t.shape for t in live}, {t.index: t.dtype.upper() for t in live}, g.inputs, g.outputs,
        [_scratch_bytes(g, op, kernels) for op in g.ops],
        {k: ins for k, op in enumerate(g.ops) if (ins := _inplace_inputs(g, op, kernels)) is not None})


def plan_arena(g: Graph, kernels: str = "reference") -> tuple[dict[int, Buffer], dict[int, Buffer], int]:
    """The arena for g's ops in their order (convert/arena_plan.py, the planner of
    TFLite-Micro's offline plan too), scratch included: (tensor -> its storage,
    op index -> its scratch, arena bytes)."""
    p = plan(_planning_graph(g, kernels))
    return p.buffers, {g.ops[k].index: b for k, b in p.scratch.items()}, p.total


def plan_peak(g: Graph, bufs: dict[int, Buffer], scratch: dict[int, Buffer], total: int) -> dict:
    """Where the plan peaks: the op at which a buffer reaching the arena's top is live,
    with the most bytes live, and what is live there (tensors and ops' scratch, by offset)."""
    items = list({id(b): b for b in bufs.values()}.values()) + list(scratch.values())
    top = {id(b) for b in items if align(b.offset + b.size) == total}
    live = {k: [b for b in items if b.first <= k <= b.last] for k in range(len(g.ops))}
    k = max(live, key=lambda k: (any(id(b) in top for b in live[k]), sum(b.size for b in live[k])))
    names = {id(b): f"scratch of op {i} {next(op.kind for op in g.ops if op.index == i)}" for i, b in scratch.items()}
    written = {t: j for j, op in enumerate(g.ops) for t in op.outputs} | {t: -1 for t in g.inputs}
    for t, b in sorted(bufs.items(), key=lambda tb: written.get(tb[0], -1)):
        if written.get(t, -1) <= k:  # a buffer shared in place holds the last tensor written into it
            names[id(b)] = f"{g.tensors[t].name} {g.tensors[t].static_shape} {g.tensors[t].dtype}"
    return {"arena_bytes": total, "op": g.ops[k].index, "kind": g.ops[k].kind,
            "live_bytes": sum(b.size for b in live[k]),
            "live": [{"name": names[id(b)], "bytes": b.size, "offset": b.offset}
                     for b in sorted(live[k], key=lambda b: b.offset)]}


def fuse(g: Graph, kernels: str = "reference") -> None:
    """The generator's fused ops in g for `kernels`: for the optimized ones each transposed
    RHS of a BATCH_MATMUL read untransposed (rhs_transpose.py); attention chains in row
    tiles (attention.py), each causal PAD read by its conv (causal_conv.py). Their op
    indices are the generated code's."""
    if kernels == "optimized":
        rhs_transpose.fuse(g)
    attention.fuse(g, attention.TILE_ROWS[kernels])
    causal_conv.fuse(g)


def schedule(g: Graph, kernels: str = "reference") -> None:
    """Reorder g.ops for the smallest arena, scratch included: the search of
    convert/rewrites/schedule.py (`best_order`; the order as it is on a tie). The
    order of independent ops changes no arithmetic; every op computes the same tensor."""
    best, _ = best_order(_planning_graph(g, kernels))
    g.ops = [g.ops[k] for k in best]


# ---------------------------------------------------------------- C helpers

def _prod(shape: list[Dim]) -> str:
    static = int(np.prod([d[1] for d in shape if not isinstance(d, str) and d[0] == 0])) if shape else 1
    syms = [dim_c(d) for d in shape if isinstance(d, str) or d[0]]
    return " * ".join(([str(static)] if static != 1 or not syms else []) + syms)


def _carray(values, per_line: int = 24) -> str:
    vals = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return "{\n  " + ",\n  ".join(lines) + "}" if vals else "{}"


class Emitter:
    def __init__(self, g: Graph, kernels: str = "reference"):
        if kernels not in KERNELS:
            raise ValueError(f"unknown aot kernels {kernels!r}; one of {', '.join(KERNELS)}")
        fuse(g, kernels)
        schedule(g, kernels)
        self.g = g
        self.kernels = kernels
        self.bufs, self.scratch, self.arena_bytes = plan_arena(g, kernels)
        self.consts: list[str] = []
        self.body: list[str] = []
        self.const_names: dict[int, str] = {}
        self.views: dict[int, str] = {}  # tensor -> C pointer expression: attention.py's tiles

    # tensor access -----------------------------------------------------
    def t(self, i: int) -> str:
        if i in self.views:
            return self.views[i]
        tt = self.g.tensors[i]
        if tt.is_const:
            if i not in self.const_names:
                name = f"c{i}"
                ctype = _CTYPE[tt.dtype]
                data = tt.data.astype(np.uint8) if tt.dtype == "bool" else tt.data
                self.consts.append(f"// {tt.name} {tt.static_shape}\n"
                                   f"alignas(16) static const {ctype} {name}[{max(1, tt.data.size)}] = {_carray(data)};")
                self.const_names[i] = name
            return self.const_names[i]
        b = self.bufs[i]
        return f"reinterpret_cast<{_CTYPE[tt.dtype]}*>(g_arena + {b.offset})"

    def shape(self, i: int, like: list[Dim] | None = None) -> list[Dim]:
        from .graph import _shape

        return _shape(self.g, i, like)

    def dims(self, name: str, shape: list[Dim], ctype: str = "int32_t") -> str:
        vals = ", ".join(dim_c(d) for d in shape) or "1"
        # unused where an optimized kernel takes the sizes directly; MicroPython builds with -Werror
        return f"[[maybe_unused]] const {ctype} {name}[] = {{{vals}}};"

    def rs(self, name: str, shape: list[Dim]) -> str:
        return f"tflite_micro::RuntimeShape({max(1, len(shape))}, {name})"

    # ops ------------------------------------------------------------------
    def emit(self) -> None:
        for op in self.g.ops:
            if op.kind == "RESHAPE":
                src, dst = op.inputs[0], op.outputs[0]
                if self.g.tensors[src].is_const:
                    raise AotUnsupported("RESHAPE of a constant")
                self.body.append(f"  // op {op.index} RESHAPE: in place")
                continue
            fn = getattr(self, "op_" + op.kind.lower(), None)
            if fn is None:
                raise AotUnsupported(f"op {op.kind} has no aot emitter")
            outs = self.g.tensors[op.outputs[0]]
            self.body.append(f"  {{  // op {op.index} {op.kind} -> {outs.name} {outs.static_shape}")
            self.body.extend("    " + line for line in fn(op))
            self.body.append(f"    EMBBERT_AOT_TRACE({op.index}, {self.t(outs.index)}, "
                             f"{_prod(outs.shape)} * sizeof({_CTYPE[outs.dtype]}));")
            self.body.append("  }")

    def _elem_index(self, op: Op, k: int) -> str:
        """Index expression of operand k in an elementwise op over `i` (scalar or full)."""
        shapes = op.options["in_shapes"]
        out = self.g.tensors[op.outputs[0]].shape
        if _prod(shapes[k]) == "1":
            return "0"
        if [dim_c(d) for d in shapes[k]] == [dim_c(d) for d in out[-len(shapes[k]):]] and \
                all(d == (0, 1) for d in out[:len(out) - len(shapes[k])]):
            return "i"
        row = list(shapes[k])
        while row and row[0] == (0, 1):
            row = row[1:]
        if [dim_c(d) for d in row] == [dim_c(d) for d in out[len(out) - len(row):]]:  # one row for every outer index
            return f"i % ({_prod(row)})"
        raise AotUnsupported(f"op {op.index} {op.kind}: broadcast {shapes} on non-int8 data")

    def _simple_elementwise(self, op: Op, expr: str) -> list[str]:
        out = op.outputs[0]
        n_out = _prod(self.g.tensors[out].shape)
        ins = [f"{self.t(i)}[{self._elem_index(op, k)}]" for k, i in enumerate(op.inputs)]
        return [f"for (int i = 0; i < {n_out}; ++i) {self.t(out)}[i] = {expr.format(*ins)};"]

    def op_equal(self, op):
        return self._simple_elementwise(op, "({0} == {1})")

    def op_less(self, op):
        return self._simple_elementwise(op, "({0} < {1})")

    def op_select_v2(self, op):
        return self._simple_elementwise(op, "({0} ? {1} : {2})")

    def op_cast(self, op):
        src, dst = self.g.tensors[op.inputs[0]], self.g.tensors[op.outputs[0]]
        if (src.dtype, dst.dtype) not in (("bool", "int32"), ("int32", "int32")):
            raise AotUnsupported(f"CAST {src.dtype} -> {dst.dtype}")
        op.options["in_shapes"] = [src.shape]
        return self._simple_elementwise(op, "static_cast<int32_t>({0})")

    def _int32_binary(self, op, sym):
        return self._simple_elementwise(op, "({0} " + sym + " {1})")

    def _binary_int8_shapes(self, op) -> tuple[list[str], str, str, str, bool]:
        s1, s2 = op.options["in_shapes"]
        so = self.g.tensors[op.outputs[0]].shape
        lines = [self.dims("d1", s1), self.dims("d2", s2), self.dims("dout", so)]
        same = [dim_c(d) for d in s1] == [dim_c(d) for d in s2] == [dim_c(d) for d in so]
        return lines, self.rs("d1", s1), self.rs("d2", s2), self.rs("dout", so), same

    def _row_broadcast(self, op) -> tuple[bool, str, str, str, str] | None:
        """An int8 binary op as kernels' (a, b) with strides: (swap a and b, outer,
        inner, b_outer, b_inner) when one input has the output's shape and the
        other is the same, a row [inner], a column [outer, 1] or a scalar; else None."""
        so = [dim_c(d) for d in self.g.tensors[op.outputs[0]].shape]
        shapes = [[dim_c(d) for d in s] for s in op.options["in_shapes"]]
        for swap in (False, True):
            a, b = shapes[::-1] if swap else shapes
            if len(a) != len(so) or a != so or not so:
                continue
            b = ["1"] * (len(so) - len(b)) + b
            lead_same, lead_one = b[:-1] == so[:-1], all(d == "1" for d in b[:-1])
            last_same, last_one = b[-1] == so[-1], b[-1] == "1"
            if not (lead_same or lead_one) or not (last_same or last_one):
                continue
            outer, inner = _prod(self.g.tensors[op.outputs[0]].shape[:-1]) or "1", so[-1]
            b_inner = "1" if last_same and so[-1] != "1" else "0"
            b_outer = ("1" if last_one else inner) if lead_same else "0"
            return swap, outer, inner, b_outer, b_inner
        return None

    def op_sub(self, op):
        return self.op_add(op, sub=True)

    def op_add(self, op, sub: bool = False):
        a, b, o = (self.g.tensors[i] for i in (*op.inputs, op.outputs[0]))
        if o.dtype == "int32":
            return self._int32_binary(op, "-" if sub else "+")
        rows = None if sub else self._row_broadcast(op)
        if rows and rows[0]:  # the broadcast input second: ADD is symmetric in its two inputs' parameters
            a, b = b, a
        p = (quant.sub_params if sub else quant.add_params)(a.s, b.s, o.s)
        lines, r1, r2, ro, same = self._binary_int8_shapes(op)
        if sub:  # sub.cc: reference_ops::Sub, or BroadcastQuantSubSlow when the shapes differ
            kernel = "tflite_micro::reference_ops::" + ("Sub" if same else "BroadcastQuantSubSlow<int8_t>")
        else:
            kernel = "tflite_micro::reference_integer_ops::" + ("Add" if same else "BroadcastAdd6DSlow")
        lines += [
            "tflite_micro::ArithmeticParams p = {};",
            f"p.left_shift = {p['left_shift']};",
            f"p.input1_offset = {-a.zero_point}; p.input1_multiplier = {p['input1_multiplier']}; "
            f"p.input1_shift = {p['input1_shift']};",
            f"p.input2_offset = {-b.zero_point}; p.input2_multiplier = {p['input2_multiplier']}; "
            f"p.input2_shift = {p['input2_shift']};",
            f"p.output_offset = {o.zero_point}; p.output_multiplier = {p['output_multiplier']}; "
            f"p.output_shift = {p['output_shift']};",
            "p.quantized_activation_min = -128; p.quantized_activation_max = 127;",
        ]
        if rows:  # kernels/<reference|optimized>/add.h
            lines.append(f"embbert_aot::kernels::Add(p, {self.t(a.index)}, {self.t(b.index)}, {', '.join(rows[1:])}, "
                         f"{self.t(o.index)});")
        else:
            lines.append(f"{kernel}(p, {r1}, {self.t(a.index)}, {r2}, {self.t(b.index)}, {ro}, {self.t(o.index)});")
        self._check_act(op)
        return lines

    def op_mul(self, op):
        a, b, o = (self.g.tensors[i] for i in (*op.inputs, op.outputs[0]))
        if o.dtype == "int32":
            return self._int32_binary(op, "*")
        m, s = quant.mul_params(a.s, b.s, o.s)
        lines, r1, r2, ro, same = self._binary_int8_shapes(op)
        rows = self._row_broadcast(op)
        if rows and rows[0]:
            a, b = b, a
        lines += [
            "tflite_micro::ArithmeticParams p = {};",
            f"p.input1_offset = {-a.zero_point}; p.input2_offset = {-b.zero_point}; p.output_offset = {o.zero_point};",
            f"p.output_multiplier = {m}; p.output_shift = {s};",
            "p.quantized_activation_min = -128; p.quantized_activation_max = 127;",
            f"embbert_aot::kernels::Mul(p, {self.t(a.index)}, {self.t(b.index)}, {', '.join(rows[1:])}, "
            f"{self.t(o.index)});"
            if rows else f"tflite_micro::reference_integer_ops::BroadcastMul6DSlow(p, {r1}, "
            f"{self.t(a.index)}, {r2}, {self.t(b.index)}, {ro}, {self.t(o.index)});",
        ]
        self._check_act(op)
        return lines

    def _check_act(self, op):
        if op.options.get("fusedActivationFunction", 0) != 0:
            raise AotUnsupported(f"op {op.index} {op.kind}: fused activation")

    def op_gather(self, op):
        params, idx, out = (self.g.tensors[i] for i in (*op.inputs, op.outputs[0]))
        if op.options.get("batchDims", 0):
            raise AotUnsupported("GATHER with batch_dims")
        ps = self.shape(params.index)
        ax = op.options["axis"] % len(ps)
        outer, inner = _prod(ps[:ax]) or "1", _prod(ps[ax + 1:]) or "1"
        n_idx = _prod(self.shape(idx.index)) or "1"
        return [f"embbert_aot::Gather<{_CTYPE[params.dtype]}>({self.t(params.index)}, {outer}, {dim_c(ps[ax])}, "
                f"{inner}, {self.t(idx.index)}, {n_idx}, {self.t(out.index)});"]

    def op_concatenation(self, op):
        self._check_act(op)
        shapes = op.options["in_shapes"]
        out = self.g.tensors[op.outputs[0]]
        ax = op.options["axis"] % len(shapes[0])
        outer = _prod(shapes[0][:ax]) or "1"
        ctype = _CTYPE[out.dtype]
        for i in op.inputs:
            t = self.g.tensors[i]
            if t.dtype == "int8" and (t.s != out.s or t.zero_point != out.zero_point):
                raise AotUnsupported("CONCATENATION with requantization")
        lines = [f"{ctype}* o = {self.t(out.index)};", f"for (int r = 0; r < {outer}; ++r) {{"]
        for k, i in enumerate(op.inputs):
            chunk = _prod(shapes[k][ax:])
            lines.append(f"  memcpy(o, {self.t(i)} + r * ({chunk}), sizeof({ctype}) * ({chunk})); o += {chunk};")
        return lines + ["}"]

    def _scratch(self, op) -> str:
        return f"g_arena + {self.scratch[op.index].offset}" if op.index in self.scratch else "nullptr"

    def _matmul_params(self, x, w, o, mults, shifts) -> list[str]:
        """kernels::MatMulParams p (kernel_params.h)."""
        return [f"static const int32_t mult[] = {_carray(mults)};", f"static const int shift[] = {_carray(shifts)};",
                f"const embbert_aot::kernels::MatMulParams p = {{{-x.zero_point}, {-w.zero_point}, {o.zero_point}, "
                f"mult, shift, {'true' if len(mults) > 1 else 'false'}}};"]

    def op_fully_connected(self, op):
        self._check_act(op)
        x, w, o = (self.g.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
        bias = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] >= 0 else -1
        units, depth = w.static_shape
        rows = _prod(self.shape(x.index)[:-1]) or "1"
        if len(w.scale) > 1:
            mults, shifts = quant.per_channel_multipliers(x.s, w.scale, o.s)
        else:
            m, sh = quant.quantize_multiplier(quant.conv_multiplier(x.s, w.s, o.s))
            mults, shifts = [m], [sh]
        b = self.t(bias) if bias >= 0 else "nullptr"
        return self._matmul_params(x, w, o, mults, shifts) + [
            f"embbert_aot::kernels::FullyConnected(p, {self.t(x.index)}, {rows}, {self.t(w.index)}, {units}, {depth}, "
            f"{b}, {self.t(o.index)}, {self._scratch(op)});"]

    def _reduce(self, op, compute_sum: bool):
        x, o = self.g.tensors[op.inputs[0]], self.g.tensors[op.outputs[0]]
        xs, os_ = self.shape(x.index), o.shape
        axes = [int(a) for a in np.asarray(self.g.tensors[op.inputs[1]].data).reshape(-1)]
        m, s = quant.quantize_multiplier(quant.f32(x.s) / quant.f32(o.s))
        scratch = f"reinterpret_cast<int32_t*>(g_arena + {self.scratch[op.index].offset})"
        lines = [self.dims("dx", xs, "int"), self.dims("dout", os_, "int"),
                 f"const int axis[] = {{{', '.join(map(str, axes))}}};", "int temp_index[6]; int resolved_axis[6];"]
        quantized = not (not compute_sum and x.zero_point == o.zero_point and quant.f32(x.s) == quant.f32(o.s))
        if [a % len(xs) for a in axes] == [len(xs) - 1]:  # over the last axis: kernels/<...>/reduce.h
            return [f"const embbert_aot::kernels::ReduceParams p = {{{str(quantized).lower()}, "
                    f"{str(compute_sum).lower()}, {x.zero_point}, {m}, {s}, {o.zero_point}}};",
                    f"embbert_aot::kernels::ReduceLastAxis(p, {self.t(x.index)}, {_prod(xs[:-1]) or '1'}, "
                    f"{dim_c(xs[-1])}, {self.t(o.index)}, {scratch});"]
        keep = "true" if op.options.get("keepDims") else "false"
        common = (f"{len(xs)}, {self.t(o.index)}, {{OUT}}, dout, {max(1, len(os_))}, axis, {len(axes)}, {keep}, "
                  f"temp_index, resolved_axis, {scratch}")
        if not quantized:
            lines.append(f"tflite_micro::reference_ops::Mean<int8_t, int32_t>({self.t(x.index)}, dx, "
                         + common.replace("{OUT}, ", "") + ");")
        else:
            lines.append(f"tflite_micro::reference_ops::QuantizedMeanOrSum<int8_t, int32_t>({self.t(x.index)}, "
                         f"{x.zero_point}, dx, "
                         + common.replace("{OUT}", f"{m}, {s}, {o.zero_point}")
                         + f", {'true' if compute_sum else 'false'});")
        return lines

    def op_mean(self, op):
        xs = self.shape(op.inputs[0])
        if len(xs) == 4 and op.options.get("keepDims") and sorted(
                int(a) for a in np.asarray(self.g.tensors[op.inputs[1]].data).reshape(-1)) == [1, 2]:
            raise AotUnsupported("MEAN over axes 1 and 2 of a 4-D tensor (TFLite-Micro's special case)")
        return self._reduce(op, False)

    def op_sum(self, op):
        return self._reduce(op, True)

    def op_rsqrt(self, op):
        x, o = self.g.tensors[op.inputs[0]], self.g.tensors[op.outputs[0]]
        m, s = quant.rsqrt_params(x.s, o.s)
        return [f"embbert_aot::RsqrtInt8({self.t(x.index)}, {self.t(o.index)}, {_prod(o.shape)}, {x.zero_point}, "
                f"{o.zero_point}, {m}, {s});"]

    def _rank4(self, shape: list[Dim]) -> list[Dim]:
        if len(shape) > 4:
            raise AotUnsupported("rank > 4")
        return [(0, 1)] * (4 - len(shape)) + list(shape)

    def op_transpose(self, op):
        x, o = self.g.tensors[op.inputs[0]], self.g.tensors[op.outputs[0]]
        perm = [int(p) for p in self.g.tensors[op.inputs[1]].data]
        k = 4 - len(perm)
        perm4 = list(range(k)) + [p + k for p in perm]
        return [self.dims("dx", self._rank4(self.shape(x.index))), f"const int perm[] = {{{', '.join(map(str, perm4))}}};",
                f"embbert_aot::Transpose4<{_CTYPE[x.dtype]}>({self.t(x.index)}, dx, perm, {self.t(o.index)});"]

    def op_pad(self, op):
        x, o = self.g.tensors[op.inputs[0]], self.g.tensors[op.outputs[0]]
        pads = np.asarray(self.g.tensors[op.inputs[1]].data).reshape(-1, 2)
        k = 4 - len(pads)
        before = [0] * k + [int(p) for p in pads[:, 0]]
        after = [0] * k + [int(p) for p in pads[:, 1]]
        value = o.zero_point if x.dtype == "int8" else 0
        return [self.dims("dx", self._rank4(self.shape(x.index))),
                f"const int32_t before[] = {{{', '.join(map(str, before))}}};",
                f"const int32_t after[] = {{{', '.join(map(str, after))}}};",
                f"embbert_aot::Pad4<{_CTYPE[x.dtype]}>({self.t(x.index)}, dx, before, after, "
                f"static_cast<{_CTYPE[x.dtype]}>({value}), {self.t(o.index)});"]

    def op_conv_2d(self, op):
        self._check_act(op)
        x, w, o = (self.g.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
        bias = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] >= 0 else -1
        mults, shifts = quant.per_channel_multipliers(x.s, w.scale if len(w.scale) > 1 else w.scale * w.static_shape[0],
                                                      o.s)
        return [self.dims("dx", self.shape(x.index)), self.dims("dw", _static4(w.static_shape)),
                f"const int32_t db[] = {{{w.static_shape[0]}}};", self.dims("dout", o.shape),
                "tflite_micro::ConvParams p = {};",
                "p.padding_type = tflite_micro::PaddingType::kValid;",
                "p.stride_width = 1; p.stride_height = 1; p.dilation_width_factor = 1; p.dilation_height_factor = 1;",
                f"p.input_offset = {-x.zero_point}; p.weights_offset = 0; p.output_offset = {o.zero_point};",
                "p.quantized_activation_min = -128; p.quantized_activation_max = 127;",
                f"static const int32_t mult[] = {_carray(mults)};", f"static const int32_t shift[] = {_carray(shifts)};",
                f"tflite_micro::reference_integer_ops::ConvPerChannel(p, mult, shift, tflite_micro::RuntimeShape(4, dx), "
                f"{self.t(x.index)}, tflite_micro::RuntimeShape(4, dw), {self.t(w.index)}, "
                f"tflite_micro::RuntimeShape(1, db), {self.t(bias) if bias >= 0 else 'nullptr'}, "
                f"tflite_micro::RuntimeShape(4, dout), {self.t(o.index)});"]

    def op_depthwise_conv_2d(self, op):
        """depthwise_conv.cc, int8 per channel; one-axis (the conv branch's [1, 1, W, C] over
        [1, 1, taps, C], VALID, stride 1, its PAD folded in: causal_conv.py) through
        kernels/<...>/depthwise_conv.h, weights packed for the kernels (pack_depthwise_weights);
        anything else TFLite-Micro's reference kernel."""
        self._check_act(op)
        x, w, o = (self.g.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
        bias = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] >= 0 else -1
        channels = w.static_shape[3]
        mults, shifts = quant.per_channel_multipliers(x.s, w.scale if len(w.scale) > 1 else w.scale * channels, o.s)
        b = self.t(bias) if bias >= 0 else "nullptr"
        params = [f"static const int32_t mult[] = {_carray(mults)};", f"static const int32_t shift[] = {_carray(shifts)};"]
        if _depthwise_1d(self.g, op):
            xs = self.shape(x.index)
            taps = w.static_shape[2]
            packed = pack_depthwise_weights(w.data.reshape(taps, channels), self.kernels)
            return params + [
                f"alignas(4) static const int8_t wp[] = {_carray(packed)};",
                f"const embbert_aot::kernels::DepthwiseParams p = {{{-x.zero_point}, {o.zero_point}, mult, shift, "
                f"{op.options.get('pad_before', 0)}}};",
                f"embbert_aot::kernels::DepthwiseConv1D(p, {self.t(x.index)}, {dim_c(xs[2])}, {channels}, wp, {taps}, "
                f"{b}, {self.t(o.index)}, {self._scratch(op)});"]
        return params + [
                self.dims("dx", self.shape(x.index)), self.dims("dw", _static4(w.static_shape)),
                f"const int32_t db[] = {{{channels}}};", self.dims("dout", o.shape),
                "tflite_micro::DepthwiseParams p = {};",
                "p.padding_type = tflite_micro::PaddingType::kValid;",
                "p.padding_values.width = 0; p.padding_values.height = 0;",
                "p.stride_width = 1; p.stride_height = 1; p.dilation_width_factor = 1; p.dilation_height_factor = 1;",
                "p.depth_multiplier = 1;",
                f"p.input_offset = {-x.zero_point}; p.weights_offset = 0; p.output_offset = {o.zero_point};",
                "p.quantized_activation_min = -128; p.quantized_activation_max = 127;",
                f"tflite_micro::reference_integer_ops::DepthwiseConvPerChannel(p, mult, shift, "
                f"tflite_micro::RuntimeShape(4, dx), {self.t(x.index)}, tflite_micro::RuntimeShape(4, dw), "
                f"{self.t(w.index)}, tflite_micro::RuntimeShape(1, db), {b}, "
                f"tflite_micro::RuntimeShape(4, dout), {self.t(o.index)});"]

    def op_attention(self, op):
        return attention.emit(self, op)

    def op_batch_matmul(self, op):
        a, b, o = (self.g.tensors[i] for i in (*op.inputs, op.outputs[0]))
        m, s = quant.quantize_multiplier(quant.batch_matmul_multiplier(a.s, b.s, o.s))
        sa, sb = self.shape(a.index), self.shape(b.index)
        if op.options.get("adjX") or [dim_c(d) for d in sa[:-2]] != [dim_c(d) for d in sb[:-2]]:
            raise AotUnsupported(f"op {op.index} BATCH_MATMUL with adj_x or broadcast batch dims {sa} {sb}")
        batch = _prod(sa[:-2]) or "1"
        # adj_y: the RHS as [units, depth]; without: as [depth, units] (BatchMatMulRhsDepthUnits)
        kernel, units = ("BatchMatMul", sb[-2]) if op.options.get("adjY") else ("BatchMatMulRhsDepthUnits", sb[-1])
        return self._matmul_params(a, b, o, [m], [s]) + [
            f"embbert_aot::kernels::{kernel}(p, {self.t(a.index)}, {self.t(b.index)}, {batch}, {dim_c(sa[-2])}, "
            f"{dim_c(units)}, {dim_c(sa[-1])}, {self.t(o.index)}, {self._scratch(op)});"]

    def op_softmax(self, op):
        x, o = self.g.tensors[op.inputs[0]], self.g.tensors[op.outputs[0]]
        if o.zero_point != -128 or quant.f32(o.s) != quant.f32(1 / 256):
            raise AotUnsupported("SOFTMAX output must be scale 1/256, zero point -128")
        mult, shift, diff_min = quant.softmax_params(op.options.get("beta", 1.0), x.s)
        keys = x.shape[-1]
        padded = "0"
        if keys[0]:  # over the n real keys: the full graph's L - n padded keys sit at -128 (convert/exact_mask.py)
            if not self._masks_padded_keys(x.index):
                raise AotUnsupported(f"op {op.index} SOFTMAX over the keys without the exact padded-key mask "
                                     "(SELECT_V2 of -128 on ids == [PAD]): convert the run again with this version")
            padded = f"{x.static_shape[-1]} - {dim_c(keys)}"
        scratch = f"reinterpret_cast<int8_t*>({self._scratch(op)})" if op.index in self.scratch else "nullptr"
        return ["tflite_micro::SoftmaxParams p = {};",
                f"p.input_multiplier = {mult}; p.input_left_shift = {shift}; p.diff_min = {diff_min};",
                f"embbert_aot::kernels::Softmax(p, {self.t(x.index)}, {_prod(x.shape[:-1]) or '1'}, "
                f"{dim_c(keys)}, {padded}, {self.t(o.index)}, {scratch});"]

    def _masks_padded_keys(self, t: int) -> bool:
        """t = SELECT_V2(EQUAL(ids, [PAD]) over the keys, -128, scores): in the full graph every padded key is -128."""
        ops = [*self.g.ops, *(tile for op in self.g.ops for tile in op.options.get("tiles", ()))]  # attention.py's
        prod = {o: op for op in ops for o in op.outputs}
        sel = prod.get(t)
        if sel is None or sel.kind != "SELECT_V2":
            return False
        cond, lowest = (self.g.tensors[i] for i in sel.inputs[:2])
        eq = prod.get(cond.index)
        if eq is None or eq.kind != "EQUAL" or not lowest.is_const or lowest.data.size != 1 or int(lowest.data) != -128:
            return False
        ids, pad = (self.g.tensors[i] for i in eq.inputs)
        return ids.index in self.g.inputs and pad.is_const and pad.data.size == 1 and int(pad.data) == PAD_ID \
            and cond.shape[-1] == self.g.tensors[t].shape[-1]

    def op_logistic(self, op):
        x, o = self.g.tensors[op.inputs[0]], self.g.tensors[op.outputs[0]]
        if o.zero_point != -128:
            raise AotUnsupported("LOGISTIC output zero point must be -128")
        mult, shift, radius = quant.logistic_params(x.s)
        return [f"const embbert_aot::kernels::LogisticParams p = {{{x.zero_point}, {radius}, {mult}, {shift}}};",
                f"embbert_aot::kernels::Logistic(p, {self.t(x.index)}, {_prod(x.shape)}, {self.t(o.index)});"]

    def op_tanh(self, op):
        x, o = self.g.tensors[op.inputs[0]], self.g.tensors[op.outputs[0]]
        mult, shift, radius = quant.tanh_params(x.s)
        return [self.dims("dx", x.shape),
                f"tflite_micro::reference_integer_ops::Tanh({x.zero_point}, {radius}, {mult}, {shift}, "
                f"{self.rs('dx', x.shape)}, {self.t(x.index)}, {self.rs('dx', x.shape)}, {self.t(o.index)});"]

    def op_strided_slice(self, op):
        x, o = self.g.tensors[op.inputs[0]], self.g.tensors[op.outputs[0]]
        ranges = op.options["ranges"]
        k = 4 - len(ranges)
        start = ["0"] * k + [dim_c(s) for s, _ in ranges]
        size = op.options.get("size", o.shape)  # rhs_transpose.py's: o's shape, its last two (one a 1) swapped
        return [self.dims("dx", self._rank4(self.shape(x.index))),
                f"const int32_t start[] = {{{', '.join(start)}}};", self.dims("size", self._rank4(size)),
                f"embbert_aot::Slice4<{_CTYPE[x.dtype]}>({self.t(x.index)}, dx, start, size, {self.t(o.index)});"]


def _static4(shape: list[int]) -> list[Dim]:
    return [(0, d) for d in shape]


# ---------------------------------------------------------------- MACs

def op_macs(g: Graph, op: Op, n: int) -> int:
    """Multiply-accumulates of one op on n tokens (FC, conv, batch matmul; 0 for the rest)."""
    if op.kind == attention.KIND:
        return sum(op_macs(g, o, n) for o in op.options["chain"])
    o = g.tensors[op.outputs[0]]
    out = int(np.prod([dim_eval(d, n) for d in o.shape]))
    if op.kind == "FULLY_CONNECTED":
        return out * g.tensors[op.inputs[1]].static_shape[1]
    if op.kind == "CONV_2D":
        w = g.tensors[op.inputs[1]].static_shape
        return out * w[1] * w[2] * w[3]
    if op.kind == "DEPTHWISE_CONV_2D":
        w = g.tensors[op.inputs[1]].static_shape
        return out * w[1] * w[2]
    if op.kind == "BATCH_MATMUL":
        return out * dim_eval(g.tensors[op.inputs[0]].shape[-1], n)
    return 0


def macs(g: Graph, n: int) -> int:
    """Multiply-accumulates of one inference on n tokens."""
    return sum(op_macs(g, op, n) for op in g.ops)


# ---------------------------------------------------------------- files

def generate(g: Graph, model_sha256: str, kernels: str = "reference") -> tuple[str, str, dict]:
    em = Emitter(g, kernels)
    em.emit()
    out = g.tensors[g.outputs[0]]
    n_logits = int(np.prod(out.static_shape))
    inp = g.inputs[0]
    header = f"""// Generated by embbert convert (convert/aot) from model.tflite sha256 {model_sha256}.
// Do not edit: `embbert convert` writes it into the artifact (aot/<kernels>/).
#pragma once
#include <stdint.h>

namespace embbert_aot {{

constexpr int kMaxLen = {g.L};             // the graph's sequence length L
constexpr int kNumLogits = {n_logits};
constexpr uint32_t kArenaBytes = {em.arena_bytes};  // activations + scratch, planned for n = L
constexpr int8_t kOutputZeroPoint = {out.zero_point};
constexpr float kOutputScale = {out.s!r}f;

// ids: n int32 token ids ([CLS] ... [SEP], each < vocab), 1 <= n <= kMaxLen.
// Computes only the n tokens; n = kMaxLen with right padding is the full graph.
void Infer(const int32_t* ids, int n, int8_t* logits);

}}  // namespace embbert_aot
"""
    body = "\n".join(em.body)
    source = f"""// Generated by embbert convert (convert/aot) from model.tflite sha256 {model_sha256}.
// Eval of the int8 graph: TFLite-Micro's reference kernels (from the pinned
// wheels' headers) or, for FULLY_CONNECTED, BATCH_MATMUL, DEPTHWISE_CONV_2D,
// SOFTMAX, LOGISTIC, ADD, MUL, MEAN and SUM, the kernels of the folder on the include path
// (kernels: {kernels}), with parameters precomputed at convert time.
#include "model_aot.h"

#include <string.h>

#include "aot_ops.h"
#include "add.h"              // kernels/<reference|optimized>/, per board
#include "batch_matmul.h"     // idem
#include "depthwise_conv.h"   // idem
#include "fully_connected.h"  // idem
#include "logistic.h"         // idem
#include "mul.h"              // idem
#include "reduce.h"           // idem
#include "softmax.h"          // idem
#include "tensorflow/lite/kernels/internal/reference/integer_ops/add.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/conv.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/depthwise_conv.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/logistic.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/mul.h"
#include "tensorflow/lite/kernels/internal/reference/reduce.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/tanh.h"
#include "tensorflow/lite/kernels/internal/reference/softmax.h"
#include "tensorflow/lite/kernels/internal/reference/sub.h"

// A debug build may define EMBBERT_AOT_TRACE(op, data, bytes) to see each op's output.
#ifndef EMBBERT_AOT_TRACE
#define EMBBERT_AOT_TRACE(op, data, bytes) ((void)0)
#endif

namespace embbert_aot {{
namespace {{

alignas(16) uint8_t g_arena[kArenaBytes];

{chr(10).join(em.consts)}

}}  // namespace

void Infer(const int32_t* ids, int n, int8_t* logits) {{
  memcpy({em.t(inp)}, ids, sizeof(int32_t) * n);
{body}
  memcpy(logits, {em.t(out.index)}, kNumLogits);
}}

}}  // namespace embbert_aot
"""
    info = {"arena_bytes": em.arena_bytes, "ops": len(g.ops), "L": g.L, "n_logits": n_logits, "kernels": kernels,
            "macs_full": macs(g, g.L), "plan_peak": plan_peak(g, em.bufs, em.scratch, em.arena_bytes)}
    return header, source, info
