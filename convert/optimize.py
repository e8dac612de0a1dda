"""Rewrite the converter's int8 flatbuffer into what TFLite-Micro runs best.

`optimize` runs the exact rewrites of convert/rewrites/ in order (each in its
own module, with its own test tests/test_rewrite_<name>.py): none changes an
op's int8 arithmetic, so TFLite-Micro's logits do not change by a bit (only the op
list, the file and the arena do). Then the op order with the smallest planned
arena (rewrites/schedule.py), and that plan stored as TFLite-Micro's offline
memory plan (rewrites/offline_plan.py, planned by convert/arena_plan.py, with
in-place ops that TFLite-Micro's own planner does not use).

TFLite-Micro's reference kernels read each input element before they write the
output element of the same index (softmax: a row's max and sum first);
`optimize_checked` runs the converter's model and the rewritten one on real
inputs and keeps the rewrites only if the int8 logits are identical. An
optimized kernel library (CMSIS-NN, ESP-NN) must be checked the same way on
its target.
"""

from __future__ import annotations

import numpy as np

from .rewrites import dead, depthwise_convs, layout_chains, negative_index_guards, rhs_transposes, transposes_again
from .rewrites import offline_plan as _offline_plan
from .rewrites import schedule as _schedule
from .tflite_model import TfliteModel

OFFLINE_PLAN_KEY = "offline_plan_bytes"
ROOM = 64 << 20  # arena for the checks: enough for any model here, planned or not


def optimize(model: bytes, schedule: bool = True, offline_plan: bool = True) -> tuple[bytes, dict]:
    """The rewritten flatbuffer and what was done (counts, planned bytes)."""
    mm = TfliteModel(model)
    if mm.subgraphs != 1:
        return model, {}
    _offline_plan.strip(mm)
    report = {"negative_index_guards": negative_index_guards.rewrite(mm),
              "depthwise_convs": depthwise_convs.rewrite(mm),
              "layout_chains": layout_chains.rewrite(mm),
              "rhs_transposes": rhs_transposes.rewrite(mm)}
    dead.drop(mm)
    if schedule:
        # transposes computed again: kept only where the planned arena shrinks
        again = mm.clone()
        remat = transposes_again.rewrite(again)
        figures = _schedule.schedule(mm)
        if remat:
            dead.drop(again)
            figures_again = _schedule.schedule(again)
            if figures_again["planned_bytes"] < figures["planned_bytes"]:
                mm, figures = again, figures_again
                report["transposes_again"] = remat
        report.update(figures)
    if offline_plan:
        report[OFFLINE_PLAN_KEY] = _offline_plan.write(mm)
    return mm.pack(), report


def optimize_checked(model: bytes, sample: list[np.ndarray]) -> tuple[bytes, dict]:
    """`optimize`, then the proof on the host TFLite-Micro interpreter: the
    rewritten model (offline plan and in-place ops included) must give the
    converter's own model's int8 logits, bit for bit, on `sample`. If not, the
    offline plan is left out; if that is still not it, no rewrite is kept."""
    from .parity import run_micro

    ref = run_micro(model, sample, ROOM)
    planned, report = optimize(model)
    if np.array_equal(run_micro(planned, sample, ROOM), ref):
        return planned, {**report, "checked_inputs": len(sample)}
    unplanned, report = optimize(model, offline_plan=False)
    if np.array_equal(run_micro(unplanned, sample, ROOM), ref):
        return unplanned, {**report, "checked_inputs": len(sample), "offline_plan_dropped": 1}
    return model, {"rewrites_dropped": 1}
