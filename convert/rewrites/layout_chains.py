"""TRANSPOSE/RESHAPE chains that move no element -> one RESHAPE.

onnx2tf's NCHW detours (transpose, reshape, transpose back) copy every element
to where it already was in flat order. The longest single-path chain from a
tensor that leaves its flat element order unchanged becomes one RESHAPE of that
tensor; the chain's own intermediate outputs are left for `dead` to drop
(another reader may still need them).
"""

from __future__ import annotations

import numpy as np

from ..tflite_model import TfliteModel
from .transposes_again import AGAIN


def moves_nothing(mm: TfliteModel, chain: list, src: int) -> bool:
    """True if the TRANSPOSE/RESHAPE chain leaves the flat element order of src unchanged."""
    a = np.arange(int(np.prod(mm.shape(src)))).reshape(mm.shape(src))
    for op in chain:
        if mm.kind(op) == "TRANSPOSE":
            a = a.transpose([int(p) for p in mm.const(int(op.inputs[1]))])
        else:
            a = a.reshape(mm.shape(int(op.outputs[0])))
    return bool(np.array_equal(a.reshape(-1), np.arange(a.size)))


def rewrite(mm: TfliteModel) -> int:
    n = 0
    tried: set[int] = set()
    while (chain := _next_chain(mm, tried)) is not None:
        src, best = chain
        _replace(mm, src, best)
        n += 1
    return n


def _next_chain(mm: TfliteModel, tried: set[int]) -> tuple[int, list] | None:
    """(source tensor, ops) of the next foldable chain that starts at a TRANSPOSE not tried yet."""
    users = mm.consumers()
    outputs = set(mm.outputs)
    for op in mm.ops:
        if mm.kind(op) != "TRANSPOSE" or id(op) in tried:
            continue
        tried.add(id(op))
        src = int(op.inputs[0])
        chain, best = [op], None
        while True:
            if moves_nothing(mm, chain, src) and any(mm.kind(c) == "TRANSPOSE" for c in chain):
                best = list(chain)
            out = int(chain[-1].outputs[0])
            nxt = [c for c in users.get(out, []) if mm.kind(c) in ("TRANSPOSE", "RESHAPE")]
            if len(nxt) != 1 or out in outputs:
                break
            chain.append(nxt[0])
        if best is None or any(mm.name(int(c.outputs[0])).endswith(AGAIN) for c in best):
            continue  # a transpose back on purpose (transposes_again) stays
        return src, best
    return None


def _replace(mm: TfliteModel, src: int, chain: list) -> None:
    s = mm.s
    out = int(chain[-1].outputs[0])
    shape = np.array(mm.shape(out), dtype=np.int32)
    new = s.OperatorT()
    new.opcodeIndex = mm.opcode("RESHAPE", 1)
    new.inputs = np.array([src, mm.add_const(mm.name(out) + "/shape", shape)], dtype=np.int32)
    new.outputs = np.array([out], dtype=np.int32)
    new.builtinOptionsType = s.BuiltinOptions.ReshapeOptions
    new.builtinOptions = s.ReshapeOptionsT()
    new.builtinOptions.newShape = shape.tolist()
    mm.g.operators[mm.g.operators.index(chain[-1])] = new
