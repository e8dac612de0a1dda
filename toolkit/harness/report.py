"""OUT/report.md with three PNGs, from summary.json and results.jsonl:
latency against token count, the confusion matrix, memory beside the paper."""

from __future__ import annotations

import json
from pathlib import Path


def _fmt(value, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.2%}" if pct else f"{value:,.0f}"


def _plots(out: Path, summary: dict, rows: list[dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    ok = [r for r in rows if r["status"] == "ok"]
    unit = summary.get("latency", {}).get("unit", "counter")
    if ok:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter([r["n_tokens"] for r in ok], [r["counter"] for r in ok], s=8, alpha=0.6)
        fit = summary.get("latency_per_token", {})
        if "slope" in fit:
            xs = [min(r["n_tokens"] for r in ok), max(r["n_tokens"] for r in ok)]
            ax.plot(xs, [fit["intercept"] + fit["slope"] * x for x in xs], color="C1",
                    label=f"{fit['slope']:,.0f} {unit}/token")
            ax.legend()
        ax.set_xlabel("tokens ([CLS] and [SEP] included)")
        ax.set_ylabel(f"{unit} per inference")
        ax.set_title(f"{summary['model']} on {summary['board']}: latency")
        fig.tight_layout()
        fig.savefig(out / "latency_vs_tokens.png", dpi=110)
        plt.close(fig)
        made.append("latency_vs_tokens.png")

        labels = summary["confusion"]["labels"]
        matrix = summary["confusion"]["rows_true_cols_device"]
        fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(labels), 1.0 + 0.6 * len(labels)))
        ax.imshow(matrix, cmap="Blues")
        for i, row in enumerate(matrix):
            for j, n in enumerate(row):
                ax.text(j, i, str(n), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("device label")
        ax.set_ylabel("true label")
        fig.tight_layout()
        fig.savefig(out / "confusion.png", dpi=110)
        plt.close(fig)
        made.append("confusion.png")

    memory = summary["memory"]
    bars = [("model.tflite", memory["model_tflite_bytes"]), ("TFLM arena", memory["tflite_micro_arena_bytes"]),
            ("board flash", memory["flash_bytes"]), ("board RAM", memory["ram_bytes"]),
            ("paper int8 total", memory["paper_int8_total_bytes"])]
    bars = [(name, v) for name, v in bars if v]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh([n for n, _ in bars], [v / 1e3 for _, v in bars],
            color=["C0", "C0", "C2", "C2", "C3"][:len(bars)])
    ax.set_xlabel("kB")
    ax.set_title("memory")
    fig.tight_layout()
    fig.savefig(out / "memory.png", dpi=110)
    plt.close(fig)
    made.append("memory.png")
    return made


def write_report(out: Path, summary: dict) -> None:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    images = _plots(out, summary, rows)
    lat = summary.get("latency") or {}
    per_token = summary.get("latency_per_token") or {}
    tp = summary.get("throughput") or {}
    link = summary["link"]
    mem = summary["memory"]
    mode = {True: "full length (padded to L)", False: "real tokens only"}.get(summary["full_length"], "unknown")
    lines = [
        f"# {summary['model']} on {summary['board']} ({summary['backend']} backend, {mode})",
        "",
        f"Task {summary['task']}: {summary['sentences']} sentences, {summary['ok']} answered, "
        f"{summary['failed']} failed. Wall time {summary['wall_time_s']} s over {len(summary['sessions'])} session(s).",
        "",
        "| | accuracy |",
        "|---|---|",
        f"| float (host, model_float.onnx) | {_fmt(summary['accuracy_float'], True)} |",
        f"| int8 (host TFLite-Micro) | {_fmt(summary['accuracy_host_int8'], True)} |",
        f"| int8 (device) | {_fmt(summary['accuracy_device'], True)} |",
        "",
        f"Device logits bit-identical to host TFLite-Micro: {_fmt(summary['bit_exact_fraction'], True)}; "
        f"argmax agreement with float: {_fmt(summary['agreement_device_vs_float'], True)}; "
        f"token counts equal to the host tokenizer's: {_fmt(summary['token_count_match_fraction'], True)}.",
        "",
        f"## Latency ({lat.get('unit', '-')} per inference)",
        "",
        "| median | p90 | p99 | max | per token (median) | per token (fit) |",
        "|---|---|---|---|---|---|",
        f"| {_fmt(lat.get('median'))} | {_fmt(lat.get('p90'))} | {_fmt(lat.get('p99'))} | {_fmt(lat.get('max'))} "
        f"| {_fmt(per_token.get('median'))} | {_fmt(per_token.get('slope'))} |",
        "",
    ]
    if tp:
        share = tp.get("serial_overhead_share")
        lines += [f"Throughput including serial time: {tp['sentences_per_s']:.2f} sentences/s "
                  f"(median round trip {tp['round_trip_s_median'] * 1e3:.1f} ms). "
                  + (f"Serial time is {share:.1%} of on-device time (measured PING cost of this link)."
                     if share is not None else "")
                  + (f" Retries and resets took {tp['retry_and_reset_s_total']:.1f} s of link time."
                     if tp.get("retry_and_reset_s_total") else ""), ""]
    faults = link.get("fault_injection")
    lines += [f"Link: {link['retries']} retries, {link['hard_resets']} hard resets"
              + (f"; fault injection at {faults['rate']:.1%}: {faults['corrupted_bytes']} bytes corrupted, "
                 f"{faults['dropped_bytes']} dropped." if faults else "."), ""]
    lines += ["## Memory", "",
              "| model.tflite | TFLM arena (host) | board arena | firmware flash | firmware RAM | paper int8 total |",
              "|---|---|---|---|---|---|",
              f"| {_fmt(mem['model_tflite_bytes'])} B | {_fmt(mem['tflite_micro_arena_bytes'])} B "
              f"| {_fmt(mem['arena_bytes'])} B | {_fmt(mem['flash_bytes'])} B | {_fmt(mem['ram_bytes'])} B "
              f"| {_fmt(mem['paper_int8_total_bytes'])} B |", ""]
    if summary["failures"]:
        lines += (["## Failures", "", f"{summary['failed']} sentence(s) failed; each counts as wrong in the device "
                   "accuracy." + (" The first 50:" if summary["failed"] > 50 else ""), ""]
                  + [f"- sentence {f['index']}: " + (f"device error {f['error_code']}: " if f.get("error_code") else "")
                     + f["error"] for f in summary["failures"]] + [""])
    lines += [f"![{name}]({name})" for name in images]
    (out / "report.md").write_text("\n".join(lines) + "\n")
