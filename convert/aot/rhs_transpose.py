"""TRANSPOSE of the last two axes -> BATCH_MATMUL(adj_y) as one BATCH_MATMUL without adj_y.

A computed right-hand side of a BATCH_MATMUL comes transposed by an op of the
graph (onnx2tf's, or convert/rewrites/rhs_transposes.py's), so that
TFLite-Micro runs adj_y with no persistent copy. In EmbBERT's attention that copy is x^T, the RMS-normed
input (K = V = x): 32 kB at L = 256, live beside x and Q at the arena's peak.
The optimized kernels read the RHS as [depth, units] directly
(kernels/optimized/matmul.h MatMulRhsDepthUnits), so for them the matmul reads
the TRANSPOSE's input, adj_y off; the other readers of x^T (x^T transposed
back, a one-column slice of it) read x too, and the TRANSPOSE goes. Exact: the
same products summed as integers, the same bytes moved.

The reference kernels (TFLite-Micro's, the oracle) want the transposed RHS:
their kernel would transpose it into scratch on every call (once per
attention tile), so the generator folds nothing for them (codegen.fuse).
"""

from __future__ import annotations

import numpy as np

from .graph import Graph


def _swaps_last_two(g: Graph, op) -> bool:
    if g.tensors[op.inputs[1]].data is None:
        return False
    perm = [int(p) for p in np.asarray(g.tensors[op.inputs[1]].data).reshape(-1)]
    k = len(perm)
    return k >= 2 and perm == [*range(k - 2), k - 1, k - 2]


def _swap_last_two(xs: list) -> list:
    return [*xs[:-2], xs[-1], xs[-2]]


def fuse(g: Graph) -> None:
    """For each TRANSPOSE x -> xT of the last two axes, its readers read x instead:
    - a BATCH_MATMUL (adj_y, not adj_x) reading xT as its right-hand side only: adj_y off;
    - a TRANSPOSE of the same axes (xT transposed back, transposes_again.py's): its readers
      read x, and it goes;
    - a STRIDED_SLICE whose result has a 1 in its last two axes (the last layer's [CLS]
      column of xT): the same slice of x, the ranges' last two swapped
      (options["size"]), the same bytes in the same order.
    The TRANSPOSE goes when nothing reads xT any more."""
    for tr in [op for op in g.ops if op.kind == "TRANSPOSE"]:
        x, out = g.tensors[tr.inputs[0]], g.tensors[tr.outputs[0]]
        if tr not in g.ops or not _swaps_last_two(g, tr) \
                or (x.dtype, x.scale, x.zero_point) != (out.dtype, out.scale, out.zero_point):
            continue
        for op in [op for op in g.ops if out.index in op.inputs]:
            if op.kind == "BATCH_MATMUL" and op.options.get("adjY") and not op.options.get("adjX") \
                    and op.inputs[1] == out.index and op.inputs[0] != out.index:
                op.inputs[1] = x.index
                op.options = {**op.options, "adjY": False}
            elif op.kind == "TRANSPOSE" and op.inputs[0] == out.index and _swaps_last_two(g, op) \
                    and op.outputs[0] not in g.outputs and (x.scale, x.zero_point) == (
                        g.tensors[op.outputs[0]].scale, g.tensors[op.outputs[0]].zero_point):
                again = op.outputs[0]
                for reader in g.ops:  # `again` is x
                    reader.inputs = [x.index if t == again else t for t in reader.inputs]
                g.ops.remove(op)
            elif op.kind == "STRIDED_SLICE" and op.inputs[0] == out.index \
                    and (0, 1) in g.tensors[op.outputs[0]].shape[-2:]:
                op.inputs[0] = x.index
                op.options = {**op.options, "ranges": _swap_last_two(op.options["ranges"]),
                              "size": _swap_last_two(g.tensors[op.outputs[0]].shape)}
        if out.index not in g.outputs and not any(out.index in op.inputs for op in g.ops):
            g.ops.remove(tr)
