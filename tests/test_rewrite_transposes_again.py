"""convert/rewrites/transposes_again.py on the converter's own EmbBERT graph
(h is read again after the attention, whose value input is h^T)."""

from rewrite_graphs import assert_same_logits

from embbert.convert.rewrites import dead, schedule, transposes_again
from embbert.convert.tflite_model import TfliteModel


def test_late_readers_read_the_transpose_back_and_logits_stay(converter_graph):
    model, batch = converter_graph("embbert")
    mm = TfliteModel(model)
    n = transposes_again.rewrite(mm)
    assert n >= 1
    again = [t for t in range(len(mm.g.tensors)) if mm.name(t).endswith(transposes_again.AGAIN)]
    assert len(again) == n
    readers = mm.consumers()
    assert all(readers.get(t) for t in again)
    position = {id(op): k for k, op in enumerate(mm.ops)}  # still a valid file order
    producer = mm.producers()
    assert all(position[id(producer[int(t)])] < position[id(op)]
               for op in mm.ops for t in op.inputs if int(t) in producer)
    assert_same_logits(model, mm.pack(), batch)
    dead.drop(mm)
    schedule.schedule(mm)
    assert_same_logits(model, mm.pack(), batch)
