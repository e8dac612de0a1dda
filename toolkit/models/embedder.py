"""Embedder only: the paper's two smallest baselines.

    x = embedder(ids)                      Nano Embedder (r 32, d 320 in the preset)
    x = x + silu(causal_conv(x))           only when conv_kernel > 0 ("Embedder + conv")

There are no layers (n_layers = 0): each token's vector only knows its own
token, position and segment, plus with the conv its kernel-1 predecessors. The
Classifier pools over the tokens (cfg.pooling "rms"). The conv is causal, so
right padding never changes the real positions.
"""

import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig
from .layers import CausalDepthwiseConv, Embedder


class EmbedderOnly(nn.Module):
    """ids (B, T) -> hidden states (B, T, d)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embedder = Embedder(cfg)
        self.conv = CausalDepthwiseConv(cfg.d_model, cfg.conv_kernel) if cfg.conv_kernel else None

    def token_table(self) -> nn.Embedding:
        return self.embedder.token

    def forward(self, ids):
        x = self.embedder(ids)  # (B, T, d)
        if self.conv is not None:
            x = x + F.silu(self.conv(x))
        return x
