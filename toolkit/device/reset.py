"""Hard-resetting a board on hardware, the way its board.toml says ([reset]).

The protocol's RESET comes first (embbert.harness.link); this is what follows
when the firmware no longer answers. Each board's wiring needs its own way:

- esp32-rts-dtr: an ESP32's USB-UART bridge drives EN through RTS and IO0
  through DTR via two transistors that pull a line low only when the other
  signal is high: asserting both together changes nothing. esptool's hard
  reset (its HardReset strategy): IO0 high (DTR off, so the chip boots the
  application, not the ROM loader), EN low (RTS on) for 100 ms, then EN high.
  Through the chip's own USB-Serial/JTAG port (usb_jtag), the lines are
  virtual and the pulse and the wait after it are 200 ms each.
- openocd / pyocd: an ST-Link's virtual COM port has no reset line; the probe
  pulls NRST (openocd's board script sets `reset_config srst_only`).
- dtr: a pulse on DTR (Arduino-style auto-reset through a capacitor).
- emulator: QEMU is restarted by the harness itself (QemuLink), never here.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from embbert.device.boards import Board
from embbert.errors import UserError

PROBE_TIMEOUT_S = 60  # openocd / pyocd: connect, reset, disconnect


def probe_command(board: Board) -> list[str]:
    """The debug-probe command that resets `board` (methods openocd, pyocd)."""
    reset = board.reset
    if reset.method == "openocd":
        scripts = [arg for cfg in reset.openocd_config for arg in ("-f", cfg)]
        return ["openocd", *scripts, "-c", "init", "-c", "reset run", "-c", "shutdown"]
    if reset.method == "pyocd":
        return ["pyocd", "reset", "--target", reset.pyocd_target]
    raise ValueError(f"reset method {reset.method} uses no probe")


def _esp32_rts_dtr(port, usb_jtag: bool, sleep) -> None:
    port.dtr = False  # IO0 high: boot the application
    port.rts = True  # EN low: the chip is held in reset
    sleep(0.2 if usb_jtag else 0.1)
    port.rts = False  # EN high: it runs
    if usb_jtag:
        sleep(0.2)  # let the USB device come back before the next line change


def _dtr_pulse(port, sleep) -> None:
    port.dtr = True
    sleep(0.1)
    port.dtr = False


def _run_probe(board: Board) -> None:
    command = probe_command(board)
    tool = command[0]
    if shutil.which(tool) is None:
        how = "apt-get install openocd" if tool == "openocd" else "pip install pyocd"
        raise UserError(f"resetting {board.name} needs {tool} ({how}), with its debug probe connected")
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UserError(f"`{' '.join(command)}` did not finish in {PROBE_TIMEOUT_S} s; "
                        "is the probe connected?") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise UserError(f"`{' '.join(command)}` failed (exit {proc.returncode}): {last[0]}")


def hard_reset(board: Board, port, sleep=time.sleep) -> None:
    """Reset the board on `port` (a pyserial port: dtr, rts) by its board.toml's [reset] method."""
    method = board.reset.method
    if method == "esp32-rts-dtr":
        _esp32_rts_dtr(port, board.reset.usb_jtag, sleep)
    elif method == "dtr":
        _dtr_pulse(port, sleep)
    elif method in ("openocd", "pyocd"):
        _run_probe(board)
    else:
        raise UserError(f"{board.name} is reset by restarting its emulator; leave out --port to let the harness "
                        "start (and restart) one")
