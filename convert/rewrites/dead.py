"""Drop what nothing reads: ops whose outputs nobody reads (until none is
left), then the tensors, buffers and operator codes no op uses (indices
renumbered; the signature's and metadata's references follow).

The other rewrites leave such ops behind (LESS, CAST, CONV_2D's code, a
folded chain's steps); a runner that checks every operator code against its
resolver would refuse the model for them.
"""

from __future__ import annotations

import numpy as np

from ..tflite_model import TfliteModel


def drop(mm: TfliteModel) -> None:
    _drop_ops(mm)
    _drop_tensors(mm)
    _drop_operator_codes(mm)
    _drop_buffers(mm)


def _drop_ops(mm: TfliteModel) -> None:
    g = mm.g
    outputs = set(mm.outputs)
    while True:
        users = mm.consumers()
        keep = [op for op in g.operators if any(int(t) in users or int(t) in outputs for t in op.outputs)]
        if len(keep) == len(g.operators):
            return
        g.operators = keep


def _drop_tensors(mm: TfliteModel) -> None:
    g = mm.g
    used = sorted({int(t) for op in g.operators for t in (*op.inputs, *op.outputs) if t >= 0}
                  | set(mm.inputs) | set(mm.outputs))
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


def _drop_operator_codes(mm: TfliteModel) -> None:
    used = sorted({int(op.opcodeIndex) for op in mm.g.operators})
    remap = {old: new for new, old in enumerate(used)}
    mm.m.operatorCodes = [mm.m.operatorCodes[i] for i in used]
    for op in mm.g.operators:
        op.opcodeIndex = remap[int(op.opcodeIndex)]


def _drop_buffers(mm: TfliteModel) -> None:
    """Buffer 0 stays the empty sentinel; metadata buffers are kept."""
    meta = {md.buffer for md in mm.m.metadata or []}
    used = sorted({0} | {t.buffer for t in mm.g.tensors} | meta)
    remap = {old: new for new, old in enumerate(used)}
    mm.m.buffers = [mm.m.buffers[i] for i in used]
    for t in mm.g.tensors:
        t.buffer = remap[t.buffer]
    for md in mm.m.metadata or []:
        md.buffer = remap[md.buffer]
    if mm.m.metadataBuffer is not None:
        mm.m.metadataBuffer = [remap[b] for b in mm.m.metadataBuffer if b in remap]
