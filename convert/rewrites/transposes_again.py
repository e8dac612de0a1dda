"""A tensor read again long after it was transposed: transposed back instead of kept.

B = TRANSPOSE(A): the readers of A that B's readers do not wait for read
A' = TRANSPOSE(B) instead (the inverse permutation), so A need not stay in the
arena until them when B lives anyway (EmbBERT: h is read again after the
attention, whose value input is h^T). Transposes move int8 values unchanged,
so A' is A, bit for bit. optimize.py keeps this only where the planned arena
shrinks.
"""

from __future__ import annotations

import copy

import numpy as np

from ..tflite_model import TfliteModel
from .schedule import toposort

AGAIN = "/again"  # name suffix of a tensor transposed back on purpose (layout_chains leaves it)


def _ancestors(mm: TfliteModel, ops: list) -> set[int]:
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


def rewrite(mm: TfliteModel) -> int:
    s = mm.s
    n = 0
    for op in list(mm.ops):
        if mm.kind(op) != "TRANSPOSE":
            continue
        a, b = int(op.inputs[0]), int(op.outputs[0])
        if mm.const(a) is not None or a in mm.inputs or b in mm.outputs:
            continue
        users = mm.consumers()
        waited = _ancestors(mm, users.get(b, []))
        late = [c for c in users.get(a, []) if c is not op and id(c) not in waited]
        if not late:
            continue
        perm = mm.const(int(op.inputs[1])).astype(np.int32)
        src = mm.tensor(a)
        t = copy.deepcopy(src)
        t.name = src.name + AGAIN.encode()
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
        toposort(mm)
    return n
