"""Fine-tuned EmbBERT beside a TF-IDF + logistic-regression reference, five tasks.

    python bench/accuracy.py --runs runs/bench            # the paper recipe
    python bench/accuracy.py --runs /tmp/b --preset smoke # a quick look

Pretrains once (RUNS/pretrain-MODEL), fine-tunes on each task (RUNS/MODEL-TASK),
reusing any run that is already complete, then prints one table and writes
bench/results/accuracy[-PRESET].json. Both sides use the same split (seed 0).
"""

import argparse
import json
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from common import embbert, write_result
from embbert.data import TASKS, load_task

# news20 has 10k training documents of ~180 tokens (1.85 M tokens an epoch): on
# one thread of a shared 2-core machine an epoch takes ~10 min, so the bench
# gives it 2 (recorded in the output).
EPOCHS = {"news20": 2}


def tfidf_reference(task: str, limit: int | None, seed: int = 0) -> dict:
    """Word 1-2-gram TF-IDF + logistic regression on the split of `seed`; C picked on the validation part."""
    data = load_task(task, seed=seed, limit=limit)
    started = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, lowercase=True)
    x_train = vec.fit_transform([e.text for e in data.train])
    y_train = [e.label for e in data.train]

    def fitted(c):
        return LogisticRegression(C=c, max_iter=3000).fit(x_train, y_train)

    def acc(model, part):
        return float(model.score(vec.transform([e.text for e in part]), [e.label for e in part]))

    val = {c: acc(fitted(c), data.val) for c in (0.5, 2.0, 8.0, 32.0)}
    best_c = max(val, key=val.get)
    return {"test_accuracy": acc(fitted(best_c), data.test), "C": best_c, "val_accuracy": val[best_c],
            "wall_time_s": round(time.perf_counter() - started, 2)}


def completed(run: Path, name: str) -> dict | None:
    path = run / name
    return json.loads(path.read_text()) if path.exists() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, required=True, help="where the runs live (reused when complete)")
    ap.add_argument("--model", default="embbert")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--preset", default="paper", choices=["paper", "smoke"])
    args = ap.parse_args()

    pre = args.runs / f"pretrain-{args.model}"
    pre_summary = completed(pre, "pretrain.json") or embbert(
        "pretrain", "--model", args.model, "--out", pre, "--preset", args.preset,
        *(["--resume"] if pre.exists() else []))

    if "mlm_eval_accuracy" not in pre_summary:  # a run from before pretrain measured it
        from embbert.train.pretrain import evaluate_run
        pre_summary = {**pre_summary, **evaluate_run(pre)}

    rows = []
    for task in args.tasks:
        run = args.runs / f"{args.model}-{task}"
        epochs = EPOCHS.get(task) if args.preset == "paper" else None
        metrics = completed(run, "metrics.json") or embbert(
            "train", "--model", args.model, "--task", task, "--init", pre, "--out", run, "--preset", args.preset,
            *(["--epochs", epochs] if epochs else []), *(["--resume"] if run.exists() else []))
        plan = json.loads((run / "run.json").read_text())["plan"]
        limit = plan["limit"]
        ref = tfidf_reference(task, limit)
        rows.append({
            "task": task, "model": args.model,
            "embbert_test_accuracy": metrics["test_accuracy"], "tfidf_lr_test_accuracy": ref["test_accuracy"],
            "tfidf_C": ref["C"], "epochs": len(metrics["val_history"]), "best_epoch": metrics["best_epoch"],
            "test_size": metrics["sizes"]["test"], "train_size": metrics["sizes"]["train"],
            "finetune_wall_time_s": metrics["wall_time_s"], "finetune_tokens_per_s": metrics["tokens_per_s"],
            "finetune_lr": plan["lr"], "quant_noise": plan.get("quant_noise", 0.0),
            "val_accuracy": metrics["val_accuracy"], "tfidf_lr_val_accuracy": ref["val_accuracy"],
        })

    table = Table("task", f"{args.model} (fp32)", "TF-IDF + LR", "epochs", "quant noise", "test n", "fine-tune",
                  "tokens/s", title=f"test accuracy, preset {args.preset}")
    for r in rows:
        table.add_row(r["task"], f"{r['embbert_test_accuracy']:.4f}", f"{r['tfidf_lr_test_accuracy']:.4f}",
                      str(r["epochs"]), f"{r['quant_noise']:g}", str(r["test_size"]), f"{r['finetune_wall_time_s']:.0f} s",
                      f"{r['finetune_tokens_per_s']:,.0f}")
    console = Console()
    console.print(table)
    console.print(f"pretraining: {pre_summary['steps']} steps, {pre_summary['tokens']:,} tokens, "
                  f"{pre_summary['wall_time_s']:.0f} s, {pre_summary['tokens_per_s']:,.0f} tokens/s, "
                  f"final MLM loss {pre_summary['final_loss']:.3f}")
    console.print(f"masked-token accuracy {pre_summary['mlm_eval_accuracy']:.1%} (unigram baseline "
                  f"{pre_summary['mlm_eval_unigram_accuracy']:.1%}), loss {pre_summary['mlm_eval_loss']:.3f}, "
                  f"on {pre_summary['mlm_eval_predictions']:,} masked tokens; torch threads {torch.get_num_threads()}")
    suffix = "" if args.preset == "paper" else f"-{args.preset}"
    pretrain = {k: v for k, v in pre_summary.items() if k != "losses"}
    pretrain["plan"] = json.loads((pre / "run.json").read_text())["plan"]
    print(f"wrote {write_result('accuracy' + suffix, rows, pretrain=pretrain, preset=args.preset)}")


if __name__ == "__main__":
    main()
