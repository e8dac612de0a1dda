"""Masked-language-model pretraining on the offline corpus.

    embbert pretrain --model embbert --out runs/pre

Next-sentence prediction is left out: the packed windows cross document
boundaries, and the paper's downstream tasks are single sentences.
"""

from pathlib import Path

import torch
import torch.nn.functional as F

from .. import __version__
from ..config import ModelConfig
from ..console import err
from ..data import pretraining_texts
from ..models import MaskedLM, count_params
from . import rundir
from .batches import FIRST_WORD_ID, batch_indices, chunk_documents, generator, mask_tokens, pad
from .loop import LoopSettings, fit
from .plan import PretrainPlan


def pretrain(cfg: ModelConfig, plan: PretrainPlan, tokenizer_path: Path, out: Path, resume: bool) -> dict:
    """Pretrain `cfg` with MLM; write run.json, tokenizer.json, checkpoint.pt. Returns a summary."""
    from ..tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_path)
    seq_len = min(plan.seq_len, cfg.max_len)
    docs = corpus_ids(tok, tokenizer_path, plan.corpus_chars)
    windows = chunk_documents(docs, seq_len)
    err.print(f"{len(windows):,} windows of up to {seq_len} tokens from {len(docs):,} documents")

    run = {
        "kind": "pretrain",
        "model": cfg.model_dump(),
        "plan": plan.model_dump(),
        "corpus": {"documents": len(docs), "windows": len(windows), "tokens": sum(map(len, docs))},
        "embbert_toolkit": __version__,
    }
    rundir.write_json(out / rundir.RUN_JSON, run)
    rundir.copy_file(tokenizer_path, out / rundir.TOKENIZER_JSON)

    torch.manual_seed(plan.seed)  # the initial weights depend on the seed alone
    model = MaskedLM(cfg)

    def loss_at(step: int):
        idx = batch_indices(len(windows), plan.batch_size, plan.seed, step)
        ids = pad([windows[i] for i in idx])  # (B, T)
        inputs, targets = mask_tokens(ids, cfg.vocab_size, generator(plan.seed, 1, step), plan.mask_rate)
        picked = targets != -100  # (B, T)
        loss = F.cross_entropy(model(inputs, picked), targets[picked])  # logits (N, V)
        return loss, int((ids != 0).sum())

    settings = LoopSettings(
        steps=plan.steps, lr=plan.lr, weight_decay=plan.weight_decay, warmup_steps=plan.warmup_steps,
        checkpoint_every=plan.checkpoint_every, seed=plan.seed, description="pretrain (MLM)",
    )
    state = fit(model, loss_at, settings, out, run, resume)

    summary = {
        "model": cfg.name,
        "params": count_params(model.backbone),
        "steps": state.step,
        "final_loss": state.losses[-1][1] if state.losses else None,
        "tokens": state.tokens,
        "wall_time_s": round(state.seconds, 2),
        "tokens_per_s": round(state.tokens / max(state.seconds, 1e-9), 1),
        "torch_threads": torch.get_num_threads(),
        "losses": state.losses,
    }
    summary.update(masked_token_eval(model, windows, plan))
    rundir.write_checkpoint(out, cfg, model, run)
    rundir.write_json(out / "pretrain.json", summary)
    return summary


def corpus_ids(tok, tokenizer_path: Path, corpus_chars: int | None) -> list[list[int]]:
    """The pretraining corpus as token ids, one list per document, cached in
    the user cache by the sha256 of the tokenizer file and of the text itself
    (several pretrainings share one tokenizer; the cache never goes stale)."""
    import hashlib

    from ..tokenizer import cache_dir, sha256_file

    texts = pretraining_texts(corpus_chars)
    text_sha = hashlib.sha256("\0".join(texts).encode()).hexdigest()
    path = cache_dir() / "tokenized" / f"corpus-{sha256_file(tokenizer_path)[:16]}-{text_sha[:16]}.pt"
    if path.exists():
        cached = rundir.read_torch(path)
        flat, starts = cached["state_dict"]["ids"].tolist(), 0
        docs = []
        for n in cached["config"]["lengths"]:
            docs.append(flat[starts : starts + n])
            starts += n
        return docs
    err.print(f"tokenizing the pretraining corpus ({'all' if corpus_chars is None else f'{corpus_chars:,} chars'}) ...")
    docs = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    flat = torch.tensor([t for d in docs for t in d], dtype=torch.int32)
    # read_torch's layout (config + state_dict), so a damaged file is a clear error
    rundir.write_torch(path, {"config": {"lengths": [len(d) for d in docs]}, "state_dict": {"ids": flat}})
    return docs


# Masked-token accuracy is measured on this many windows, masked afresh with a
# stream no training step uses (the windows themselves were trained on).
EVAL_WINDOWS = 256
_EVAL_STREAM = (3, 0)  # masking uses (1, step), data order (epoch,), the loop (step,)


@torch.no_grad()
def masked_token_eval(model: MaskedLM, windows: list[list[int]], plan: PretrainPlan) -> dict:
    """MLM loss and accuracy of `model` on EVAL_WINDOWS seeded windows, with the
    unigram baseline (always the most frequent word) beside them, so a model
    that ignores the context shows as one."""
    g = generator(plan.seed, *_EVAL_STREAM)
    idx = torch.randperm(len(windows), generator=g)[:EVAL_WINDOWS]
    ids = pad([windows[i] for i in idx])
    inputs, targets = mask_tokens(ids, model.cfg.vocab_size, g, plan.mask_rate)
    picked = targets != -100
    model.eval()
    logits = torch.cat([model(inputs[k : k + 32], picked[k : k + 32]) for k in range(0, len(ids), 32)])
    wanted = targets[picked]
    counts = torch.bincount(ids[ids >= FIRST_WORD_ID], minlength=model.cfg.vocab_size)
    return {
        "mlm_eval_loss": round(float(F.cross_entropy(logits, wanted)), 4),
        "mlm_eval_accuracy": round(float((logits.argmax(-1) == wanted).float().mean()), 4),
        "mlm_eval_unigram_accuracy": round(float((wanted == counts.argmax()).float().mean()), 4),
        "mlm_eval_predictions": int(picked.sum()),
    }


def evaluate_run(run_dir: Path) -> dict:
    """masked_token_eval for a finished pretraining run, from its own files."""
    from ..tokenizer import load_tokenizer

    run = rundir.read_json(run_dir / rundir.RUN_JSON)
    plan = PretrainPlan(**run["plan"])
    ckpt = rundir.read_torch(run_dir / rundir.CHECKPOINT)
    cfg = rundir.checkpoint_config(ckpt, run_dir / rundir.CHECKPOINT)
    model = MaskedLM(cfg)
    model.load_state_dict(ckpt["state_dict"])
    tok_path = run_dir / rundir.TOKENIZER_JSON
    docs = corpus_ids(load_tokenizer(tok_path), tok_path, plan.corpus_chars)
    return masked_token_eval(model, chunk_documents(docs, min(plan.seq_len, cfg.max_len)), plan)
