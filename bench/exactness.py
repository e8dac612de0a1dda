"""Issue 15's exactness target: the default (length-aware) aot firmware is
bit-identical to host TFLite-Micro on every sentence of each task's test split.

    python bench/exactness.py RUN_DIR [RUN_DIR ...] [--work DIR] [--before ART_ROOT] [--limit N]

For each fine-tuned run: `embbert convert` (into WORK/<run name>/art, kept and
reused), `embbert deploy` on qemu-m4 in the default mode (only the real tokens
computed), `embbert eval` of the run's task over its whole test split (resumable,
WORK/<run name>/eval), `embbert stop`. Per run: sentences, bit_exact_fraction
against host TFLite-Micro at the full length L, device / host int8 / float
accuracy, the conversion's float-vs-int8 parity, and the int8 scale of each
layer's score map (the SOFTMAX input). --before ART_ROOT adds the same parity
and scales from ART_ROOT/<run name>/ (an artifact of an earlier converter, e.g.
the -32 bias of graph version 1), read only. Prints a table and writes
bench/results/exactness.json (after each run: a long bench keeps what it measured).
"""

import argparse
import json
import sys
from pathlib import Path

from common import embbert, write_result

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def score_scales(art: Path) -> list[float]:
    """The int8 scale of every SOFTMAX input, in graph order."""
    from embbert.convert.tflite_model import TfliteModel as _Model

    mm = _Model((art / "model.tflite").read_bytes())
    return [float(mm.tensor(int(op.inputs[0])).quantization.scale[0])
            for op in mm.g.operators if mm.kind(op) == "SOFTMAX"]


def parity(art: Path) -> dict:
    p = json.loads((art / "manifest.json").read_text())["parity"]
    return {k: p[k] for k in ("test_sentences", "accuracy_float", "accuracy_micro", "agreement_micro", "cosine_micro")}


def measure(run: Path, work: Path, limit: int | None) -> dict:
    task = json.loads((run / "run.json").read_text())["task"]
    art = work / run.name / "art"
    if not (art / "manifest.json").is_file():
        embbert("convert", run, "--out", art, "--force")
    embbert("deploy", art, "--board", "qemu-m4")
    try:
        summary = embbert("eval", art, "--board", "qemu-m4", "--task", task, "--out", work / run.name / "eval",
                          *(["--limit", limit] if limit else []))
    finally:
        embbert("stop", art, "--board", "qemu-m4")
    return {"task": task, "run": str(run), "artifact": str(art), "full_length": summary["full_length"],
            **{k: summary[k] for k in ("sentences", "failed", "bit_exact_fraction", "accuracy_device",
                                       "accuracy_host_int8", "accuracy_float", "agreement_device_vs_float")},
            "latency_median": summary["latency"]["median"], "score_scales": score_scales(art),
            "convert_parity": parity(art)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="fine-tuned run directories (read only)")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-exactness"), help="artifacts and evals")
    parser.add_argument("--before", type=Path, default=None, help="earlier artifacts, one folder per run name")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test sentences of each task")
    args = parser.parse_args()
    from embbert.convert import GRAPH_VERSION

    rows = []
    for run in args.runs:
        print(f"exactness: {run.name}", file=sys.stderr)
        row = measure(run.resolve(), args.work.resolve(), args.limit)
        before = args.before / run.name if args.before else None
        if before is not None and (before / "manifest.json").is_file():
            row["before"] = {"artifact": str(before), "score_scales": score_scales(before), "convert_parity": parity(before)}
        rows.append(row)
        path = write_result("exactness", rows, board="qemu-m4", graph_version=GRAPH_VERSION, limit=args.limit)

    print(f"{'run':<34} {'n':>5} {'bit-exact':>9} {'acc dev':>8} {'acc host':>8} {'acc float':>9} "
          f"{'agree float':>11} {'agree before':>12}  score scales (before -> now)")
    for r in rows:
        b = r.get("before")
        scales = " ".join(f"{s0:.3f}->{s1:.3f}" for s0, s1 in zip(b["score_scales"], r["score_scales"])) if b else \
            " ".join(f"{s:.3f}" for s in r["score_scales"])
        agree_before = f"{b['convert_parity']['agreement_micro']:.4f}" if b else "-"
        print(f"{Path(r['run']).name:<34} {r['sentences']:>5} {r['bit_exact_fraction']:>9.4f} "
              f"{r['accuracy_device']:>8.4f} {r['accuracy_host_int8']:>8.4f} {r['accuracy_float']:>9.4f} "
              f"{r['convert_parity']['agreement_micro']:>11.4f} {agree_before:>12}  {scales}")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
