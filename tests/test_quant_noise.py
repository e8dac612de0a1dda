"""Int8 rounding noise in fine-tuning: training mode only, one int8 step per unit of amplitude."""

import torch

from embbert.models import Classifier
from embbert.presets import get_preset
from embbert.train import quant_noise


def _model():
    torch.manual_seed(0)
    return Classifier(get_preset("embbert").model_copy(update={"max_len": 32}), 2)


def test_eval_mode_adds_nothing():
    clean, noisy = _model(), _model()
    handles = quant_noise.attach(noisy, 8.0, skip=noisy.head)
    assert handles
    ids = torch.randint(5, 8192, (3, 20))
    clean.eval(), noisy.eval()
    assert torch.equal(clean(ids), noisy(ids))


def test_training_mode_noise_is_within_its_int8_steps():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 32)
    x = torch.randn(4, 16)
    clean = lin(x).detach()
    step = float(clean.max().clamp(min=0) - clean.min().clamp(max=0)) / 255
    quant_noise.attach(lin, 3.0)
    lin.train()
    delta = (lin(x) - clean).abs().detach()
    assert 0 < float(delta.max()) <= 1.5 * step + 1e-6
    assert float(delta.mean()) > 0.5 * step  # uniform over +-1.5 steps: mean 0.75 step


def test_the_head_and_amplitude_zero_stay_exact():
    model = _model()
    assert quant_noise.attach(model, 0.0) == []
    handles = quant_noise.attach(model, 4.0, skip=model.head)
    noisy = [m for m in model.modules() if isinstance(m, quant_noise.NOISY) and m is not model.head]
    assert len(handles) == len(noisy) > 4 * 4  # per layer: norm, query, out, conv, conv out, the layer
    assert all(len(m._forward_hooks) == 1 for m in noisy)
    assert not model.head._forward_hooks


def test_noise_follows_the_global_rng():
    model = _model()
    quant_noise.attach(model, 4.0, skip=model.head)
    model.train()
    ids = torch.randint(5, 8192, (2, 16), generator=torch.Generator().manual_seed(1))
    outs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        outs.append(model(ids))
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])
