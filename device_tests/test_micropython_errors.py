"""MicroPython's `embbert` module (--runtime micropython): bad arguments raise
TypeError or ValueError on the board, with a clear message; the REPL answers
after each, and the next classify gives the same logits as before."""

import random

import pytest

from embbert.micropython.board import BoardException

pytestmark = pytest.mark.micropython
TEXT = "Congratulations! You have won a free prize, call now to claim it."


def _bad_calls(info):
    L, top = info["max_len"], info["vocab_size"] - 1
    return [
        ("embbert.classify(5)", "TypeError", "text must be str, not int"),
        ("embbert.tokenize(b'hi')", "TypeError", "text must be str, not bytes"),
        ("embbert.classify('x' * 5000)", "ValueError", f"text is 5000 bytes; at most {info['max_text_bytes']}"),
        (f"embbert.logits([2, {top + 1}, 4])", "ValueError",
         f"id {top + 1} at index 1 is outside the vocabulary (0..{top})"),
        ("embbert.logits(b'\\x02')", "ValueError", f"1 ids; the model takes 2..{L} ([CLS] ... [SEP])"),
        (f"embbert.logits([2] * {L + 1})", "ValueError", f"{L + 1} ids; the model takes 2..{L} ([CLS] ... [SEP])"),
        ("embbert.logits(3.5)", "TypeError",
         "ids must be a buffer of integers (array('H'), bytes) or a list, not float"),
        ("embbert.logits('ab')", "TypeError", "ids must be token ids, not str: embbert.logits(embbert.tokenize(text))"),
    ]


def test_bad_arguments_are_python_exceptions(device, info):
    before = device.classify(TEXT)["logits"]
    for code, type_, message in _bad_calls(info):
        with pytest.raises(BoardException) as raised:
            device.exec(code)
        assert (raised.value.type, raised.value.message) == (type_, message), code
        assert device.eval("1 + 1") == 2
    assert device.classify(TEXT)["logits"] == before


def test_fuzzed_calls_always_raise(device, info, sample_size):
    """Random types, lengths and ids: an exception every time, never a crash."""
    values = ["None", "3", "2.5", "'é' * 2000", "[]", "()", "{}", f"[2] * {info['max_len'] + 1}", "bytearray(1)",
              "[2, -3, 4]", f"[2, {info['vocab_size']}, 4]", "[2, 2 ** 40, 4]", "object()", "[2, 'a', 4]"]
    rng = random.Random(0)
    before = device.classify(TEXT)["logits"]
    for _ in range(10 * sample_size):
        code = f"embbert.{rng.choice(['classify', 'tokenize', 'logits'])}({rng.choice(values)})"
        with pytest.raises(BoardException):
            device.exec(code)
    assert device.eval("1 + 1") == 2 and device.classify(TEXT)["logits"] == before
