"""Board descriptions: boards/<name>/board.toml, read and checked here.

One file per board says everything the host needs: how to build it (CPU,
port sources, linker script, stack, and its PlatformIO environments, from
which firmware/boards.ini is generated), its flash and RAM, which
linker-map regions count as which, what its counter counts, its serial
settings, how to hard-reset it and, for emulated boards, the emulator
command. Nothing else names a board: the tests discover them here.
"""

from __future__ import annotations

import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from embbert.device.paths import BOARDS_DIR
from embbert.errors import UserError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BuildSpec(_Strict):
    cpu: str  # e.g. cortex-m4, esp32s3
    fpu: Optional[str] = None  # -mfpu for the local Cortex-M platform
    float_abi: Optional[Literal["hard", "softfp", "soft"]] = None
    sources: list[str] = []  # port folders, relative to the board folder
    linker_script: Optional[str] = None  # None: the upstream platform's own
    stack_bytes: int = Field(gt=0)
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


PioValue = Union[str, int, list[str]]


class ResetSpec(_Strict):
    """How the harness hard-resets the board when RESET over the protocol gets no answer
    (embbert.device.reset)."""
    # emulator: restart QEMU; esp32-rts-dtr: esptool's hard-reset sequence on EN (RTS) with IO0
    # (DTR) high, through the two-transistor auto-reset circuit or the USB-Serial/JTAG port;
    # openocd / pyocd: through the debug probe (an ST-Link's virtual COM port has no reset line);
    # dtr: a pulse on DTR (Arduino-style auto-reset through a capacitor)
    method: Literal["emulator", "esp32-rts-dtr", "openocd", "pyocd", "dtr"]
    usb_jtag: bool = False  # esp32-rts-dtr: the chip's own USB-Serial/JTAG port (longer EN pulse)
    openocd_config: list[str] = []  # openocd: its -f scripts, e.g. board/st_nucleo_l4.cfg
    pyocd_target: Optional[str] = None  # pyocd: its --target, e.g. stm32l475xg


class Board(_Strict):
    name: str
    description: str
    kind: Literal["qemu", "hardware"]
    build: BuildSpec
    memory: MemorySpec
    counter: CounterSpec
    serial: SerialSpec
    emulator: Optional[EmulatorSpec] = None
    reset: ResetSpec  # qemu boards: emulator, unless said otherwise
    # The board's PlatformIO environment, env:<name>: its options (platform pinned name@version,
    # board, extends = a base section of firmware/platformio.ini, ...; qemu boards: extends =
    # "qemu", unless said otherwise). A [platformio.tflm] table adds env:<name>-tflm, the same
    # plus TFLite-Micro (lib_deps) for the tflm backend; without it the board cannot build tflm.
    # firmware/boards.ini is generated from these (embbert.device.platformio_ini).
    platformio: dict[str, Union[PioValue, dict[str, PioValue]]]
    renode: Optional[str] = None  # Renode script beside board.toml, for users who have Renode
    directory: Path = Path()  # filled in by load_board

    @model_validator(mode="before")
    @classmethod
    def _emulated_defaults(cls, data):
        """A qemu board is reset by restarting QEMU and builds on the local bare-metal platform
        (section `qemu` of firmware/platformio.ini), unless its board.toml says otherwise."""
        if isinstance(data, dict) and data.get("kind") == "qemu":
            data = {"reset": {"method": "emulator"}, "platformio": {"extends": "qemu"}, **data}
        return data

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
        if (self.kind == "qemu") != (self.reset.method == "emulator"):
            raise ValueError("reset.method is 'emulator' for a qemu board, and only for one")
        if self.reset.method == "openocd" and not self.reset.openocd_config:
            raise ValueError("reset.method 'openocd' needs reset.openocd_config (its -f scripts)")
        if self.reset.method == "pyocd" and not self.reset.pyocd_target:
            raise ValueError("reset.method 'pyocd' needs reset.pyocd_target")
        nested = [k for k, v in self.platformio.items() if isinstance(v, dict) and k != "tflm"]
        if nested or not isinstance(self.platformio.get("tflm", {}), dict):
            raise ValueError("platformio holds PlatformIO options, and one table: tflm")
        return self

    @property
    def has_tflm(self) -> bool:
        """Does the board get TFLite-Micro's sources (a tflm environment with lib_deps)?"""
        return "tflm" in self.platformio

    def pio_env(self, backend: str) -> str:
        """The PlatformIO environment that builds (and uploads) `backend` for this board: the one
        place this is decided, for build, upload and the smoke check after deploy."""
        if backend == "tflm":
            if not self.has_tflm:
                raise UserError(f"board {self.name} has no tflm environment (board.toml [platformio.tflm])")
            return f"{self.name}-tflm"
        return self.name

    @property
    def upstream_platform(self) -> Optional[str]:
        """The registry platform, pinned (name@version), or None for a local one."""
        platform = self.platformio.get("platform")
        return platform if isinstance(platform, str) and "://" not in platform else None

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
