"""A MicroPython board with the `embbert` module, driven through its raw REPL
with mpremote's serial transport (pinned, used as a library; pyserial URLs,
so `socket://` reaches QEMU).

`MicroPythonDevice` answers like the bare firmware's Device
(embbert.device.protocol), so the harness drives either: info(), ping(),
tokenize(text), classify(text) and infer_ids(ids) return the same dicts, the
counter included; a Python exception on the board is a BoardException (a
DeviceError) carrying its type and message; silence is a DeviceTimeout.
`QemuMicroPython` runs it on an emulated board (embbert.device.qemu).
"""

from __future__ import annotations

import ast

from embbert.device.protocol import DeviceError, DeviceTimeout, Status, fit_text
from embbert.device.qemu import QemuDevice

# Defined once per connection on the board: each returns one repr()'d tuple.
# classify runs after tokenize, so counter() is classify's own.
HELPERS = """
import embbert
def _embbert_classify(t):
    n = len(embbert.tokenize(t))
    r = embbert.classify(t)
    print(repr((r[0], tuple(r[1]), n) + embbert.counter()))
def _embbert_tokenize(t):
    ids = embbert.tokenize(t)
    print(repr((tuple(ids), embbert.counter()[1])))
def _embbert_logits(ids):
    r = embbert.logits(ids)
    print(repr((tuple(r), embbert.counter()[0])))
"""


class BoardException(DeviceError):
    """A Python exception raised on the board: `type` (e.g. "ValueError") and its message."""

    def __init__(self, type_: str, message: str, traceback: str):
        bad_input = type_ in ("TypeError", "ValueError", "OverflowError")
        super().__init__(Status.BAD_ARGUMENT if bad_input else Status.MODEL_FAILED, f"{type_}: {message}")
        self.args = (f"{type_}: {message}",)
        self.type, self.message, self.traceback = type_, message, traceback


class MicroPythonDevice:
    """The board's raw REPL; same constructor as embbert.device.protocol.Device."""

    def __init__(self, url: str, baudrate: int = 115200, timeout: float = 10.0, log_path: str | None = None):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        self.timeout = timeout
        self.log_path = log_path
        try:
            self.transport = SerialTransport(url, baudrate)
        except TransportError as error:  # not there yet: an OSError, as pyserial's own (QemuDevice retries)
            raise ConnectionRefusedError(str(error)) from None
        self._info: dict | None = None
        self.last_wire_bytes = (0, 0)  # bytes sent, received by the last exchange

    def close(self) -> None:
        self.transport.close()

    def wait_ready(self, timeout: float | None = None) -> dict:
        """Enter the raw REPL with a soft reset (a clean interpreter), define the helpers; returns info()."""
        from mpremote.transport import TransportError

        try:
            self.transport.enter_raw_repl(soft_reset=True, timeout_overall=timeout or self.timeout)
        except TransportError as error:
            raise DeviceTimeout(f"MicroPython's raw REPL ({error})", b"", self.log_path) from None
        self.exec(HELPERS)
        self._info = None
        return self.info()

    def exec(self, code: str, timeout: float | None = None) -> str:
        """Run code; its stdout. A Python exception on the board raises BoardException."""
        from mpremote.transport import TransportError

        if not self.transport.in_raw_repl:  # a board deploy left running: enter its raw REPL first
            self.wait_ready()
        try:
            out, err = self.transport.exec_raw(code, timeout=timeout or self.timeout)
        except TransportError as error:
            raise DeviceTimeout(f"the raw REPL ({error})", b"", self.log_path) from None
        self.last_wire_bytes = (len(code.encode()) + 4, len(out) + len(err) + 4)  # + raw REPL's framing
        if err:
            text = err.decode("utf-8", "replace").strip()
            last = text.splitlines()[-1] if text else ""
            type_, _, message = last.partition(": ")
            raise BoardException(type_, message, text)
        return out.decode("utf-8", "replace")

    def eval(self, expression: str, timeout: float | None = None):
        return ast.literal_eval(self.exec(f"print(repr(({expression})))", timeout).strip())

    def info(self) -> dict:
        if self._info is None:
            info = self.eval("embbert.info()")
            info["labels"] = list(info["labels"])
            self._info = {**info, "runtime": "micropython"}
        return dict(self._info)

    def ping(self, data: bytes = b"") -> bytes:
        """The board echoes data (a raw REPL round trip)."""
        return self.eval(repr(bytes(data)))

    def tokenize(self, text: str) -> dict:
        ids, count = ast.literal_eval(self.exec(f"_embbert_tokenize({self._text(text)})").strip())
        return {"ids": list(ids), "n_tokens": len(ids), self._unit(): count}

    def classify(self, text: str) -> dict:
        reply = self.exec(f"_embbert_classify({self._text(text)})")
        label, logits, n, infer, tokenize = ast.literal_eval(reply.strip())
        unit = self._unit()
        return {"label": label, "label_index": self.info()["labels"].index(label), "logits": list(logits),
                "n_tokens": n, unit: infer, f"tokenize_{unit}": tokenize}

    def infer_ids(self, ids: list[int]) -> dict:
        arg = f"array.array('H', {[int(i) for i in ids]!r})"
        logits, count = ast.literal_eval(self.exec(f"import array\n_embbert_logits({arg})").strip())
        return {"logits": list(logits), "n_tokens": len(ids), self._unit(): count}

    def _text(self, text: str) -> str:
        """A MicroPython expression for `text`: a bytes literal decoded (only \\x escapes). A text over
        the board's max_text_bytes is clipped as the bare firmware's Device clips it (fit_text)."""
        return f"{fit_text(text, self.info()).encode('utf-8')!r}.decode()"

    def _unit(self) -> str:
        return self.info()["counter"]


class QemuMicroPython(QemuDevice):
    """``with QemuMicroPython(elf, "qemu-m4") as board: board.classify(text)``"""

    device_class = MicroPythonDevice
