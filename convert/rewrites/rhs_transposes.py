"""BATCH_MATMUL's computed right-hand side transposed by an op of the graph.

BATCH_MATMUL(a, b, adj_y=False) with a computed b -> TRANSPOSE(b) then
adj_y=True. TFLite-Micro transposes such a right-hand side itself, into a
PERSISTENT buffer of b's size per op (batch_matmul.cc), and then runs the same
kernel on it. As an op of the graph the transposed copy lives in the planned
arena, only while it is needed.
"""

from __future__ import annotations

import copy

import numpy as np

from ..tflite_model import TfliteModel


def rewrite(mm: TfliteModel) -> int:
    s = mm.s
    n = 0
    for op in list(mm.ops):
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
