"""A small bare-metal program on an emulated board: build it, run it, read its text.

Kernel tests and the per-op profile are not the firmware: they are a few C++
files with their own app_setup() (the board's port calls it from main()),
linked with the board's port sources and linker script, built with the
board's CPU flags by arm-none-eabi-g++ (no PlatformIO: nothing to configure),
and run in the board's emulator with the UART on stdout. The program ends by
printing END and asking QEMU to exit through semihosting
(firmware/test/baremetal_test.h).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from embbert.device.boards import Board, load_board
from embbert.device.paths import FIRMWARE_DIR
from embbert.errors import UserError

CXXFLAGS = ["-std=gnu++17", "-O2", "-ffp-contract=off", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics",
            "-ffunction-sections", "-fdata-sections", "-Wall"]
TEST_DIR = FIRMWARE_DIR / "test"


def cpu_flags(board: Board) -> list[str]:
    flags = ["-mcpu=" + board.build.cpu, "-mthumb"]
    if board.build.fpu:
        flags += ["-mfpu=" + board.build.fpu, "-mfloat-abi=" + (board.build.float_abi or "hard")]
    return flags


def build_program(board_name: str, sources: list[Path], out: Path, include_dirs: list[Path] = (),
                  defines: dict | None = None, extra_flags: list[str] = ()) -> Path:
    """out (an .elf) from `sources` + the board's port; raises UserError if the board is not bare metal."""
    board = load_board(board_name)
    if board.kind != "qemu" or not board.build.linker_script:
        raise UserError(f"board {board.name} is not an emulated bare-metal board; bare-metal programs run on qemu-*")
    if shutil.which("arm-none-eabi-g++") is None:
        raise UserError("arm-none-eabi-g++ not found; install gcc-arm-none-eabi (./setup.sh does)")
    port = [p for src in board.build.sources for p in sorted(board.path(src).glob("*.cc"))]
    counter = board.counter
    defs = {"EMBBERT_BOARD": f'"{board.name}"', "EMBBERT_COUNTER_UNIT": f'"{counter.unit}"',
            "EMBBERT_COUNTER_NUM": counter.num, "EMBBERT_COUNTER_DEN": counter.den, **(defines or {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["arm-none-eabi-g++", *cpu_flags(board), *CXXFLAGS, *extra_flags,
           *[f"-D{k}={v}" for k, v in defs.items()],
           f"-I{FIRMWARE_DIR / 'src'}", f"-I{TEST_DIR}", *[f"-isystem{d}" for d in include_dirs],
           *map(str, sources), *map(str, port),
           "--specs=nano.specs", "-nostartfiles", "-T", str(board.path(board.build.linker_script)),
           *[f"-L{board.path(src)}" for src in board.build.sources],  # scripts the linker script INCLUDEs
           f"-Wl,--defsym=__stack_size__={board.build.stack_bytes}", "-Wl,--gc-sections", "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"bare-metal build for {board.name} failed:\n{r.stderr[-4000:]}")
    return out


def run_program(board_name: str, elf: Path, timeout: float = 600) -> str:
    """The program's UART text up to END; RuntimeError if it does not get there."""
    board = load_board(board_name)
    command = board.emulator_command(elf, 0)
    command[command.index("-serial") + 1] = "stdio"
    command += ["-semihosting-config", "enable=on,target=native"]
    try:
        r = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        seen = (error.stdout or b"").decode(errors="replace")[-1000:]
        raise RuntimeError(f"{elf.name} on {board.name} did not end within {timeout} s; last output:\n{seen}") from None
    text = r.stdout.decode(errors="replace")
    if "\nEND\n" not in "\n" + text:
        raise RuntimeError(f"{elf.name} on {board.name} exited ({r.returncode}) without END:\n{text[-2000:]}"
                           f"{r.stderr.decode(errors='replace')[-1000:]}")
    return text[: text.index("END\n")] if text.startswith("END\n") else text[: text.index("\nEND\n") + 1]
