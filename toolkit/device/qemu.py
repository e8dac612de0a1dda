"""Run a QEMU board: start the emulator on a free TCP port, connect a
Device to its serial, and always stop it (context manager, and a finalizer
if the caller forgets)."""

from __future__ import annotations

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
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        command = None
        for attempt in range(3):  # the free port can be taken between probe and bind
            port = free_port()
            command = self.board.emulator_command(self.elf, port, self.icount_shift)
            if shutil.which(command[0]) is None:
                raise UserError(f"{command[0]} not found; install qemu-system-arm (./setup.sh does)")
            log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=_die_with_parent if sys.platform == "linux" else None)
            log.close()
            self._finalizer = weakref.finalize(self, _stop, self.proc)
            try:
                self.device = self._connect(self.board.emulator.url.format(port=port))
                break
            except ConnectionError:
                self.stop()
        else:
            raise RuntimeError(f"QEMU did not accept a serial connection: {' '.join(command)}; log {self.log_path}")
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
