"""convert/tflite_model.py, the one .tflite reader, against LiteRT's own reading
of the converter's EmbBERT graph; and its writer (pack) round trip."""

import numpy as np
from rewrite_graphs import assert_same_logits

from embbert.convert.tflite_model import TfliteModel


def test_tensors_read_as_litert_reads_them(converter_graph):
    from ai_edge_litert.interpreter import Interpreter

    model, _ = converter_graph("embbert")
    mm = TfliteModel(model)
    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    assert len(details) >= len(mm.g.tensors)  # LiteRT adds its own temporaries after the file's tensors
    consts = 0
    for i in range(len(mm.g.tensors)):
        d = details[i]
        assert mm.name(i) == d["name"] and mm.shape(i) == list(d["shape"])
        assert np.dtype(d["dtype"]).name == mm.dtype(i).lower()
        scales, zero_points = mm.quantization(i)
        q = d["quantization_parameters"]
        assert list(q["scales"]) == (scales or []) and list(q["zero_points"]) == zero_points
        data = mm.const(i)
        if data is not None:
            consts += 1
            assert np.array_equal(data, interp.get_tensor(i))
    assert consts > 10
    assert [mm.dtype(t) for t in mm.inputs] == ["INT32"] and [mm.dtype(t) for t in mm.outputs] == ["INT8"]
    kinds = {mm.kind(op) for op in mm.ops}
    assert {"GATHER", "FULLY_CONNECTED", "BATCH_MATMUL", "SOFTMAX"} <= kinds
    assert mm.options(next(op for op in mm.ops if mm.kind(op) == "SOFTMAX"))["beta"] > 0
    assert mm.offset_buffers() == []


def test_pack_writes_back_what_was_read(converter_graph):
    model, batch = converter_graph("embbert")
    mm = TfliteModel(model)
    again = TfliteModel(mm.pack())
    assert again.pack() == mm.pack()
    assert [mm.kind(op) for op in mm.ops] == [again.kind(op) for op in again.ops]
    for i in range(len(mm.g.tensors)):
        a, b = mm.const(i), again.const(i)
        assert (a is None) == (b is None) and (a is None or np.array_equal(a, b))
    assert_same_logits(model, mm.pack(), batch)
