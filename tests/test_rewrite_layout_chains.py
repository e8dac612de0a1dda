"""convert/rewrites/layout_chains.py on the converter's own EmbBERT graph."""

from rewrite_graphs import assert_same_logits, op_counts

from embbert.convert.rewrites import dead, layout_chains
from embbert.convert.tflite_model import TfliteModel


def test_chains_that_move_nothing_become_one_reshape_and_logits_stay(converter_graph):
    model, batch = converter_graph("embbert")
    mm = TfliteModel(model)
    before = op_counts(mm)
    folded = layout_chains.rewrite(mm)
    assert folded >= 1
    dead.drop(mm)
    after = op_counts(mm)
    assert after["TRANSPOSE"] < before["TRANSPOSE"]
    assert sum(after.values()) < sum(before.values())
    assert_same_logits(model, mm.pack(), batch)


def test_moves_nothing_tells_a_real_transpose_from_a_detour(converter_graph):
    mm = TfliteModel(converter_graph("embbert")[0])
    transposes = [op for op in mm.ops if mm.kind(op) == "TRANSPOSE"]
    moving = [op for op in transposes if not layout_chains.moves_nothing(mm, [op], int(op.inputs[0]))]
    assert moving  # the attention's transposes really move elements
