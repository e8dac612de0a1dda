"""The paper's memory accounting: weights + peak activations.

    weights     = backbone parameters (no classifier head, as the paper counts)
    activations = attention maps + 2 * L * d          (elements)
where the attention maps are n_heads * L^2 for standard attention, one L^2
for efficient attention (a single head), and none for the attention-free
families. For MAMBA, which has no attention map but a wider inner stream, the
peak is taken as the block's two Di-wide streams plus its scan state:
    2 * L * Di + Di * N          (Di = mamba_expand * d, N = state_dim)
fp32 counts 4 bytes per element, int8 1 byte, for weights and activations.

For EmbBERT (357,248 parameters, L 256, d 128) this gives 1,953,280 B fp32,
the paper's 1.95 MB. The paper's 8-bit figure is 781 kB; this formula with
every element at 1 byte gives 488,320 B instead. We could not find how the
paper got 781 kB, so the int8 column here is the plain formula, not a
reproduction of that figure.
"""

import torch
from pydantic import BaseModel, Field

from .config import ModelConfig
from .models import build_backbone, count_params

FP32_BYTES = 4
INT8_BYTES = 1


class MemoryReport(BaseModel):
    model: str = Field(description="preset name")
    params: int = Field(description="backbone parameters, classifier head excluded")
    weights_bytes_fp32: int
    weights_bytes_int8: int
    activation_bytes_fp32: int = Field(description="peak activations, paper formula")
    activation_bytes_int8: int
    total_bytes_fp32: int = Field(description="weights + activations")
    total_bytes_int8: int


def backbone_params(cfg: ModelConfig) -> int:
    # Built on the meta device: shapes only, no memory, no init cost.
    with torch.device("meta"):
        return count_params(build_backbone(cfg))


def activation_elements(cfg: ModelConfig) -> int:
    """Peak activation elements for one sequence of max_len tokens."""
    L, d = cfg.max_len, cfg.d_model
    if cfg.family == "mamba":
        inner = cfg.mamba_expand * d
        return 2 * L * inner + inner * cfg.state_dim
    if cfg.family == "embedder" or cfg.attention == "none":
        maps = 0
    elif cfg.attention == "efficient":
        maps = 1
    else:
        maps = cfg.n_heads
    return maps * L * L + 2 * L * d


def memory_report(cfg: ModelConfig) -> MemoryReport:
    params = backbone_params(cfg)
    acts = activation_elements(cfg)
    return MemoryReport(
        model=cfg.name,
        params=params,
        weights_bytes_fp32=params * FP32_BYTES,
        weights_bytes_int8=params * INT8_BYTES,
        activation_bytes_fp32=acts * FP32_BYTES,
        activation_bytes_int8=acts * INT8_BYTES,
        total_bytes_fp32=(params + acts) * FP32_BYTES,
        total_bytes_int8=(params + acts) * INT8_BYTES,
    )
