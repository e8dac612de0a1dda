"""What `convert` reads from a run directory of `embbert train`: the trained
Classifier, its tokenizer, its labels, and the task's sentences (training part
for calibration, test part for parity)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from embbert.config import ModelConfig
from embbert.errors import UserError
from embbert.models import Classifier
from embbert.train import rundir

MIN_CALIBRATION = 10


@dataclass
class RunSource:
    path: Path
    run: dict
    config: ModelConfig
    labels: list[str]
    model: Classifier
    tokenizer_path: Path
    task: str


def load_run(path: Path) -> RunSource:
    if not path.is_dir():
        raise UserError(f"{path} is not a run directory")
    ckpt_path = path / rundir.CHECKPOINT
    if not ckpt_path.exists():
        raise UserError(f"{path} holds no {rundir.CHECKPOINT}; convert takes a finished `embbert train` run")
    tok_path = path / rundir.TOKENIZER_JSON
    if not tok_path.exists():
        raise UserError(f"{path} holds no {rundir.TOKENIZER_JSON}")
    run = rundir.read_json(path / rundir.RUN_JSON)
    ckpt = rundir.read_torch(ckpt_path)
    if ckpt.get("kind") != "classifier":
        raise UserError(f"{ckpt_path} is a {ckpt.get('kind', 'pretraining')!r} checkpoint; convert takes a "
                        "fine-tuned classifier (embbert train)")
    cfg = rundir.checkpoint_config(ckpt, ckpt_path)
    labels = list(ckpt["labels"])
    model = Classifier(cfg, len(labels))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise UserError(f"{ckpt_path}: weights do not match model {cfg.name!r} ({str(e).splitlines()[0]})") from None
    model.eval()
    task = run.get("task")
    return RunSource(path, run, cfg, labels, model, tok_path, task)


def load_sentences(src: RunSource):
    """(TaskData, has_pairs) for the run's own split: the built-in task, or the
    user's file(s) as run.json's `data` recorded them (refused if changed since)."""
    from embbert.data import TASKS, load_task
    from embbert.data.files import load_file_again

    recipe = src.run.get("data") or ({"task": src.task} if src.task in TASKS else None)
    if recipe is None:
        raise UserError(f"{src.path} was trained on {src.run.get('source') or src.task!r} by an older toolkit, whose "
                        "run.json does not say how to split that file again; train it again to convert it")
    seed = src.run.get("split_seed", 0)
    data = load_task(recipe["task"], seed=seed) if "task" in recipe else load_file_again(recipe, seed)
    if data.labels != src.labels:
        raise UserError(f"{src.path}: the checkpoint's labels {src.labels} differ from those of its data "
                        f"{data.labels}")
    pairs = any(e.text_pair for e in data.train + data.test)
    return data, pairs


def calibration_texts(data, n: int) -> list[str]:
    """n training sentences, a seeded sample: the same run gives the same set."""
    if n < MIN_CALIBRATION:
        raise UserError(f"--calibration {n}: at least {MIN_CALIBRATION} sentences are needed to calibrate int8 ranges")
    texts = [e.text for e in data.train]
    if len(texts) < MIN_CALIBRATION:
        raise UserError(f"the training part holds {len(texts)} sentences; at least {MIN_CALIBRATION} are needed "
                        "for calibration")
    rng = random.Random(0)
    return rng.sample(texts, min(n, len(texts)))
