"""Int8 rounding noise during fine-tuning, so the float model survives int8.

`embbert convert` quantizes every activation to int8 with one scale per
tensor: (max - min) / 255. A weak classifier has many test sentences near its
decision boundary, and the rounding then flips some of them: on rt_reviews the
int8 model disagreed with its own float model on 3 % of the test sentences.

While training, each hooked module's output gets uniform noise of `amplitude`
int8 steps of that batch's range (Défossez et al., "Differentiable Model
Compression via Pseudo Quantization Noise", 2022, use the same model of
rounding). The model learns to keep its decisions away from that noise; in
eval mode nothing is added, so the checkpoint is an ordinary float model.

The noise is drawn from the global RNG, which the training loop seeds per
step, and the range is the batch's own: a resumed run stays bit-identical.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..models.embbert import EmbBERTLayer
from ..models.layers import CausalDepthwiseConv, Embedder, RMSNorm

# Module outputs that become int8 tensors after conversion: the rows read from
# the int8 token and position tables (nn.Embedding), the embedder's sum, the
# norms, the projections (nn.Linear), the convs and the layers. The head's
# output is the int8 logits, left exact.
NOISY = (nn.Embedding, Embedder, RMSNorm, CausalDepthwiseConv, EmbBERTLayer, nn.Linear)


def _add_noise(amplitude: float):
    def hook(module: nn.Module, inputs, out: torch.Tensor):
        if not module.training:
            return out
        with torch.no_grad():
            step = (out.max().clamp(min=0) - out.min().clamp(max=0)) / 255
        return out + (torch.rand_like(out) - 0.5) * (amplitude * step)

    return hook


def attach(model: nn.Module, amplitude: float, skip: nn.Module | None = None) -> list:
    """Hook int8-like noise onto `model`'s int8 points (not `skip`); returns the hook handles."""
    if amplitude <= 0:
        return []
    hook = _add_noise(amplitude)
    return [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, NOISY) and m is not skip]
