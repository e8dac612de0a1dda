"""Training plans: every knob of a run, saved in run.json.

`paper` follows the paper's recipe where this machine allows it (see README);
`smoke` shortens data and steps so any run ends in well under 2 minutes, for
tests and CI. A preset never changes the model's shape.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import UserError

Preset = Literal["paper", "smoke"]


class PretrainPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int = Field(3000, gt=0, description="optimizer steps")
    batch_size: int = Field(32, gt=0, description="sequences per step (paper: 32)")
    seq_len: int = Field(128, gt=2, description="tokens per pretraining sequence, [CLS]/[SEP] included")
    # The paper's 2e-4 assumes far more steps than 2 CPU cores allow. On short
    # runs (500 steps of 32 x 64 tokens) the masked-token loss fell faster the
    # higher the peak lr, up to 6e-3 tried; 5e-3 with warm-up and clipping.
    lr: float = Field(5e-3, gt=0, description="peak AdamW learning rate (paper: 2e-4, with many more steps)")
    weight_decay: float = Field(0.05, ge=0, description="AdamW weight decay (paper: 0.05)")
    warmup_steps: int = Field(100, ge=0, description="linear warm-up, then linear decay to 0")
    mask_rate: float = Field(0.15, gt=0, lt=1, description="share of word tokens to predict (paper: 15 %)")
    corpus_chars: int | None = Field(None, description="cap on pretraining text (None = all of it)")
    checkpoint_every: int = Field(200, gt=0, description="steps between resume checkpoints")
    seed: int = 0


# Int8 rounding noise while fine-tuning (quant_noise.py), in int8 steps of each
# tensor's batch range. Chosen on validation splits only by bench/reproduce.py's
# sweep (issue 16; EmbBERT from the shipped backbone, seed 0, noise 0/8/16/24,
# 10 epochs, news20 2): the rule asks for int8/float agreement >= 99 % and at
# most 0.5 point of validation accuracy lost on every task; no level met it
# (news20's agreement is 92-94 % at every level), and 0 falls shortest of it.
# Validation, 0 against 24: float accuracy sms_spam 98.06 / 98.45, rt_reviews
# 71.53 / 73.80, trec_questions 78.40 / 75.79, vader_movies 76.34 / 77.04,
# news20 58.51 / 40.25 %; agreement 100 / 100, 97.49 / 99.14, 97.58 / 99.26,
# 98.31 / 99.50, 93.17 / 92.29 %. The binary sentiment tasks gain from noise
# (`--quant-noise 16` or 24); the many-class ones lose. docs/results.md has the table.
QUANT_NOISE = 0.0


class FinetunePlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(10, gt=0, description="passes over the training part (paper: 10)")
    batch_size: int = Field(32, gt=0, description="sentences per step (paper: 32)")
    # Chosen on sms_spam's validation part after the 3000-step pretraining:
    # 3e-4 gave 98.06 %, 1e-4 97.48 %.
    lr: float = Field(3e-4, gt=0, description="peak AdamW learning rate (paper: 5e-5 or 1e-4)")
    weight_decay: float = Field(0.05, ge=0, description="AdamW weight decay")
    warmup_steps: int = Field(100, ge=0, description="linear warm-up, then linear decay to 0")
    limit: int | None = Field(None, description="cap on examples per split part (None = all)")
    quant_noise: float = Field(QUANT_NOISE, ge=0, description="int8 rounding noise while training, in int8 steps "
                               "(0 = off; see quant_noise.py)")
    checkpoint_every: int = Field(200, gt=0, description="steps between resume checkpoints")
    seed: int = 0


SMOKE_CORPUS_CHARS = 400_000  # also caps the smoke tokenizer's training text

_PRETRAIN = {
    "paper": {},
    "smoke": dict(steps=30, seq_len=64, warmup_steps=5, corpus_chars=SMOKE_CORPUS_CHARS, checkpoint_every=10),
}
_FINETUNE = {
    "paper": {},
    "smoke": dict(epochs=2, limit=200, warmup_steps=5, checkpoint_every=5),
}


def pretrain_plan(preset: str, **overrides) -> PretrainPlan:
    return PretrainPlan(**{**_pick(_PRETRAIN, preset), **_given(overrides)})


def finetune_plan(preset: str, **overrides) -> FinetunePlan:
    return FinetunePlan(**{**_pick(_FINETUNE, preset), **_given(overrides)})


def _pick(table: dict, preset: str) -> dict:
    if preset not in table:
        raise UserError(f"unknown preset {preset!r}; known presets: {', '.join(table)}")
    return dict(table[preset])


def _given(overrides: dict) -> dict:
    """Options the user left out arrive as None and keep the preset's value."""
    return {k: v for k, v in overrides.items() if v is not None}
