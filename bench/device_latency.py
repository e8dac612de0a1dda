"""Instructions per inference of the aot backend on the emulated boards, per
sentence length and per op, reference kernels against ours, in one run.

    python bench/device_latency.py ART_DIR [--boards qemu-m4 qemu-m7] [--lengths 8 16 20 32 64 128 256]

ART_DIR is an `embbert convert` output. For each board and each kernels
folder (board.toml build.aot_kernels: "reference", TFLite-Micro's; "optimized",
ours) it builds the real firmware (`embbert build --backend aot`) and asks it
INFER_IDS on exactly n real tokens (consecutive sms_spam test sentences), two
runs each; the instructions are the firmware's own count (QEMU -icount:
instructions, never cycles). The per-op breakdown comes from the same
generated model built as a bare-metal profile program (convert/aot/profile.py):
instructions per op call, multiply-accumulates, instructions per MAC. Both
builds' logits must be identical at every length (the kernels are bit-exact).

Prints the tables, writes bench/results/device_latency.json and
bench/results/device_latency.png.
"""

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from common import RESULTS, write_result
from firmware_aot import exact_length
from rich.console import Console
from rich.table import Table
from tokenizers import Tokenizer

from embbert.convert.aot.codegen import KERNELS, Emitter, macs
from embbert.convert.aot.graph import read_graph
from embbert.convert.aot.profile import profile
from embbert.data import load_task
from embbert.device.build import build_firmware
from embbert.device.qemu import QemuDevice
from embbert.tokenizer import encode


def by_kind(ops: list[dict]) -> dict:
    """Per op kind: calls, instructions, MACs, instructions per call and per MAC."""
    agg = defaultdict(lambda: {"calls": 0, "instructions": 0, "macs": 0})
    for op in ops:
        a = agg[op["kind"]]
        a["calls"] += 1
        a["instructions"] += op["instructions"]
        a["macs"] += op["macs"]
    for a in agg.values():
        a["instructions_per_call"] = round(a["instructions"] / a["calls"])
        a["instructions_per_mac"] = round(a["instructions"] / a["macs"], 3) if a["macs"] else None
    return dict(sorted(agg.items(), key=lambda kv: -kv[1]["instructions"]))


def measure(art: Path, board: str, kernels: str, lengths: list[int], ids: dict[int, list[int]], work: Path) -> dict:
    fw = build_firmware(art, board, backend="aot", out=work / f"{board}-{kernels}", aot_kernels=kernels)
    rows = {}
    with QemuDevice(fw["elf"], board, timeout=300) as dev:
        for n in lengths:
            first, again = dev.infer_ids(ids[n]), dev.infer_ids(ids[n])
            rows[n] = {"instructions": first["instructions"], "repeat": again["instructions"], "logits": first["logits"]}
            print(f"{board} {kernels} n={n}: {first['instructions']:,} instructions", file=sys.stderr, flush=True)
    longest = max(lengths)
    prof = profile(art, board, lengths, ids[longest], work / f"profile-{board}-{kernels}", kernels)
    for n in lengths:
        rows[n]["profile_instructions"] = prof[n]["instructions"]  # + the profile's own counter reads
        rows[n]["profile_logits_match"] = prof[n]["logits"] == rows[n]["logits"] if ids[n] == ids[longest][:n] else None
        rows[n]["by_kind"] = by_kind(prof[n]["ops"])
    rows[longest]["ops"] = {str(o["op"]): o["instructions"] for o in prof[longest]["ops"]}  # kinds: result["op_kinds"]
    return {"arena_bytes": fw["aot"]["arena_bytes"], "flash_bytes": fw["flash_bytes"], "ram_bytes": fw["ram_bytes"],
            "lengths": rows}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for board, per in result["boards"].items():
        for kernels, m in per.items():
            ns = sorted(int(n) for n in m["lengths"])
            ax.plot(ns, [m["lengths"][n]["instructions"] / 1e6 for n in ns], marker="o",
                    linestyle="-" if kernels == "optimized" else "--", label=f"{board}, {kernels} kernels")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("real tokens n")
    ax.set_ylabel("instructions per inference (millions, QEMU -icount)")
    ax.set_title(f"EmbBERT aot backend ({result['model']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("art", type=Path, help="an `embbert convert` output folder")
    parser.add_argument("--boards", nargs="+", default=["qemu-m4", "qemu-m7"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[8, 16, 20, 32, 64, 128, 256])
    parser.add_argument("--model-note", default="", help="what the model is (untrained, fine-tuned on ...), for the JSON")
    args = parser.parse_args()
    art = args.art
    man = json.loads((art / "manifest.json").read_text())
    L = man["sequence_length"]
    lengths = sorted(n for n in args.lengths if 3 <= n <= L)
    tok = Tokenizer.from_file(str(art / "tokenizer.json"))
    seqs = encode(tok, [e.text for e in load_task("sms_spam", seed=0).test][:400], L)
    ids = {n: exact_length(seqs, n) for n in lengths}
    graph = read_graph((art / "model.tflite").read_bytes())
    generated = read_graph((art / "model.tflite").read_bytes())
    Emitter(generated)  # the ops as generated (attention chains fused, causal PADs folded): the profile's op indices
    work = Path(tempfile.mkdtemp(prefix="embbert-latency-"))
    result = {"model": man["model"], "model_note": args.model_note, "task": man["task"],
              "model_sha256": man["model_file"]["sha256"], "sequence_length": L,
              "macs": {n: macs(graph, n) for n in lengths}, "op_kinds": {str(op.index): op.kind for op in generated.ops},
              "boards": {}}
    for board in args.boards:
        result["boards"][board] = {k: measure(art, board, k, lengths, ids, work / "builds") for k in KERNELS}
    console = Console()
    summary = []
    for board, per in result["boards"].items():
        ref, opt = per["reference"], per["optimized"]
        table = Table(title=f"{board}: instructions per inference (QEMU -icount)")
        for col in ("n", "MACs", "reference", "optimized", "ratio", "opt. instr/MAC", "logits identical"):
            table.add_column(col, justify="right")
        for n in lengths:
            r, o = ref["lengths"][n], opt["lengths"][n]
            same = r["logits"] == o["logits"]
            ratio = r["instructions"] / o["instructions"]
            row = {"board": board, "n": n, "macs": result["macs"][n], "reference": r["instructions"],
                   "optimized": o["instructions"], "ratio": round(ratio, 2), "logits_identical": same,
                   "optimized_over_256": None}
            summary.append(row)
            table.add_row(str(n), f"{result['macs'][n]:,}", f"{r['instructions']:,}", f"{o['instructions']:,}",
                          f"{ratio:.2f}x", f"{o['instructions'] / result['macs'][n]:.2f}", str(same))
        console.print(table)
        longest = max(lengths)
        for kernels in KERNELS:
            kinds = per[kernels]["lengths"][longest]["by_kind"]
            t = Table(title=f"{board}, {kernels} kernels, n = {longest}: per op kind (profile build)")
            for col in ("op", "calls", "instructions", "per call", "MACs", "instr/MAC", "share"):
                t.add_column(col, justify="right")
            total = sum(a["instructions"] for a in kinds.values())
            for kind, a in kinds.items():
                t.add_row(kind, str(a["calls"]), f"{a['instructions']:,}", f"{a['instructions_per_call']:,}",
                          f"{a['macs']:,}", "" if a["instructions_per_mac"] is None else f"{a['instructions_per_mac']:.3f}",
                          f"{100 * a['instructions'] / total:.1f} %")
            console.print(t)
    for board in args.boards:
        rows = [s for s in summary if s["board"] == board]
        top = next((s for s in rows if s["n"] == max(lengths)), None)
        for s in rows:
            s["optimized_over_256"] = round(s["optimized"] / top["optimized"], 4) if top else None
    result["summary"] = summary
    path = write_result("device_latency", result)
    plot(result, RESULTS / "device_latency.png")
    print(f"wrote {path} and {RESULTS / 'device_latency.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
