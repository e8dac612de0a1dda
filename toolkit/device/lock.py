"""One client per board: an exclusive flock.

A board on a serial port is locked by pyserial itself (``exclusive=True``
flocks the port). An emulator `embbert deploy` left running has no port
file, so its clients (eval, device_tests, deploy, stop) flock
``<build>/emulator.lock`` the same way, for their whole session, across
emulator restarts. The kernel drops a flock when its holder exits, even
by SIGKILL, so a lock is never left behind. ``holder`` names who holds one,
from /proc/locks.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from embbert.errors import UserError


def holder(path: Path) -> str:
    """'pid N (command)' of the process holding a flock on ``path``, as far as /proc/locks tells."""
    try:
        st = os.stat(path)
        locks = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "another process"
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in locks:
        fields = line.split()
        if "FLOCK" in fields and where in fields and "->" not in fields:  # '->': a waiter, not the holder
            pid = fields[fields.index("FLOCK") + 3]
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                command = "?"
            command = " ".join(command.split())
            return f"pid {pid} ({command[:120] + '...' if len(command) > 120 else command})"
    return "another process"


class BoardLock:
    """``with BoardLock(path, "the qemu-m4 emulator of ART"):`` -- or UserError naming the holder."""

    def __init__(self, path: Path, what: str):
        self.path, self.what = Path(path), what
        self._fd: int | None = None

    def acquire(self) -> "BoardLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise UserError(f"cannot lock {self.what} ({self.path}: {error.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"{self.what} is in use by {holder(self.path)}; wait for it to finish, or stop it") from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "BoardLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
