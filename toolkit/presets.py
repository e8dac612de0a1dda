"""Named model presets: the paper's EmbBERT, its scaled family, baselines and ablations.

Shapes follow the paper (see README "Models"). The scaled family was sized to
the paper's fp32 memory totals (weights + L^2 attention map + 2*L*d
activations): the paper gives the totals, not the shapes.
"""

from .config import ModelConfig
from .errors import UserError

_EMBBERT = dict(family="embbert", vocab_size=8192, max_len=256, embed_rank=16,
                n_layers=4, n_heads=1, attention="efficient", conv_kernel=32)

PRESETS: dict[str, ModelConfig] = {
    c.name: c
    for c in [
        # The paper's model: d 128, r 16, 4 layers, kernel 32 -> 357,248 parameters.
        ModelConfig(name="embbert", d_model=128, **_EMBBERT),
        # Scaled family; paper totals 0.65 / 1.24 / 9.60 / 39.71 MB fp32.
        ModelConfig(name="embbert-nano", **{**_EMBBERT, "d_model": 32, "embed_rank": 8, "n_layers": 3}),
        ModelConfig(name="embbert-tiny", **{**_EMBBERT, "d_model": 96, "embed_rank": 8}),
        ModelConfig(name="embbert-medium", **{**_EMBBERT, "d_model": 384, "embed_rank": 32}),
        ModelConfig(name="embbert-big", **{**_EMBBERT, "d_model": 864, "embed_rank": 32}),
    ]
}


def get_preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; known models: {', '.join(PRESETS)}") from None
