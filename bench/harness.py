"""The harness on qemu-m4, issue 7's acceptance: `embbert eval` of a model
over a task's whole test split, in four runs:

  full_length   firmware built --full-length (the graph host TFLite-Micro runs)
  length_aware  the default firmware (only the real tokens are computed)
  lossy_link    length_aware again, with 1 % of the link's bytes corrupted or dropped
  killed_twice  length_aware again, SIGKILLed twice mid-run, then resumed

    python bench/harness.py ART_DIR [--task sms_spam] [--work DIR] [--limit N]

--limit N evaluates only the first N test sentences in every run (for a
machine too busy for the whole split; the result file records it).
Time is split as the eval summary splits it: on-device (the answered
exchange less the measured serial cost), serial, and the retries and hard
resets before an answer (link time, never the board's).

Each run's folder under --work is an ordinary eval folder (results.jsonl,
summary.json, report.md); a finished one is reused (eval is resumable).
Prints a table and writes bench/results/harness.json.
"""

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import embbert, write_result

KEYS = ("device_label", "device_logits", "n_tokens", "host_logits")


def rows(out: Path) -> dict[int, dict]:
    return {r["index"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}


LIMIT: list[str] = []  # ["--limit", "N"] when given


def eval_cmd(art: Path, task: str, out: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "embbert", "eval", str(art), "--board", "qemu-m4", "--task", task,
            "--out", str(out), *LIMIT, *extra]


def killed_twice(art: Path, task: str, out: Path, total: int) -> dict:
    kills = []
    record = out / "killed_after.json"  # kept beside the run, so a reused folder still tells its kills
    if not (out / "summary.json").is_file():
        for share in (0.2, 0.6):
            proc = subprocess.Popen(eval_cmd(art, task, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            target = int(total * share)
            while proc.poll() is None:
                path = out / "results.jsonl"
                if path.is_file() and path.read_bytes().count(b"\n") >= target:
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.2)
            proc.wait()
            kills.append((out / "results.jsonl").read_bytes().count(b"\n"))
        record.write_text(json.dumps(kills))
    elif record.is_file():
        kills = json.loads(record.read_text())
    summary = embbert(*eval_cmd(art, task, out)[3:])
    indices = [json.loads(line)["index"] for line in (out / "results.jsonl").read_text().splitlines()]
    return {"summary": summary, "killed_after": kills, "lines": len(indices),
            "each_once": sorted(indices) == list(range(total))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("art", type=Path)
    parser.add_argument("--task", default="sms_spam")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-harness"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N test sentences in every run")
    args = parser.parse_args()
    if args.limit:
        LIMIT.extend(["--limit", str(args.limit)])
    art, work = args.art.resolve(), args.work
    result = {}
    embbert("deploy", art, "--board", "qemu-m4", "--full-length")
    result["full_length"] = {"summary": embbert(*eval_cmd(art, args.task, work / "full_length")[3:])}
    embbert("deploy", art, "--board", "qemu-m4")
    result["length_aware"] = {"summary": embbert(*eval_cmd(art, args.task, work / "length_aware")[3:])}
    result["lossy_link"] = {"summary": embbert(*eval_cmd(art, args.task, work / "lossy_link", "--inject-faults",
                                                        "0.01")[3:])}
    total = result["length_aware"]["summary"]["sentences"]
    result["killed_twice"] = killed_twice(art, args.task, work / "killed_twice", total)
    embbert("stop", art, "--board", "qemu-m4")

    reference = rows(work / "length_aware")
    for name in ("lossy_link", "killed_twice"):
        got = rows(work / name)
        result[name]["identical_to_length_aware"] = (
            got.keys() == reference.keys() and all(all(got[i][k] == reference[i][k] for k in KEYS) for i in got))
    full = rows(work / "full_length")
    result["length_aware"]["bit_identical_to_full_length"] = sum(
        full[i]["device_logits"] == reference[i]["device_logits"] for i in reference) / len(reference)

    print(f"{'run':<14} {'n':>5} {'acc dev':>8} {'acc host':>8} {'acc float':>9} {'bit-exact':>9} "
          f"{'median instr':>13} {'p99 instr':>13} {'retries':>7} {'device s':>9} {'serial s':>9} "
          f"{'serial/dev':>10} {'retry s':>8} {'wall s':>7}")
    table = {}
    for name, r in result.items():
        s = r["summary"]
        tp = s["throughput"] or {}
        table[name] = {k: s[k] for k in ("sentences", "failed", "accuracy_device", "accuracy_host_int8", "accuracy_float",
                                         "bit_exact_fraction", "agreement_device_vs_float", "full_length", "latency",
                                         "latency_per_token", "throughput", "link", "memory", "wall_time_s")}
        table[name].update({k: v for k, v in r.items() if k != "summary"})
        print(f"{name:<14} {s['sentences']:>5} {s['accuracy_device']:>8.4f} {s['accuracy_host_int8']:>8.4f} "
              f"{s['accuracy_float']:>9.4f} {s['bit_exact_fraction']:>9.4f} {s['latency']['median']:>13,.0f} "
              f"{s['latency']['p99']:>13,.0f} {s['link']['retries']:>7} {tp.get('on_device_s_total', 0):>9.1f} "
              f"{tp.get('serial_s_total', 0):>9.1f} {tp.get('serial_overhead_share', 0):>10.4f} "
              f"{tp.get('retry_and_reset_s_total', 0):>8.1f} {s['wall_time_s']:>7.0f}")
    for name in ("lossy_link", "killed_twice"):
        print(f"{name}: results identical to length_aware: {result[name]['identical_to_length_aware']}")
    print(f"killed_twice: killed after {result['killed_twice']['killed_after']} lines; every sentence exactly once: "
          f"{result['killed_twice']['each_once']}")
    print(f"length_aware logits bit-identical to full_length: {result['length_aware']['bit_identical_to_full_length']:.4f}")
    path = write_result("harness", table, artifact=str(art), task=args.task, limit=args.limit)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
