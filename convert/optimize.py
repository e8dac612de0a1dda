"""Rewrite the converter's int8 flatbuffer into what TFLite-Micro runs best.

Every rewrite keeps each op's int8 arithmetic, so TFLite-Micro's logits do not
change by a bit (only the op list, the file and the arena do):

- onnx2tf guards every GATHER against negative indices: LESS(ids, 0) -> CAST
  -> MUL(table rows) -> ADD(ids, .) in int32. Token ids are never negative (the
  ids input is documented as 0 <= id < vocab), so GATHER reads ids directly.
- onnx2tf emits the depthwise conv as a grouped CONV_2D (filter
  [C, kh, kw, 1], C input channels). It becomes DEPTHWISE_CONV_2D (filter
  [1, kh, kw, C], per-channel scales on axis 3): both kernels compute, per
  output channel, the same int32 sum and the same per-channel requantization.
- A chain of TRANSPOSE / RESHAPE ops that moves no element (onnx2tf's NCHW
  detours: transpose, reshape, transpose back) becomes one RESHAPE.
- Ops whose outputs nobody reads, and the tensors, buffers and operator
  codes left unused, are dropped (opcode indices renumbered).
- A tensor read again long after it was transposed is transposed back from
  its transpose instead of being kept (only where the planned arena shrinks).
- The ops are reordered: TFLite-Micro runs them in file order and plans the
  arena from each tensor's first and last use, and the converter's order keeps
  tensors alive for longer than needed. Several topological orders are planned
  with TFLite-Micro's greedy planner (simulated here) and the smallest is kept;
  any topological order computes the same tensors.
- The plan is stored in the model as TFLite-Micro's offline memory plan
  (metadata "OfflineMemoryAllocation", micro/docs/memory_management.md), with
  the reuse convert/aot also does and TFLite-Micro's own planner does not: a
  RESHAPE output shares its input's bytes, and so does the output of an int8
  ADD, MUL, LOGISTIC or SOFTMAX and an input of the same shape that dies there.
  TFLite-Micro's reference kernels read each input element before they write
  the output element of the same index (softmax: a row's max and sum first);
  `optimize_checked` runs the converter's model and the rewritten one on real
  inputs and keeps the rewrites only if the int8 logits are identical. An optimized kernel
  library (CMSIS-NN, ESP-NN) must be checked the same way on its target.
"""

from __future__ import annotations

import copy

import numpy as np

from .rewrites import dead, depthwise_convs, layout_chains, negative_index_guards, transposes_again
from .rewrites import offline_plan as _offline_plan
from .rewrites import schedule as _schedule
from .tflite_model import TfliteModel


# ---------------------------------------------------------------- rewrites

# ---------------------------------------------------------------- BATCH_MATMUL

def _explicit_rhs_transposes(mm: TfliteModel) -> int:
    """BATCH_MATMUL(a, b, adj_y=False) with a computed b -> TRANSPOSE(b) then adj_y=True.

    TFLite-Micro transposes such a right-hand side itself, into a PERSISTENT
    buffer of b's size per op (batch_matmul.cc), and then runs the same kernel
    on it. As an op of the graph the transposed copy lives in the planned
    arena, only while it is needed."""
    s = mm.s
    n = 0
    for op in list(mm.g.operators):
        if mm.kind(op) != "BATCH_MATMUL" or op.builtinOptions.adjY or op.builtinOptions.adjX:
            continue
        b = int(op.inputs[1])
        if mm.const(b) is not None:
            continue
        shape = mm.shape(b)
        perm = np.arange(len(shape), dtype=np.int32)
        perm[-2], perm[-1] = perm[-1], perm[-2]
        src = mm.tensor(b)
        t = s.TensorT()
        t.name = src.name + b"/transposed"
        t.shape = np.array([*shape[:-2], shape[-1], shape[-2]], dtype=np.int32)
        t.type = src.type
        t.buffer = 0
        t.quantization = copy.deepcopy(src.quantization)
        mm.g.tensors.append(t)
        bt = len(mm.g.tensors) - 1
        tr = s.OperatorT()
        tr.opcodeIndex = mm.opcode("TRANSPOSE", 2)
        tr.inputs = np.array([b, mm.add_const(t.name.decode() + "/perm", perm)], dtype=np.int32)
        tr.outputs = np.array([bt], dtype=np.int32)
        tr.builtinOptionsType = s.BuiltinOptions.TransposeOptions
        tr.builtinOptions = s.TransposeOptionsT()
        mm.g.operators.insert(mm.g.operators.index(op), tr)
        op.inputs = np.array([int(op.inputs[0]), bt], dtype=np.int32)
        op.builtinOptions.adjY = True
        n += 1
    return n


OFFLINE_PLAN_KEY = "offline_plan_bytes"


def optimize(model: bytes, schedule: bool = True, offline_plan: bool = True) -> tuple[bytes, dict]:
    """The rewritten flatbuffer and what was done."""
    mm = TfliteModel(model)
    if mm.subgraphs != 1:
        return model, {}
    _offline_plan.strip(mm)
    report = {"negative_index_guards": negative_index_guards.rewrite(mm),
              "depthwise_convs": depthwise_convs.rewrite(mm),
              "layout_chains": layout_chains.rewrite(mm),
              "rhs_transposes": _explicit_rhs_transposes(mm)}
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

    room = ROOM
    ref = run_micro(model, sample, room)
    planned, report = optimize(model)
    if np.array_equal(run_micro(planned, sample, room), ref):
        return planned, {**report, "checked_inputs": len(sample)}
    unplanned, report = optimize(model, offline_plan=False)
    if np.array_equal(run_micro(unplanned, sample, room), ref):
        return unplanned, {**report, "checked_inputs": len(sample), "offline_plan_dropped": 1}
    return model, {"rewrites_dropped": 1}


ROOM = 64 << 20  # arena for the checks: enough for any model here, planned or not
