"""The training loop: deterministic, and a resumed run equals an uninterrupted one."""

import math

import pytest
import torch

from embbert.train.batches import batch_indices, chunk_documents, generator, mask_tokens, pad, steps_per_epoch
from embbert.train.loop import LoopSettings, fit
from embbert.train.rundir import RESUME


class Interrupted(Exception):
    pass


def _problem(init_seed=0):
    g = generator(0, 99)
    x = torch.randn(64, 8, generator=g)
    y = (x.sum(1) > 0).long()
    torch.manual_seed(init_seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.2), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    return model, x, y


def _settings(steps=20):
    return LoopSettings(steps=steps, lr=1e-2, weight_decay=0.05, warmup_steps=3, checkpoint_every=5, seed=7,
                        description="test", epoch_steps=8)


def _loss_at(model, x, y, fail_at=None):
    def loss_at(step):
        if step == fail_at:
            raise Interrupted
        idx = batch_indices(len(x), 8, 7, step)
        return torch.nn.functional.cross_entropy(model(x[idx]), y[idx]), len(idx)

    return loss_at


def test_resumed_run_is_bit_identical(tmp_path):
    model, x, y = _problem()
    fit(model, _loss_at(model, x, y), _settings(), tmp_path / "a", {}, resume=False)

    model_b, x, y = _problem()
    with pytest.raises(Interrupted):  # dies at step 13; last checkpoint at step 10
        fit(model_b, _loss_at(model_b, x, y, fail_at=13), _settings(), tmp_path / "b", {}, resume=False)
    assert (tmp_path / "b" / RESUME).exists()
    model_b, x, y = _problem(init_seed=123)  # a fresh process: other init, all state from disk
    state = fit(model_b, _loss_at(model_b, x, y), _settings(), tmp_path / "b", {}, resume=True)

    assert state.step == 20
    for (name, a), b in zip(model.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    runs = []
    for i, seed in enumerate([7, 7, 8]):
        model, x, y = _problem()
        s = _settings()
        s.seed = seed
        fit(model, _loss_at(model, x, y), s, tmp_path / str(i), {}, resume=False)
        runs.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_batches_cover_each_epoch_once():
    n, bs = 50, 8
    per_epoch = steps_per_epoch(n, bs)
    for epoch in range(2):
        seen = torch.cat([batch_indices(n, bs, 3, epoch * per_epoch + k) for k in range(per_epoch)])
        assert sorted(seen.tolist()) == list(range(n))


def test_mask_tokens_only_words_and_about_15_percent():
    ids = torch.randint(5, 1000, (64, 128))
    ids[:, 0], ids[:, -1] = 2, 4
    inputs, targets = mask_tokens(ids, 1000, generator(0, 1))
    picked = targets != -100
    assert 0.12 < picked.float().mean() < 0.18
    assert not picked[:, 0].any() and not picked[:, -1].any()  # [CLS]/[SEP] never asked
    assert (inputs[picked] == 3).float().mean() > 0.7  # mostly [MASK]
    assert torch.equal(inputs[~picked], ids[~picked])


def test_chunk_and_pad():
    windows = chunk_documents([[10, 11, 12], [13, 14, 15, 16]], max_len=5)
    assert windows == [[2, 10, 11, 12, 4], [2, 13, 14, 15, 4], [2, 16, 4]]
    assert pad(windows)[2].tolist() == [2, 16, 4, 0, 0]


def test_masked_token_eval_reports_the_unigram_baseline():
    """An untrained model is scored beside the always-the-most-frequent-word baseline."""
    from embbert.models import MaskedLM
    from embbert.presets import get_preset
    from embbert.train.plan import PretrainPlan
    from embbert.train.pretrain import masked_token_eval

    g = generator(0, 5)
    windows = []
    for _ in range(40):
        words = torch.randint(5, 200, (30,), generator=g)
        words[torch.rand(30, generator=g) < 0.5] = 7  # word 7 is half of the text
        windows.append([2, *words.tolist(), 4])
    torch.manual_seed(0)
    result = masked_token_eval(MaskedLM(get_preset("embbert-nano")), windows, PretrainPlan())
    assert result["mlm_eval_predictions"] > 100
    assert 0.35 < result["mlm_eval_unigram_accuracy"] < 0.65
    # untrained: near-uniform logits, so the loss is about ln(vocab) and the model is far below the baseline
    assert abs(result["mlm_eval_loss"] - math.log(8192)) < 0.2
    assert result["mlm_eval_accuracy"] < 0.05 < result["mlm_eval_unigram_accuracy"]
