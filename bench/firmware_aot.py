"""Firmware, phase 2, the aot backend on qemu-m4: bit-exactness against the host
TFLite-Micro interpreter, flash and RAM from the linker map, instructions per
inference and per MAC.

    python bench/firmware_aot.py ART_DIR [--sentences 200] [--tasks sms_spam rt_reviews]

ART_DIR is an `embbert convert` output (EmbBERT fine-tuned on sms_spam for the
acceptance figures). Two firmwares are built: the default (length-aware: only
the n real tokens are computed) and a full-length one (every input padded to
L, the graph the host interpreter runs). Both are compared with host
TFLite-Micro on the padded input; the length-aware one is the one shipped, so
its agreement is reported as measured. Writes bench/results/firmware_aot.json.
"""

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from common import write_result
from tokenizers import Tokenizer

from embbert.convert.aot.codegen import macs
from embbert.convert.aot.graph import read_graph
from embbert.convert.aot.host import HostModel, build_host
from embbert.convert.parity import artifact_micro_logits
from embbert.data import load_task
from embbert.device.build import CORE_RAM_BYTES, build_firmware
from embbert.device.qemu import QemuDevice
from embbert.tokenizer import encode


def agreement(got: list[list[int]], ref: list[list[int]]) -> dict:
    same = sum(g == r for g, r in zip(got, ref))
    argmax = sum(int(np.argmax(g) == np.argmax(r)) for g, r in zip(got, ref))
    lsb = max((max(abs(a - b) for a, b in zip(g, r)) for g, r in zip(got, ref)), default=0)
    return {"sentences": len(ref), "bit_identical": same, "argmax_agree": argmax, "max_lsb": lsb}


def exact_length(seqs: list[list[int]], n: int) -> list[int]:
    """[CLS] + real tokens of consecutive test sentences + [SEP], exactly n ids."""
    body = [t for s in seqs for t in s[1:-1]]
    return [seqs[0][0], *body[: n - 2], seqs[0][-1]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("art", type=Path)
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--tasks", nargs="+", default=["sms_spam", "rt_reviews"])
    args = parser.parse_args()
    art = args.art.resolve()  # PlatformIO builds in firmware/
    man = json.loads((art / "manifest.json").read_text())
    L = man["sequence_length"]
    tok = Tokenizer.from_file(str(art / "tokenizer.json"))
    graph = read_graph((art / "model.tflite").read_bytes())
    work = Path(tempfile.mkdtemp(prefix="embbert-aot-"))
    builds = {mode: build_firmware(art, "qemu-m4", backend="aot", out=work / mode, full_length=(mode == "full_length"))
              for mode in ("length_aware", "full_length")}
    b = builds["length_aware"]
    aot = man["aot"][b["aot"]["kernels"]]  # the plan `embbert convert` recorded for the board's kernels
    result = {
        "model": man["model"], "task": man["task"], "model_sha256": man["model_file"]["sha256"],
        "memory": {
            "flash_bytes": b["flash_bytes"], "ram_bytes": b["ram_bytes"],
            "model_weights_flash_bytes": aot["weights_bytes"], "tokenizer_flash_bytes": b["tokenizer_flash_bytes"],
            "code_and_rest_flash_bytes": b["flash_bytes"] - aot["weights_bytes"] - b["tokenizer_flash_bytes"],
            "arena_bytes": aot["arena_bytes"], "stack_bytes": b["stack_bytes"], "core_buffers_bytes_estimate": CORE_RAM_BYTES,
            "tflite_micro_arena_bytes": man["arena_bytes"],
            "limits": {"flash_bytes": 600 * 1024, "ram_bytes": 256 * 1024},
        },
        "parity": {}, "instructions": {},
    }
    texts = {t: [e.text for e in load_task(t, seed=0).test] for t in args.tasks}
    exe = build_host(art, work / "host")
    with HostModel(exe) as host:
        for task, ts in texts.items():
            sample = random.Random(task).sample(ts, min(args.sentences, len(ts)))
            seqs = encode(tok, sample, L)
            ref = artifact_micro_logits(art, seqs)
            row = {"host_aot_length_aware": agreement([host.infer(s) for s in seqs], ref)}
            for mode, build in builds.items():
                start = time.monotonic()
                with QemuDevice(build["elf"], "qemu-m4", timeout=300) as dev:
                    got = [dev.infer_ids(s)["logits"] for s in seqs]
                row[f"qemu_{mode}"] = agreement(got, ref) | {"seconds": round(time.monotonic() - start, 1)}
            result["parity"][task] = row
            print(task, row, flush=True)
    seqs = encode(tok, texts[args.tasks[0]][:400], L)
    for mode, build in builds.items():
        with QemuDevice(build["elf"], "qemu-m4", timeout=300) as dev:
            rows = {}
            for n in (16, 64, L):
                ids = exact_length(seqs, n)
                reply = dev.infer_ids(ids)
                again = dev.infer_ids(ids)
                computed = L if mode == "full_length" else n
                rows[str(n)] = {"instructions": reply["instructions"], "repeat": again["instructions"],
                                "macs": macs(graph, computed),
                                "instructions_per_mac": round(reply["instructions"] / macs(graph, computed), 3)}
            result["instructions"][mode] = rows
            print(mode, rows, flush=True)
    write_result("firmware_aot", result)


if __name__ == "__main__":
    main()
