"""convert/rewrites/dead.py: what the other rewrites leave unread goes, indices renumbered."""

from rewrite_graphs import assert_same_logits, op_counts

from embbert.convert.rewrites import dead, negative_index_guards
from embbert.convert.tflite_model import TfliteModel


def test_unread_ops_tensors_buffers_and_codes_go_and_logits_stay(converter_graph):
    model, batch = converter_graph("embbert")
    mm = TfliteModel(model)
    negative_index_guards.rewrite(mm)  # leaves LESS, CAST, their MUL and ADD unread
    ops, tensors, buffers = len(mm.ops), len(mm.g.tensors), len(mm.m.buffers)
    dead.drop(mm)
    assert not {"LESS", "CAST"} & set(op_counts(mm))
    assert len(mm.ops) < ops and len(mm.g.tensors) < tensors and len(mm.m.buffers) < buffers
    # every operator code, tensor and buffer left is used
    assert sorted({op.opcodeIndex for op in mm.ops}) == list(range(len(mm.m.operatorCodes)))
    used = {int(t) for op in mm.ops for t in (*op.inputs, *op.outputs) if t >= 0} | set(mm.inputs) | set(mm.outputs)
    assert used == set(range(len(mm.g.tensors)))
    assert {0} | {t.buffer for t in mm.g.tensors} | {md.buffer for md in mm.m.metadata or []} \
        == set(range(len(mm.m.buffers)))
    assert_same_logits(model, mm.pack(), batch)
