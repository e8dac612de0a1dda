"""convert/rewrites/dead.py: what the other rewrites leave unread goes, indices renumbered."""

import pytest
from rewrite_graphs import assert_same_logits, converter_model, op_counts

from embbert.convert.rewrites import dead, negative_index_guards
from embbert.convert.tflite_model import TfliteModel


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return converter_model("embbert", tmp_path_factory)


def test_unread_ops_tensors_buffers_and_codes_go_and_logits_stay(raw):
    model, batch = raw
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
