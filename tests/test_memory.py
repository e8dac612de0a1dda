"""The paper's memory accounting: EmbBERT exactly, the scaled family, the 2 MB budget."""

import pytest

from embbert.memory import memory_report
from embbert.models import build_backbone, count_params
from embbert.presets import get_preset


def test_embbert_report_matches_paper():
    r = memory_report(get_preset("embbert"))
    assert r.model == "embbert"
    assert r.params == 357_248
    assert r.weights_bytes_fp32 == 1_428_992
    assert r.weights_bytes_int8 == 357_248
    assert r.activation_bytes_fp32 == 4 * (256 * 256 + 2 * 256 * 128) == 524_288
    assert r.activation_bytes_int8 == 131_072
    assert r.total_bytes_fp32 == 1_953_280  # the paper's 1.95 MB
    # The paper says 781 kB at 8 bits; the same formula at 1 byte per element gives this.
    assert r.total_bytes_int8 == 488_320


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_embbert_parameters_part_by_part():
    """The paper's 357,248 (without the head), counted from the modules part
    by part against the paper's own breakdown (embedder 139,648; each layer
    54,400), not against a total the presets were fitted to."""
    model = build_backbone(get_preset("embbert"))
    e = model.embedder
    parts = [_count(m) for m in (e.token, e.token_proj, e.position, e.position_proj, e.segment)]
    assert parts == [8192 * 16, 16 * 128, 256 * 16, 16 * 128, 3 * 128] == [131_072, 2_048, 4_096, 2_048, 384]
    assert _count(e) == sum(parts) == 139_648
    assert len(model.layers) == 4
    for layer in model.layers:
        lambdas = sum(p.numel() for p in layer.parameters(recurse=False))  # lq1, lk1, lq2, lk2
        assert (_count(layer.norm), lambdas) == (128, 4 * 128)
        assert _count(layer.attention) == 2 * (128 * 128 + 128)  # Q and the output; K = V = x
        assert _count(layer.conv.conv) == 32 * 128 + 128 and _count(layer.conv.out) == 128 * 128 + 128
        assert _count(layer) == 128 + 512 + 3 * 16_512 + 4_096 + 128 == 54_400
    assert _count(model) == 139_648 + 4 * 54_400 == 357_248


def _embbert_params_by_hand(V: int, L: int, d: int, r: int, layers: int, k: int) -> int:
    embedder = V * r + r * d + L * r + r * d + 3 * d  # tables, projections (no bias), 3 segments
    layer = d + 4 * d + 3 * (d * d + d) + (k * d + d)  # norm, lambdas, 3 Linears, depthwise conv
    return embedder + layers * layer


@pytest.mark.parametrize(
    "name, d, r, layers, paper_mb",
    [("embbert", 128, 16, 4, 1.95), ("embbert-nano", 32, 8, 3, 0.65), ("embbert-tiny", 96, 8, 4, 1.24),
     ("embbert-medium", 384, 32, 4, 9.60), ("embbert-big", 864, 32, 4, 39.71)],
)
def test_scaled_family_memory_by_hand(name, d, r, layers, paper_mb):
    """Parameters and the paper's memory formula written out by hand from the
    shapes (weights + L^2 + 2 L d, 4 bytes each), against memory_report; then
    the total against the paper's figure, as the README states (within 0.5 %)."""
    cfg = get_preset(name)
    assert (cfg.d_model, cfg.embed_rank, cfg.n_layers, cfg.max_len, cfg.vocab_size) == (d, r, layers, 256, 8192)
    params = _embbert_params_by_hand(8192, 256, d, r, layers, 32)
    report = memory_report(cfg)
    assert report.params == params
    assert report.total_bytes_fp32 == 4 * (params + 256 * 256 + 2 * 256 * d)
    assert report.total_bytes_int8 == params + 256 * 256 + 2 * 256 * d
    assert abs(report.total_bytes_fp32 / 1e6 - paper_mb) <= 0.005 * paper_mb


@pytest.mark.parametrize(
    "name",
    ["bert-2mb", "mamba-2mb", "embedder", "embedder-conv", "nanobert", "bert-efficient", "nanobert-efficient"],
)
def test_baselines_and_ablations_fit_2_mb(name):
    assert memory_report(get_preset(name)).total_bytes_fp32 <= 2_000_000


def test_mamba_activations_use_inner_width_and_state():
    di, n = 2 * 64, 6
    assert memory_report(get_preset("mamba-2mb")).activation_bytes_int8 == 2 * 256 * di + di * n


def test_attention_maps_counted_per_head():
    bert = memory_report(get_preset("bert-2mb"))  # 2 standard heads
    efficient = memory_report(get_preset("bert-efficient"))  # 1 map, same width
    assert bert.activation_bytes_int8 == 2 * 256**2 + 2 * 256 * 80
    assert efficient.activation_bytes_int8 == 256**2 + 2 * 256 * 80
    assert memory_report(get_preset("embedder")).activation_bytes_int8 == 2 * 256 * 320


@pytest.mark.parametrize("name", ["embbert", "mamba-2mb", "embedder-conv"])
def test_meta_count_matches_real_model(name):
    cfg = get_preset(name)
    assert memory_report(cfg).params == count_params(build_backbone(cfg))
