"""PAD -> DEPTHWISE_CONV_2D along one axis (the conv branch's causal padding) as one conv.

The conv reads the padded rows as x's zero point (kernels' DepthwiseParams
pad_before) instead of a padded copy of x in the arena (36 kB at L = 256,
d = 128, live beside two other activations). Exact: the PAD writes the zero
point, and a zero point adds (zp - zp) * w = 0 to every sum.
"""

from __future__ import annotations

import numpy as np

from .graph import Graph


def fuse(g: Graph) -> None:
    """Fold each PAD (rows before the conv's axis only, of the zero point) into the one
    DEPTHWISE_CONV_2D that reads it: options["pad_before"]."""
    from .codegen import _depthwise_1d

    readers: dict[int, list] = {}
    for op in g.ops:
        for t in set(op.inputs):
            readers.setdefault(t, []).append(op)
    for pad in [op for op in g.ops if op.kind == "PAD"]:
        x, out = g.tensors[pad.inputs[0]], g.tensors[pad.outputs[0]]
        convs = readers.get(out.index, [])
        if len(convs) != 1 or convs[0].kind != "DEPTHWISE_CONV_2D" or convs[0].inputs[0] != out.index \
                or out.index in g.outputs or len(pad.inputs) > 2 or x.dtype != "int8" \
                or (x.zero_point, x.scale) != (out.zero_point, out.scale):
            continue
        pads = np.asarray(g.tensors[pad.inputs[1]].data).reshape(-1, 2)
        if len(pads) != 4 or pads[:, 1].any() or pads[[0, 1, 3], 0].any():
            continue  # rows before axis 2 of [1, 1, W, C] only
        conv = convs[0]
        conv.inputs[0] = x.index
        if not _depthwise_1d(g, conv):
            conv.inputs[0] = out.index
            continue
        conv.options["pad_before"] = int(pads[2, 0])
        g.ops.remove(pad)
