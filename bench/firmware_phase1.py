"""Firmware, phase 1: build time and size on qemu-m4, tokenizer parity on the
host build and on QEMU over the serial protocol, protocol round trip.

    python bench/firmware_phase1.py [--qemu-sample N]   # N per task on QEMU; default all

Prints a summary and writes bench/results/firmware_phase1.json.
"""

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import write_result
from embbert.data import TASKS, load_task
from embbert.device.build import build_firmware
from embbert.device.host_tokenizer import build_host_tokenizer
from embbert.device.qemu import QemuDevice
from embbert.tokenizer import default_tokenizer, encode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--qemu-sample", type=int, default=None, help="test sentences per task on QEMU (default all)")
    args = parser.parse_args()
    tok, tok_path = default_tokenizer()
    work = Path(tempfile.mkdtemp(prefix="embbert-fw-"))
    (work / "art").mkdir()
    shutil.copy(tok_path, work / "art" / "tokenizer.json")
    result = {"builds": {}, "host_parity": {}, "qemu_parity": {}}
    for board in ("qemu-m4", "qemu-m7"):
        start = time.monotonic()
        report = build_firmware(work / "art", board, out=work / board)
        result["builds"][board] = {k: report[k] for k in ("flash_bytes", "ram_bytes", "tokenizer_flash_bytes")} | {
            "seconds_clean_core": round(time.monotonic() - start, 2)}
    host = build_host_tokenizer(tok_path, work / "host")
    texts = {task: [e.text for e in load_task(task).test] for task in TASKS}
    for task, ts in texts.items():
        same = sum(a == b for a, b in zip(host.encode(ts, 256), encode(tok, ts, 256)))
        result["host_parity"][task] = {"identical": same, "sentences": len(ts)}
    with QemuDevice(work / "qemu-m4" / "firmware.elf", "qemu-m4") as dev:
        rtts = []
        for _ in range(200):
            t = time.perf_counter()
            dev.ping(b"x" * 16)
            rtts.append((time.perf_counter() - t) * 1e3)
        result["ping_round_trip_ms"] = {"median": round(statistics.median(rtts), 3), "p90": round(sorted(rtts)[179], 3)}
        instructions = []
        for task, ts in texts.items():
            sample = ts if args.qemu_sample is None else random.Random(task).sample(ts, min(args.qemu_sample, len(ts)))
            start = time.monotonic()
            replies = [dev.tokenize(t) for t in sample]
            same = sum(r["ids"] == e for r, e in zip(replies, encode(tok, sample, 256)))
            instructions += [r["instructions"] for r in replies]
            result["qemu_parity"][task] = {"identical": same, "sentences": len(sample),
                                           "seconds": round(time.monotonic() - start, 1)}
        result["tokenize_instructions"] = {"median": statistics.median(instructions), "max": max(instructions)}
    for name, value in result.items():
        print(name, value)
    write_result("firmware_phase1", result)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
