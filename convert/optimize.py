"""Rewrite the converter's int8 flatbuffer into what TFLite-Micro runs best.

Every rewrite keeps each op's int8 arithmetic, so TFLite-Micro's logits do not
change by a bit (only the op list, the file and the arena do):

- onnx2tf guards every GATHER against negative indices: LESS(ids, 0) -> CAST
  -> MUL(table rows) -> ADD(ids, .) in int32. Token ids are never negative (the
  ids input is documented as 0 <= id < vocab), so GATHER reads ids directly.
- onnx2tf emits the depthwise conv as a grouped CONV_2D (filter
  [C, kh, kw, 1], C input channels). It becomes DEPTHWISE_CONV_2D (filter
  [1, kh, kw, C], per-channel scales on axis 3): both kernels compute, per
  output channel, the same int32 sum and the same per-channel requantization.
- A chain of TRANSPOSE / RESHAPE ops that moves no element (onnx2tf's NCHW
  detours: transpose, reshape, transpose back) becomes one RESHAPE.
- Ops whose outputs nobody reads, and the tensors, buffers and operator
  codes left unused, are dropped (opcode indices renumbered).
- A tensor read again long after it was transposed is transposed back from
  its transpose instead of being kept (only where the planned arena shrinks).
- The ops are reordered: TFLite-Micro runs them in file order and plans the
  arena from each tensor's first and last use, and the converter's order keeps
  tensors alive for longer than needed. Several topological orders are planned
  with TFLite-Micro's greedy planner (simulated here) and the smallest is kept;
  any topological order computes the same tensors.
- The plan is stored in the model as TFLite-Micro's offline memory plan
  (metadata "OfflineMemoryAllocation", micro/docs/memory_management.md), with
  the reuse convert/aot also does and TFLite-Micro's own planner does not: a
  RESHAPE output shares its input's bytes, and so does the output of an int8
  ADD, MUL, LOGISTIC, SOFTMAX or SELECT_V2 and an input of the same shape that dies there.
  TFLite-Micro's reference kernels read each input element before they write
  the output element of the same index (softmax: a row's max and sum first);
  `optimize_checked` runs the converter's model and the rewritten one on real
  inputs and keeps the rewrites only if the int8 logits are identical. An optimized kernel
  library (CMSIS-NN, ESP-NN) must be checked the same way on its target.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

ALIGN = 16  # TFLite-Micro's kBufferAlignment; also the alignment of constant buffers we write
_ELEM = {"FLOAT32": 4, "INT32": 4, "INT8": 1, "UINT8": 1, "BOOL": 1, "INT16": 2, "INT64": 8, "FLOAT16": 2}


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema


class _Model:
    """The object API view of a single-subgraph model, with helpers."""

    def __init__(self, data: bytes):
        s = _schema()
        self.s = s
        self.m = s.ModelT.InitFromObj(s.Model.GetRootAsModel(data, 0))
        self.g = self.m.subgraphs[0]
        self.op_names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
        self.type_names = {v: k for k, v in vars(s.TensorType).items() if not k.startswith("_")}

    def clone(self) -> "_Model":
        other = copy.copy(self)
        other.m = copy.deepcopy(self.m)
        other.g = other.m.subgraphs[0]
        other._bytes = None
        return other

    # ops and tensors ---------------------------------------------------
    def kind(self, op) -> str:
        code = self.m.operatorCodes[op.opcodeIndex]
        return self.op_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")

    def opcode(self, name: str, version: int) -> int:
        code_value = getattr(self.s.BuiltinOperator, name)
        for i, c in enumerate(self.m.operatorCodes):
            if max(c.builtinCode, c.deprecatedBuiltinCode) == code_value:
                return i
        c = self.s.OperatorCodeT()
        c.builtinCode = code_value
        c.deprecatedBuiltinCode = min(code_value, 127)
        c.version = version
        self.m.operatorCodes.append(c)
        return len(self.m.operatorCodes) - 1

    def tensor(self, i: int):
        return self.g.tensors[i]

    def dtype(self, i: int) -> str:
        return self.type_names[self.g.tensors[i].type]

    def shape(self, i: int) -> list[int]:
        t = self.g.tensors[i]
        return [int(x) for x in t.shape] if t.shape is not None else []

    def const(self, i: int) -> np.ndarray | None:
        t = self.g.tensors[i]
        buf = self.m.buffers[t.buffer]
        if buf.data is None or len(buf.data) == 0:
            return None
        dt = {"INT8": np.int8, "INT32": np.int32, "INT64": np.int64, "FLOAT32": np.float32, "BOOL": np.bool_,
              "UINT8": np.uint8, "INT16": np.int16}[self.dtype(i)]
        return np.frombuffer(np.asarray(buf.data, dtype=np.uint8).tobytes(), dtype=dt).reshape(self.shape(i) or ())

    def set_const(self, i: int, arr: np.ndarray) -> None:
        self.m.buffers[self.g.tensors[i].buffer].data = np.frombuffer(np.ascontiguousarray(arr).tobytes(), np.uint8)

    def add_const(self, name: str, arr: np.ndarray) -> int:
        s = self.s
        buf = s.BufferT()
        buf.data = np.frombuffer(np.ascontiguousarray(arr).tobytes(), np.uint8)
        self.m.buffers.append(buf)
        t = s.TensorT()
        t.name = name.encode()
        t.shape = np.array(arr.shape, dtype=np.int32)
        t.type = {np.dtype(np.int32): s.TensorType.INT32}[arr.dtype]
        t.buffer = len(self.m.buffers) - 1
        self.g.tensors.append(t)
        return len(self.g.tensors) - 1

    def producers(self) -> dict[int, object]:
        return {t: op for op in self.g.operators for t in op.outputs}

    def consumers(self) -> dict[int, list]:
        users: dict[int, list] = {}
        for op in self.g.operators:
            for t in op.inputs:
                if t >= 0:
                    users.setdefault(int(t), []).append(op)
        return users

    def replace_uses(self, old: int, new: int) -> None:
        for op in self.g.operators:
            op.inputs = np.array([new if int(t) == old else int(t) for t in op.inputs], dtype=np.int32)
        self.g.outputs = np.array([new if int(t) == old else int(t) for t in self.g.outputs], dtype=np.int32)

    # serialization -----------------------------------------------------
    def pack(self) -> bytes:
        import flatbuffers

        class _Builder(flatbuffers.Builder):
            def CreateNumpyVector(self, x):  # constant data (uint8) 16-byte aligned, as the converter writes it
                if x.dtype == np.uint8 and x.size:
                    self.StartVector(1, x.size, ALIGN)
                    self.head = self.head - x.size
                    self.Bytes[self.head:self.head + x.size] = x.tobytes()
                    self.vectorNumElems = x.size
                    return self.EndVector()
                return super().CreateNumpyVector(x)

        b = _Builder(1 << 20)
        b.Finish(self.m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


# ---------------------------------------------------------------- rewrites

def _drop_negative_index_guards(mm: _Model) -> int:
    """GATHER(table, ADD(ids, MUL(CAST(LESS(ids, 0)), rows))) -> GATHER(table, ids) for the ids input."""
    prod = mm.producers()
    ids_inputs = {int(t) for t in mm.g.inputs}
    n = 0
    for op in list(mm.g.operators):
        if mm.kind(op) != "GATHER":
            continue
        idx = int(op.inputs[1])
        add = prod.get(idx)
        if add is None or mm.kind(add) != "ADD":
            continue
        a, b = (int(t) for t in add.inputs)
        for base, other in ((a, b), (b, a)):
            if base not in ids_inputs or other not in prod:
                continue
            mul = prod[other]
            if mm.kind(mul) != "MUL":
                continue
            m_in = [int(t) for t in mul.inputs]
            cast_out = next((t for t in m_in if t in prod and mm.kind(prod[t]) == "CAST"), None)
            if cast_out is None:
                continue
            less = prod.get(int(prod[cast_out].inputs[0]))
            if less is None or mm.kind(less) != "LESS":
                continue
            l_in = [int(t) for t in less.inputs]
            zero = mm.const(l_in[1])
            if l_in[0] != base or zero is None or np.any(zero != 0):
                continue
            op.inputs = np.array([int(op.inputs[0]), base], dtype=np.int32)
            n += 1
            break
    return n


def _grouped_conv_to_depthwise(mm: _Model) -> int:
    s = mm.s
    n = 0
    for op in mm.g.operators:
        if mm.kind(op) != "CONV_2D":
            continue
        x, w = int(op.inputs[0]), int(op.inputs[1])
        cin, wshape = mm.shape(x)[-1], mm.shape(w)
        if len(wshape) != 4 or wshape[3] != 1 or wshape[0] != cin or cin == 1:
            continue  # not one input channel per group, one output per group
        filt = mm.const(w)
        if filt is None:
            continue
        mm.set_const(w, np.ascontiguousarray(filt.transpose(3, 1, 2, 0)))  # [C,kh,kw,1] -> [1,kh,kw,C]
        t = mm.tensor(w)
        t.shape = np.array([1, wshape[1], wshape[2], wshape[0]], dtype=np.int32)
        if t.shapeSignature is not None:
            t.shapeSignature = np.array(t.shape)
        t.quantization.quantizedDimension = 3
        o = op.builtinOptions
        dw = s.DepthwiseConv2DOptionsT()
        dw.padding, dw.strideW, dw.strideH = o.padding, o.strideW, o.strideH
        dw.depthMultiplier = 1
        dw.fusedActivationFunction = o.fusedActivationFunction
        dw.dilationWFactor, dw.dilationHFactor = o.dilationWFactor, o.dilationHFactor
        op.builtinOptionsType = s.BuiltinOptions.DepthwiseConv2DOptions
        op.builtinOptions = dw
        op.opcodeIndex = mm.opcode("DEPTHWISE_CONV_2D", 3)
        n += 1
    return n


def _moves_nothing(mm: _Model, chain: list, src: int) -> bool:
    """True if the TRANSPOSE/RESHAPE chain leaves the flat element order of src unchanged."""
    a = np.arange(int(np.prod(mm.shape(src)))).reshape(mm.shape(src))
    for op in chain:
        if mm.kind(op) == "TRANSPOSE":
            a = a.transpose([int(p) for p in mm.const(int(op.inputs[1]))])
        else:
            a = a.reshape(mm.shape(int(op.outputs[0])))
    return bool(np.array_equal(a.reshape(-1), np.arange(a.size)))


def _fold_layout_chains(mm: _Model) -> int:
    """The longest single-path TRANSPOSE/RESHAPE chain from a tensor that moves
    no element becomes one RESHAPE of that tensor."""
    s = mm.s
    n = 0
    tried: set[int] = set()
    while True:
        users = mm.consumers()
        done = False
        for op in mm.g.operators:
            if mm.kind(op) != "TRANSPOSE" or id(op) in tried:
                continue
            tried.add(id(op))
            src = int(op.inputs[0])
            chain, best = [op], None
            while True:
                if _moves_nothing(mm, chain, src) and any(mm.kind(c) == "TRANSPOSE" for c in chain):
                    best = list(chain)
                out = int(chain[-1].outputs[0])
                nxt = [c for c in users.get(out, []) if mm.kind(c) in ("TRANSPOSE", "RESHAPE")]
                if len(nxt) != 1 or out in mm.g.outputs:
                    break
                chain.append(nxt[0])
            if best is None or any(mm.tensor(int(c.outputs[0])).name.endswith(b"/again") for c in best):
                continue  # a transpose back on purpose (_rematerialize_transposes) stays
            out = int(best[-1].outputs[0])
            shape = np.array(mm.shape(out), dtype=np.int32)
            new = s.OperatorT()
            new.opcodeIndex = mm.opcode("RESHAPE", 1)
            new.inputs = np.array([src, mm.add_const(mm.tensor(out).name.decode() + "/shape", shape)], dtype=np.int32)
            new.outputs = np.array([out], dtype=np.int32)
            new.builtinOptionsType = s.BuiltinOptions.ReshapeOptions
            new.builtinOptions = s.ReshapeOptionsT()
            new.builtinOptions.newShape = shape.tolist()
            pos = mm.g.operators.index(best[-1])
            mm.g.operators[pos] = new  # the chain's own intermediate outputs may still be read: dead code pass
            n += 1
            done = True
            break
        if not done:
            return n


def _drop_dead(mm: _Model) -> None:
    g = mm.g
    while True:
        users = mm.consumers()
        keep = [op for op in g.operators
                if any(int(t) in users or int(t) in g.outputs for t in op.outputs)]
        if len(keep) == len(g.operators):
            break
        g.operators = keep
    used = sorted({int(t) for op in g.operators for t in (*op.inputs, *op.outputs) if t >= 0}
                  | {int(t) for t in g.inputs} | {int(t) for t in g.outputs})
    remap = {old: new for new, old in enumerate(used)}
    g.tensors = [g.tensors[i] for i in used]
    for op in g.operators:
        op.inputs = np.array([remap[int(t)] if t >= 0 else -1 for t in op.inputs], dtype=np.int32)
        op.outputs = np.array([remap[int(t)] for t in op.outputs], dtype=np.int32)
    g.inputs = np.array([remap[int(t)] for t in g.inputs], dtype=np.int32)
    g.outputs = np.array([remap[int(t)] for t in g.outputs], dtype=np.int32)
    for sig in mm.m.signatureDefs or []:
        for tm in (*(sig.inputs or []), *(sig.outputs or [])):
            tm.tensorIndex = remap[tm.tensorIndex]
    # operator codes: only those an operator uses (the rewrites leave LESS, CAST, CONV_2D behind;
    # a runner that checks every code against its resolver would refuse the model for them)
    used_c = sorted({int(op.opcodeIndex) for op in g.operators})
    cremap = {old: new for new, old in enumerate(used_c)}
    mm.m.operatorCodes = [mm.m.operatorCodes[i] for i in used_c]
    for op in g.operators:
        op.opcodeIndex = cremap[int(op.opcodeIndex)]
    # buffers: 0 stays the empty sentinel; metadata buffers are kept
    meta = {md.buffer for md in mm.m.metadata or []}
    used_b = sorted({0} | {t.buffer for t in g.tensors} | meta)
    bremap = {old: new for new, old in enumerate(used_b)}
    mm.m.buffers = [mm.m.buffers[i] for i in used_b]
    for t in g.tensors:
        t.buffer = bremap[t.buffer]
    for md in mm.m.metadata or []:
        md.buffer = bremap[md.buffer]
    if mm.m.metadataBuffer is not None:
        mm.m.metadataBuffer = [bremap[b] for b in mm.m.metadataBuffer if b in bremap]


# ---------------------------------------------------------------- BATCH_MATMUL

def _explicit_rhs_transposes(mm: _Model) -> int:
    """BATCH_MATMUL(a, b, adj_y=False) with a computed b -> TRANSPOSE(b) then adj_y=True.

    TFLite-Micro transposes such a right-hand side itself, into a PERSISTENT
    buffer of b's size per op (batch_matmul.cc), and then runs the same kernel
    on it. As an op of the graph the transposed copy lives in the planned
    arena, only while it is needed."""
    s = mm.s
    n = 0
    for op in list(mm.g.operators):
        if mm.kind(op) != "BATCH_MATMUL" or op.builtinOptions.adjY or op.builtinOptions.adjX:
            continue
        b = int(op.inputs[1])
        if mm.const(b) is not None:
            continue
        shape = mm.shape(b)
        perm = np.arange(len(shape), dtype=np.int32)
        perm[-2], perm[-1] = perm[-1], perm[-2]
        src = mm.tensor(b)
        t = s.TensorT()
        t.name = src.name + b"/transposed"
        t.shape = np.array([*shape[:-2], shape[-1], shape[-2]], dtype=np.int32)
        t.type = src.type
        t.buffer = 0
        t.quantization = copy.deepcopy(src.quantization)
        mm.g.tensors.append(t)
        bt = len(mm.g.tensors) - 1
        tr = s.OperatorT()
        tr.opcodeIndex = mm.opcode("TRANSPOSE", 2)
        tr.inputs = np.array([b, mm.add_const(t.name.decode() + "/perm", perm)], dtype=np.int32)
        tr.outputs = np.array([bt], dtype=np.int32)
        tr.builtinOptionsType = s.BuiltinOptions.TransposeOptions
        tr.builtinOptions = s.TransposeOptionsT()
        mm.g.operators.insert(mm.g.operators.index(op), tr)
        op.inputs = np.array([int(op.inputs[0]), bt], dtype=np.int32)
        op.builtinOptions.adjY = True
        n += 1
    return n


def _ancestors(mm: _Model, ops: list) -> set[int]:
    """ids of the ops that the given ops depend on, themselves included."""
    prod = mm.producers()
    seen: set[int] = set()
    todo = list(ops)
    while todo:
        op = todo.pop()
        if id(op) in seen:
            continue
        seen.add(id(op))
        todo.extend(prod[int(t)] for t in op.inputs if t >= 0 and int(t) in prod)
    return seen


def _rematerialize_transposes(mm: _Model) -> int:
    """B = TRANSPOSE(A): the readers of A that B's readers do not wait for read
    A' = TRANSPOSE(B) instead (the inverse permutation), so A need not stay in
    the arena until them when B lives anyway (EmbBERT: h is read again after
    the attention, whose value input is h^T). Transposes move int8 values
    unchanged, so A' is A, bit for bit."""
    s = mm.s
    n = 0
    for op in list(mm.g.operators):
        if mm.kind(op) != "TRANSPOSE":
            continue
        a, b = int(op.inputs[0]), int(op.outputs[0])
        if mm.const(a) is not None or a in mm.g.inputs or b in mm.g.outputs:
            continue
        users = mm.consumers()
        waited = _ancestors(mm, users.get(b, []))
        late = [c for c in users.get(a, []) if c is not op and id(c) not in waited]
        if not late:
            continue
        perm = mm.const(int(op.inputs[1])).astype(np.int32)
        src = mm.tensor(a)
        t = copy.deepcopy(src)
        t.name = src.name + b"/again"
        t.buffer = 0
        mm.g.tensors.append(t)
        a2 = len(mm.g.tensors) - 1
        tr = s.OperatorT()
        tr.opcodeIndex = op.opcodeIndex
        tr.inputs = np.array([b, mm.add_const(t.name.decode() + "/perm", np.argsort(perm).astype(np.int32))],
                             dtype=np.int32)
        tr.outputs = np.array([a2], dtype=np.int32)
        tr.builtinOptionsType = op.builtinOptionsType
        tr.builtinOptions = copy.deepcopy(op.builtinOptions)
        mm.g.operators.insert(mm.g.operators.index(op) + 1, tr)
        for c in late:
            c.inputs = np.array([a2 if int(x) == a else int(x) for x in c.inputs], dtype=np.int32)
        n += 1
    if n:
        _toposort(mm)
    return n


def _toposort(mm: _Model) -> None:
    """File order that runs every op after the producers of its inputs (stable)."""
    import heapq

    ops = mm.g.operators
    producer = {int(t): k for k, op in enumerate(ops) for t in op.outputs}
    deps = [{producer[int(t)] for t in op.inputs if t >= 0 and int(t) in producer} for op in ops]
    users: dict[int, list[int]] = {}
    for k, d in enumerate(deps):
        for p in d:
            users.setdefault(p, []).append(k)
    waiting = [len(d) for d in deps]
    ready = [k for k, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for u in users.get(k, []):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(ops):
        raise RuntimeError("the rewritten graph has a cycle")
    mm.g.operators = [ops[k] for k in order]


# ---------------------------------------------------------------- arena plan

# int8 kernels that may write over an input of the output's shape (TFLite-Micro's
# reference kernels, the same ones convert/aot calls in place): each output
# element depends on the same-index input element (softmax: and on its row's
# max and sum, computed before the row is written), read before it is written.
INPLACE_OPS = ("ADD", "MUL", "LOGISTIC", "SOFTMAX", "SELECT_V2")


@dataclass
class _Graph:
    """What planning needs, precomputed: per op its kind and non-constant tensors."""
    kinds: list[str]
    ins: list[list[int]]
    outs: list[list[int]]
    size: dict[int, int]  # non-constant tensor -> bytes
    shape: dict[int, tuple]
    dtype: dict[int, str]
    inputs: list[int]
    outputs: list[int]
    deps: list[set[int]]
    users: list[set[int]]


def _graph(mm: _Model) -> _Graph:
    ops = mm.g.operators
    const = {t for t in range(len(mm.g.tensors)) if mm.const(t) is not None}
    live = [t for t in range(len(mm.g.tensors)) if t not in const]
    ins = [[int(t) for t in op.inputs if t >= 0 and int(t) not in const] for op in ops]
    outs = [[int(t) for t in op.outputs] for op in ops]
    producer = {t: k for k, o in enumerate(outs) for t in o}
    deps = [{producer[t] for t in i if t in producer} for i in ins]
    users = [set() for _ in ops]
    for k, d in enumerate(deps):
        for p in d:
            users[p].add(k)
    return _Graph([mm.kind(op) for op in ops], ins, outs,
                  {t: int(np.prod(mm.shape(t) or [1])) * _ELEM[mm.dtype(t)] for t in live},
                  {t: tuple(mm.shape(t)) for t in live}, {t: mm.dtype(t) for t in live},
                  [int(t) for t in mm.g.inputs], [int(t) for t in mm.g.outputs], deps, users)


def _align(x: int) -> int:
    return (x + ALIGN - 1) // ALIGN * ALIGN


def plan(g: _Graph, order: list[int], inplace: bool = True) -> tuple[dict[int, int], int]:
    """Offsets for every non-constant tensor, for ops run in `order`.

    A RESHAPE output shares its input's bytes; with `inplace`, so does the
    output of an INPLACE_OPS op and an input of the same shape that dies there.
    Then TFLite-Micro's greedy rule: largest first, each at the lowest offset
    free over its lifetime (16-byte aligned)."""
    n = len(order)
    first, last = {}, {}
    for t in g.inputs:
        first[t], last[t] = 0, 0
    for step, k in enumerate(order):
        for t in g.ins[k]:
            last[t] = step
        for t in g.outs[k]:
            first.setdefault(t, step)
            last[t] = max(last.get(t, step), step)
    for t in g.outputs:
        last[t] = n
    root: dict[int, int] = {}
    members: dict[int, list[int]] = {}

    def r(t):
        return root.get(t, t)

    for step, k in enumerate(order):
        out = g.outs[k][0]
        cand = None
        if g.kinds[k] == "RESHAPE" and g.ins[k] and g.ins[k][0] not in g.inputs:
            cand = g.ins[k][0]
        elif inplace and g.kinds[k] in INPLACE_OPS and g.dtype[out] == "INT8":
            for t in g.ins[k]:
                if t in g.inputs or t in g.outputs or g.dtype[t] != "INT8" or g.shape[t] != g.shape[out]:
                    continue
                if max(last[m] for m in [r(t), *members.get(r(t), [])]) == step:
                    cand = t
                    break
        if cand is not None and out not in g.outputs:
            root[out] = r(cand)
            members.setdefault(r(cand), []).append(out)
    spans = {}
    for t in first:
        rt = r(t)
        f, l = spans.get(rt, (first[t], last[t]))
        spans[rt] = (min(f, first[t]), max(l, last[t]))
    items = [(_align(g.size[t]), spans[t][0], spans[t][1], t) for t in spans]
    best = None
    for key in _PLACEMENT_ORDERS:
        offsets, top = _place(sorted(items, key=key))
        if best is None or top < best[1]:
            best = (offsets, top)
    offsets, top = best
    for t in first:
        offsets[t] = offsets[r(t)]
    return offsets, top


# Orders in which buffers are placed, each at the lowest offset free over its
# lifetime: TFLite-Micro's (largest first), then by first use, then longest-lived first.
_PLACEMENT_ORDERS = (lambda x: (-x[0], x[3]), lambda x: (x[1], -x[0], x[3]), lambda x: (x[1] - x[2], -x[0], x[3]),
                     lambda x: (-x[0], x[1], x[3]), lambda x: (-x[0] * (x[2] - x[1] + 1), x[3]),
                     lambda x: (-x[0], -x[2], x[3]))


def _place(items) -> tuple[dict[int, int], int]:
    placed: list[tuple[int, int, int, int]] = []
    offsets: dict[int, int] = {}
    top = 0
    for size, f, l, t in items:
        off = 0
        for p in sorted((p for p in placed if p[2] <= l and f <= p[3]), key=lambda p: p[0]):
            if off + size <= p[0]:
                break
            off = max(off, p[0] + p[1])
        placed.append((off, size, f, l))
        offsets[t] = off
        top = max(top, off + size)
    return offsets, top


def _postorder(g: _Graph, producer: dict, children) -> list[int]:
    """The ops in post-order from the graph's outputs, iteratively; ``children(k)``
    lists k's producers in the order they are visited."""
    seen, out = set(), []
    stack = [(producer[t], False) for t in reversed(g.outputs)]
    while stack:
        k, expanded = stack.pop()
        if k in seen:
            continue
        if expanded:
            seen.add(k)
            out.append(k)
            continue
        stack.append((k, True))
        for p in reversed(children(k)):
            if p not in seen:
                stack.append((p, False))
    return out


def _orders(g: _Graph) -> list[list[int]]:
    n = len(g.kinds)
    producer = {t: k for k, o in enumerate(g.outs) for t in o}
    orders = [list(range(n))]

    def deps(k: int) -> list[int]:
        return list(dict.fromkeys(producer[t] for t in g.ins[k] if t in producer))  # in input order

    orders += [_postorder(g, producer, deps), _postorder(g, producer, lambda k: deps(k)[::-1])]

    # Sethi-Ullman on the DAG read as a tree: at each op, first the input whose
    # subtree needs the most memory beyond what it leaves behind.
    out_bytes = [sum(g.size[t] for t in o) for o in g.outs]
    peak: dict[int, int] = {}

    def need(k: int) -> int:
        if k not in peak:
            kids = sorted(set(producer[t] for t in g.ins[k] if t in producer),
                          key=lambda c: -(need(c) - out_bytes[c]))
            held, top = 0, 0
            for c in kids:
                top = max(top, held + need(c))
                held += out_bytes[c]
            peak[k] = max(top, held + out_bytes[k])
        return peak[k]

    import sys
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * n + 1000))
    try:
        for k in range(n):
            need(k)
    finally:
        sys.setrecursionlimit(limit)
    su = _postorder(g, producer, lambda k: sorted(deps(k), key=lambda c: -(peak[c] - out_bytes[c])))
    orders += [su, _list_schedule(g)]
    return [o for o in orders if _valid(g, o)]


def _valid(g: _Graph, order: list[int]) -> bool:
    """Every op after the producers of its inputs, each op once."""
    if sorted(order) != list(range(len(g.kinds))):
        return False
    done: set[int] = set()
    for k in order:
        if not g.deps[k] <= done:
            return False
        done.add(k)
    return True


def _list_schedule(g: _Graph) -> list[int]:
    """Among the ready ops, the one that frees the most bytes net of what it allocates."""
    n = len(g.kinds)
    readers: dict[int, set[int]] = {}
    for k, i in enumerate(g.ins):
        for t in i:
            readers.setdefault(t, set()).add(k)
    done, order = set(), []
    while len(order) < n:
        ready = [k for k in range(n) if k not in done and g.deps[k] <= done]

        def gain(k):
            freed = sum(g.size[t] for t in set(g.ins[k]) if t not in g.outputs and readers[t] - done == {k})
            return freed - (0 if g.kinds[k] == "RESHAPE" else sum(g.size[t] for t in g.outs[k]))

        best = max(ready, key=lambda k: (gain(k), -k))
        order.append(best)
        done.add(best)
    return order


def _improve(g: _Graph, order: list[int], sweeps: int = 3) -> list[int]:
    """Hill climbing: move one op to another valid position while the plan shrinks."""
    best = plan(g, order)[1]
    for _ in range(sweeps):
        improved = False
        for k in range(len(order)):
            pos = order.index(k)
            lo = max((order.index(p) for p in g.deps[k]), default=-1) + 1
            hi = min((order.index(u) for u in g.users[k]), default=len(order))
            for new in range(lo, hi):
                if new == pos:
                    continue
                cand = order[:pos] + order[pos + 1:]
                cand.insert(new if new < pos else new - 1, k)
                size = plan(g, cand)[1]
                if size < best:
                    best, order, improved = size, cand, True
                    pos = order.index(k)
        if not improved:
            break
    return order


def _schedule(mm: _Model, rounds: int = 4) -> dict:
    """Reorder the ops for the smallest planned arena; returns the figures.
    The heuristics depend on the order they start from, so each round starts
    from the last round's best, until a round gains nothing."""
    first = None
    for _ in range(rounds):
        g = _graph(mm)
        candidates = _orders(g)
        sizes = [plan(g, o)[1] for o in candidates]
        first = sizes[0] if first is None else first
        best = _improve(g, candidates[sizes.index(min(sizes))])
        mm.g.operators = [mm.g.operators[k] for k in best]
        if plan(g, best)[1] >= sizes[0]:
            break
    g = _graph(mm)
    if not _valid(g, list(range(len(g.kinds)))):
        raise RuntimeError("op order: an op before the producer of its input")
    return {"planned_bytes_converter_order": first, "planned_bytes": plan(g, list(range(len(g.kinds))))[1]}


OFFLINE_PLAN = "OfflineMemoryAllocation"
OFFLINE_PLAN_KEY = "offline_plan_bytes"


def _write_offline_plan(mm: _Model) -> int:
    """Store the plan as TFLite-Micro's offline memory plan (model metadata
    'OfflineMemoryAllocation': version, subgraphs, n, one offset per tensor,
    -1 for constants), so its greedy planner uses these offsets."""
    s = mm.s
    g = _graph(mm)
    offsets, top = plan(g, list(range(len(g.kinds))))
    n = len(mm.g.tensors)
    data = np.array([0, 1, n] + [offsets.get(t, -1) for t in range(n)], dtype="<i4")
    buf = s.BufferT()
    buf.data = np.frombuffer(data.tobytes(), np.uint8)
    mm.m.buffers.append(buf)
    md = s.MetadataT()
    md.name = OFFLINE_PLAN.encode()
    md.buffer = len(mm.m.buffers) - 1
    mm.m.metadata = [m for m in (mm.m.metadata or []) if m.name != md.name] + [md]
    return top


def optimize(model: bytes, schedule: bool = True, offline_plan: bool = True) -> tuple[bytes, dict]:
    """The rewritten flatbuffer and what was done."""
    mm = _Model(model)
    if len(mm.m.subgraphs) != 1:
        return model, {}
    # a plan already in the model names tensors by index: the rewrites below renumber them
    mm.m.metadata = [m for m in mm.m.metadata or [] if m.name != OFFLINE_PLAN.encode()] or None
    report = {"negative_index_guards": _drop_negative_index_guards(mm),
              "depthwise_convs": _grouped_conv_to_depthwise(mm),
              "layout_chains": _fold_layout_chains(mm),
              "rhs_transposes": _explicit_rhs_transposes(mm)}
    _drop_dead(mm)
    if schedule:
        # transposes computed again: kept only where the planned arena shrinks
        again = mm.clone()
        remat = _rematerialize_transposes(again)
        figures = _schedule(mm)
        if remat:
            _drop_dead(again)
            figures_again = _schedule(again)
            if figures_again["planned_bytes"] < figures["planned_bytes"]:
                mm, figures = again, figures_again
                report["transposes_again"] = remat
        report.update(figures)
    if offline_plan:
        report[OFFLINE_PLAN_KEY] = _write_offline_plan(mm)
    return mm.pack(), report


def optimize_checked(model: bytes, sample: list[np.ndarray]) -> tuple[bytes, dict]:
    """`optimize`, then the proof on the host TFLite-Micro interpreter: the
    rewritten model (offline plan and in-place ops included) must give the
    converter's own model's int8 logits, bit for bit, on `sample`. If not, the
    offline plan is left out; if that is still not it, no rewrite is kept."""
    from .parity import run_micro

    room = ROOM
    ref = run_micro(model, sample, room)
    planned, report = optimize(model)
    if np.array_equal(run_micro(planned, sample, room), ref):
        return planned, {**report, "checked_inputs": len(sample)}
    unplanned, report = optimize(model, offline_plan=False)
    if np.array_equal(run_micro(unplanned, sample, room), ref):
        return unplanned, {**report, "checked_inputs": len(sample), "offline_plan_dropped": 1}
    return model, {"rewrites_dropped": 1}


ROOM = 64 << 20  # arena for the checks: enough for any model here, planned or not
