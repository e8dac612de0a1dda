"""The padded-key mask, made exact for a device that computes only the real tokens.

export.py masks padded keys the float way: a -MASK_BIAS added to their
scores (ADD(scores, SELECT_V2(ids == [PAD], -32, 0))). In int8 that has two
costs: the converter gives the score map one range for both, so the -32
widens it and real scores lose resolution; and a padded key keeps a small,
input-dependent share of the softmax, which a length-aware device (convert/aot,
the n real tokens only) cannot reproduce without computing it.

This rewrite, run on the converter's int8 flatbuffer (never through onnx2tf,
which has mis-transposed SELECT_V2 and MUL ops on an L x L map), replaces
each mask by two selects on the same `ids == [PAD]` condition:

    scores' = SELECT_V2(is_pad, -128, scores)     # padded keys at the int8 minimum
    probs   = SOFTMAX(scores')
    probs'  = SELECT_V2(is_pad, zero, probs)      # padded keys' weight exactly 0

- `scores` gets a quantization of its own (TFLite's min/max rule, 0
  included) over [lowest row max - MARGIN, highest score] of the real scores
  (real query rows, real key columns) on the calibration sentences, and
  `scores'` keeps it: a SELECT_V2 copies bytes.
- Every padded key of a row is then the same int8 value, -128, so the softmax
  adds the same exp term for each of them to the row's integer sum; a device
  that computes n real keys adds (L - n) times that term (kernels' Softmax,
  `padded`) and gets the row sum, hence every probability, bit for bit.
- `zero` is the softmax output's zero point (probability 0): the BATCH_MATMUL
  that follows multiplies every padded value by exactly 0, so padded keys need
  not be computed at all.

The graph's numerics change by design (GRAPH_VERSION 2): a padded key now
weighs e^(its -128 level - the row max), at most e^-MARGIN of the row's largest
term on every calibration row, instead of about e^-32.
"""

from __future__ import annotations

import copy

import numpy as np

from embbert.tokenizer import PAD_ID

from .rewrites.dead import drop as _drop_dead
from .tflite_model import TfliteModel as _Model

INT8_MIN = -128
# How far below the lowest row maximum seen in calibration the int8 minimum
# (where padded keys sit) is put: each padded key then weighs at most e^-16 of
# a row's largest term, so L - 1 of them change a probability by < 1/512 of its
# value, below the softmax output's 1/256 step. Real scores lower than that
# saturate there: they weighed less than e^-16 anyway. The rest of the range
# is the real scores' highest value: no room is spent on a -32 bias.
MARGIN = 16.0


def _quant(t) -> tuple[float, int]:
    q = t.quantization
    return float(q.scale[0]), int(q.zeroPoint[0])


def _pad_condition(mm: _Model, bias: int, prod: dict) -> int | None:
    """The bool `ids == [PAD]` tensor the mask bias is selected on, if `bias` is
    SELECT_V2(EQUAL(ids, PAD), padded value, real value) with padded < real."""
    sel = prod.get(bias)
    if sel is None or mm.kind(sel) != "SELECT_V2":
        return None
    cond, on_pad, on_real = (int(t) for t in sel.inputs)
    eq = prod.get(cond)
    a, b = mm.const(on_pad), mm.const(on_real)
    if eq is None or mm.kind(eq) != "EQUAL" or a is None or b is None or a.size != 1 or b.size != 1:
        return None
    ids, pad = (int(t) for t in eq.inputs)
    pad_value = mm.const(pad)
    if ids not in {int(t) for t in mm.g.inputs} or pad_value is None or pad_value.size != 1 \
            or int(pad_value.reshape(-1)[0]) != PAD_ID:
        return None
    (sa, za), (sb, zb) = _quant(mm.tensor(on_pad)), _quant(mm.tensor(on_real))
    if (int(a.reshape(-1)[0]) - za) * sa >= (int(b.reshape(-1)[0]) - zb) * sb:
        return None
    return cond


def find_masks(mm: _Model) -> list[tuple[object, int, int, object]]:
    """(ADD op, scores tensor, is_pad tensor, SOFTMAX op) for each masked softmax."""
    prod, users = mm.producers(), mm.consumers()
    found = []
    for op in mm.g.operators:
        if mm.kind(op) != "ADD" or mm.dtype(int(op.outputs[0])) != "INT8":
            continue
        out = int(op.outputs[0])
        readers = users.get(out, [])
        if len(readers) != 1 or mm.kind(readers[0]) != "SOFTMAX":
            continue
        for scores, bias in ((int(op.inputs[0]), int(op.inputs[1])), (int(op.inputs[1]), int(op.inputs[0]))):
            cond = _pad_condition(mm, bias, prod)
            if cond is not None and mm.shape(scores) == mm.shape(out) \
                    and mm.shape(cond)[-1:] == mm.shape(out)[-1:]:
                found.append((op, scores, cond, readers[0]))
                break
    return found


def score_ranges(model: bytes, scores: list[int], ids_batch: list[np.ndarray]) -> list[tuple[float, float]]:
    """Per score tensor, over `ids_batch` and the real query rows only: (the
    lowest row maximum, the highest score) of the real keys, dequantized, from
    LiteRT with every tensor kept."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    details = {d["index"]: d for d in interp.get_tensor_details()}
    lo = [np.inf] * len(scores)
    hi = [-np.inf] * len(scores)
    for ids in ids_batch:
        interp.set_tensor(inp, ids)
        interp.invoke()
        real = ids.reshape(-1) != PAD_ID
        for k, t in enumerate(scores):
            v = interp.get_tensor(t)[..., real]  # real keys (last axis)
            if v.shape[-2] == real.size:  # one row per query: the real ones
                v = v[..., real, :]
            scale, zp = details[t]["quantization"]
            row_max = (v.max(-1).astype(np.float64) - zp) * scale
            lo[k], hi[k] = min(lo[k], float(row_max.min())), max(hi[k], float(row_max.max()))
    return list(zip(lo, hi))


def int8_quantization(lo: float, hi: float) -> tuple[float, int]:
    """TFLite's asymmetric int8 parameters for a float range (0 always included)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        return 1.0, 0
    scale = (hi - lo) / 255.0
    zero_point = int(np.clip(np.round(INT8_MIN - lo / scale), -128, 127))
    return float(np.float32(scale)), zero_point


def _set_quant(mm: _Model, t: int, scale: float, zero_point: int) -> None:
    q = mm.tensor(t).quantization
    q.scale = np.array([scale], dtype=np.float32)
    q.zeroPoint = np.array([zero_point], dtype=np.int64)
    q.min = q.max = None


def _int8_scalar(mm: _Model, name: str, value: int, scale: float, zero_point: int) -> int:
    s = mm.s
    buf = s.BufferT()
    buf.data = np.frombuffer(np.array([value], np.int8).tobytes(), np.uint8)
    mm.m.buffers.append(buf)
    t = s.TensorT()
    t.name = name.encode()
    t.shape = np.array([], dtype=np.int32)
    t.type = s.TensorType.INT8
    t.buffer = len(mm.m.buffers) - 1
    t.quantization = s.QuantizationParametersT()
    mm.g.tensors.append(t)
    i = len(mm.g.tensors) - 1
    _set_quant(mm, i, scale, zero_point)
    return i


def _select(mm: _Model, cond: int, on_pad: int, other: int, out: int):
    s = mm.s
    op = s.OperatorT()
    op.opcodeIndex = mm.opcode("SELECT_V2", 1)
    op.inputs = np.array([cond, on_pad, other], dtype=np.int32)
    op.outputs = np.array([out], dtype=np.int32)
    op.builtinOptionsType = s.BuiltinOptions.SelectV2Options
    op.builtinOptions = s.SelectV2OptionsT()
    return op


def rewrite(model: bytes, calibration: list[np.ndarray]) -> tuple[bytes, list[dict]]:
    """The flatbuffer with every padded-key mask made exact, and per mask (in
    graph order) the score map's int8 scale with the -32 bias and without it."""
    mm = _Model(model)
    if len(mm.m.subgraphs) != 1:
        return model, []
    masks = find_masks(mm)
    if not masks:
        return model, []
    ranges = score_ranges(model, [scores for _, scores, _, _ in masks], calibration)
    done = []
    for (add, scores, cond, softmax), (row_max, hi) in zip(masks, ranges):
        beta = getattr(softmax.builtinOptions, "beta", 1.0) or 1.0
        scale, zp = int8_quantization(row_max - MARGIN / beta, hi)
        done.append({"score_scale_with_bias": _quant(mm.tensor(int(add.outputs[0])))[0], "score_scale": scale})
        name = mm.tensor(int(add.outputs[0])).name.decode()
        _set_quant(mm, scores, scale, zp)
        masked = int(add.outputs[0])
        _set_quant(mm, masked, scale, zp)
        lowest = _int8_scalar(mm, f"{name}/padded_key", INT8_MIN, scale, zp)
        mm.g.operators[mm.g.operators.index(add)] = _select(mm, cond, lowest, scores, masked)
        # after the softmax: padded keys' probabilities to exactly 0
        probs = int(softmax.outputs[0])
        p_scale, p_zp = _quant(mm.tensor(probs))
        kept = copy.deepcopy(mm.tensor(probs))
        kept.name = mm.tensor(probs).name + b"/real_keys"
        mm.g.tensors.append(kept)
        probs_masked = len(mm.g.tensors) - 1
        mm.replace_uses(probs, probs_masked)
        zero = _int8_scalar(mm, f"{name}/zero_weight", p_zp, p_scale, p_zp)
        mm.g.operators.insert(mm.g.operators.index(softmax) + 1, _select(mm, cond, zero, probs, probs_masked))
    _drop_dead(mm)  # the -MASK_BIAS select
    return mm.pack(), done
