"""convert/rewrites/layout_chains.py on the converter's own EmbBERT graph."""

import pytest
from rewrite_graphs import assert_same_logits, converter_model, op_counts

from embbert.convert.rewrites import dead, layout_chains
from embbert.convert.tflite_model import TfliteModel


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return converter_model("embbert", tmp_path_factory)


def test_chains_that_move_nothing_become_one_reshape_and_logits_stay(raw):
    model, batch = raw
    mm = TfliteModel(model)
    before = op_counts(mm)
    folded = layout_chains.rewrite(mm)
    assert folded >= 1
    dead.drop(mm)
    after = op_counts(mm)
    assert after["TRANSPOSE"] < before["TRANSPOSE"]
    assert sum(after.values()) < sum(before.values())
    assert_same_logits(model, mm.pack(), batch)


def test_moves_nothing_tells_a_real_transpose_from_a_detour(raw):
    mm = TfliteModel(raw[0])
    transposes = [op for op in mm.ops if mm.kind(op) == "TRANSPOSE"]
    moving = [op for op in transposes if not layout_chains.moves_nothing(mm, [op], int(op.inputs[0]))]
    assert moving  # the attention's transposes really move elements
