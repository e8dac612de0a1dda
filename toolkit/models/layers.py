"""Building blocks shared by the model families.

Every block works on right-padded batches: `ids` (B, T) int64 with [PAD] = 0
after the real tokens. Two rules keep padding from changing the output, so the
firmware can run only the real tokens:
  - attention never attends to a padded key (`key_mask`);
  - convolutions and scans are causal, so a position never sees a later one.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig
from ..tokenizer import PAD_ID, SEP_ID

EMBEDDING_INIT_STD = 0.02


def key_mask(ids: torch.Tensor) -> torch.Tensor:
    """(B, T) bool, True on real tokens."""
    return ids != PAD_ID


def segment_ids(ids: torch.Tensor, n_segments: int) -> torch.Tensor:
    """(B, T) segment of each token: the number of [SEP] strictly before it.

    As in the authors' code the segments come from the tokens, not from an
    extra input: "[CLS] a [SEP]" is segment 0, "b [SEP]" segment 1.
    """
    is_sep = (ids == SEP_ID).long()
    return (torch.cumsum(is_sep, dim=1) - is_sep).clamp(max=n_segments - 1)


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Embedder(nn.Module):
    """Token + position + segment embeddings, summed.

    With `embed_rank` r set this is the Nano Embedder: token and position
    tables are r wide and projected to d by bias-free Linears, which is what
    makes an 8192-token vocabulary affordable (8192 x 16 instead of x 128).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, r = cfg.d_model, cfg.embed_rank
        self.n_segments = cfg.n_segments
        self.token = nn.Embedding(cfg.vocab_size, r or d)
        self.position = nn.Embedding(cfg.max_len, r or d)
        self.token_proj = nn.Linear(r, d, bias=False) if r else nn.Identity()
        self.position_proj = nn.Linear(r, d, bias=False) if r else nn.Identity()
        self.segment = nn.Embedding(cfg.n_segments, d)
        # BERT's initializer (N(0, 0.02)), not nn.Embedding's N(0, 1). The token
        # table is also the MLM output table (tied): at N(0, 1) the first logits
        # were so large that the MLM loss started above ln(V) and spent the whole
        # CPU budget getting back to the unigram level (8 % masked accuracy).
        for table in (self.token, self.position, self.segment):
            nn.init.normal_(table.weight, std=EMBEDDING_INIT_STD)

    def forward(self, ids):  # ids (B, T) -> (B, T, d)
        pos = torch.arange(ids.shape[1], device=ids.device)
        return (
            self.token_proj(self.token(ids))
            + self.position_proj(self.position(pos))[None]
            + self.segment(segment_ids(ids, self.n_segments))
        )


class CausalDepthwiseConv(nn.Module):
    """Depthwise Conv1d over time, left-padded so output t sees inputs <= t."""

    def __init__(self, d: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(d, d, kernel, groups=d)

    def forward(self, x):  # (B, T, d) -> (B, T, d)
        x = F.pad(x.transpose(1, 2), (self.kernel - 1, 0))  # (B, d, k-1+T)
        return self.conv(x).transpose(1, 2)


def masked_fill_keys(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """scores (B, ..., T, T); mask (B, T). Padded keys get -inf before softmax."""
    shape = (mask.shape[0],) + (1,) * (scores.dim() - 2) + (mask.shape[1],)
    return scores.masked_fill(~mask.view(shape), float("-inf"))


def gelu(x):
    """tanh-approximated GELU: exact GELU needs erf, a Flex op on TFLite-Micro."""
    return F.gelu(x, approximate="tanh")
