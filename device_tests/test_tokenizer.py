"""The board's tokenizer against the host's (HF tokenizers with the artifact's
tokenizer.json), on a fixed sample of real test sentences of each built-in
task. tests/test_firmware.py covers whole test splits on the emulator."""

import pytest
from .support import sample

from embbert.data import TASKS, load_task
from embbert.tokenizer import encode


def _compare(device, tokenizer, texts, max_len):
    got = [device.tokenize(t) for t in texts]
    want = encode(tokenizer, texts, max_len)
    bad = [(t[:80], g["ids"][:12], w[:12]) for t, g, w in zip(texts, got, want) if g["ids"] != w]
    assert not bad, f"{len(bad)} of {len(texts)} differ; first: {bad[0]}"
    micropython = type(device).__module__.startswith("embbert.micropython")  # tokenize() gives the ids only
    for text, g, w in zip(texts, got, want):
        assert g["n_tokens"] == len(w), text[:80]
        if not micropython:
            full = len(tokenizer.encode(text, add_special_tokens=False).ids)  # the whole text's tokens
            assert g["truncated"] is (full > max_len - 2), text[:80]
    return got


@pytest.mark.parametrize("task", TASKS)
def test_tokenize_matches_host_on_real_sentences(device, info, host_tokenizer, sample_size, task, figures):
    texts = [e.text for e in sample(load_task(task).test, sample_size, f"device-tests tokenizer {task}")]
    got = _compare(device, host_tokenizer, texts, info["max_len"])
    key = "TOKENIZE equal to the host tokenizer"
    figures[key] = figures.get(key, 0) + len(texts)
    assert all(g[info["counter"]] > 0 for g in got)  # every reply is timed in the board's unit


def test_tokenize_edge_cases(device, info, host_tokenizer):
    L = info["max_len"]
    texts = ["", "   ", "Héllo wörld — naïve café ½ 한국어 😀", "x" + "\u0301" * 50, "word " * (L + 10),
             "A" * 300, "tab\tand\nnewline\r\nend", "!!!???...,,,"]
    got = _compare(device, host_tokenizer, texts, L)
    assert got[4].get("truncated", True) and got[4]["n_tokens"] == L
    assert not got[0].get("truncated", False) and got[0]["ids"] == [2, 4]  # [CLS] [SEP]
