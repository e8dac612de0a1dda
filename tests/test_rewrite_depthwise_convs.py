"""convert/rewrites/depthwise_convs.py on the converter's own EmbBERT graph."""

from rewrite_graphs import assert_same_logits, op_counts
from test_aot import FAMILIES

from embbert.convert.rewrites import depthwise_convs
from embbert.convert.tflite_model import TfliteModel


def test_grouped_conv_becomes_depthwise_and_logits_stay(converter_graph):
    model, batch = converter_graph("embbert")
    mm = TfliteModel(model)
    layers = FAMILIES["embbert"].n_layers
    assert op_counts(mm)["CONV_2D"] == layers and "DEPTHWISE_CONV_2D" not in op_counts(mm)
    assert depthwise_convs.rewrite(mm) == layers
    assert "CONV_2D" not in op_counts(mm) and op_counts(mm)["DEPTHWISE_CONV_2D"] == layers
    for op in mm.ops:
        if mm.kind(op) == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, C], per-channel scales on axis 3
            w = int(op.inputs[1])
            assert mm.shape(w)[0] == 1 and mm.shape(w)[3] == mm.shape(int(op.inputs[0]))[-1]
            assert mm.tensor(w).quantization.quantizedDimension == 3
    assert_same_logits(model, mm.pack(), batch)
