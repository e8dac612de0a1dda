"""convert/rewrites/offline_plan.py: the plan stored as TFLite-Micro's offline
memory plan, which TFLite-Micro then uses (its arena head is the planned size)."""

import numpy as np
from rewrite_graphs import ROOM, assert_same_logits

from embbert.convert.arena import allocations
from embbert.convert.rewrites import offline_plan
from embbert.convert.tflite_model import TfliteModel


def test_tflite_micro_uses_the_stored_plan_and_logits_stay(converter_graph):
    model, batch = converter_graph("embbert")
    mm = TfliteModel(model)
    planned = offline_plan.write(mm)
    new = mm.pack()
    read = TfliteModel(new)
    md = [m for m in read.m.metadata if m.name == offline_plan.OFFLINE_PLAN.encode()]
    assert len(md) == 1
    data = np.frombuffer(np.asarray(read.m.buffers[md[0].buffer].data, np.uint8).tobytes(), "<i4")
    n = len(read.g.tensors)
    assert list(data[:3]) == [0, 1, n] and len(data) == 3 + n
    assert all((data[3 + t] == -1) == (read.const(t) is not None) for t in range(n))
    assert allocations(new, ROOM)["head"] == planned < allocations(model, ROOM)["head"]
    assert_same_logits(model, new, batch)
    offline_plan.strip(read)  # a stored plan can be taken out again
    assert not any(m.name == offline_plan.OFFLINE_PLAN.encode() for m in read.m.metadata or [])
