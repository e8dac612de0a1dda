"""convert/exact_mask.py on the converter's own int8 flatbuffer (smoke-sized
EmbBERT and BERT, random weights, L 64): padded keys at the int8 minimum
before each softmax and at probability 0 after it, the real scores on a
finer scale, and host TFLite-Micro still following the float model."""

import numpy as np
import pytest
from test_aot import FAMILIES
from test_convert import _make_run

from embbert.convert import exact_mask, export, parity, quantize, source
from embbert.convert.tflite_model import TfliteModel as _Model
from embbert.data import load_task
from embbert.tokenizer import PAD_ID, encode, load_tokenizer

L = 64


@pytest.fixture(scope="module", params=["embbert", "bert"])
def converted(request, tmp_path_factory):
    """(run's float model, token sequences, padded ids, converter's int8 model, rewritten model, scales)."""
    cfg = FAMILIES[request.param]
    root = tmp_path_factory.mktemp("exact-mask")
    run = _make_run(root / "run", cfg, seed=3)
    src = source.load_run(run)
    texts = [e.text for e in load_task("sms_spam", seed=0).test[:60]]
    seqs = encode(load_tokenizer(run / "tokenizer.json"), texts, L)
    batch = [parity.padded(s, L) for s in seqs]
    export.to_onnx(export.exportable(src.model), L, root / "m.onnx")
    raw = quantize.quantize(quantize.onnx_to_saved_model(root / "m.onnx", root / "sm"), batch[:20])
    new, scales = exact_mask.rewrite(raw, batch[:20])
    return src.model, seqs, batch, raw, new, scales, cfg


def _ops(model: bytes) -> tuple[_Model, list[str]]:
    mm = _Model(model)
    return mm, [mm.kind(op) for op in mm.g.operators]


def test_every_softmax_is_masked_by_two_selects_and_no_add(converted):
    _, _, _, raw, new, scales, cfg = converted
    mm, kinds = _ops(new)
    softmaxes = [op for op in mm.g.operators if mm.kind(op) == "SOFTMAX"]
    assert len(scales) == len(softmaxes) == cfg.n_layers
    prod, users = mm.producers(), mm.consumers()
    for sm in softmaxes:
        before = prod[int(sm.inputs[0])]
        after = users[int(sm.outputs[0])]
        assert mm.kind(before) == "SELECT_V2" and [mm.kind(a) for a in after] == ["SELECT_V2"]
        cond, lowest, scores = (int(t) for t in before.inputs)
        assert mm.kind(prod[cond]) == "EQUAL" and int(mm.const(int(prod[cond].inputs[1]))) == PAD_ID
        assert int(mm.const(lowest)) == -128
        q = [mm.tensor(t).quantization for t in (lowest, scores, int(before.outputs[0]))]
        assert len({(float(x.scale[0]), int(x.zeroPoint[0])) for x in q}) == 1  # a select copies bytes
        cond2, zero, probs = (int(t) for t in after[0].inputs)
        assert cond2 == cond and probs == int(sm.outputs[0])
        assert int(mm.const(zero)) == int(mm.tensor(probs).quantization.zeroPoint[0]) == -128
    # the -MASK_BIAS ADD and its select are gone; the converter's model had them
    _, raw_kinds = _ops(raw)
    assert raw_kinds.count("SELECT_V2") == 1 and kinds.count("SELECT_V2") == 2 * len(softmaxes)
    assert kinds.count("ADD") == raw_kinds.count("ADD") - len(softmaxes)


def test_real_scores_get_a_finer_scale(converted):
    scales = converted[5]
    assert all(s["score_scale"] < s["score_scale_with_bias"] for s in scales), scales


def test_padded_keys_weigh_exactly_zero_and_padding_changes_nothing_but_their_count(converted):
    """LiteRT keeps every tensor: after the second select, a padded key's
    probability is the zero point, on every row."""
    from ai_edge_litert.interpreter import Interpreter

    _, _, batch, _, new, _, _ = converted
    mm = _Model(new)
    masked = [int(op.outputs[0]) for op in mm.g.operators
              if mm.kind(op) == "SELECT_V2" and mm.kind(mm.producers()[int(op.inputs[2])]) == "SOFTMAX"]
    interp = Interpreter(model_content=new, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    for ids in batch[:5]:
        interp.set_tensor(interp.get_input_details()[0]["index"], ids)
        interp.invoke()
        pad = ids.reshape(-1) == PAD_ID
        assert pad.any()
        for t in masked:
            assert (interp.get_tensor(t)[..., pad] == -128).all()


def test_tflite_micro_follows_the_float_model(converted):
    """Host TFLite-Micro logits of the rewritten graph against the float model."""
    model, seqs, batch, raw, new, _, _ = converted
    q = _Model(new).tensor(int(_Model(new).g.outputs[0])).quantization
    scale, zp = float(q.scale[0]), int(q.zeroPoint[0])
    fl = parity.float_logits(model, seqs)
    y = fl.argmax(1)
    room = 4 << 20
    figures = parity.compare(fl, parity.run_litert(new, batch), parity.run_micro(new, batch, room), y, scale, zp)
    assert figures["agreement_micro"] >= 0.9 and figures["cosine_micro"] >= 0.95, figures
    assert len({tuple(r) for r in parity.run_micro(new, batch, room)}) > 5  # the inputs really differ


@pytest.mark.parametrize("lo, hi, scale, zp", [(-1.0, 3.0, 4 / 255, -64), (2.0, 5.1, 5.1 / 255, -128),
                                                (-5.1, -1.0, 5.1 / 255, 127), (0.0, 0.0, 1.0, 0)])
def test_int8_range_includes_zero_as_tflite_does(lo, hi, scale, zp):
    got = exact_mask.int8_quantization(lo, hi)
    assert got[0] == pytest.approx(scale, rel=1e-6) and got[1] == zp


def test_aot_refuses_a_softmax_over_the_keys_without_the_exact_mask(converted):
    """A graph of the -32 bias (graph version 1) cannot be computed on the real
    tokens exactly: the code generator says so and how to mend it."""
    from embbert.convert.aot.codegen import generate
    from embbert.convert.aot.graph import AotUnsupported, read_graph

    raw, new = converted[3], converted[4]
    with pytest.raises(AotUnsupported, match="without the exact padded-key mask.*convert the run again"):
        generate(read_graph(raw), "0" * 64)
    assert "Softmax(p, " in generate(read_graph(new), "0" * 64)[1]
