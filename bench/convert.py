"""embbert convert on every run: size, arena, parity and wall time, in one table.

    python bench/convert.py --runs /work/runs/bench                 # fine-tuned runs (RUNS/MODEL-TASK)
    python bench/convert.py --untrained embbert bert-2mb mamba-2mb  # random weights: sizes, ops, arena
    python bench/convert.py --runs R --append                       # add/replace rows in the same table

Converts each run with the real command (`embbert convert --json`) into
ART/NAME, prints a table and writes bench/results/convert.json. A model that
does not convert gets a row with the converter's one-line reason.
Untrained runs (random weights, a trained tokenizer, task sms_spam) measure
what does not depend on training: bytes, ops, arena, conversion time; their
parity figures are reported but say little about a trained model.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from common import RESULTS, write_result

TARGET_FLASH, TARGET_ARENA, PAPER_INT8 = 450_000, 200_000, 781_000


def make_untrained_run(preset: str, path: Path, seed: int = 0) -> Path:
    """A run directory like `embbert train` writes, with the preset's random init."""
    import torch

    from embbert.data import load_task
    from embbert.models import Classifier
    from embbert.presets import get_preset
    from embbert.tokenizer import default_tokenizer
    from embbert.train import rundir
    from embbert.train.plan import SMOKE_CORPUS_CHARS

    cfg = get_preset(preset)
    data = load_task("sms_spam", seed=0)
    _, tok_path = default_tokenizer(cfg.vocab_size, limit_chars=SMOKE_CORPUS_CHARS)
    path.mkdir(parents=True, exist_ok=True)
    (path / "tokenizer.json").write_bytes(tok_path.read_bytes())
    run = {"kind": "train", "model": cfg.model_dump(), "task": "sms_spam", "source": None,
           "labels": data.labels, "split_seed": 0, "untrained": True}
    rundir.write_json(path / rundir.RUN_JSON, run)
    torch.manual_seed(seed)
    rundir.write_checkpoint(path, cfg, Classifier(cfg, len(data.labels)), run, labels=data.labels)
    return path


def convert(run: Path, out: Path, test_limit: int | None, *options: str) -> dict:
    """`embbert convert RUN --out OUT` (+ options): its --json summary, or {"error": reason}."""
    cmd = [sys.executable, "-m", "embbert", "convert", str(run), "--out", str(out), "--force", "--json", *options]
    if test_limit:
        cmd += ["--test-limit", str(test_limit)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode == 0:
        return json.loads(proc.stdout)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    reason = next((l for l in reversed(lines) if l.startswith("error:")), lines[-1] if lines else "?")
    return {"error": reason.removeprefix("error: ").strip(), "exit_code": proc.returncode}


def row(name: str, r: dict, trained: bool) -> dict:
    if "error" in r:
        return {"run": name, "trained": trained, "error": r["error"]}
    p, a = r["parity"], r["arena"]
    return {
        "run": name, "model": r["model"], "task": r["task"], "trained": trained,
        "flash_bytes": r["flash_bytes"], "arena_minimal_bytes": a["minimal_bytes"], "arena_used_bytes": a["used_bytes"],
        "arena_head_bytes": a["head_bytes"], "arena_tail_bytes": a["tail_bytes"],
        "total_bytes": r["flash_bytes"] + a["minimal_bytes"], "ops": r["ops"], "op_count": r["op_count"],
        **p, "wall_time_s": r["wall_time_s"], "graph_rewrites": r.get("graph_rewrites"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, help="a folder of fine-tuned runs (each with checkpoint.pt)")
    ap.add_argument("--untrained", nargs="*", default=[], help="presets to convert with random weights")
    ap.add_argument("--art", type=Path, default=None, help="where artifacts go (default: a temp folder)")
    ap.add_argument("--test-limit", type=int, default=None, help="parity on the first N test sentences")
    ap.add_argument("--name", default="convert", help="bench/results/NAME.json")
    ap.add_argument("--append", action="store_true",
                    help="keep the rows already in bench/results/NAME.json (a row of the same run is replaced)")
    args = ap.parse_args()
    art = args.art or Path(tempfile.mkdtemp(prefix="embbert-bench-convert-"))

    jobs = []
    if args.runs:
        if not args.runs.is_dir():
            raise SystemExit(f"{args.runs} does not exist")
        jobs += [(d.name, d, True) for d in sorted(args.runs.iterdir())
                 if (d / "checkpoint.pt").exists() and (d / "metrics.json").exists()]
    for preset in args.untrained:
        jobs.append((f"{preset} (untrained)", make_untrained_run(preset, art / "runs" / preset), False))
    if not jobs:
        raise SystemExit("nothing to convert: give --runs with fine-tuned runs and/or --untrained PRESET ...")

    rows = []
    if args.append and (RESULTS / f"{args.name}.json").exists():
        new_names = {name for name, _, _ in jobs}
        rows = [r for r in json.loads((RESULTS / f"{args.name}.json").read_text())["rows"] if r["run"] not in new_names]
    for name, run, trained in jobs:
        print(f"converting {name} ...", file=sys.stderr, flush=True)
        rows.append(row(name, convert(run, art / name.split()[0], args.test_limit), trained))

    table = Table("run", "flash", "arena min", "total", "acc (a)", "acc (c)", "agree (c)", "cos (c)",
                  "agree (b)", "b=c", "max LSB", "s", title="embbert convert: int8 TFLite on TFLite-Micro")
    for r in rows:
        if "error" in r:
            table.add_row(r["run"], "[red]failed[/]", *[""] * 10)
            continue
        table.add_row(r["run"], f"{r['flash_bytes'] / 1e3:.0f} kB", f"{r['arena_minimal_bytes'] / 1e3:.0f} kB",
                      f"{r['total_bytes'] / 1e3:.0f} kB", f"{r['accuracy_float']:.4f}", f"{r['accuracy_micro']:.4f}",
                      f"{r['agreement_micro']:.3f}", f"{r['cosine_micro']:.4f}", f"{r['agreement_litert']:.3f}",
                      f"{r['bit_exact_litert_micro']:.0%}", str(r["max_lsb_litert_micro"]), f"{r['wall_time_s']:.0f}")
    console = Console(width=max(Console().width, 160))
    console.print(table)
    for r in rows:
        if "error" in r:
            console.print(f"{r['run']}: {r['error']}", highlight=False, soft_wrap=True)
    print(f"targets: flash <= {TARGET_FLASH / 1e3:.0f} kB, arena <= {TARGET_ARENA / 1e3:.0f} kB, "
          f"total <= {(TARGET_FLASH + TARGET_ARENA) / 1e3:.0f} kB (paper int8: {PAPER_INT8 / 1e3:.0f} kB)")
    print(f"wrote {write_result(args.name, rows, artifacts=str(art))}")


if __name__ == "__main__":
    main()
