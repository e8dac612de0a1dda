"""Attention without the L x L score map: the chain run a few query rows at a time.

An attention chain is BATCH_MATMUL(Q, K) -> ops that work row by row, one of
them a SOFTMAX -> BATCH_MATMUL(P, V). Unfused, the tensors between the two
matmuls are [.., L, L] score maps in the arena (64 kB each at L = 256). But a
matmul's output row r depends only on row r of its left operand, and every op
in between computes its output row from the same row of its input (an
elementwise op whose other operands are the same for every row, a SOFTMAX
over the last axis). So the chain runs TILE_ROWS query rows at a time: those
rows' scores over all keys, the row-wise ops, times V, into those rows of the
output. Every element is computed by the same kernel call on the same values
as unfused, so the results are bit for bit the same; the arena holds two
TILE_ROWS x L tiles instead of the maps.

TILE_ROWS is per kernel set. The optimized P . V reads V = x untransposed
(rhs_transpose.py) and widens all of V once per tile, 4 columns per pass
(kernels/optimized/matmul.h MatMulRhsDepthUnits: 34 instructions per 16
elements), about 2.1 / TILE_ROWS instructions per multiply-accumulate of P . V.
Measured on qemu-m4 at L = 256 (the quickstart's model), whole inference:
4 rows 154.0 M, 8 rows 146.8 M, 16 rows 143.2 M, 32 rows 141.4 M, 64 rows
140.6 M instructions, the arena the same (its peak is elsewhere); 128 rows
140.1 M, but 105,216 B of arena. 32 rows keep a model of L = 64 (the tests')
in two tiles. The reference kernels gain nothing from taller tiles: theirs stay 4 rows.

fuse(g) replaces each chain in g.ops by one op of kind ATTENTION (the chain's
ops in options["chain"]; their copies on tile-sized views in
options["tiles"]). codegen plans the tiles as that op's scratch
(scratch_bytes) and emits the op with emit(), which runs the chain's own op
emitters on the views inside the loop over tiles.
"""

from __future__ import annotations

import numpy as np

from ..arena_plan import INPLACE_OPS
from . import codegen
from .graph import Graph, Op, Tensor, dim_c

KIND = "ATTENTION"
TILE_ROWS = {"reference": 4, "optimized": 32}  # a multiple of kernels/optimized/matmul.h kRows
ROWS = "tile_rows"  # the C variable: rows in this tile (options["tile_rows"], fewer in the last), a Dim of the views

# elementwise: output element i from input elements i (operands other than the
# chain's tensor must be the same for every row: _same_for_every_row)
ELEMENTWISE = ("ADD", "SUB", "MUL", "SQUARED_DIFFERENCE", "SELECT_V2", "EQUAL", "LESS", "LOGISTIC", "TANH", "RSQRT",
               "CAST")
_ONE = (0, 1)


def _same_for_every_row(shape: list, out: list) -> bool:
    """An operand of this shape broadcast to `out` gives every row the same values:
    all its axes but the last are 1, and the last is 1 or out's last."""
    if len(shape) > len(out) or any(d != _ONE for d in shape[:-1]):
        return False
    return not shape or shape[-1] == _ONE or dim_c(shape[-1]) == dim_c(out[-1])


def _row_wise(g: Graph, op: Op, cur: int, chain_tensors: set[int]) -> bool:
    """op computes each output row of the chain's tensor `cur` from that row alone."""
    out = g.tensors[op.outputs[0]].shape
    if len(op.outputs) != 1 or out != g.tensors[cur].shape:
        return False
    if op.kind == "SOFTMAX":  # over the last axis, always
        return True
    if op.kind not in ELEMENTWISE:
        return False
    shapes = op.options.get("in_shapes") or [g.tensors[t].shape for t in op.inputs]
    return all(t == cur or (t not in chain_tensors and _same_for_every_row(s, out))
               for t, s in zip(op.inputs, shapes))


def find_chains(g: Graph, tile_rows: int = TILE_ROWS["reference"]) -> list[list[Op]]:
    """Each BATCH_MATMUL -> row-wise ops (a SOFTMAX among them) -> BATCH_MATMUL whose
    intermediate tensors have no other reader, as its list of ops."""
    readers: dict[int, list[Op]] = {}
    for op in g.ops:
        for t in set(op.inputs):
            readers.setdefault(t, []).append(op)
    chains = []
    for first in g.ops:
        scores = g.tensors[first.outputs[0]]
        if first.kind != "BATCH_MATMUL" or first.options.get("adjX") or len(scores.shape) < 2 \
                or scores.static_shape[-2] <= tile_rows:  # one tile: nothing to gain
            continue
        chain, cur = [first], first.outputs[0]
        while len(readers.get(cur, [])) == 1 and cur not in g.outputs:
            op = readers[cur][0]
            if op.kind == "BATCH_MATMUL":
                if op.inputs[0] == cur and cur not in op.inputs[1:] and not op.options.get("adjX"):
                    chain.append(op)
                break
            if not _row_wise(g, op, cur, {o.outputs[0] for o in chain}):
                break
            chain.append(op)
            cur = op.outputs[0]
        if len(chain) > 2 and chain[-1].kind == "BATCH_MATMUL" and any(o.kind == "SOFTMAX" for o in chain) \
                and not any(o in c for c in chains for o in chain):  # one chain's last matmul another's first
            chains.append(chain)
    return chains


def fuse(g: Graph, tile_rows: int = TILE_ROWS["reference"]) -> None:
    """Replace each attention chain in g.ops by one ATTENTION op, where its last matmul was,
    run `tile_rows` query rows at a time."""
    index = max((op.index for op in g.ops), default=-1) + 1
    for chain in find_chains(g, tile_rows):
        inside = {o.outputs[0] for o in chain[:-1]}
        inputs = list(dict.fromkeys(t for o in chain for t in o.inputs if t >= 0 and t not in inside))
        fused = Op(index, KIND, inputs, list(chain[-1].outputs),
                   {"chain": chain, "tiles": _tile_ops(g, chain, index, tile_rows), "tile_rows": tile_rows})
        at = g.ops.index(chain[-1])
        g.ops[at] = fused
        g.ops = [o for o in g.ops if o not in chain]
        index += 1


def inplace_inputs(op: Op) -> list[int]:
    """The ATTENTION op may write its output over Q: output row r is written after Q's
    rows up to r's tile are read, and no later tile reads them (unless Q is also K or V)."""
    q, k, v = op.options["chain"][0].inputs[0], op.options["chain"][0].inputs[1], op.options["chain"][-1].inputs[1]
    return [] if q in (k, v) else [q]


def _view(g: Graph, of: int, shape: list, static: list[int], what: str) -> int:
    """A tensor like `of` (type, quantization) with a tile's shape: emit() says where it is."""
    src = g.tensors[of]
    g.tensors.append(Tensor(len(g.tensors), f"{src.name} ({what})", src.dtype, static, src.scale, src.zero_point, None,
                            shape))
    return len(g.tensors) - 1


def _tile_ops(g: Graph, chain: list[Op], index: int, tile_rows: int) -> list[Op]:
    """The chain's ops on views: Q's, the scores', P's and the output's rows of one
    tile, K and V of one batch. Batch axes become 1 (emit() loops over them)."""
    first, last = chain[0], chain[-1]
    nb = len(g.tensors[first.outputs[0]].shape) - 2
    ones, static_ones = [_ONE] * nb, [1] * nb

    def rows_of(t: int, what: str) -> int:
        tt = g.tensors[t]
        return _view(g, t, ones + [ROWS, tt.shape[-1]], static_ones + [tile_rows, tt.static_shape[-1]], what)

    def batch_of(t: int) -> int:
        tt = g.tensors[t]
        return _view(g, t, ones + tt.shape[-2:], static_ones + tt.static_shape[-2:], "one batch")

    tiles = [Op(index, first.kind, [rows_of(first.inputs[0], "tile rows"), batch_of(first.inputs[1])],
                [rows_of(first.outputs[0], "tile")], dict(first.options))]
    tile_of = {first.outputs[0]: tiles[0].outputs[0]}  # the chain's tensors -> their tiles
    for op in chain[1:-1]:
        options = dict(op.options)
        if "in_shapes" in options:
            options["in_shapes"] = [g.tensors[tile_of[t]].shape if t in tile_of else s
                                    for t, s in zip(op.inputs, options["in_shapes"])]
        tiles.append(Op(index, op.kind, [tile_of.get(t, t) for t in op.inputs], [rows_of(op.outputs[0], "tile")],
                        options))
        tile_of[op.outputs[0]] = tiles[-1].outputs[0]
    tiles.append(Op(index, last.kind, [tiles[-1].outputs[0], batch_of(last.inputs[1])],
                    [rows_of(last.outputs[0], "tile rows")], dict(last.options)))
    return tiles


def _tile_bytes(g: Graph, op: Op) -> int:
    """One tile of the chain's scores (its widest type)."""
    return codegen.align(max(int(np.prod(g.tensors[t.outputs[0]].static_shape)) * codegen._SIZE[
        g.tensors[t.outputs[0]].dtype] for t in op.options["tiles"][:-1]))


def _matmul_scratch(g: Graph, op: Op, kernels: str) -> int:
    """The scratch any one op of the chain needs while it runs (its matmuls'; the reference
    softmax's full row of keys): the ops run one after the other, so they share it."""
    return codegen.align(max(codegen._scratch_bytes(g, t, kernels) for t in op.options["tiles"]))


def _tile_slots(g: Graph, op: Op) -> list[int]:
    """Which of two tile buffers each tile of scores is in: an op the arena plan may run
    in place (INPLACE_OPS, int8) writes over its input, any other into the other."""
    tiles = op.options["tiles"]
    slots = [0]
    for prev, t in zip(tiles[:-2], tiles[1:-1]):  # the chain's tensor is the previous tile's output
        int8 = g.tensors[prev.outputs[0]].dtype == g.tensors[t.outputs[0]].dtype == "int8"
        slots.append(slots[-1] if t.kind in INPLACE_OPS and int8 else 1 - slots[-1])
    return slots


def scratch_bytes(g: Graph, op: Op, kernels: str) -> int:
    """The ATTENTION op's scratch: its matmuls' scratch, then one or two score tiles."""
    return _matmul_scratch(g, op, kernels) + (max(_tile_slots(g, op)) + 1) * _tile_bytes(g, op)


def emit(em: codegen.Emitter, op: Op) -> list[str]:
    """The loop over tiles (and batches), each tile through the chain's own emitters."""
    g, chain, tiles = em.g, op.options["chain"], op.options["tiles"]
    first, last = chain[0], chain[-1]
    q, out = g.tensors[first.inputs[0]].shape, g.tensors[last.outputs[0]].shape
    rows, batch = dim_c(q[-2]), codegen._prod(q[:-2]) or "1"
    row0 = "tile_row0" if batch == "1" else f"tile_batch * {rows} + tile_row0"

    def one_batch(t: int) -> str:
        base = em.t(t)
        return base if batch == "1" else f"({base} + tile_batch * {codegen._prod(g.tensors[t].shape[-2:])})"

    em.views[tiles[0].inputs[0]] = f"({em.t(first.inputs[0])} + ({row0}) * {dim_c(q[-1])})"
    em.views[tiles[0].inputs[1]] = one_batch(first.inputs[1])
    em.views[tiles[-1].inputs[1]] = one_batch(last.inputs[1])
    em.views[tiles[-1].outputs[0]] = f"({em.t(last.outputs[0])} + ({row0}) * {dim_c(out[-1])})"
    base = em.scratch[op.index].offset + _matmul_scratch(g, op, em.kernels)
    for t, slot in zip(tiles[:-1], _tile_slots(g, op)):
        tile = t.outputs[0]
        em.views[tile] = (f"reinterpret_cast<{codegen._CTYPE[g.tensors[tile].dtype]}*>"
                          f"(g_arena + {base + slot * _tile_bytes(g, op)})")
    tr = op.options["tile_rows"]
    body = [f"const int {ROWS} = {rows} - tile_row0 < {tr} ? {rows} - tile_row0 : {tr};"]
    for t, o in zip(tiles, chain):
        body += [f"{{  // op {o.index} {o.kind}"]
        body += ["  " + line for line in getattr(em, "op_" + t.kind.lower())(t)]
        body += ["}"]
    loop = [f"// ops {', '.join(f'{o.index} {o.kind}' for o in chain)} (attention.py): {tr} rows at a time",
            f"for (int tile_row0 = 0; tile_row0 < {rows}; tile_row0 += {tr}) {{", *["  " + x for x in body], "}"]
    if batch == "1":
        return loop
    return [f"for (int tile_batch = 0; tile_batch < {batch}; ++tile_batch) {{", *["  " + x for x in loop], "}"]
