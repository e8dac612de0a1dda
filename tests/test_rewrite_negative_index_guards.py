"""convert/rewrites/negative_index_guards.py on the converter's own EmbBERT graph."""

from rewrite_graphs import assert_same_logits, op_counts

from embbert.convert.rewrites import dead, negative_index_guards
from embbert.convert.tflite_model import TfliteModel


def test_gather_reads_the_ids_directly_and_logits_stay(converter_graph):
    model, batch = converter_graph("embbert")
    mm = TfliteModel(model)
    assert {"LESS", "CAST"} <= set(op_counts(mm))
    assert negative_index_guards.rewrite(mm) == 1
    ids = mm.inputs[0]
    assert any(mm.kind(op) == "GATHER" and int(op.inputs[1]) == ids for op in mm.ops)
    assert_same_logits(model, mm.pack(), batch)
    dead.drop(mm)  # the guard is left unread
    assert not {"LESS", "CAST"} & set(op_counts(mm))
    assert_same_logits(model, mm.pack(), batch)
