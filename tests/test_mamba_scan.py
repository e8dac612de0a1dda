"""The fast selective scan against its one-step-at-a-time reference.

`selective_scan` has a hand-written backward; `selective_scan_reference` is the
recurrence as it reads, differentiated by autograd. Same outputs, same
gradients, on every shape the model meets; and the Mamba model, and a
checkpoint trained with the reference, predict what they did before.
"""

import pytest
import torch
import torch.nn.functional as F

import embbert.models.mamba as mamba
from embbert.models import Classifier, MaskedLM
from embbert.models.mamba import selective_scan, selective_scan_reference
from embbert.presets import get_preset
from embbert.train import rundir

TOL = dict(rtol=1e-5, atol=1e-5)  # float32; the two differ only in summation order


def assert_close(actual, expected, what):
    """Within float32 rounding of the largest term: a sum of terms of size S
    that cancel keeps an absolute error of ~1e-7 S, whatever the result."""
    atol = 1e-6 * max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=atol, msg=lambda m: f"{what}: {m}")


def scan_inputs(B, T, Di, N, seed=0, dtype=torch.float32, dt=None):
    """u, dt, A, b, c, D as the block makes them: dt > 0 (softplus), A < 0."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(B, T, Di, generator=g, dtype=dtype)
    if dt is None:
        dt = F.softplus(torch.randn(B, T, Di, generator=g, dtype=dtype) - 2)
    A = -torch.exp(torch.randn(Di, N, generator=g, dtype=dtype))
    b = torch.randn(B, T, N, generator=g, dtype=dtype)
    c = torch.randn(B, T, N, generator=g, dtype=dtype)
    D = torch.randn(Di, generator=g, dtype=dtype)
    return [x.requires_grad_() for x in (u, dt, A, b, c, D)]


def output_and_grads(scan, inputs, seed=1):
    """y and the gradients of a random linear function of y, for every input."""
    y = scan(*inputs)
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype)
    grads = torch.autograd.grad((y * w).sum(), inputs)
    return y.detach(), grads


def assert_same_scan(inputs):
    y_ref, g_ref = output_and_grads(selective_scan_reference, inputs)
    y, g = output_and_grads(selective_scan, inputs)
    assert_close(y, y_ref, "y")
    for name, a, r in zip(["u", "dt", "A", "b", "c", "D"], g, g_ref):
        assert_close(a, r, f"dL/d{name}")


# (B, T, Di, N): T = 1, T odd and prime, the model's Di and N, the study's T = 128.
@pytest.mark.parametrize("shape", [(2, 1, 4, 3), (3, 7, 8, 2), (2, 33, 128, 6), (4, 128, 16, 6), (1, 5, 1, 1)])
def test_fast_scan_equals_reference(shape):
    assert_same_scan(scan_inputs(*shape))


def test_fast_scan_with_extreme_steps():
    """dt from 1e-6 (decay ~ 1, the state never forgets) to 1e3 (decay underflows
    to 0, and the state and gradients reach 1e4)."""
    B, T, Di, N = 2, 40, 16, 6
    g = torch.Generator().manual_seed(3)
    dt = 10.0 ** (torch.rand(B, T, Di, generator=g) * 9 - 6)
    dt[0, :, :4] = 1e3
    dt[1, :, 4:8] = 1e-6
    assert_same_scan(scan_inputs(B, T, Di, N, dt=dt))


def test_fast_scan_gradcheck():
    """The hand-written backward against finite differences, in float64."""
    inputs = scan_inputs(2, 6, 5, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(selective_scan, inputs)


@pytest.fixture
def reference_scan(monkeypatch):
    """Make the model use the reference scan (MambaBlock reads mamba.selective_scan)."""
    monkeypatch.setattr(mamba, "selective_scan", selective_scan_reference)


def mamba_ids(B=3, T=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, get_preset("mamba-2mb").vocab_size, (B, T), generator=g)
    ids[1, 30:] = 0  # right padding
    return ids


def test_mamba_logits_unchanged(monkeypatch):
    torch.manual_seed(0)
    model = Classifier(get_preset("mamba-2mb"), 3).eval()
    ids = mamba_ids()
    with torch.no_grad():
        fast = model(ids)
        monkeypatch.setattr(mamba, "selective_scan", selective_scan_reference)
        ref = model(ids)
    torch.testing.assert_close(fast, ref, **TOL)


def test_checkpoint_trained_with_reference_predicts_the_same(tmp_path, reference_scan, monkeypatch):
    cfg = get_preset("mamba-2mb")
    torch.manual_seed(0)
    model = MaskedLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    ids = mamba_ids(B=4, T=32)
    for _ in range(3):  # a few real steps, so the weights are not the init's
        loss = F.cross_entropy(model(ids).flatten(0, 1), ids.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        before = model(ids)
    rundir.write_checkpoint(tmp_path, cfg, model, {"kind": "pretrain"})

    monkeypatch.setattr(mamba, "selective_scan", selective_scan)
    loaded = MaskedLM(cfg)
    loaded.load_state_dict(rundir.read_torch(tmp_path / rundir.CHECKPOINT)["state_dict"])
    with torch.no_grad():
        after = loaded.eval()(ids)
    torch.testing.assert_close(after, before, **TOL)
