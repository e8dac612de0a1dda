"""Board descriptions: boards/<name>/board.toml, read and checked here.

One file per board says everything the host needs: how to build it (the
PlatformIO environment, CPU, port sources, linker script, stack), its flash
and RAM, which linker-map regions count as which, what its counter counts,
its serial settings and, for emulated boards, the emulator command.
"""

from __future__ import annotations

import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from embbert.device.paths import BOARDS_DIR
from embbert.errors import UserError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BuildSpec(_Strict):
    pio_env: str  # the environment in firmware/platformio.ini
    cpu: str  # e.g. cortex-m4, esp32s3
    fpu: Optional[str] = None  # -mfpu for the local Cortex-M platform
    float_abi: Optional[Literal["hard", "softfp", "soft"]] = None
    sources: list[str] = []  # port folders, relative to the board folder
    linker_script: Optional[str] = None  # None: the upstream platform's own
    stack_bytes: int = Field(gt=0)
    upstream_platform: Optional[str] = None  # PlatformIO registry platform (real boards)
    # the environment that adds TFLite-Micro (lib_deps) for the tflm backend; None: the
    # board cannot build tflm (TFLite-Micro's sources are not available), aot is its default
    tflm_env: Optional[str] = None
    # the kernels under the aot backend's FULLY_CONNECTED and BATCH_MATMUL
    # (firmware/src/backends/aot/kernels/<name>/): TFLite-Micro's reference
    # kernels, or ours (ACLE DSP intrinsics where the core has them), bit-exact
    aot_kernels: Literal["reference", "optimized"] = "reference"


class MemorySpec(_Strict):
    flash_bytes: int = Field(gt=0)
    ram_bytes: int = Field(gt=0)
    flash_regions: list[str]  # MEMORY regions of the linker map holding flash
    ram_regions: list[str]


class CounterSpec(_Strict):
    unit: Literal["cycles", "instructions"]
    num: int = Field(default=1, gt=0)  # elapsed = ticks * num / den
    den: int = Field(default=1, gt=0)
    cpu_hz: Optional[int] = Field(default=None, gt=0)  # hardware: the core clock, to turn cycles into µs


class SerialSpec(_Strict):
    baudrate: int = Field(gt=0)


class EmulatorSpec(_Strict):
    cpu_hz: int = Field(gt=0)  # the emulated SysTick clock
    icount_shift: int = Field(ge=0, le=10)  # one instruction = 2**shift ns
    command: list[str]  # placeholders {elf} {port} {icount_shift}
    url: str  # pyserial URL, placeholder {port}


class Board(_Strict):
    name: str
    description: str
    kind: Literal["qemu", "hardware"]
    build: BuildSpec
    memory: MemorySpec
    counter: CounterSpec
    serial: SerialSpec
    emulator: Optional[EmulatorSpec] = None
    renode: Optional[str] = None  # Renode script beside board.toml, for users who have Renode
    directory: Path = Path()  # filled in by load_board

    @model_validator(mode="after")
    def _consistent(self):
        if self.kind == "qemu":
            if self.emulator is None:
                raise ValueError("a qemu board needs an [emulator] table")
            if self.counter.unit != "instructions":
                raise ValueError("QEMU counts instructions (-icount), never cycles: counter.unit must be 'instructions'")
            # ticks at cpu_hz per instruction of 2**shift ns
            expected = Fraction(10**9, self.emulator.cpu_hz) / 2**self.emulator.icount_shift
            if Fraction(self.counter.num, self.counter.den) != expected:
                raise ValueError(f"counter num/den must be (1e9 / cpu_hz) / 2**icount_shift = {expected}")
            text = " ".join(self.emulator.command)
            if "{elf}" not in text or "{port}" not in text or "-icount" not in text:
                raise ValueError("emulator.command needs {elf}, {port} and -icount")
        elif self.counter.unit != "cycles":
            raise ValueError("a hardware board counts cycles")
        return self

    def path(self, relative: str) -> Path:
        return (self.directory / relative).resolve()

    def emulator_command(self, elf: Path, port: int, icount_shift: int | None = None) -> list[str]:
        if self.emulator is None:
            raise UserError(f"board {self.name} is not emulated; it runs on hardware")
        shift = self.emulator.icount_shift if icount_shift is None else icount_shift
        return [part.format(elf=elf, port=port, icount_shift=shift) for part in self.emulator.command]


def board_names(boards_dir: Path = BOARDS_DIR) -> list[str]:
    return sorted(p.parent.name for p in boards_dir.glob("*/board.toml"))


def load_board(name: str, boards_dir: Path = BOARDS_DIR) -> Board:
    """The board's description, checked; UserError names the problem."""
    path = boards_dir / name / "board.toml"
    if not path.is_file():
        raise UserError(f"unknown board {name!r}; known boards: {', '.join(board_names(boards_dir))}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path}: not valid TOML: {error}") from None
    try:
        board = Board.model_validate({**data, "directory": path.parent})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"{path}: {where}: {first['msg']}") from None
    if board.name != name:
        raise UserError(f"{path}: name is {board.name!r} but the folder is {name!r}")
    for src in board.build.sources:
        if not board.path(src).is_dir():
            raise UserError(f"{path}: port source folder {src} not found")
    if board.build.linker_script and not board.path(board.build.linker_script).is_file():
        raise UserError(f"{path}: linker script {board.build.linker_script} not found")
    if board.renode and not board.path(board.renode).is_file():
        raise UserError(f"{path}: Renode script {board.renode} not found")
    return board
