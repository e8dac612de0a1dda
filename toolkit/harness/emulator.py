"""The emulator `embbert deploy` leaves running: "flashing" a qemu board.

It runs detached (its own session, so it outlives the command) and serves
its UART on a local TCP port. Its state - pid, URL, firmware - is kept in
``<build>/emulator.json``, so `embbert eval` finds it, a second deploy
replaces it, and a hard reset can restart it on the same firmware.
Its clients take ``lock(build_dir)`` first: one client at a time, so none
takes another's silence for a hung board and restarts it under it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from embbert.device.boards import Board
from embbert.device.lock import BoardLock
from embbert.device.qemu import launch

STATE = "emulator.json"
LOCK = "emulator.lock"


def lock(build_dir: Path) -> BoardLock:
    """The exclusive lock of this build's emulator (``with emulator.lock(d):``)."""
    build_dir = Path(build_dir)
    return BoardLock(build_dir / LOCK, f"the {build_dir.name} emulator of {build_dir.parent.parent}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or b"qemu" in cmdline.read_bytes()


def running(build_dir: Path) -> dict | None:
    """The state of the background emulator of this build, if it still runs."""
    path = Path(build_dir) / STATE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except ValueError:
        return None
    return state if _alive(state["pid"]) else None


def stop(build_dir: Path) -> bool:
    """Stop this build's background emulator; True if one was running."""
    state = running(build_dir)
    (Path(build_dir) / STATE).unlink(missing_ok=True)
    if state is None:
        return False
    os.kill(state["pid"], signal.SIGTERM)
    for _ in range(50):
        if not _alive(state["pid"]):
            break
        time.sleep(0.1)
    else:
        os.kill(state["pid"], signal.SIGKILL)
    return True


def start(board: Board, elf: Path, build_dir: Path) -> dict:
    """Start (or restart) the background emulator of ``elf``; returns its state."""
    stop(build_dir)
    log_path = Path(build_dir) / "emulator.log"
    proc, url = launch(board, Path(elf).resolve(), log_path, start_new_session=True)
    state = {"pid": proc.pid, "url": url, "board": board.name, "elf": str(Path(elf).resolve()), "log": str(log_path)}
    (Path(build_dir) / STATE).write_text(json.dumps(state, indent=1))
    return state


def connect(state: dict, baudrate: int, timeout: float, device_class=None):
    """A Device (or ``device_class``: MicroPythonDevice) on the background
    emulator's serial, once it listens. A fresh emulator holds its CPU until
    this first connection, so its ready line is there to be read."""
    import serial

    from embbert.device.protocol import Device

    device_class = device_class or Device
    deadline = time.monotonic() + timeout
    while True:
        if not _alive(state["pid"]):
            raise RuntimeError(f"the emulator exited: {Path(state['log']).read_text()[-500:]}")
        try:
            device = device_class(state["url"], baudrate, timeout, state["log"])
            break
        except (serial.SerialException, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the emulator does not listen at {state['url']}; log {state['log']}") from None
            time.sleep(0.05)
    return device
