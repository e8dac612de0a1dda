"""summary.json from results.jsonl: accuracy on the board beside the host's
int8 and float, bit-exactness, latency in the board's own unit, serial
overhead, link faults, memory. Everything here is computed from what was
recorded; nothing is estimated that was not measured."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from embbert.device.boards import Board

PAPER_INT8_BYTES = 781_000  # the paper's EmbBERT total after 8-bit quantization
SESSIONS = "sessions.jsonl"


def _share(flags) -> float | None:
    flags = list(flags)
    return round(float(np.mean(flags)), 6) if flags else None


def _percentiles(values: np.ndarray, scale: float = 1.0) -> dict:
    v = values * scale
    return {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)), "p99": float(np.percentile(v, 99)),
            "max": float(v.max()), "mean": float(v.mean())}


def _latency(ok: list[dict], unit: str, board: Board) -> dict:
    counter = np.array([r["counter"] for r in ok], float)
    tokens = np.array([r["n_tokens"] for r in ok], float)
    latency = {"unit": unit, **_percentiles(counter)}
    cpu_hz = board.counter.cpu_hz
    if unit == "cycles" and cpu_hz:
        latency["us"] = _percentiles(counter, 1e6 / cpu_hz)
    per_token = {"median": float(np.median(counter / tokens))}
    if len(set(tokens.tolist())) > 1:
        slope, intercept = np.polyfit(tokens, counter, 1)
        per_token.update(slope=float(slope), intercept=float(intercept))
    return {"latency": latency, "latency_per_token": per_token}


def _serial(ok: list[dict], rows: list[dict], cost: dict) -> dict:
    """Time on the link and on the board. ``round_trip_s`` is the exchange that
    was answered; the retries, PINGs and resets before it (``link_s``) are
    link time, so they never count as the board's."""
    round_trip = np.array([r["round_trip_s"] for r in ok], float)
    retry_s = float(sum(r.get("link_s", 0.0) for r in rows))
    out = {"sentences_per_s": float(len(rows) / (round_trip.sum() + retry_s)),
           "round_trip_s_median": float(np.median(round_trip)), "round_trip_s_total": float(round_trip.sum()),
           "retry_and_reset_s_total": retry_s, "link_cost": cost}
    if cost.get("per_byte_s") is None:
        return out
    serial = np.array([cost["fixed_s"] + cost["per_byte_s"] * r["wire_bytes"] for r in ok])
    serial = np.minimum(serial, round_trip)
    on_device = round_trip - serial
    out.update(serial_s_total=float(serial.sum()), on_device_s_total=float(on_device.sum()),
               serial_overhead_share=float(serial.sum() / max(on_device.sum(), 1e-9)),
               link_s_total=float(serial.sum()) + retry_s)
    return out


def confusion(rows: list[dict], labels: list[str]) -> list[list[int]]:
    index = {name: i for i, name in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for r in rows:
        matrix[index[r["label"]]][index[r["device_label"]]] += 1
    return matrix


def summarize(results: dict[int, dict], manifest: dict, board: Board, info: dict, cost: dict, unit: str,
              session: dict, out: Path, has_float: bool) -> dict:
    rows = [results[i] for i in sorted(results)]
    ok = [r for r in rows if r["status"] == "ok"]
    sessions = _sessions(out, session)
    summary = {
        "model": manifest["model"], "task": manifest["task"], "board": board.name, "backend": info.get("backend"),
        "full_length": info.get("full_length"), "firmware": info.get("firmware"),
        "model_sha256": manifest["model_file"]["sha256"],
        "sentences": len(rows), "ok": len(ok), "failed": len(rows) - len(ok),
        "failures": [{"index": r["index"], "error_code": r.get("error_code"), "error": r["error"]}
                     for r in rows if r["status"] != "ok"][:50],
        "accuracy_device": _share(r["status"] == "ok" and r["correct"] for r in rows),  # a failed sentence is wrong
        "accuracy_host_int8": _share(r["host_label"] == r["label"] for r in rows),
        "accuracy_float": _share(r["float_label"] == r["label"] for r in rows) if has_float else None,
        "bit_exact_fraction": _share(r["bit_exact"] for r in ok),
        "agreement_device_vs_host_int8": _share(r["device_label"] == r["host_label"] for r in ok),
        "agreement_device_vs_float": _share(r["device_label"] == r["float_label"] for r in ok) if has_float else None,
        "token_count_match_fraction": _share(r["n_tokens"] == r["host_n_tokens"] for r in ok),
        **(_latency(ok, unit, board) if ok else {}),
        "throughput": _serial(ok, rows, cost) if ok else None,
        "link": {"retries": sum(r["retries"] for r in rows), "hard_resets": sum(r["resets"] for r in rows),
                 "fault_injection": _faults(sessions)},
        "memory": {"flash_bytes": info.get("flash_bytes"), "ram_bytes": info.get("ram_bytes"),
                   "arena_bytes": info.get("arena_bytes"), "model_tflite_bytes": manifest["flash_bytes"],
                   "tflite_micro_arena_bytes": manifest["arena_bytes"], "paper_int8_total_bytes": PAPER_INT8_BYTES},
        "confusion": {"labels": manifest["labels"], "rows_true_cols_device": confusion(ok, manifest["labels"])},
        "wall_time_s": round(sum(s["seconds"] for s in sessions), 1),
        "sessions": sessions,
    }
    return summary


def _faults(sessions: list[dict]) -> dict | None:
    """Bytes the fault injector garbled, over every session of the run (a resumed one too)."""
    counts = [s["faults"] for s in sessions if s.get("faults")]
    if not counts:
        return None
    return {"rate": counts[-1]["rate"], "sessions": len(counts),
            **{k: sum(c[k] for c in counts) for k in ("corrupted_bytes", "dropped_bytes")}}


def _sessions(out: Path, session: dict) -> list[dict]:
    path = out / SESSIONS
    with open(path, "a") as f:
        f.write(json.dumps(session) + "\n")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_summary(out: Path, summary: dict) -> None:
    from embbert.harness.report import write_report

    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1) + "\n")
    os.replace(tmp, out / "summary.json")
    write_report(out, summary)
