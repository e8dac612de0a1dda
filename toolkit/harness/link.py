"""How the harness reaches a board, gets it answering again, and (for tests
of the harness itself) garbles the link.

- ``QemuLink``: an emulator of a qemu board, either one the harness starts
  for itself or the one `embbert deploy` left running in the background; a
  hard reset restarts the emulator.
- ``PortLink``: a board on a serial port (or any pyserial URL); a hard reset
  is the protocol's RESET, then the board's own hard reset (board.toml
  [reset], embbert.device.reset: esptool's RTS/DTR sequence, the debug probe).
- ``FaultyPort``: sits between the ``Device`` and its port and corrupts or
  drops a share of the bytes in both directions, seeded.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from pathlib import Path

from embbert.device import reset
from embbert.device.boards import Board
from embbert.device.protocol import Device, DeviceError, DeviceRestarted, DeviceTimeout
from embbert.errors import UserError
from embbert.harness import emulator


class BoardUnresponsive(Exception):
    """The board gave no answer, even after a reset."""


class FaultyPort:
    """A pyserial port whose bytes are corrupted (one bit flipped) or dropped
    with probability ``rate`` each, in both directions."""

    def __init__(self, port, rate: float, seed: int = 0):
        self._port = port
        self.rate = rate
        self._rng = random.Random(seed)
        self.corrupted = self.dropped = 0

    def _garble(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            if self._rng.random() < self.rate:
                if self._rng.random() < 0.5:
                    self.dropped += 1
                    continue
                self.corrupted += 1
                byte ^= 1 << self._rng.randrange(8)
            out.append(byte)
        return bytes(out)

    def write(self, data: bytes) -> int:
        self._port.write(self._garble(data))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        return self._garble(self._port.read(size))

    def __getattr__(self, name):  # in_waiting, flush, close, ...
        return getattr(self._port, name)

    def counts(self) -> dict:
        return {"rate": self.rate, "corrupted_bytes": self.corrupted, "dropped_bytes": self.dropped}


def open_port(url: str, baudrate: int, timeout: float, log_path: str | None = None) -> Device:
    """A Device on a port; a bad URL, a missing or a busy port is one clear UserError."""
    import serial

    from embbert.device.lock import holder

    try:
        return Device(url, baudrate, timeout, log_path)
    except ValueError as error:  # pyserial: an unknown URL scheme or a bad argument
        raise UserError(f"port {url}: {error}; give a serial port (/dev/ttyACM0) or a pyserial URL "
                        "(socket://HOST:PORT)") from None
    except serial.SerialException as error:
        text = str(error)
        if "exclusively lock" in text or "Device or resource busy" in text or "Errno 16" in text:
            raise UserError(f"port {url} is in use by {holder(url)}; close it (a serial monitor?) and retry") from None
        if url.startswith("socket://"):
            raise UserError(f"nothing answers at {url} ({text}); is the emulator running? "
                            "`embbert deploy` starts one and prints its URL") from None
        from serial.tools import list_ports

        ports = ", ".join(p.device for p in list_ports.comports()) or "none found"
        raise UserError(f"cannot open port {url}: {text.split(':')[-1].strip() or text}; serial ports here: {ports}") from None


class Link:
    """A Device plus a way to get the board answering again."""

    device: Device
    fault: FaultyPort | None = None
    restarts_board = False  # can hard_reset() bring back a board whose link broke (a dead emulator)?

    def __init__(self, board: Board, fault_rate: float = 0.0, fault_seed: int = 0):
        self.board = board
        self.fault_rate, self.fault_seed = fault_rate, fault_seed
        self.resets = 0
        self._fault_counts = {"corrupted_bytes": 0, "dropped_bytes": 0}

    def _attach(self, device: Device) -> Device:
        if self.fault_rate > 0:
            self._retire_fault()
            self.fault = FaultyPort(device.port, self.fault_rate, self.fault_seed + self.resets)
            device.port = self.fault
        self.device = device
        return device

    def _retire_fault(self) -> None:
        if self.fault is not None:
            for key in self._fault_counts:
                self._fault_counts[key] += self.fault.counts()[key]
            self.fault = None

    def fault_counts(self) -> dict | None:
        if self.fault_rate <= 0:
            return None
        now = self.fault.counts() if self.fault else {"corrupted_bytes": 0, "dropped_bytes": 0}
        return {"rate": self.fault_rate, **{k: v + now[k] for k, v in self._fault_counts.items()}}

    @contextmanager
    def faults_suspended(self):
        """Talk to the board without the fault injector for a while."""
        fault = self.fault
        if fault is None:
            yield
            return
        rate, fault.rate = fault.rate, 0.0
        try:
            yield
        finally:
            fault.rate = rate

    def alive(self, tries: int = 5) -> bool:
        """Does the board answer a PING (through a garbling link: a few tries)?"""
        import serial

        for _ in range(tries):
            try:
                self.device.ping(b"alive?")
                return True
            except (DeviceError, DeviceRestarted):
                continue
            except (DeviceTimeout, serial.SerialException, OSError):
                return False
        return False

    def hard_reset(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class QemuLink(Link):
    """A qemu board. Without ``background`` the harness starts (and stops)
    its own emulator of ``elf``. With ``background`` (a build folder whose
    emulator `embbert deploy` left running) it talks to that one, holding its
    lock until closed, and a hard reset restarts it on the same firmware."""

    restarts_board = True

    def __init__(self, board: Board, elf: Path, timeout: float, background: Path | None = None,
                 fault_rate: float = 0.0, fault_seed: int = 0, qemu_class=None):
        from embbert.device.qemu import QemuDevice

        super().__init__(board, fault_rate, fault_seed)
        self.elf, self.timeout, self.background = Path(elf), timeout, background
        self.qemu_class = qemu_class or QemuDevice  # QemuMicroPython for --runtime micropython
        self._qemu = self._lock = None
        if background is None:
            self._start_own()
        else:
            self._lock = emulator.lock(background).acquire()
            try:
                state = emulator.running(background)
                if state is None:
                    raise UserError(f"no emulator of {board.name} is running for {background}; "
                                    "run `embbert deploy` again, or leave out --port to let eval start one")
                self._connect(state, fresh=False)
            except BaseException:
                self._lock.release()
                raise

    def _start_own(self) -> None:
        self._qemu = self.qemu_class(self.elf, self.board, timeout=self.timeout,
                                     log_path=self.elf.with_suffix(".eval.qemu.log"))
        self._attach(self._qemu.__enter__())

    def _connect(self, state: dict, fresh: bool) -> None:
        device = emulator.connect(state, self.board.serial.baudrate, self.timeout, self.qemu_class.device_class)
        if fresh:
            device.wait_ready(self.timeout)
        self._attach(device)

    def hard_reset(self) -> None:
        self.resets += 1
        self._disconnect()
        if self.background is None:
            self._start_own()
        else:
            self._connect(emulator.start(self.board, self.elf, self.background), fresh=True)
        if not self.alive():
            raise BoardUnresponsive(f"{self.board.name} does not answer after restarting the emulator")

    def _disconnect(self) -> None:
        self._retire_fault()
        if self._qemu is not None:
            self._qemu.stop()
            self._qemu = None
        elif getattr(self, "device", None) is not None:
            self.device.close()

    def close(self) -> None:
        self._disconnect()
        if self._lock is not None:
            self._lock.release()


def _soft_reset(device: Device, timeout: float) -> None:
    """RESET over the protocol, then the ready line."""
    try:
        device.reset(timeout)
    except (DeviceError, DeviceTimeout, DeviceRestarted) as error:
        raise BoardUnresponsive(f"RESET got no ready line: {error}") from None


class PortLink(Link):
    """A board on a serial port."""

    def __init__(self, board: Board, url: str, timeout: float, fault_rate: float = 0.0, fault_seed: int = 0):
        super().__init__(board, fault_rate, fault_seed)
        self.url, self.timeout = url, timeout
        self._attach(open_port(url, board.serial.baudrate, timeout))

    def hard_reset(self) -> None:
        self.resets += 1
        try:
            _soft_reset(self.device, self.timeout)
            return
        except BoardUnresponsive:
            pass
        port = self.device.port
        if isinstance(port, FaultyPort):  # the lines of the real port under it (pyserial's own _port is a name)
            port = port._port
        try:
            reset.hard_reset(self.board, port)  # board.toml [reset]: esptool's sequence, the probe, ...
        except UserError as error:
            raise BoardUnresponsive(f"RESET got no ready line, and the hard reset failed: {error}") from None
        try:
            self.device.wait_ready(self.timeout)
        except DeviceTimeout:
            raise BoardUnresponsive(f"{self.board.name} on {self.url} gave no ready line after RESET and a "
                                    f"hard reset ({self.board.reset.method}); press its reset button") from None

    def close(self) -> None:
        self._retire_fault()
        self.device.close()
