"""The host side of the framed serial protocol (firmware/PROTOCOL.md).

Frame: version u8, type u8, seq u16 LE, status u8, payload, CRC-32 u32 LE
of everything before it; COBS-encoded on the wire and ended by a zero byte.
``Device`` speaks it over any pyserial URL: ``socket://127.0.0.1:PORT``
(QEMU) or a real port (``/dev/ttyACM0``).
"""

from __future__ import annotations

import json
import re
import struct
import time
import unicodedata
from dataclasses import dataclass
from enum import IntEnum

VERSION = 1
HEADER = struct.Struct("<BBHB")  # version, type, seq, status
CRC_BYTES = 4
REPLY_BIT = 0x80
UNREADABLE = 0xFF  # reply type for a frame the device could not read
NO_SEQ = 0xFFFF
IDLE_CHUNK_S = 0.1  # bytes without their ending zero for this long: the zero was lost
UNREADABLE_GRACE_S = 0.1  # after an "unreadable" reply or a garbled chunk, how long to still wait for ours
READY = re.compile(rb"EMBBERT READY protocol=(\d+) firmware=(\S+) board=(\S+) backend=(\S+)")


class Command(IntEnum):
    PING = 0x01
    INFO = 0x02
    TOKENIZE = 0x03
    CLASSIFY = 0x04
    INFER_IDS = 0x05
    RESET = 0x06


class Status(IntEnum):
    OK = 0x00
    BAD_COBS = 0x01
    BAD_CRC = 0x02
    SHORT_FRAME = 0x03
    OVERSIZED_FRAME = 0x04
    BAD_VERSION = 0x05
    UNKNOWN_COMMAND = 0x06
    BAD_ARGUMENT = 0x07
    BAD_UTF8 = 0x08
    TEXT_TOO_LONG = 0x09
    NO_MODEL = 0x0A
    MODEL_FAILED = 0x0B


# CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320: the zlib one).
def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


class FrameError(Exception):
    """Bytes that are not a valid frame; ``status`` says why, as the device would."""

    def __init__(self, status: Status, message: str):
        super().__init__(message)
        self.status = status


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: no zero byte in the output."""
    out = bytearray([0])
    code_at, code = 0, 1
    for i, byte in enumerate(data):
        if byte:
            out.append(byte)
            code += 1
        if byte == 0 or code == 0xFF:
            out[code_at] = code
            if byte and i + 1 == len(data):  # a full block ends the data: no extra code byte
                return bytes(out)
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        i += 1
        if code == 0 or i + code - 1 > len(data):
            raise FrameError(Status.BAD_COBS, f"bad COBS code {code} at byte {i - 1} of {len(data)}")
        block = data[i:i + code - 1]
        if 0 in block:
            raise FrameError(Status.BAD_COBS, "zero byte inside a COBS block")
        out += block
        i += code - 1
        if code != 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


@dataclass(frozen=True)
class Frame:
    version: int
    type: int
    seq: int
    status: int
    payload: bytes

    def json(self) -> dict:
        return json.loads(self.payload.decode())


def pack_frame(type_: int, seq: int, payload: bytes = b"", status: int = 0, version: int = VERSION) -> bytes:
    """The frame's bytes (header, payload, CRC), before COBS."""
    body = HEADER.pack(version, type_, seq, status) + payload
    return body + struct.pack("<I", crc32(body))


def encode_frame(type_: int, seq: int, payload: bytes = b"", status: int = 0, version: int = VERSION) -> bytes:
    """Wire bytes: a zero (ends any garbage before), COBS(frame), a zero."""
    return b"\x00" + cobs_encode(pack_frame(type_, seq, payload, status, version)) + b"\x00"


def decode_frame(chunk: bytes) -> Frame:
    """One chunk between zeros -> Frame; FrameError as the device would report."""
    raw = cobs_decode(chunk)
    if len(raw) < HEADER.size + CRC_BYTES:
        raise FrameError(Status.SHORT_FRAME, f"{len(raw)} bytes, fewer than header and CRC")
    (sent,) = struct.unpack("<I", raw[-CRC_BYTES:])
    if crc32(raw[:-CRC_BYTES]) != sent:
        raise FrameError(Status.BAD_CRC, "CRC-32 mismatch")
    version, type_, seq, status = HEADER.unpack(raw[:HEADER.size])
    return Frame(version, type_, seq, status, raw[HEADER.size:-CRC_BYTES])


class DeviceError(Exception):
    """The device answered with an error status."""

    def __init__(self, status: int, detail: str, reply: Frame | None = None):
        name = Status(status).name if status in Status._value2member_map_ else f"status 0x{status:02x}"
        super().__init__(f"device error {name}: {detail}")
        self.status, self.detail, self.reply = status, detail, reply


class LinkGarbled(DeviceError):
    """No reply to this request arrived whole: the device could not read the
    request (an "unreadable" reply), or bytes came back that are not a frame.
    Link noise: the same request may simply be sent again. A reply that
    carries the request's sequence number is an answer, whatever its status."""


class DeviceRestarted(Exception):
    """A ready line arrived where a reply was expected."""


class DeviceTimeout(TimeoutError):
    """Nothing matching arrived in time; carries what did arrive."""

    def __init__(self, expected: str, seen: bytes, log: str | None = None):
        where = f"; log: {log}" if log else ""
        super().__init__(f"timed out waiting for {expected}; last bytes seen: {seen[-200:]!r}{where}")
        self.seen = seen


WHITESPACE = " \t\n\r\x0b\x0c"  # ASCII whitespace: BPE never looks across it


def clip_text(text: str, max_len: int, max_bytes: int) -> str:
    """The text as sent to a device whose frames hold ``max_bytes`` of text.

    A text that fits is sent whole. Else the shortest prefix with the same
    ids after truncation to ``max_len``: it ends at the ASCII whitespace after
    the (max_len - 2)-th whitespace-separated chunk holding a printable ASCII
    character (each such chunk gives at least one token, and BPE never looks
    across whitespace). If even that is longer than ``max_bytes`` (long
    words), the longest prefix of at most ``max_bytes`` bytes that ends
    before ASCII whitespace, or, in one giant word, at a character boundary.
    Whatever the device is sent, the host must classify that same text."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    need, count = max_len - 2, 0
    for m in re.finditer(f"[^{WHITESPACE}]+", text):
        if re.search(r"[\x21-\x7e]", m.group()):
            count += 1
            if count >= need:
                text = text[:m.end()]
                break
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    head = data[:max_bytes].decode("utf-8", errors="ignore")  # drops a character cut in two
    cut = max(head.rfind(c) for c in WHITESPACE)
    return head[:cut] if cut > 0 else head


def gives_tokens(text: str) -> bool:
    """Does ``text`` give any token? The tokenizer (firmware/TOKENIZER.md) takes
    NFD, drops combining marks and reads every character outside printable
    ASCII as a space, so exactly the texts with a printable non-space ASCII
    character after NFD give one."""
    return any("!" <= c <= "~" for c in unicodedata.normalize("NFD", text))


def fit_text(text: str, info: dict) -> str:
    """``text`` as a device with this INFO takes it in one frame (``clip_text``). MicroPython's
    raw REPL has no frame: its INFO names no payload limit, only the tokenizer's."""
    limit = min(info["max_text_bytes"], info.get("max_payload_bytes", info["max_text_bytes"]))
    return clip_text(text, info["max_len"], limit)


class Device:
    """One device on a serial link (a real port or QEMU's TCP serial)."""

    def __init__(self, url: str, baudrate: int = 115200, timeout: float = 10.0, log_path: str | None = None):
        import serial  # pyserial, imported only when a device is used

        local = {} if "://" in url else {"exclusive": True}  # a real port: refuse one another program holds
        self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, **local)
        self.timeout = timeout
        self.log_path = log_path
        self._buffer = bytearray()
        self._seen = bytearray()  # recent raw bytes, for error messages
        self._seq = 0
        self.stray: list[Frame | FrameError] = []  # frames that answered no request of ours
        self.info_cache: dict | None = None
        self.last_wire_bytes = (0, 0)  # request and reply bytes on the wire, last exchange

    def close(self) -> None:
        self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- bytes and chunks -------------------------------------------------
    def write_raw(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def _read_chunk(self, deadline: float, expected: str) -> bytes:
        """Bytes up to the next zero (the zero dropped). Bytes left without
        their zero for IDLE_CHUNK_S (the zero was lost on the way) come back
        as a chunk of their own, which will not decode."""
        last_byte = time.monotonic()
        while True:
            zero = self._buffer.find(0)
            if zero >= 0:
                chunk = bytes(self._buffer[:zero])
                del self._buffer[:zero + 1]
                return chunk
            now = time.monotonic()
            if self._buffer and now - last_byte > IDLE_CHUNK_S:
                chunk = bytes(self._buffer)
                self._buffer.clear()
                return chunk
            if now > deadline:
                raise DeviceTimeout(expected, bytes(self._seen), self.log_path)
            data = self.port.read(max(1, self.port.in_waiting))
            if data:
                last_byte = time.monotonic()
            self._buffer += data
            self._seen = (self._seen + data)[-4096:]

    def wait_ready(self, timeout: float | None = None) -> dict:
        """Wait for the boot line; returns its fields."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            chunk = self._read_chunk(deadline, "the ready line 'EMBBERT READY ...'")
            m = READY.search(chunk)
            if m:
                self.info_cache = None
                return {"protocol": int(m.group(1)), "firmware": m.group(2).decode(), "board": m.group(3).decode(),
                        "backend": m.group(4).decode()}

    def read_frame(self, timeout: float | None = None) -> Frame:
        """The next frame that decodes; chunks that do not are kept in ``stray``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            frame = self._next(deadline)
            if isinstance(frame, Frame):
                return frame
            self.stray.append(frame)

    def _next(self, deadline: float) -> Frame | FrameError:
        """The next non-empty chunk, decoded (Frame) or not (FrameError)."""
        while True:
            chunk = self._read_chunk(deadline, "a reply frame")
            if not chunk:
                continue
            if READY.search(chunk):
                raise DeviceRestarted(f"the device restarted: {chunk.decode(errors='replace').strip()}")
            try:
                return decode_frame(chunk)
            except FrameError as error:
                return error

    # -- requests ---------------------------------------------------------
    def request(self, command: int, payload: bytes = b"", timeout: float | None = None, *, version: int = VERSION) -> Frame:
        """Send one request; return the reply with its sequence number.

        If the link garbles the exchange (the device answers "unreadable", or
        bytes arrive that are not a frame), our reply gets a short grace and
        then LinkGarbled with the link status (BAD_CRC, BAD_COBS, ...) is
        raised: the caller may simply send again (requests are idempotent)."""
        self._seq = (self._seq + 1) % NO_SEQ
        seq = self._seq
        wire = encode_frame(command, seq, payload, version=version)
        self.write_raw(wire + b"\x00")  # a second zero: the frame still ends if the link loses one
        deadline = time.monotonic() + (timeout or self.timeout)
        garbled: Frame | FrameError | None = None  # the first sign the link garbled something
        while True:
            try:
                got = self._next(deadline)
            except DeviceTimeout:
                if garbled is None:
                    raise
                if isinstance(garbled, Frame):
                    raise LinkGarbled(garbled.status, "the device could not read the request: "
                                      + garbled.json().get("detail", ""), garbled) from None
                raise LinkGarbled(garbled.status, f"garbled reply: {garbled}") from None
            if isinstance(got, Frame) and got.seq == seq:
                self.last_wire_bytes = (len(wire), len(encode_frame(got.type, got.seq, got.payload, got.status,
                                                                    got.version)))
                return got
            self.stray.append(got)
            if garbled is None and (isinstance(got, FrameError) or (got.type == UNREADABLE and got.seq == NO_SEQ)):
                garbled = got  # give our own reply a short while, then report this
                deadline = min(deadline, time.monotonic() + UNREADABLE_GRACE_S)

    def call(self, command: Command, payload: bytes = b"", timeout: float | None = None) -> Frame:
        frame = self.request(command, payload, timeout)
        if frame.status != Status.OK:
            try:
                detail = frame.json().get("detail", "")
            except ValueError:
                detail = frame.payload[:200].decode(errors="replace")
            raise DeviceError(frame.status, detail, frame)
        if frame.type != command | REPLY_BIT:
            raise DeviceError(frame.status, f"reply type 0x{frame.type:02x} to command 0x{command:02x}", frame)
        return frame

    def ping(self, data: bytes = b"") -> bytes:
        return self.call(Command.PING, data).payload

    def info(self) -> dict:
        self.info_cache = self.call(Command.INFO).json()
        return self.info_cache

    def fit(self, text: str) -> str:
        """The text as this device can take it in one frame (``clip_text``)."""
        return fit_text(text, self.info_cache or self.info())

    def tokenize(self, text: str) -> dict:
        """{"ids": [...], "n_tokens": n, "truncated": bool, <counter unit>: n}; ``truncated`` is
        also true when the host clipped off a part of the text that holds tokens."""
        sent = self.fit(text)
        reply = self.call(Command.TOKENIZE, sent.encode("utf-8")).json()
        reply["truncated"] = reply["truncated"] or gives_tokens(text[len(sent):])
        return reply

    def classify(self, text: str) -> dict:
        """CLASSIFY of ``fit(text)``; hold it against the host's answer for that same text."""
        return self.call(Command.CLASSIFY, self.fit(text).encode("utf-8")).json()

    def infer_ids(self, ids: list[int]) -> dict:
        return self.call(Command.INFER_IDS, struct.pack(f"<{len(ids)}H", *ids)).json()

    def reset(self, timeout: float | None = None) -> dict:
        """RESET, then wait for the new ready line."""
        self.call(Command.RESET)
        return self.wait_ready(timeout)
