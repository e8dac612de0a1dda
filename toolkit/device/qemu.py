"""Run a QEMU board: start the emulator on a free TCP port, connect a
Device to its serial, and always stop it (context manager, and a finalizer
if the caller forgets)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
import weakref
from pathlib import Path

from embbert.device.boards import Board, load_board
from embbert.device.protocol import Device
from embbert.errors import UserError


def _die_with_parent() -> None:
    """In the child before exec: Linux kills it if the Python process dies,
    even by SIGKILL, so no emulator outlives its owner."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    """A TCP port free now (for a QEMU monitor in a bench); the serial port is
    the emulator's own pick (launch)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# QEMU's line when a server chardev waits for its client, with the port it bound
LISTENING = re.compile(rb"waiting for connection on: disconnected:tcp:[^:\s]+:(\d+)")


def launch(board: Board, elf: Path, log_path: Path, icount_shift: int | None = None, timeout: float = 10.0,
           **popen) -> tuple[subprocess.Popen, str]:
    """Start the board's emulator with its serial on port 0, so that QEMU binds a
    free port itself, and return the process and the serial URL once QEMU says
    which port it listens on. (A port probed free and handed to QEMU could be
    taken meanwhile by another emulator, which would then answer our
    connection with silence.)"""
    command = board.emulator_command(elf, 0, icount_shift)
    if shutil.which(command[0]) is None:
        raise UserError(f"{command[0]} not found; install qemu-system-arm (./setup.sh does)")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **popen)
    deadline = time.monotonic() + timeout
    while True:
        found = LISTENING.search(Path(log_path).read_bytes())
        if found:
            return proc, board.emulator.url.format(port=int(found.group(1)))
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"QEMU did not open its serial port ({' '.join(command)}): "
                               f"{Path(log_path).read_text(errors='replace')[-500:]}")
        time.sleep(0.02)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class QemuDevice:
    """``with QemuDevice(elf, "qemu-m4") as dev: dev.info()``

    The emulator waits for the serial connection before it starts the CPU
    (``server=on,wait=on``), so the ready line is never missed.
    """

    device_class = Device  # what talks to the firmware: its constructor takes (url, baudrate, timeout, log_path)

    def __init__(self, elf, board: str | Board = "qemu-m4", log_path=None, timeout: float = 10.0,
                 icount_shift: int | None = None):
        self.board = load_board(board) if isinstance(board, str) else board
        self.elf = Path(elf)
        self.log_path = Path(log_path) if log_path else self.elf.with_suffix(".qemu.log")
        self.timeout = timeout
        self.icount_shift = icount_shift
        self.proc: subprocess.Popen | None = None
        self.device: Device | None = None
        self.ready: dict | None = None

    def start(self) -> Device:
        if not self.elf.is_file():
            raise UserError(f"firmware not found: {self.elf}")
        self.proc, url = launch(self.board, self.elf, self.log_path, self.icount_shift, self.timeout,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        self._finalizer = weakref.finalize(self, _stop, self.proc)
        try:
            self.device = self._connect(url)
        except ConnectionError as error:
            raise RuntimeError(f"QEMU did not accept a serial connection at {url}: {error}; log {self.log_path}") from None
        self.ready = self.device.wait_ready(self.timeout)
        return self.device

    def _connect(self, url: str) -> Device:
        import serial

        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise ConnectionError(f"QEMU exited with {self.proc.returncode}: {self.log_path.read_text()[-500:]}")
            try:
                return self.device_class(url, self.board.serial.baudrate, self.timeout, str(self.log_path))
            except (serial.SerialException, OSError):
                if time.monotonic() > deadline:
                    raise ConnectionError(f"no QEMU serial at {url}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.device is not None:
            self.device.close()
            self.device = None
        if self.proc is not None:
            _stop(self.proc)
            self._finalizer.detach()
            self.proc = None

    def __enter__(self) -> Device:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
