"""Pretrained backbones shipped in the package: `embbert train --init embbert`.

    backbones/NAME.pt     the backbone's fp32 weights and model config (no MLM head, no optimizer state)
    backbones/NAME.json   sha256 of NAME.pt, the sha256 of the tokenizer it was trained with,
                          its masked-token accuracy, and the recipe that made it

`ship(run_dir, name)` makes both from a finished `embbert pretrain` run
(bench/reproduce.py ships each of its pretrainings when it ends). Loading
checks the file's sha256 and the tokenizer's: a backbone only means something
with the exact tokenizer it was trained with.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..config import ModelConfig
from ..errors import UserError

DIR = Path(__file__).resolve().parent
KIND = "backbone"


def names() -> list[str]:
    return sorted(p.stem for p in DIR.glob("*.json") if (DIR / f"{p.stem}.pt").exists())


def is_name(init: Path | str) -> bool:
    """`--init embbert` names a shipped backbone, unless a folder of that name
    exists: a pretraining run directory always wins."""
    text = str(init)
    return "/" not in text and text in names() and not Path(text).is_dir()


def info(name: str) -> dict:
    if name not in names():
        raise UserError(f"no shipped backbone {name!r}; shipped: {', '.join(names()) or 'none'}")
    return json.loads((DIR / f"{name}.json").read_text())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(name: str) -> tuple[ModelConfig, dict]:
    """(model config, backbone state_dict) of a shipped backbone, its sha256 verified."""
    from ..train import rundir

    meta, path = info(name), DIR / f"{name}.pt"
    if _sha256(path) != meta["sha256"]:
        raise UserError(f"{path} does not match the sha256 in {name}.json (damaged or replaced); reinstall the package")
    ckpt = rundir.read_torch(path)
    return rundir.checkpoint_config(ckpt, path), ckpt["state_dict"]


def tokenizer_path(name: str) -> Path:
    """The cached default tokenizer, refused unless it is the one the backbone was trained with."""
    from ..tokenizer import default_tokenizer

    _, path = default_tokenizer(info(name)["config"]["vocab_size"])
    check_tokenizer(name, path)
    return path


def check_tokenizer(name: str, path: Path) -> None:
    from ..tokenizer import sha256_file

    want, have = info(name)["tokenizer_sha256"], sha256_file(path)
    if have != want:
        raise UserError(f"the tokenizer {path} (sha256 {have[:12]}) is not the one backbone {name!r} was trained with "
                        f"({want[:12]}); delete it to retrain it, or pretrain your own backbone")


def ship(run_dir: Path, name: str, command: str) -> dict:
    """Write NAME.pt and NAME.json (into DIR) from a finished pretraining run; returns the JSON."""
    import torch

    from .. import __version__
    from ..train import rundir
    from ..tokenizer import sha256_file

    summary = rundir.read_json(run_dir / "pretrain.json")
    run = rundir.read_json(run_dir / rundir.RUN_JSON)
    ckpt = rundir.read_torch(run_dir / rundir.CHECKPOINT)
    prefix = "backbone."
    weights = {k[len(prefix):]: v.float().contiguous() for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    path = DIR / f"{name}.pt"
    rundir.write_torch(path, {"config": ckpt["config"], "kind": KIND, "state_dict": weights})
    plan = run["plan"]
    meta = {
        "name": name, "file": path.name, "sha256": _sha256(path), "bytes": path.stat().st_size,
        "model": ckpt["config"]["name"], "config": ckpt["config"], "params": summary["params"],
        "tokenizer_sha256": sha256_file(run_dir / rundir.TOKENIZER_JSON),
        "masked_token_accuracy": summary["mlm_eval_accuracy"], "unigram_accuracy": summary["mlm_eval_unigram_accuracy"],
        "mlm_eval_loss": summary["mlm_eval_loss"], "mlm_eval_predictions": summary["mlm_eval_predictions"],
        "recipe": {"command": command, "steps": plan["steps"], "batch_size": plan["batch_size"],
                   "seq_len": plan["seq_len"], "token_budget": plan["steps"] * plan["batch_size"] * plan["seq_len"],
                   "tokens_seen": summary["tokens"], "lr": plan["lr"], "weight_decay": plan["weight_decay"],
                   "warmup_steps": plan["warmup_steps"], "mask_rate": plan["mask_rate"], "seed": plan["seed"],
                   "corpus": run["corpus"], "final_loss": summary["final_loss"], "wall_time_s": summary["wall_time_s"],
                   "torch_threads": summary["torch_threads"], "embbert_toolkit": run.get("embbert_toolkit", __version__),
                   "torch": torch.__version__},
    }
    rundir.write_json(DIR / f"{name}.json", meta)
    return meta
