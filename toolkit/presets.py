"""Named model presets: the paper's EmbBERT, its scaled family, baselines and ablations.

Shapes follow the paper (see README "Models"). The scaled family was sized to
the paper's fp32 memory totals (weights + L^2 attention map + 2*L*d
activations): the paper gives the totals, not the shapes.
"""

from .config import ModelConfig
from .errors import UserError

_EMBBERT = dict(family="embbert", vocab_size=8192, max_len=256, embed_rank=16,
                n_layers=4, n_heads=1, attention="efficient", conv_kernel=32)
# BERT baseline: vocab 2048, d 80, 2 layers, 2 heads, FF 160, plain d-wide tables.
_BERT = dict(family="bert", vocab_size=2048, max_len=256, d_model=80, embed_rank=None,
             n_layers=2, n_heads=2, attention="standard", conv_kernel=0, ff_dim=160)
# MAMBA baseline: vocab 2048, d 64, 5 layers, state 6, conv 4, inner width 2d.
# Pooling is RMS over the tokens: the scan is causal, so the [CLS] vector (the
# first position) would only ever see [CLS] itself.
_MAMBA = dict(family="mamba", vocab_size=2048, max_len=256, d_model=64, embed_rank=None,
              n_layers=5, n_heads=0, attention="none", conv_kernel=0, state_dim=6,
              mamba_conv=4, mamba_expand=2, pooling="rms")
# Embedder only: Nano Embedder vocab 8192, r 32, d 320, no layers, RMS pooling.
_EMBEDDER = dict(family="embedder", vocab_size=8192, max_len=256, d_model=320, embed_rank=32,
                 n_layers=0, n_heads=0, attention="none", conv_kernel=0, pooling="rms")

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
        # Baselines at the paper's 2 MB budget, shapes as published.
        ModelConfig(name="bert-2mb", **_BERT),
        ModelConfig(name="mamba-2mb", **_MAMBA),
        ModelConfig(name="embedder", **_EMBEDDER),
        ModelConfig(name="embedder-conv", **{**_EMBEDDER, "conv_kernel": 16}),
        # Ablations, each also within 2 MB fp32 total (weights + activations).
        # The paper gives no shapes for NanoBERT and BERT-Efficient, so both keep
        # the BERT baseline's width (d 80, FF 160) and change one thing, then
        # take as many layers as the 2 MB budget allows:
        # - nanobert: Nano Embedder (r 16) buys the 8192 vocabulary; 2 heads,
        #   3 layers -> 1,865,600 B (a 4th layer would need 2,073,920 B);
        # - bert-efficient: efficient attention (1 head, one L^2 map, no K/V
        #   Linears), plain 2048 vocabulary, 5 layers -> 1,947,264 B (6: 2,103,744 B);
        # - nanobert-efficient: EmbBERT without its conv branch (so no lambdas).
        ModelConfig(name="nanobert", **{**_BERT, "vocab_size": 8192, "embed_rank": 16, "n_layers": 3}),
        ModelConfig(name="bert-efficient", **{**_BERT, "attention": "efficient", "n_heads": 1, "n_layers": 5}),
        ModelConfig(name="nanobert-efficient", d_model=128, **{**_EMBBERT, "conv_kernel": 0}),
    ]
}


def get_preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; known models: {', '.join(PRESETS)}") from None
