"""onnx2tf's grouped CONV_2D -> DEPTHWISE_CONV_2D.

onnx2tf emits the depthwise conv as a grouped CONV_2D (filter [C, kh, kw, 1],
C input channels). It becomes DEPTHWISE_CONV_2D (filter [1, kh, kw, C],
per-channel scales on axis 3): both kernels compute, per output channel, the
same int32 sum and the same per-channel requantization.
"""

from __future__ import annotations

import numpy as np

from ..tflite_model import TfliteModel


def rewrite(mm: TfliteModel) -> int:
    s = mm.s
    n = 0
    for op in mm.ops:
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
