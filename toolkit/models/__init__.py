"""Model families behind one interface.

`build_backbone(cfg)` returns a module mapping ids (B, T) to hidden states
(B, T, d). `Classifier` and `MaskedLM` put a head on it. Parameters are counted
on the backbone alone, as the paper counts them (without the classifier head).
"""

import torch
import torch.nn as nn

from ..config import ModelConfig
from .layers import key_mask


def build_backbone(cfg: ModelConfig) -> nn.Module:
    # Imported here so each family's module is only loaded when used.
    if cfg.family == "embbert":
        from .embbert import EmbBERT as cls
    elif cfg.family == "bert":
        from .bert import BERT as cls
    elif cfg.family == "mamba":
        from .mamba import Mamba as cls
    elif cfg.family == "embedder":
        from .embedder import EmbedderOnly as cls
    else:  # pydantic already restricts `family`; this guards new families.
        raise ValueError(f"no module for model family {cfg.family!r}")
    return cls(cfg)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def pool(hidden: torch.Tensor, ids: torch.Tensor, how: str) -> torch.Tensor:
    """(B, T, d) -> (B, d): the [CLS] vector, or the RMS over real tokens."""
    if how == "cls":
        return hidden[:, 0]
    mask = key_mask(ids).unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    mean_sq = (hidden.pow(2) * mask).sum(1) / mask.sum(1).clamp(min=1)
    return torch.sqrt(mean_sq + 1e-6)


class Classifier(nn.Module):
    """Backbone -> pooled vector -> Linear to classes. Returns logits (B, C)."""

    def __init__(self, cfg: ModelConfig, n_classes: int):
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone(cfg)
        self.head = nn.Linear(cfg.d_model, n_classes)

    def forward(self, ids):
        return self.head(pool(self.backbone(ids), ids, self.cfg.pooling))


class MaskedLM(nn.Module):
    """Backbone -> vocabulary logits (B, T, V), for pretraining.

    The output table is the token table itself (tied). For a Nano Embedder the
    hidden state is first projected from d down to the rank r, so the head
    costs d*r parameters instead of d*V.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone(cfg)
        width = self.backbone.token_table().weight.shape[1]
        self.down = nn.Linear(cfg.d_model, width)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, ids, where=None):
        """Logits (B, T, V); with a bool mask `where` (B, T), only those rows (N, V).

        Pretraining asks for 15 % of positions: scoring only those skips most of
        the cost, which is the vocabulary projection.
        """
        h = self.backbone(ids)  # (B, T, d)
        if where is not None:
            h = h[where]  # (N, d)
        return self.down(h) @ self.backbone.token_table().weight.T + self.bias  # (..., V)
