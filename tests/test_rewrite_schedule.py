"""convert/rewrites/schedule.py: the op order with the smallest planned arena."""

from rewrite_graphs import assert_same_logits

from embbert.convert.arena_plan import plan, tflite_graph
from embbert.convert.rewrites import schedule
from embbert.convert.tflite_model import TfliteModel


def test_reordered_ops_plan_smaller_and_logits_stay(converter_graph):
    model, batch = converter_graph("embbert")
    mm = TfliteModel(model)
    figures = schedule.schedule(mm)
    assert figures["planned_bytes"] < figures["planned_bytes_converter_order"]
    g = tflite_graph(mm)
    assert schedule.valid(g, list(range(len(g.kinds)))) and plan(g).total == figures["planned_bytes"]
    assert_same_logits(model, mm.pack(), batch)


def test_toposort_restores_a_valid_order(converter_graph):
    model, batch = converter_graph("embbert")
    mm = TfliteModel(model)
    mm.g.operators = mm.g.operators[::-1]
    g = tflite_graph(mm)
    assert not schedule.valid(g, list(range(len(g.kinds))))
    schedule.toposort(mm)
    g = tflite_graph(mm)
    assert schedule.valid(g, list(range(len(g.kinds))))
    assert_same_logits(model, mm.pack(), batch)
