"""Real graphs for the rewrite tests (tests/test_rewrite_*.py): the converter's
own int8 flatbuffer, before convert/optimize.py, of a smoke-sized model with
random weights, and real sentences to run it on; one conversion per family per
session. `assert_same_logits` is the proof each rewrite must pass: host
TFLite-Micro's int8 logits, bit for bit."""

import numpy as np
from test_aot import FAMILIES
from test_convert import _make_run

from embbert.data import load_task
from embbert.tokenizer import encode, load_tokenizer

ROOM = 4 << 20  # arena for host TFLite-Micro: enough for these models, planned or not
_RAW: dict[str, tuple[bytes, list[np.ndarray]]] = {}


def converter_model(family: str, tmp_path_factory) -> tuple[bytes, list[np.ndarray]]:
    """(flatbuffer straight from the converter, 24 padded sentences) of FAMILIES[family]."""
    if family not in _RAW:
        from embbert.convert import export, quantize, source
        from embbert.convert.parity import padded

        cfg = FAMILIES[family]
        root = tmp_path_factory.mktemp("rewrites")
        run = _make_run(root / "run", cfg, seed=3)
        texts = [e.text for e in load_task("sms_spam", seed=0).test[:24]]
        L = cfg.max_len
        batch = [padded(s, L) for s in encode(load_tokenizer(run / "tokenizer.json"), texts, L)]
        export.to_onnx(export.exportable(source.load_run(run).model), L, root / "m.onnx")
        raw = quantize.quantize(quantize.onnx_to_saved_model(root / "m.onnx", root / "sm"), batch[:12])
        _RAW[family] = raw, batch
    return _RAW[family]


def op_counts(model) -> dict[str, int]:
    """Ops by kind of a TfliteModel."""
    kinds = [model.kind(op) for op in model.ops]
    return {k: kinds.count(k) for k in sorted(set(kinds))}


def assert_same_logits(before: bytes, after: bytes, batch: list[np.ndarray]) -> None:
    from embbert.convert.parity import run_micro

    ref = run_micro(before, batch, ROOM)
    assert len({tuple(r) for r in ref}) > 3  # the sentences really differ
    assert np.array_equal(run_micro(after, batch, ROOM), ref)
