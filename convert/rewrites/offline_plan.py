"""The arena plan stored as TFLite-Micro's offline memory plan.

Model metadata "OfflineMemoryAllocation" (micro/docs/memory_management.md):
version, subgraphs, n, then one offset per tensor, -1 for constants. TFLite-
Micro's planner then uses these offsets instead of its own, with the reuse
convert/arena_plan.py adds and TFLite-Micro's own planner does not (a RESHAPE
output shares its input's bytes; so does the output of an int8 ADD, MUL,
LOGISTIC or SOFTMAX and an input of the same shape that dies there).
"""

from __future__ import annotations

import numpy as np

from ..arena_plan import plan, tflite_graph
from ..tflite_model import TfliteModel

OFFLINE_PLAN = "OfflineMemoryAllocation"


def strip(mm: TfliteModel) -> None:
    """Drop a plan already in the model: it names tensors by index, which the rewrites renumber."""
    mm.m.metadata = [m for m in mm.m.metadata or [] if m.name != OFFLINE_PLAN.encode()] or None


def write(mm: TfliteModel) -> int:
    """Plan the ops in file order and store the plan; returns the planned arena bytes."""
    s = mm.s
    p = plan(tflite_graph(mm))
    offsets = p.offsets
    n = len(mm.g.tensors)
    data = np.array([0, 1, n] + [offsets.get(t, -1) for t in range(n)], dtype="<i4")
    buf = s.BufferT()
    buf.data = np.frombuffer(data.tobytes(), np.uint8)
    mm.m.buffers.append(buf)
    md = s.MetadataT()
    md.name = OFFLINE_PLAN.encode()
    md.buffer = len(mm.m.buffers) - 1
    mm.m.metadata = [m for m in (mm.m.metadata or []) if m.name != md.name] + [md]
    return p.total
