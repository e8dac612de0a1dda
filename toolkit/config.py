"""One config schema for every model family.

A config is the whole description of a model: it is saved inside every
checkpoint and artifact, so a file always says what it holds. Fields a family
does not use keep their defaults (0 or None) and are ignored by it.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Family = Literal["embbert", "bert", "mamba", "embedder"]


class ModelConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="preset name, e.g. 'embbert'")
    family: Family = Field(description="which module builds it: models/<family>.py")
    vocab_size: int = Field(8192, gt=4, description="BPE vocabulary, specials included")
    max_len: int = Field(256, gt=1, description="longest sequence L, [CLS] and [SEP] included")
    d_model: int = Field(128, gt=0, description="hidden width d")
    embed_rank: int | None = Field(
        16, description="Nano Embedder rank r (tables of width r projected to d); None = plain d-wide tables"
    )
    n_layers: int = Field(4, ge=0, description="number of layers (0 for the embedder-only baseline)")
    n_heads: int = Field(1, ge=0, description="attention heads; efficient attention uses 1")
    attention: Literal["efficient", "standard", "none"] = Field(
        "efficient", description="efficient: K = V = x, only Q projected; standard: BERT's Q, K, V"
    )
    conv_kernel: int = Field(
        32, ge=0, description="causal depthwise conv branch kernel; 0 = no conv branch"
    )
    ff_dim: int = Field(0, ge=0, description="BERT feed-forward width; 0 = no feed-forward")
    state_dim: int = Field(0, ge=0, description="MAMBA state size N")
    mamba_conv: int = Field(0, ge=0, description="MAMBA causal conv width")
    mamba_expand: int = Field(2, ge=1, description="MAMBA inner width = expand * d")
    pooling: Literal["cls", "rms"] = Field("cls", description="classifier input: [CLS] vector or RMS over tokens")
    n_segments: int = Field(3, ge=1, description="segment table size; ids come from counting [SEP]")
