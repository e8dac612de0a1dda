"""Fine-tuning a classifier on a task, and the metrics it reports.

    embbert train --model embbert --task sms_spam --init runs/pre --out runs/sms

The epoch with the best validation accuracy is kept; the test part is used
once, at the end, for metrics.json.
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.metrics import classification_report, confusion_matrix

from .. import __version__, backbones
from ..config import ModelConfig
from ..data import TaskData
from ..errors import UserError
from ..models import Classifier, count_params
from ..tokenizer import encode, load_tokenizer
from . import quant_noise, rundir
from .batches import batch_indices, pad, steps_per_epoch
from .loop import LoopSettings, LoopState, fit
from .plan import FinetunePlan


def finetune(cfg: ModelConfig, data: TaskData, plan: FinetunePlan, tokenizer_path: Path, out: Path,
             resume: bool, init: Path | str | None = None) -> dict:
    """Fine-tune; write run.json, tokenizer.json, checkpoint.pt, metrics.json. Returns the metrics."""
    tok = load_tokenizer(tokenizer_path)
    label_id = {name: i for i, name in enumerate(data.labels)}

    def tokenized(part):
        texts = [e.text for e in part]
        pairs = [e.text_pair or "" for e in part] if any(e.text_pair for e in part) else None
        return encode(tok, texts, cfg.max_len, pairs), torch.tensor([label_id[e.label] for e in part])

    (train_ids, train_y), (val_ids, val_y), (test_ids, test_y) = map(tokenized, (data.train, data.val, data.test))

    run = {
        "kind": "train",
        "model": cfg.model_dump(),
        "plan": plan.model_dump(),
        "task": data.name,
        "source": data.source,
        "data": data.recipe,  # how `embbert convert` loads and splits the same data again
        "labels": data.labels,
        "split_seed": data.split_seed,
        "sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
        "duplicates_removed": data.duplicates_removed,
        "init": str(init) if init else None,
        "embbert_toolkit": __version__,
    }
    rundir.write_json(out / rundir.RUN_JSON, run)
    rundir.copy_file(tokenizer_path, out / rundir.TOKENIZER_JSON)

    torch.manual_seed(plan.seed)  # the initial weights depend on the seed alone
    model = Classifier(cfg, len(data.labels))
    if init is not None:
        model.backbone.load_state_dict(load_backbone(init, cfg))
    quant_noise.attach(model, plan.quant_noise, skip=model.head)

    def loss_at(step: int):
        idx = batch_indices(len(train_ids), plan.batch_size, plan.seed, step)
        ids = pad([train_ids[i] for i in idx])  # (B, T)
        return F.cross_entropy(model(ids), train_y[idx]), int((ids != 0).sum())

    def on_epoch_end(epoch: int, state: LoopState) -> str:
        acc = accuracy(predict(model, val_ids), val_y)
        history = state.extra.setdefault("val_accuracy", [])
        history.append((epoch, acc))
        if acc > state.extra.get("best_val", -1.0):
            state.extra.update(best_val=acc, best_epoch=epoch,
                               best_state={k: v.clone() for k, v in model.state_dict().items()})
        return f"val {acc:.3f}"

    epoch_steps = steps_per_epoch(len(train_ids), plan.batch_size)
    settings = LoopSettings(
        steps=plan.epochs * epoch_steps, lr=plan.lr, weight_decay=plan.weight_decay,
        warmup_steps=plan.warmup_steps, checkpoint_every=plan.checkpoint_every, seed=plan.seed,
        description=f"train {cfg.name} on {data.name}", epoch_steps=epoch_steps,
    )
    state = fit(model, loss_at, settings, out, run, resume, on_epoch_end)
    model.load_state_dict(state.extra["best_state"])

    rundir.write_checkpoint(out, cfg, model, run, labels=data.labels)
    metrics = _metrics(model, cfg, data, test_ids, test_y, state)
    rundir.write_json(out / rundir.METRICS, metrics)
    return metrics


def load_backbone(init: Path | str, cfg: ModelConfig) -> dict:
    """Backbone weights from a pretraining run or a shipped backbone (backbones.py);
    refuse one of another model."""
    if backbones.is_name(init):
        theirs, weights = backbones.load(str(init))
        _check_same_model(theirs, cfg, f"the shipped backbone {str(init)!r}")
        return weights
    if not init.is_dir():
        raise UserError(f"--init {init}: neither a shipped backbone ({', '.join(backbones.names()) or 'none shipped'}) "
                        "nor a pretraining run directory")
    path = init / rundir.CHECKPOINT
    ckpt = rundir.read_torch(path)
    _check_same_model(rundir.checkpoint_config(ckpt, path), cfg, str(path))
    prefix = "backbone."
    return {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}


def init_tokenizer(init: Path | str) -> Path:
    """The tokenizer a backbone was trained with: the run's own, or for a shipped
    backbone the cached default one, checked against the backbone's record."""
    return backbones.tokenizer_path(str(init)) if backbones.is_name(init) else init / rundir.TOKENIZER_JSON


def _check_same_model(theirs: ModelConfig, cfg: ModelConfig, what: str) -> None:
    if theirs != cfg:
        diff = {k: (v, getattr(cfg, k)) for k, v in theirs.model_dump().items() if getattr(cfg, k) != v}
        raise UserError(f"{what} is a checkpoint of model {theirs.name!r}, not {cfg.name!r} "
                        f"(differs in {', '.join(f'{k}: {a} vs {b}' for k, (a, b) in diff.items())})")


@torch.no_grad()
def predict(model: Classifier, seqs: list[list[int]], batch_size: int = 64) -> torch.Tensor:
    """Float logits (N, C), in input order. Padding never changes them."""
    model.eval()
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # similar lengths share a batch
    logits = torch.empty(len(seqs), model.head.out_features)
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        logits[idx] = model(pad([seqs[i] for i in idx]))
    return logits


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(-1) == y).float().mean()) if len(y) else 0.0


def _metrics(model, cfg, data: TaskData, test_ids, test_y, state: LoopState) -> dict:
    pred = predict(model, test_ids).argmax(-1)
    report = classification_report(test_y, pred, labels=range(len(data.labels)), target_names=data.labels,
                                   output_dict=True, zero_division=0)
    return {
        "model": cfg.name,
        "task": data.name,
        "params": count_params(model.backbone),
        "test_accuracy": float((pred == test_y).float().mean()),
        "val_accuracy": state.extra["best_val"],
        "best_epoch": state.extra["best_epoch"],
        "val_history": state.extra["val_accuracy"],
        "macro_f1": report["macro avg"]["f1-score"],
        "per_class": {name: {k: report[name][k] for k in ("precision", "recall", "f1-score", "support")}
                      for name in data.labels},
        "confusion_matrix": confusion_matrix(test_y, pred, labels=range(len(data.labels))).tolist(),
        "labels": data.labels,
        "sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
        "steps": state.step,
        "wall_time_s": round(state.seconds, 2),
        "tokens_per_s": round(state.tokens / max(state.seconds, 1e-9), 1),
        "torch_threads": torch.get_num_threads(),
        "losses": state.losses,
    }
