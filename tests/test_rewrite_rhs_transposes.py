"""convert/rewrites/rhs_transposes.py on the converter's own BERT graph (its
attention's BATCH_MATMUL reads a computed right-hand side without adj_y)."""

from rewrite_graphs import assert_same_logits, op_counts

from embbert.convert.rewrites import rhs_transposes
from embbert.convert.tflite_model import TfliteModel


def test_computed_rhs_is_transposed_by_an_op_and_logits_stay(converter_graph):
    model, batch = converter_graph("bert")
    mm = TfliteModel(model)
    before = op_counts(mm)
    n = rhs_transposes.rewrite(mm)
    assert n >= 1
    assert op_counts(mm)["TRANSPOSE"] == before.get("TRANSPOSE", 0) + n
    for op in mm.ops:
        if mm.kind(op) == "BATCH_MATMUL" and mm.const(int(op.inputs[1])) is None:
            assert mm.options(op)["adjY"]
    assert_same_logits(model, mm.pack(), batch)
