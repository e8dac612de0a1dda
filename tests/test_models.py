"""Every preset builds, runs, trains a step, and ignores right padding.

CPU, float32, small batches; the whole file runs in seconds.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from embbert.models import Classifier, MaskedLM, build_backbone, count_params
from embbert.models.embbert import EfficientAttention
from embbert.presets import PRESETS, get_preset
from embbert.tokenizer import CLS_ID, PAD_ID, SEP_ID

N_CLASSES = 3
ALL = list(PRESETS)


def sentences(vocab: int, lengths: list[int], seed: int = 0) -> list[torch.Tensor]:
    """Random '[CLS] w ... w [SEP]' sentences of the given total lengths."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        words = torch.randint(5, vocab, (n - 2,), generator=g)
        out.append(torch.cat([torch.tensor([CLS_ID]), words, torch.tensor([SEP_ID])]))
    return out


def pad(batch: list[torch.Tensor], T: int) -> torch.Tensor:
    """Right-pad with [PAD] to (B, T)."""
    ids = torch.full((len(batch), T), PAD_ID, dtype=torch.long)
    for i, s in enumerate(batch):
        ids[i, : len(s)] = s
    return ids


def classifier(name: str) -> Classifier:
    torch.manual_seed(0)
    return Classifier(get_preset(name), N_CLASSES).eval()


@pytest.mark.parametrize("name", ALL)
def test_classifier_logits(name):
    cfg = get_preset(name)
    ids = pad(sentences(cfg.vocab_size, [20, 9]), 32)
    with torch.no_grad():
        logits = classifier(name)(ids)
    assert logits.shape == (2, N_CLASSES)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ALL)
def test_padding_does_not_change_logits(name):
    """The same sentences padded to 64 and to max_len give the same logits.

    This is what lets the firmware run only the real tokens. The second
    sentence fills all 64 positions, so a conv or scan that looked ahead would
    see [PAD] only in the longer batch and fail here.
    """
    cfg = get_preset(name)
    batch = sentences(cfg.vocab_size, [11, 64], seed=1)
    model = classifier(name)
    with torch.no_grad():
        short = model(pad(batch, 64))
        full = model(pad(batch, cfg.max_len))
    assert short.dtype == torch.float32
    assert (short - full).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", ALL)
def test_masked_lm_shape(name):
    cfg = get_preset(name)
    torch.manual_seed(0)
    model = MaskedLM(cfg).eval()
    ids = pad(sentences(cfg.vocab_size, [16, 7]), 16)
    with torch.no_grad():
        logits = model(ids)
    assert logits.shape == (2, 16, cfg.vocab_size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ALL)
def test_gradient_step(name):
    """One MLM step: finite loss, finite gradients, the weights move."""
    cfg = get_preset(name)
    torch.manual_seed(0)
    model = MaskedLM(cfg)
    ids = pad(sentences(cfg.vocab_size, [16, 10]), 16)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]

    loss = F.cross_entropy(model(ids).flatten(0, 1), ids.flatten())
    loss.backward()
    opt.step()

    assert torch.isfinite(loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    moved = sum(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert moved > len(before) // 2


@pytest.mark.parametrize("name", ALL)
def test_untrained_mlm_starts_near_uniform(name):
    """The token table is also the MLM output table. With nn.Embedding's N(0, 1)
    init the first MLM loss was above ln(V) (EmbBERT: 10.1 vs 9.0), and pretraining
    spent its budget climbing back to the unigram level; BERT's N(0, 0.02) starts
    at ln(V)."""
    cfg = get_preset(name)
    torch.manual_seed(0)
    model = MaskedLM(cfg)
    ids = pad(sentences(cfg.vocab_size, [64, 40]), 64)
    with torch.no_grad():
        loss = F.cross_entropy(model(ids)[ids != PAD_ID], ids[ids != PAD_ID])
    assert abs(loss.item() - math.log(cfg.vocab_size)) < 0.2


def test_token_table_is_the_token_embedding():
    for name in ALL:
        cfg = get_preset(name)
        table = build_backbone(cfg).token_table()
        assert isinstance(table, torch.nn.Embedding)
        assert table.num_embeddings == cfg.vocab_size


# --- Parameter counts against the paper and hand arithmetic -----------------


def test_embbert_params_match_paper():
    model = build_backbone(get_preset("embbert"))
    assert count_params(model) == 357_248
    e = model.embedder
    assert count_params(e) == 139_648
    assert [count_params(m) for m in (e.token, e.token_proj, e.position, e.position_proj, e.segment)] == [
        131_072, 2_048, 4_096, 2_048, 384,
    ]
    assert [count_params(layer) for layer in model.layers] == [54_400] * 4


def test_bert_2mb_params_by_hand():
    d, ff, V, L = 80, 160, 2048, 256
    embeddings = V * d + L * d + 3 * d + 2 * d  # token, position, segment tables, LayerNorm
    layer = 4 * (d * d + d) + (d * ff + ff) + (ff * d + d) + 2 * 2 * d  # Q K V O, FF, 2 LayerNorms
    assert count_params(build_backbone(get_preset("bert-2mb"))) == embeddings + 2 * layer == 288_880


def test_mamba_2mb_params_by_hand():
    d, di, n, k, r, V = 64, 128, 6, 4, 4, 2048  # r = ceil(64 / 16)
    block = (
        d  # RMSNorm
        + d * 2 * di  # in_proj
        + di * k + di  # depthwise conv
        + di * (r + 2 * n)  # x_proj
        + r * di + di  # dt_proj
        + di * n + di  # A_log, D
        + di * d  # out_proj
    )
    assert count_params(build_backbone(get_preset("mamba-2mb"))) == V * d + 5 * block + d == 275_456


def test_ablations_are_what_they_say():
    nano = build_backbone(get_preset("nanobert"))
    assert nano.token_table().weight.shape == (8192, 16)
    assert not any(isinstance(m, EfficientAttention) for m in nano.modules())
    eff = build_backbone(get_preset("bert-efficient"))
    assert eff.token_table().weight.shape == (2048, 80)
    assert all(isinstance(layer.attention, EfficientAttention) for layer in eff.layers)
    no_conv = build_backbone(get_preset("nanobert-efficient"))
    assert all(layer.conv is None for layer in no_conv.layers)
    assert get_preset("embedder-conv").conv_kernel == 16
    assert build_backbone(get_preset("embedder")).conv is None
