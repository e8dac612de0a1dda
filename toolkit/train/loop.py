"""The one training loop, shared by pretraining and fine-tuning.

The caller supplies `loss_at(step) -> (loss, tokens)`, a pure function of the
step (see batches.py), so the loop owns only optimisation, checkpoints and
progress. Every `checkpoint_every` steps the full state (weights, AdamW
moments, step, the caller's `extra`) goes to resume.pt; `--resume` reloads it
and the run ends bit-identical to one that was never interrupted.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..console import progress_bar
from .batches import generator
from .rundir import RESUME, read_torch, write_torch


@dataclass
class LoopState:
    """What survives an interruption besides weights and optimizer."""

    step: int = 0
    tokens: int = 0  # real (non-pad) tokens seen, for tokens/s
    seconds: float = 0.0  # wall time spent training, summed over resumes
    losses: list = field(default_factory=list)  # (step, mean loss) per logged span
    extra: dict = field(default_factory=dict)  # caller's state, e.g. best weights so far


@dataclass
class LoopSettings:
    steps: int
    lr: float
    weight_decay: float
    warmup_steps: int
    checkpoint_every: int
    seed: int
    description: str
    epoch_steps: int | None = None  # call on_epoch_end every this many steps


def _schedule(s: LoopSettings):
    def factor(step: int) -> float:
        if step < s.warmup_steps:
            return (step + 1) / s.warmup_steps
        return max(0.0, (s.steps - step) / max(1, s.steps - s.warmup_steps))

    return factor


def fit(
    model: torch.nn.Module,
    loss_at: Callable[[int], tuple[torch.Tensor, int]],
    settings: LoopSettings,
    out: Path,
    config: dict,
    resume: bool,
    on_epoch_end: Callable[[int, LoopState], str] | None = None,
) -> LoopState:
    """Train `model` in place for settings.steps steps; return the final LoopState."""
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(settings))
    state = LoopState()
    if resume and (out / RESUME).exists():
        state = _load(out / RESUME, model, opt, sched)

    status, span_loss, span_n = "", 0.0, 0
    with progress_bar(settings.description, settings.steps, state.step) as bar:
        while state.step < settings.steps:
            started = time.perf_counter()
            # Seed the global RNG per step too, for any module that draws from it.
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator(settings.seed, state.step))))
            model.train()
            loss, tokens = loss_at(state.step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            state.step += 1
            state.tokens += tokens
            state.seconds += time.perf_counter() - started
            span_loss, span_n = span_loss + loss.item(), span_n + 1

            last = state.step == settings.steps
            epoch_end = bool(settings.epoch_steps) and state.step % settings.epoch_steps == 0 or last
            checkpoint = state.step % settings.checkpoint_every == 0 or last
            if epoch_end or checkpoint:  # the loss curve: one point per epoch and per checkpoint
                state.losses.append((state.step, span_loss / span_n))
                span_loss, span_n = 0.0, 0
            if epoch_end and on_epoch_end is not None:
                status = on_epoch_end(state.step // (settings.epoch_steps or settings.steps), state)
            if checkpoint:
                _save(out / RESUME, model, opt, sched, state, config)
            bar.update(state.step, f"loss {loss.item():.3f} {status} {state.tokens / max(state.seconds, 1e-9):,.0f} tok/s")
    return state


def _save(path, model, opt, sched, state: LoopState, config: dict) -> None:
    write_torch(path, {
        "config": config,
        "state_dict": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "loop": state.__dict__,
    })


def _load(path, model, opt, sched) -> LoopState:
    saved = read_torch(path)
    model.load_state_dict(saved["state_dict"])
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])
    return LoopState(**saved["loop"])
