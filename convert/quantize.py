"""ONNX -> full-int8 TFLite: onnx2tf builds a TensorFlow SavedModel, then
TFLiteConverter quantizes it with a representative dataset of real sentences.

Weights and activations are int8; the ids input stays int32 (it only feeds
GATHER and the padding test); the logits output is int8.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
from pathlib import Path

import numpy as np

from embbert.errors import UserError


def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@contextlib.contextmanager
def _silenced():
    """onnx2tf (Python) and the converter (C++) print pages of progress on stdout;
    `--json` needs stdout clean, so fd 1 goes to a temp file while they run."""
    import sys
    import tempfile

    sys.stdout.flush()
    with tempfile.TemporaryFile() as sink, contextlib.redirect_stdout(io.StringIO()):
        saved = os.dup(1)
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def onnx_to_saved_model(onnx_path: Path, out_dir: Path) -> Path:
    _quiet_tf()
    import onnx2tf
    import tf_keras

    # Keras numbers layer names per process (model_70/tf.math.add_6); they end up
    # in the tensor names, so the same run must start from the same counters.
    tf_keras.backend.clear_session()
    random.seed(0)
    np.random.seed(0)
    with _silenced():
        onnx2tf.convert(
            input_onnx_file_path=str(onnx_path),
            output_folder_path=str(out_dir),
            non_verbose=True,
            copy_onnx_input_output_names_to_tflite=True,
            disable_model_save=False,
            output_signaturedefs=True,
            # Strict mode re-decides axes it finds ambiguous (a softmax over an
            # L x L score map) by comparing outputs on dummy inputs. On one
            # rt_reviews model it chose the wrong softmax axis: the float graph
            # was wrong and the int8 model agreed with PyTorch on 72 % of the
            # test split. Our graphs need none of its guesses, and
            # check_float_graph proves every conversion instead.
            disable_strict_mode=True,
        )
    return out_dir


class FloatGraphMismatch(UserError):
    """onnx2tf's float graph does not compute what the PyTorch module computes."""


FLOAT_GRAPH_TOLERANCE = 1e-3  # on the logits, relative to their largest magnitude (and at least 1.0)


def check_float_graph(saved_model: Path, module, batch: list[np.ndarray]) -> float:
    """The float SavedModel against the PyTorch module on real (1, L) id arrays,
    before anything is quantized: int8 rounding must be the only difference
    left for parity to measure. Returns the largest logit difference."""
    _quiet_tf()
    import tensorflow as tf
    import torch

    fn = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    worst, worst_at, scale = 0.0, 0, 1.0
    for k, ids in enumerate(batch):
        ids = ids.astype(np.int32)
        with torch.no_grad():
            want = module(torch.from_numpy(ids)).numpy()
        got = next(iter(fn(ids=tf.constant(ids)).values())).numpy().reshape(want.shape)
        scale = max(scale, float(np.abs(want).max()))
        diff = float(np.abs(got - want).max())
        if diff > worst:
            worst, worst_at = diff, k
    if worst > FLOAT_GRAPH_TOLERANCE * scale:
        raise FloatGraphMismatch(
            f"onnx2tf's float graph differs from the PyTorch model: logits off by up to {worst:.3g} "
            f"(calibration sentence {worst_at}; tolerance {FLOAT_GRAPH_TOLERANCE * scale:.2g}) before any "
            "quantization. The ONNX -> TensorFlow step mis-read the graph; nothing was written")
    return worst


def quantize(saved_model: Path, calibration: list[np.ndarray]) -> bytes:
    """Full-int8 flatbuffer; `calibration` holds (1, L) int32 id arrays."""
    _quiet_tf()
    import tensorflow as tf

    tf.random.set_seed(0)

    def representative():
        for ids in calibration:
            yield {"ids": ids.astype(np.int32)}

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_output_type = tf.int8
    with _silenced():
        return conv.convert()


def explain_converter_error(error: Exception, onnx_path: Path) -> str:
    """Turn a TFLiteConverter failure into one line naming the op and its PyTorch module.

    The converter lists ops it would need from TF Select ("TF Select ops: Erf");
    the ONNX node of the same type carries the module path in its name
    (torch.onnx names nodes '/blocks.0/ff/Erf').
    """
    import re

    import onnx

    text = str(error)
    m = re.search(r"TF Select ops: ([\w, ]+)", text) or re.search(r"'tf\.(\w+)' op is neither", text)
    if not m:
        return f"the TFLite converter failed: {text.strip().splitlines()[-1][:300]}"
    ops = [o.strip() for o in m.group(1).split(",") if o.strip()]
    graph = onnx.load(str(onnx_path)).graph
    found = []
    for op in ops:
        nodes = [n for n in graph.node if n.op_type.lower() == op.lower()]
        where = sorted({_module_of(n, graph) for n in nodes})
        found.append(f"{op} (a Flex op, not a TFLite-Micro builtin)"
                     + (f" in PyTorch module {', '.join(where)}" if where else ""))
    hint = " (exact GELU needs erf: use the tanh approximation)" if any(o.lower() == "erf" for o in ops) else ""
    return "not runnable on TFLite-Micro: " + "; ".join(found) + hint


def _scope(name: str) -> str:
    """'/blocks.0/ff/Erf' -> 'blocks.0.ff'; '/Erf' -> '' (called in the top-level forward)."""
    return name.strip("/").rsplit("/", 1)[0].replace("/", ".") if "/" in name.strip("/") else ""


def _module_of(node, graph) -> str:
    """The module scope of an ONNX node; for a functional call in a parent's
    forward (F.gelu(self.ff(x))), the module whose output it was applied to."""
    scope = _scope(node.name)
    if scope:
        return scope
    producers = {out: n for n in graph.node for out in n.output}
    seen, todo = set(), list(node.input)
    while todo:
        src = producers.get(todo.pop(0))
        if src is None or src.name in seen:
            continue
        seen.add(src.name)
        if _scope(src.name):
            return f"(top level forward, applied to the output of {_scope(src.name)})"
        todo.extend(src.input)
    return "(top level forward)"
