"""The one arena planner: every computed tensor (and each op's scratch) at an
offset of one static arena, from its lifetime in a given op order.

Used for TFLite-Micro's offline plan (rewrites/offline_plan.py, and the op
order of rewrites/schedule.py) and for the aot backend's arena
(aot/codegen.py: `plan_arena`, with its per-op scratch).

- A RESHAPE output shares its input's bytes (not for the graph's input or output).
- With `inplace`, so does the output of an INPLACE_OPS op (or of an op that
  names the inputs it may overwrite: `Graph.inplace_ins`, e.g. the aot backend's
  fused ATTENTION over Q) and an input of the same shape that dies there.
- Then TFLite-Micro's greedy rule: largest first, each at the lowest offset
  free over its lifetime (16-byte aligned); other placement orders are tried
  too, each also with buffers within 1/8 of the largest placed in slots of the
  largest's size (equal slots, which first fit packs well), and the smallest
  arena is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 16  # TFLite-Micro's kBufferAlignment

# int8 kernels that may write over an input of the output's shape (TFLite-Micro's
# reference kernels, and ours in firmware/src/backends/aot/kernels/): each output
# element depends on the same-index input element (softmax: and on its row's max
# and sum, computed before the row is written), read before it is written.
INPLACE_OPS = ("ADD", "MUL", "LOGISTIC", "SOFTMAX", "SELECT_V2")


@dataclass
class Graph:
    """What planning needs: per op its kind and the non-constant tensors it reads and writes."""
    kinds: list[str]
    ins: list[list[int]]
    outs: list[list[int]]
    size: dict[int, int]  # non-constant tensor -> bytes
    shape: dict[int, tuple]  # tensor -> shape (in-place needs equal shapes; any comparable form)
    dtype: dict[int, str]  # tensor -> "INT8", "INT32", ...
    inputs: list[int]
    outputs: list[int]
    scratch: list[int] = field(default_factory=list)  # per op, bytes it needs only while it runs (default none)
    inplace_ins: dict[int, list[int]] = field(default_factory=dict)  # op -> inputs it may overwrite (not INPLACE_OPS)
    deps: list[set[int]] = field(init=False)  # per op, the ops that write its inputs
    users: list[set[int]] = field(init=False)  # per op, the ops that read its outputs

    def __post_init__(self):
        producer = {t: k for k, o in enumerate(self.outs) for t in o}
        self.deps = [{producer[t] for t in i if t in producer} for i in self.ins]
        self.users = [set() for _ in self.kinds]
        for k, d in enumerate(self.deps):
            for p in d:
                self.users[p].add(k)


@dataclass
class Buffer:
    """One piece of the arena: a tensor's storage (shared by its aliases) or an op's scratch."""
    root: int  # the tensor that owns it (-1: scratch)
    size: int  # bytes
    first: int  # step that writes it (0 for the graph's inputs)
    last: int  # last step that reads it (len(order) for the graph's outputs)
    offset: int = -1


@dataclass
class Plan:
    buffers: dict[int, Buffer]  # every non-constant tensor -> its storage (aliases share one)
    scratch: dict[int, Buffer]  # op -> its scratch
    total: int  # arena bytes

    @property
    def offsets(self) -> dict[int, int]:
        return {t: b.offset for t, b in self.buffers.items()}


def tflite_graph(mm) -> Graph:
    """The planning view of a TfliteModel (convert/tflite_model.py), ops in file order."""
    const = {t for t in range(len(mm.g.tensors)) if mm.const(t) is not None}
    live = [t for t in range(len(mm.g.tensors)) if t not in const]
    return Graph([mm.kind(op) for op in mm.ops],
                 [[int(t) for t in op.inputs if t >= 0 and int(t) not in const] for op in mm.ops],
                 [[int(t) for t in op.outputs] for op in mm.ops],
                 {t: mm.nbytes(t) for t in live}, {t: tuple(mm.shape(t)) for t in live},
                 {t: mm.dtype(t) for t in live}, mm.inputs, mm.outputs)


def align(x: int) -> int:
    return (x + ALIGN - 1) // ALIGN * ALIGN


def plan(g: Graph, order: list[int] | None = None, inplace: bool = True) -> Plan:
    """The plan for the ops run in `order` (default: as listed)."""
    order = list(range(len(g.kinds))) if order is None else order
    first, last = _lifetimes(g, order)
    root = _aliases(g, order, last, inplace)
    spans: dict[int, tuple[int, int]] = {}
    for t in first:
        rt = root.get(t, t)
        f, l = spans.get(rt, (first[t], last[t]))
        spans[rt] = (min(f, first[t]), max(l, last[t]))
    buffers = {rt: Buffer(rt, g.size[rt], f, l) for rt, (f, l) in spans.items()}
    scratch = {k: Buffer(-1, g.scratch[k], step, step) for step, k in enumerate(order)
               if g.scratch and g.scratch[k]}
    items = [(align(b.size), b.first, b.last, rt) for rt, b in buffers.items()]
    items += [(align(b.size), b.first, b.last, -1 - k) for k, b in scratch.items()]
    largest = max((x[0] for x in items), default=0)
    slotted = [(largest if 8 * x[0] >= 7 * largest else x[0], *x[1:]) for x in items]
    real = {x[3]: x[0] for x in items}
    offsets, total = min((_place(sorted(its, key=key), real) for its in (items, slotted) for key in _PLACEMENT_ORDERS),
                         key=lambda p: p[1])
    for key, b in (*buffers.items(), *((-1 - k, b) for k, b in scratch.items())):
        b.offset = offsets[key]
    return Plan({t: buffers[root.get(t, t)] for t in first}, scratch, total)


def _lifetimes(g: Graph, order: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """tensor -> (first step, last step) in `order`: inputs from step 0, outputs to the end."""
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
        last[t] = len(order)
    return first, last


def _aliases(g: Graph, order: list[int], last: dict[int, int], inplace: bool) -> dict[int, int]:
    """tensor -> the tensor whose bytes it uses (see the module's docstring)."""
    root: dict[int, int] = {}
    members: dict[int, list[int]] = {}

    def r(t):
        return root.get(t, t)

    for step, k in enumerate(order):
        out = g.outs[k][0]
        cand = None
        if g.kinds[k] == "RESHAPE" and g.ins[k] and g.ins[k][0] not in g.inputs:
            cand = g.ins[k][0]
        elif inplace and (g.kinds[k] in INPLACE_OPS or k in g.inplace_ins) and g.dtype[out] == "INT8":
            for t in g.inplace_ins.get(k, g.ins[k]):
                if t in g.inputs or t in g.outputs or g.dtype[t] != "INT8" or g.shape[t] != g.shape[out]:
                    continue
                if max(last[m] for m in [r(t), *members.get(r(t), [])]) == step:
                    cand = t
                    break
        if cand is not None and out not in g.outputs:
            root[out] = r(cand)
            members.setdefault(r(cand), []).append(out)
    return root


# Orders in which buffers are placed, each at the lowest offset free over its
# lifetime: TFLite-Micro's (largest first), then by first use, then longest-lived first, ...
# An item is (aligned bytes, first step, last step, id).
_PLACEMENT_ORDERS = (lambda x: (-x[0], x[3]), lambda x: (x[1], -x[0], x[3]), lambda x: (x[1] - x[2], -x[0], x[3]),
                     lambda x: (-x[0], x[1], x[3]), lambda x: (-x[0] * (x[2] - x[1] + 1), x[3]),
                     lambda x: (-x[0], -x[2], x[3]))


def _place(items, real: dict[int, int]) -> tuple[dict[int, int], int]:
    """Each item (slot bytes, first, last, id) at the lowest offset free over its lifetime;
    the arena ends at the highest offset + the item's real (aligned) bytes."""
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
        top = max(top, off + real[t])
    return offsets, top
