"""A run directory: what `pretrain` and `train` write, and `convert` reads.

    DIR/run.json         the whole config: model, training, data, versions
    DIR/tokenizer.json   the tokenizer the ids came from
    DIR/checkpoint.pt    final weights, with the model config inside
    DIR/resume.pt        training state every N steps (for --resume)
    DIR/metrics.json     results (train only)

Every file is written atomically (temp file + rename), so a run killed at any
moment leaves either the old file or the new one, never half of one.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..config import ModelConfig
from ..errors import UserError

RUN_JSON = "run.json"
TOKENIZER_JSON = "tokenizer.json"
CHECKPOINT = "checkpoint.pt"
RESUME = "resume.pt"
METRICS = "metrics.json"

_UMASK = os.umask(0)
os.umask(_UMASK)


def prepare_out_dir(out: Path, *, resume: bool, force: bool) -> None:
    """Refuse to overwrite a run by accident; --force starts over, --resume continues."""
    if resume and force:
        raise UserError("--resume and --force contradict each other; pick one")
    exists = out.exists() and any(out.iterdir())
    if resume:
        # A run killed before its first checkpoint has only run.json: it restarts from step 0.
        if not any((out / name).exists() for name in (RESUME, CHECKPOINT, RUN_JSON)):
            raise UserError(f"--resume: {out} holds no run to resume (no {RUN_JSON} or {RESUME})")
        return
    if exists and not force:
        raise UserError(f"{out} already holds a run; pass --resume to continue it or --force to replace it")
    if exists:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual file mode
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    _atomic(path, lambda f: f.write((json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()))


def write_torch(path: Path, obj) -> None:
    _atomic(path, lambda f: torch.save(obj, f))


def copy_file(src: Path, dst: Path) -> None:
    _atomic(dst, lambda f: f.write(Path(src).read_bytes()))


def write_checkpoint(out: Path, cfg: ModelConfig, model: torch.nn.Module, run: dict,
                     labels: list[str] | None = None) -> None:
    """DIR/checkpoint.pt: weights, with model config and run inside; a classifier
    (labels given) also carries its labels, a pretrained MLM does not."""
    ckpt = {"config": cfg.model_dump(), "kind": "mlm" if labels is None else "classifier",
            "state_dict": model.state_dict(), "run": json.loads(json.dumps(run))}
    if labels is not None:
        ckpt["labels"] = list(labels)
    write_torch(out / CHECKPOINT, ckpt)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e})") from None


def read_torch(path: Path) -> dict:
    """Load a checkpoint we wrote; anything else is a clear error, not a traceback."""
    if not path.exists():
        raise UserError(f"{path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        reason = str(e).split(". ")[0].splitlines()[0] if str(e) else ""
        raise UserError(f"{path} is not a readable checkpoint ({type(e).__name__}: {reason})") from None
    if not isinstance(obj, dict) or "config" not in obj or "state_dict" not in obj:
        raise UserError(f"{path} is not an embbert checkpoint (no config/state_dict)")
    return obj


def checkpoint_config(ckpt: dict, path: Path) -> ModelConfig:
    try:
        return ModelConfig(**ckpt["config"])
    except Exception as e:
        raise UserError(f"{path} holds an unknown model config ({e})".splitlines()[0]) from None
