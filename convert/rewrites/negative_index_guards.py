"""Drop onnx2tf's negative-index guards in front of GATHER.

onnx2tf guards every GATHER against negative indices: LESS(ids, 0) -> CAST ->
MUL(table rows) -> ADD(ids, .) in int32. Token ids are never negative (the ids
input is documented as 0 <= id < vocab), so GATHER reads the ids directly. The
guard's ops are left for `dead` to drop.
"""

from __future__ import annotations

import numpy as np

from ..tflite_model import TfliteModel


def rewrite(mm: TfliteModel) -> int:
    """GATHER(table, ADD(ids, MUL(CAST(LESS(ids, 0)), rows))) -> GATHER(table, ids) for the ids input."""
    prod = mm.producers()
    ids_inputs = set(mm.inputs)
    n = 0
    for op in list(mm.ops):
        if mm.kind(op) != "GATHER":
            continue
        add = prod.get(int(op.inputs[1]))
        if add is None or mm.kind(add) != "ADD":
            continue
        a, b = (int(t) for t in add.inputs)
        for base, other in ((a, b), (b, a)):
            if base not in ids_inputs or other not in prod:
                continue
            mul = prod[other]
            if mm.kind(mul) != "MUL":
                continue
            cast_out = next((int(t) for t in mul.inputs if int(t) in prod and mm.kind(prod[int(t)]) == "CAST"), None)
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
