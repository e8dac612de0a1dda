"""The on-device tokenizer (firmware/src/tokenizer.cc), built for the host
with g++: the same ids as HF tokenizers on every test sentence of the five
tasks, on random Unicode, at every truncation length."""

import json
import random

import pytest

from embbert.data import TASKS, load_task
from embbert.device.host_tokenizer import build_host_tokenizer
from embbert.device.tokenizer_tables import NORM_DROP, NORM_SPACE, build_tables, norm_value, render_cc
from embbert.errors import UserError
from embbert.tokenizer import default_tokenizer, encode


@pytest.fixture(scope="module")
def hf():
    return default_tokenizer()


@pytest.fixture(scope="module")
def host(hf, tmp_path_factory):
    return build_host_tokenizer(hf[1], tmp_path_factory.mktemp("hosttok"))


@pytest.mark.parametrize("task", TASKS)
def test_parity_on_every_test_sentence(task, hf, host):
    texts = [e.text for e in load_task(task).test]
    got = host.encode(texts, 256)
    expected = encode(hf[0], texts, 256)
    mismatches = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ, first: {texts[mismatches[0]][:120]!r}"


def _random_texts(n, seed=0):
    rng = random.Random(seed)
    pools = [range(0x20, 0x7F), range(0, 0x20), range(0x80, 0x250), range(0x300, 0x370), range(0x370, 0x400),
             range(0xAC00, 0xAC40), range(0x1F600, 0x1F650), range(0x0898, 0x08A0),
             [0x2000, 0x2126, 0x212B, 0x1E9B, 0xFB01, 0xFEFF, 0x200B, 0x0D7F, 0x7F]]
    texts = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(0, 60)):
            pool = rng.choice(pools) if rng.random() < 0.5 else pools[0]
            cp = rng.choice(pool)
            chars.append(chr(cp))
        texts.append("".join(chars))
    return texts


@pytest.mark.parametrize("max_len", [2, 3, 8, 256])
def test_parity_on_random_unicode(max_len, hf, host):
    texts = _random_texts(5000, seed=max_len)
    assert host.encode(texts, max_len) == encode(hf[0], texts, max_len)


def test_truncation_flag_and_bad_utf8(host):
    lines = host.run(["a b c d e", "a b", ""], 5)
    assert lines[0].endswith(" T") and not lines[1].endswith("T")
    assert lines[2] == "2 4"  # [CLS] [SEP]
    # invalid UTF-8 is refused with the byte offset (the device answers bad_utf8)
    import struct
    import subprocess
    for bad, offset in [(b"ok \xff", 3), (b"\xc3", 0), (b"\xed\xa0\x80", 0), (b"\xc0\xaf", 0), (b"ab\xf4\x90\x80\x80", 2)]:
        proc = subprocess.run([str(host.exe), "256"], input=struct.pack("<I", len(bad)) + bad, capture_output=True)
        assert proc.stdout.decode().strip() == f"E 1 {offset}", bad


def test_norm_table_follows_the_tokenizers_normalizer(hf):
    tables = build_tables(hf[1])
    runs = [(r >> 8, r & 0xFF) for r in tables.norm_runs]
    assert runs[0][0] == 0x80 and all(a[0] < b[0] for a, b in zip(runs, runs[1:]))
    lookup = dict(runs)
    normalizer = hf[0].normalizer
    starts = sorted(lookup)
    import bisect
    rng = random.Random(3)
    for cp in [0xE9, 0x301, 0x212B, 0xAC00, 0x1F600, 0x898] + [rng.randrange(0x80, 0x110000) for _ in range(3000)]:
        if 0xD800 <= cp < 0xE000:
            continue
        value = lookup[starts[bisect.bisect_right(starts, cp) - 1]]
        assert value == norm_value(normalizer.normalize_str(chr(cp))), hex(cp)
    assert lookup[starts[bisect.bisect_right(starts, 0x301) - 1]] == NORM_DROP
    assert lookup[starts[bisect.bisect_right(starts, 0x4E00) - 1]] == NORM_SPACE
    assert len(tables.norm_runs) < 1000 and len(tables.merge_keys) == 8192 - 5 - 136
    assert "kMergeKeys" in render_cc(tables)


def test_unsupported_tokenizer_is_refused(hf, tmp_path):
    spec = json.loads(hf[1].read_text())
    spec["normalizer"] = {"type": "NFKC"}
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps(spec))
    with pytest.raises(UserError, match="cannot run on the device: unsupported normalizer"):
        build_tables(bad)
