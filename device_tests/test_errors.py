"""The protocol's error replies (firmware/PROTOCOL.md, "Errors"): every bad
input gets its status and a JSON {"error", "detail"} payload, and the board
keeps serving after each one."""

import random
import struct

import pytest

from embbert.device.protocol import Command, DeviceError, Status, cobs_encode, pack_frame

UNREADABLE, NO_SEQ = 0xFF, 0xFFFF
pytestmark = pytest.mark.bare_protocol  # MicroPython's errors: test_micropython_errors.py


def _keeps_serving(device, info):
    assert device.ping(b"still here") == b"still here"
    assert device.info()["model_sha256"] == info["model_sha256"]


def _unreadable_reply(device, status):
    """The reply to a frame the board could not read: type 0xFF, sequence 0xFFFF."""
    frame = device.read_frame()
    assert (frame.type, frame.seq, frame.status) == (UNREADABLE, NO_SEQ, status), frame
    body = frame.json()
    assert body["error"] == Status(status).name.lower() and isinstance(body["detail"], str)


def _error_reply(frame, command, status):
    assert (frame.type, frame.status) == (command | 0x80, status), frame
    assert frame.json()["error"] == Status(status).name.lower()


def _good_frame(seq=9, payload=b"hello"):
    return pack_frame(Command.PING, seq, payload)


def test_bad_crc(device, info):
    frame = bytearray(_good_frame())
    frame[6] ^= 0x20  # one payload bit
    device.write_raw(b"\x00" + cobs_encode(bytes(frame)) + b"\x00")
    _unreadable_reply(device, Status.BAD_CRC)
    _keeps_serving(device, info)


def test_bad_cobs_truncated_frame(device, info):
    device.write_raw(b"\x00" + cobs_encode(_good_frame())[:-3] + b"\x00")
    _unreadable_reply(device, Status.BAD_COBS)
    _keeps_serving(device, info)


def test_short_frame(device, info):
    device.write_raw(b"\x00" + cobs_encode(b"\x01\x01") + b"\x00")
    _unreadable_reply(device, Status.SHORT_FRAME)
    _keeps_serving(device, info)


def test_garbage_then_a_good_request(device, info):
    """Noise with no zero in it: the next request's leading zero ends it (one
    error reply for the noise), and the request itself is served."""
    rng = random.Random(0)
    before = len(device.stray)
    device.write_raw(bytes(rng.randrange(1, 256) for _ in range(300)))
    assert device.ping(b"after noise") == b"after noise"
    noise_replies = [s.status for s in device.stray[before:] if getattr(s, "status", None) is not None]
    assert set(noise_replies) & {Status.BAD_COBS, Status.BAD_CRC, Status.SHORT_FRAME}, noise_replies
    _keeps_serving(device, info)


def test_oversized_frame(device, info):
    device.write_raw(b"\x00" + b"\x7f" * 5000 + b"\x00")  # more than the receive buffer
    _unreadable_reply(device, Status.OVERSIZED_FRAME)
    with pytest.raises(DeviceError) as e:  # a well-formed frame whose payload is over the limit
        device.call(Command.TOKENIZE, b"x" * (info["max_payload_bytes"] + 1))
    assert e.value.status == Status.OVERSIZED_FRAME
    _keeps_serving(device, info)


def test_bad_version(device, info):
    reply = device.request(Command.PING, b"v2", version=2)
    assert (reply.type, reply.status) == (UNREADABLE, Status.BAD_VERSION)  # request's seq: request() matched it
    assert reply.json()["error"] == "bad_version"
    _keeps_serving(device, info)


@pytest.mark.parametrize("command", [0x00, 0x07, 0x42, 0x7F])
def test_unknown_command(device, info, command):
    _error_reply(device.request(command, b"payload"), command, Status.UNKNOWN_COMMAND)
    _keeps_serving(device, info)


def _bad_infer_payloads(info):
    L, vocab = info["max_len"], info["vocab_size"]
    return {
        "empty": b"",
        "one id": struct.pack("<H", 2),
        "odd byte count": b"\x02\x00\x04",
        "id = vocab_size": struct.pack("<3H", 2, vocab, 4),
        "id 0xFFFF": struct.pack("<3H", 2, 0xFFFF, 4),
        "max_len + 1 ids": struct.pack(f"<{L + 1}H", 2, *[5] * (L - 1), 4),
    }


@pytest.mark.parametrize("case", ["empty", "one id", "odd byte count", "id = vocab_size", "id 0xFFFF",
                                  "max_len + 1 ids"])
def test_infer_ids_bad_argument(device, info, case):
    _error_reply(device.request(Command.INFER_IDS, _bad_infer_payloads(info)[case]), Command.INFER_IDS,
                 Status.BAD_ARGUMENT)
    _keeps_serving(device, info)


@pytest.mark.parametrize("command", [Command.TOKENIZE, Command.CLASSIFY])
@pytest.mark.parametrize("text", [b"bad \xff byte", b"overlong \xc0\xaf", b"surrogate \xed\xa0\x80",
                                  b"above U+10FFFF \xf4\x90\x80\x80", b"cut \xe2\x82"],
                         ids=["ff", "overlong", "surrogate", "above-max", "cut"])
def test_non_utf8_text(device, info, command, text):
    _error_reply(device.request(command, text), command, Status.BAD_UTF8)
    _keeps_serving(device, info)
