"""BERT: the standard encoder, the paper's 2 MB baseline and two ablations.

Embedder -> LayerNorm, then n_layers post-LayerNorm layers, as in the
original BERT:
    x = norm1(x + attention(x))
    x = norm2(x + feed_forward(x))      feed_forward: d -> ff_dim -> d, tanh GELU
attention is standard multi-head self-attention (Q, K, V and output Linears
with bias, head width d / n_heads), or with cfg.attention == "efficient" the
single-head K = V = x attention of EmbBERT (the BERT-Efficient ablation).
With embed_rank set the Embedder is the Nano Embedder (the NanoBERT ablation).

Padded keys are masked, so right padding never changes the real positions.
"""

import math

import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig
from ..errors import UserError
from .embbert import EfficientAttention
from .layers import Embedder, gelu, key_mask, masked_fill_keys

# Original BERT's LayerNorm epsilon.
LN_EPS = 1e-12


class SelfAttention(nn.Module):
    """Standard multi-head self-attention."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, h = cfg.d_model, cfg.n_heads
        if h < 1 or d % h:
            raise UserError(f"{cfg.name}: d_model {d} must be a multiple of n_heads {h} (>= 1)")
        self.n_heads = h
        self.scale = 1.0 / math.sqrt(d // h)
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.out = nn.Linear(d, d)

    def split_heads(self, x):  # (B, T, d) -> (B, H, T, d/H)
        B, T, d = x.shape
        return x.view(B, T, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(self, x, mask):  # x (B, T, d), mask (B, T)
        B, T, d = x.shape
        q, k, v = (self.split_heads(proj(x)) for proj in (self.query, self.key, self.value))
        scores = q @ k.transpose(-1, -2) * self.scale  # (B, H, T, T)
        weights = F.softmax(masked_fill_keys(scores, mask), dim=-1)
        heads = (weights @ v).transpose(1, 2).reshape(B, T, d)  # (B, H, T, d/H) -> (B, T, d)
        return self.out(heads)


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.ff_dim)
        self.down = nn.Linear(cfg.ff_dim, cfg.d_model)

    def forward(self, x):  # (B, T, d) -> (B, T, ff) -> (B, T, d)
        return self.down(gelu(self.up(x)))


class BERTLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.attention == "efficient":
            self.attention = EfficientAttention(cfg)
        elif cfg.attention == "standard":
            self.attention = SelfAttention(cfg)
        else:
            raise UserError(f"{cfg.name}: the bert family needs attention 'standard' or 'efficient'")
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=LN_EPS)
        # ff_dim 0 leaves the layer attention only.
        self.ff = FeedForward(cfg) if cfg.ff_dim else None
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=LN_EPS) if cfg.ff_dim else None

    def forward(self, x, mask):  # (B, T, d)
        x = self.norm1(x + self.attention(x, mask))
        if self.ff is not None:
            x = self.norm2(x + self.ff(x))
        return x


class BERT(nn.Module):
    """ids (B, T) -> hidden states (B, T, d)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embedder = Embedder(cfg)
        self.embed_norm = nn.LayerNorm(cfg.d_model, eps=LN_EPS)
        self.layers = nn.ModuleList(BERTLayer(cfg) for _ in range(cfg.n_layers))

    def token_table(self) -> nn.Embedding:
        return self.embedder.token

    def forward(self, ids):
        mask = key_mask(ids)
        x = self.embed_norm(self.embedder(ids))  # (B, T, d)
        for layer in self.layers:
            x = layer(x, mask)
        return x
