"""MicroPython on qemu-m4 against the bare firmware, same artifact, same sentences:
memory (flash, RAM, GC heap, from the linker map and the ELF), logits (bit for
bit against the bare firmware and against host TFLite-Micro) and instructions
per classify (the model's share, the counter both firmwares report).

    python bench/micropython.py ART_DIR [--sentences N] [--task sms_spam]

ART_DIR: an `embbert convert` output (EmbBERT fine-tuned on sms_spam for the
acceptance figures). Both firmwares are the default build (aot backend, only
the real tokens computed). Prints a table; writes bench/results/micropython.json.
"""

import argparse
import json
import random
import statistics
import tempfile
from pathlib import Path

from common import write_result

from embbert.data import load_task
from embbert.device.build import build_firmware
from embbert.device.qemu import QemuDevice
from embbert.harness.reference import HostReference
from embbert.micropython.board import QemuMicroPython
from embbert.micropython.firmware import build_micropython


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("art", type=Path)
    parser.add_argument("--sentences", type=int, default=0, help="a seeded sample of the test split; 0: all of it")
    parser.add_argument("--task", default="sms_spam")
    args = parser.parse_args()
    man = json.loads((args.art / "manifest.json").read_text())
    work = Path(tempfile.mkdtemp(prefix="embbert-mpy-bench-"))
    bare = build_firmware(args.art, "qemu-m4", backend="aot", out=work / "bare")
    mpy = build_micropython(args.art, "qemu-m4", out=work / "micropython")
    data = load_task(args.task, seed=0)
    test = data.test if not args.sentences else random.Random(args.task).sample(data.test, args.sentences)
    texts, gold = [e.text for e in test], [e.label for e in test]
    ref = HostReference(args.art, man)
    with QemuDevice(bare["elf"], "qemu-m4", timeout=300) as dev:
        texts = [dev.fit(t) for t in texts]  # what both boards are sent, and the host classifies
        got_bare = [dev.classify(t) for t in texts]
    with QemuMicroPython(mpy["elf"], "qemu-m4", timeout=300) as board:
        got_mpy = [board.classify(t) for t in texts]
    host = [ref(t) for t in texts]
    ratios = [m["instructions"] / b["instructions"] for m, b in zip(got_mpy, got_bare)]
    rows = {
        "model": man["model"], "task": man["task"], "model_sha256": man["model_file"]["sha256"],
        "sentences": len(texts),
        "memory": {
            "micropython": {k: mpy[k] for k in ("flash_bytes", "ram_bytes", "gc_heap_bytes", "arena_bytes",
                                                "stack_bytes")},
            "bare": {k: bare[k] for k in ("flash_bytes", "ram_bytes", "stack_bytes")} | {
                "arena_bytes": bare["aot"]["arena_bytes"]},
            "limits": {"flash_bytes": 1024 * 1024, "ram_bytes": 256 * 1024, "gc_heap_bytes_at_least": 64 * 1024},
        },
        "logits": {
            "micropython_equals_bare": sum(m["logits"] == b["logits"] for m, b in zip(got_mpy, got_bare)),
            "micropython_equals_host_tflite_micro": sum(m["logits"] == h["host_logits"] for m, h in zip(got_mpy, host)),
            "bare_equals_host_tflite_micro": sum(b["logits"] == h["host_logits"] for b, h in zip(got_bare, host)),
            "labels_equal_bare": sum(m["label"] == b["label"] for m, b in zip(got_mpy, got_bare)),
        },
        "accuracy": {
            "micropython": sum(m["label"] == g for m, g in zip(got_mpy, gold)) / len(gold),
            "bare": sum(b["label"] == g for b, g in zip(got_bare, gold)) / len(gold),
            "host_int8": sum(h["host_label"] == g for h, g in zip(host, gold)) / len(gold),
        },
        "instructions_per_classify": {
            "micropython_mean": round(statistics.mean(m["instructions"] for m in got_mpy)),
            "bare_mean": round(statistics.mean(b["instructions"] for b in got_bare)),
            "ratio_mean": round(statistics.mean(ratios), 5), "ratio_min": round(min(ratios), 5),
            "ratio_max": round(max(ratios), 5),
            "tokenize_micropython_mean": round(statistics.mean(m["tokenize_instructions"] for m in got_mpy)),
            "tokenize_bare_mean": round(statistics.mean(b["tokenize_instructions"] for b in got_bare)),
        },
    }
    print(f"{'':32}{'MicroPython':>14}{'bare':>14}")
    for key in ("flash_bytes", "ram_bytes", "arena_bytes"):
        print(f"{key:32}{rows['memory']['micropython'][key]:>14,}{rows['memory']['bare'][key]:>14,}")
    print(f"{'gc_heap_bytes':32}{mpy['gc_heap_bytes']:>14,}{'-':>14}")
    ipc = rows["instructions_per_classify"]
    print(f"{'instructions per classify (mean)':32}{ipc['micropython_mean']:>14,}{ipc['bare_mean']:>14,}")
    print(f"{'ratio MicroPython / bare':32}{ipc['ratio_mean']:>14} (min {ipc['ratio_min']}, max {ipc['ratio_max']})")
    for key, value in rows["accuracy"].items():
        print(f"{'accuracy ' + key:32}{value:>14.4%}")
    for key, value in rows["logits"].items():
        print(f"{key:40}{value:>6} / {len(texts)}")
    print(write_result("micropython", rows))


if __name__ == "__main__":
    main()
