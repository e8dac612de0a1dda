"""One model on every QEMU board, side by side: flash and RAM (`embbert build
--json`, read from the linker map), instructions per inference (INFER_IDS under
-icount, SysTick converted with the board's factor) and logits bit-exact with
host TFLite-Micro.

    python bench/boards.py [--art ART_DIR] [--boards qemu-m4 qemu-stm32f405] [--sentences 20]

Without --art the model is the one `pytest device_tests` makes (a tiny EmbBERT,
L 64, device_tests/conftest.py). Each board gets a full-length build (every
input padded to L, as the host interpreter runs it). The instruction count
still varies with the data (kernels branch on values), so the median, the
least and the most over the sentences are given. Writes bench/results/boards.json.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import embbert, write_result
from tokenizers import Tokenizer

from embbert.convert.parity import artifact_micro_logits
from embbert.data import load_task
from embbert.device.boards import board_names, load_board
from embbert.device.qemu import QemuDevice
from embbert.tokenizer import encode

ROOT = Path(__file__).resolve().parent.parent


def smoke_artifact(work: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from device_tests.conftest import make_smoke_artifact

    return make_smoke_artifact(work / "smoke", "qemu-m4")


def measure(art: Path, board: str, seqs: list[list[int]], want: list[list[int]], work: Path) -> dict:
    built = embbert("build", art, "--board", board, "--full-length", "--out", work / board)
    with QemuDevice(built["elf"], board, timeout=120) as dev:
        got = [dev.infer_ids(s) for s in seqs]
    counts = [g["instructions"] for g in got]
    return {"board": board, "flash_bytes": built["flash_bytes"], "ram_bytes": built["ram_bytes"],
            "arena_bytes": built["aot"]["arena_bytes"], "instructions_per_inference": round(statistics.median(counts)),
            "instructions_min": min(counts), "instructions_max": max(counts),
            "bit_exact": f"{sum(g['logits'] == w for g, w in zip(got, want))}/{len(seqs)}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--art", type=Path, help="an `embbert convert` output [the device_tests model]")
    parser.add_argument("--boards", nargs="+", default=[n for n in board_names() if load_board(n).kind == "qemu"])
    parser.add_argument("--sentences", type=int, default=20, help="sms_spam test sentences per board [20]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.monotonic()
        art = args.art or smoke_artifact(work)
        L = json.loads((art / "manifest.json").read_text())["sequence_length"]
        texts = [e.text for e in load_task("sms_spam", seed=0).test[: args.sentences]]
        seqs = encode(Tokenizer.from_file(str(art / "tokenizer.json")), texts, L)
        want = artifact_micro_logits(art, seqs)
        rows = []
        for board in args.boards:
            print(f"boards: {board} ...", file=sys.stderr, flush=True)
            rows.append(measure(art, board, seqs, want, work))
        model = "device_tests smoke model (EmbBERT L 64, d 32, 2 layers)" if args.art is None else str(art)
        path = write_result("boards", rows, model=model, sequence_length=L, sentences=len(seqs),
                            seconds=round(time.monotonic() - started, 1))
    print(f"{'board':<16} {'flash B':>9} {'RAM B':>8} {'arena B':>8} {'instructions (median)':>22} "
          f"{'min..max':>21} {'bit-exact':>9}")
    for r in rows:
        print(f"{r['board']:<16} {r['flash_bytes']:>9,} {r['ram_bytes']:>8,} {r['arena_bytes']:>8,} "
              f"{r['instructions_per_inference']:>22,} {r['instructions_min']:>10,}..{r['instructions_max']:<10,} "
              f"{r['bit_exact']:>9}")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
