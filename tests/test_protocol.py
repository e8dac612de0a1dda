"""The serial protocol's host side: CRC-32, COBS, frames, text clipping."""

import random
import struct
import zlib

import pytest

from embbert.device.protocol import (
    Command, FrameError, Status, clip_text, cobs_decode, cobs_encode, crc32, decode_frame, encode_frame, pack_frame,
)


def test_crc32_check_value_and_zlib():
    assert crc32(b"") == 0
    assert crc32(b"123456789") == 0xCBF43926  # the CRC-32/ISO-HDLC check value
    rng = random.Random(1)
    for n in (1, 2, 3, 255, 1000):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc32(data) == zlib.crc32(data)
        assert crc32(data[n // 2:], crc32(data[:n // 2])) == zlib.crc32(data)  # incremental


@pytest.mark.parametrize("raw, encoded", [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(1, 255)) + b"\x00", b"\xff" + bytes(range(1, 255)) + b"\x01\x01"),
])
def test_cobs_vectors(raw, encoded):
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


def test_cobs_round_trip_random():
    rng = random.Random(2)
    for _ in range(300):
        data = bytes(rng.choice([0, 0, 1, 255, rng.randrange(256)]) for _ in range(rng.randrange(0, 1200)))
        encoded = cobs_encode(data)
        assert 0 not in encoded
        assert len(encoded) <= len(data) + len(data) // 254 + 1
        assert cobs_decode(encoded) == data


def test_frame_round_trip_and_layout():
    wire = encode_frame(Command.TOKENIZE, 0x1234, "héllo".encode())
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    frame = decode_frame(wire[1:-1])
    assert (frame.version, frame.type, frame.seq, frame.status) == (1, 0x03, 0x1234, 0)
    assert frame.payload == "héllo".encode()
    raw = pack_frame(Command.PING, 7, b"ab")
    assert raw[:5] == bytes([1, 1, 7, 0, 0]) and raw[5:7] == b"ab"
    assert struct.unpack("<I", raw[-4:])[0] == zlib.crc32(raw[:-4])


def test_bad_frames_are_classified():
    good = cobs_encode(pack_frame(Command.PING, 1, b"payload"))
    with pytest.raises(FrameError) as e:
        decode_frame(good[:-3])  # truncated: COBS length no longer adds up, or CRC fails
    assert e.value.status in (Status.BAD_COBS, Status.BAD_CRC)
    flipped = bytearray(pack_frame(Command.PING, 1, b"payload"))
    flipped[6] ^= 0x01  # one bit of the payload
    with pytest.raises(FrameError) as e:
        decode_frame(cobs_encode(bytes(flipped)))
    assert e.value.status == Status.BAD_CRC
    with pytest.raises(FrameError) as e:
        decode_frame(cobs_encode(b"\x01\x01\x00"))
    assert e.value.status == Status.SHORT_FRAME
    with pytest.raises(FrameError) as e:
        decode_frame(b"\x09abc")
    assert e.value.status == Status.BAD_COBS


def test_clip_text_keeps_the_truncated_ids():
    from embbert.data import load_task
    from embbert.tokenizer import default_tokenizer, encode

    tok, _ = default_tokenizer()
    texts = [e.text for e in load_task("news20").test[:400]]
    clipped = [clip_text(t, 256, 2048) for t in texts]
    assert sum(len(c) < len(t) for c, t in zip(clipped, texts)) > 50  # it does clip
    assert max(len(c.encode()) for c in clipped) <= 2048
    assert encode(tok, clipped, 256) == encode(tok, texts, 256)
    assert clip_text("a b c", 256, 2048) == "a b c"


def test_clip_text_never_exceeds_the_frame():
    """Long words: the id-keeping prefix is above the frame's limit, so the cut
    is by bytes, before whitespace, or inside one giant word at a character
    boundary (issue 13: such a text got OVERSIZED_FRAME, then 301 retries)."""
    words = " ".join(f"{'supercalifragilistic' * 2}{i}" for i in range(300))  # 41-42 bytes a word
    clipped = clip_text(words, 256, 2048)
    assert len(clipped.encode()) <= 2048 and words.startswith(clipped)
    assert words[len(clipped)] == " " and len(clipped.encode()) > 2048 - 43  # the longest whole-word prefix
    giant = "é" * 3000  # 6,000 bytes, no whitespace: cut between characters
    cut = clip_text(giant, 256, 2048)
    assert cut == "é" * 1024 and len(cut.encode()) == 2048
    odd = "x" + "é" * 3000  # the byte limit falls inside a character: that character is left out
    assert clip_text(odd, 256, 2048) == "x" + "é" * 1023
    assert clip_text("a" * 2048, 256, 2048) == "a" * 2048  # exactly the limit: whole
    assert clip_text("ab cd", 256, 4) == "ab"
