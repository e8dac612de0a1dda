"""EmbBERT: Nano Embedder + 4 layers of efficient attention beside a causal conv.

Each layer (pre-RMSNorm):
    h   = norm(x)
    out = l1 * attention(h) - l2 * conv(h)       li = exp(lq_i . lk_i)
    x   = x + out
attention is one head with K = V = h and only Q projected:
    softmax(Q h^T / sqrt(d)) h -> Linear
conv is a causal depthwise Conv1d (kernel 32) -> SiLU -> Linear.
The learned weighted difference follows the Differential Transformer.

With conv_kernel = 0 a layer is attention only (the NanoBERT-Efficient ablation).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig
from .layers import CausalDepthwiseConv, Embedder, RMSNorm, key_mask, masked_fill_keys


class EfficientAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.scale = 1.0 / math.sqrt(cfg.d_model)
        self.query = nn.Linear(cfg.d_model, cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, h, mask):  # h (B, T, d), mask (B, T)
        scores = self.query(h) @ h.transpose(1, 2) * self.scale  # (B, T, T)
        weights = F.softmax(masked_fill_keys(scores, mask), dim=-1)
        return self.out(weights @ h)  # (B, T, d)


class ConvBranch(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.conv = CausalDepthwiseConv(cfg.d_model, cfg.conv_kernel)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, h):  # (B, T, d)
        return self.out(F.silu(self.conv(h)))


class EmbBERTLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.norm = RMSNorm(d)
        self.attention = EfficientAttention(cfg)
        self.conv = ConvBranch(cfg) if cfg.conv_kernel else None
        if self.conv is not None:
            # Differential Transformer init: small vectors, so l1 = l2 = ~1 at start.
            self.lq1, self.lk1, self.lq2, self.lk2 = (
                nn.Parameter(torch.randn(d) * 0.1) for _ in range(4)
            )

    def forward(self, x, mask):
        h = self.norm(x)
        out = self.attention(h, mask)
        if self.conv is not None:
            l1 = torch.exp(torch.dot(self.lq1, self.lk1))
            l2 = torch.exp(torch.dot(self.lq2, self.lk2))
            out = l1 * out - l2 * self.conv(h)
        return x + out


class EmbBERT(nn.Module):
    """ids (B, T) -> hidden states (B, T, d)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embedder = Embedder(cfg)
        self.layers = nn.ModuleList(EmbBERTLayer(cfg) for _ in range(cfg.n_layers))

    def token_table(self) -> nn.Embedding:
        return self.embedder.token

    def forward(self, ids):
        mask = key_mask(ids)
        x = self.embedder(ids)
        for layer in self.layers:
            x = layer(x, mask)
        return x
