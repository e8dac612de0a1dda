"""The stack the aot firmware really uses on the emulated boards, against what the board reserves.

    python bench/firmware_stack.py ART_DIR [--boards qemu-m4 qemu-stm32f405]

For each board: builds the firmware (`embbert build --backend aot`, the board's kernels), asks it
INFO, INFER_IDS at 8 to L real tokens, once at L padded, and a CLASSIFY, then reads the stack region
through QEMU's monitor (pmemsave). The region is NOLOAD RAM, zero when QEMU starts, so the deepest
non-zero word is the high-water mark (a lower bound only if the deepest frame wrote zeros alone).
RAM (linker map) and the arena come from the build. Prints a table; writes
bench/results/firmware_stack.json.
"""

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_result
from firmware_aot import exact_length
from rich.console import Console
from rich.table import Table
from tokenizers import Tokenizer

from embbert.data import load_task
from embbert.device.boards import load_board
from embbert.device.build import build_firmware
from embbert.device.qemu import QemuDevice, free_port
from embbert.tokenizer import encode


def symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return {parts[2]: int(parts[0], 16) for parts in map(str.split, out.splitlines()) if len(parts) == 3}


def deepest_stack_use(elf: Path, board_name: str, inputs: list[list[int]], text: str, work: Path) -> int:
    """Bytes of the stack written at least once while the firmware served `inputs` and `text`."""
    sym = symbols(elf)
    top, size = sym["__stack_top__"], sym["__stack_size__"]
    board = load_board(board_name)
    monitor = free_port()
    command = [f"tcp:127.0.0.1:{monitor},server=on,wait=off" if prev == "-monitor" else part
               for prev, part in zip(["", *board.emulator.command], board.emulator.command)]
    board = board.model_copy(update={"emulator": board.emulator.model_copy(update={"command": command})})
    dump = work / f"stack-{board_name}.bin"
    with QemuDevice(elf, board, timeout=300) as dev:
        dev.info()
        for ids in inputs:
            dev.infer_ids(ids)
        dev.classify(text)
        with socket.create_connection(("127.0.0.1", monitor)) as m:
            m.sendall(f'pmemsave {top - size} {size} "{dump}"\n'.encode())
            for _ in range(100):  # the monitor writes the file, then answers
                if dump.is_file() and dump.stat().st_size == size:
                    break
                time.sleep(0.1)
    data = dump.read_bytes()
    return next((size - i for i in range(0, size, 4) if data[i:i + 4] != b"\0\0\0\0"), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("art", type=Path, help="an `embbert convert` output folder")
    parser.add_argument("--boards", nargs="+", default=["qemu-m4", "qemu-stm32f405"])
    args = parser.parse_args()
    tok = Tokenizer.from_file(str(args.art / "tokenizer.json"))
    texts = [e.text for e in load_task("sms_spam", seed=0).test]
    work = Path(tempfile.mkdtemp(prefix="embbert-stack-"))
    rows = []
    for name in args.boards:
        print(f"{name}: building ...", file=sys.stderr, flush=True)
        fw = build_firmware(args.art, name, backend="aot", out=work / name)
        L = fw["max_len"]
        seqs = encode(tok, texts[:400], L)
        inputs = [exact_length(seqs, n) for n in (8, 32, 128, L) if n <= L] + [seqs[0] + [0] * (L - len(seqs[0]))]
        used = deepest_stack_use(Path(fw["elf"]), name, inputs, texts[0], work)
        rows.append({"board": name, "kernels": fw["aot"]["kernels"], "stack_reserved_bytes": fw["stack_bytes"],
                     "stack_used_bytes": used, "arena_bytes": fw["aot"]["arena_bytes"], "ram_bytes": fw["ram_bytes"],
                     "board_ram_bytes": fw["board_ram_bytes"]})
        print(f"{name}: stack {used:,} of {fw['stack_bytes']:,} B", file=sys.stderr, flush=True)
    table = Table(title="aot firmware: stack used (QEMU) and RAM (linker map)")
    for col in ("board", "kernels", "stack used", "stack reserved", "arena", "RAM", "board RAM"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["board"], r["kernels"], f"{r['stack_used_bytes']:,}", f"{r['stack_reserved_bytes']:,}",
                      f"{r['arena_bytes']:,}", f"{r['ram_bytes']:,}", f"{r['board_ram_bytes']:,}")
    Console().print(table)
    path = write_result("firmware_stack", rows)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
