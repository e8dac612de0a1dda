"""Refuse what TFLite-Micro cannot run (the .tflite read by tflite_model.py).

Refused, each with a message naming the op (and the PyTorch module it came
from, read from the tensor names, which carry the ONNX node names):
- an op that is not a builtin: CUSTOM, or a Flex (TF Select) op;
- a builtin TFLite-Micro does not register (see MICRO_BUILTINS);
- an int64 tensor;
- a float tensor (a float op left in a "full int8" graph);
- a buffer stored by offset (files > 2 GB style): TFLite-Micro reads it as zeros.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from embbert.errors import UserError

from .tflite_model import TfliteModel

# Builtins that TFLite-Micro's AllOpsResolver registers (tflite-micro
# all_ops_resolver / micro_mutable_op_resolver), restricted to what a text
# classifier can plausibly produce. An op outside this set is refused even
# when LiteRT can run it.
MICRO_BUILTINS = frozenset("""
ABS ADD ADD_N ARG_MAX ARG_MIN AVERAGE_POOL_2D BATCH_MATMUL BATCH_TO_SPACE_ND BROADCAST_ARGS BROADCAST_TO
CAST CEIL CONCATENATION CONV_2D COS CUMSUM DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV ELU EMBEDDING_LOOKUP
EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL
HARD_SWISH L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT LOGICAL_OR
LOGISTIC LOG_SOFTMAX MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU
QUANTIZE REDUCE_MAX REDUCE_MIN RELU RELU6 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR ROUND RSQRT
SELECT_V2 SHAPE SIN SLICE SOFTMAX SPACE_TO_BATCH_ND SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE
SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE SUB SUM TANH TRANSPOSE TRANSPOSE_CONV UNPACK ZEROS_LIKE
""".split())


@dataclass(frozen=True)
class OpInfo:
    index: int
    name: str  # builtin name, "CUSTOM:<code>" or "FLEX:<op>"
    outputs: list[str]  # output tensor names


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: list[int]


@dataclass(frozen=True)
class ModelInfo:
    ops: list[OpInfo]
    tensors: list[TensorInfo]
    offset_buffers: list[int]  # indices of buffers stored by offset
    inputs: list[int]
    outputs: list[int]

    def op_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(op.name for op in self.ops).items()))


class UnsupportedOp(UserError):
    """The int8 model holds something TFLite-Micro cannot run."""


def read_model(data: bytes) -> ModelInfo:
    mm = TfliteModel(data)
    if mm.subgraphs != 1:
        raise UnsupportedOp(f"the model has {mm.subgraphs} subgraphs; the firmware runs exactly one")
    tensors = [TensorInfo(mm.name(i), mm.dtype(i), mm.shape(i)) for i in range(len(mm.g.tensors))]
    ops = [OpInfo(k, mm.kind(op), [tensors[int(t)].name for t in op.outputs]) for k, op in enumerate(mm.ops)]
    return ModelInfo(ops, tensors, mm.offset_buffers(), mm.inputs, mm.outputs)


_MODULE = re.compile(r"(blocks|layers|embed|head)[._/][\w./]*")


def source_module(tensor_name: str) -> str | None:
    """The PyTorch module path a tensor came from, when its name tells it.

    onnx2tf keeps ONNX node names such as '/blocks.0/ff/Erf' inside the TFLite
    tensor names; ONNX node names are the module paths of torch.onnx.export.
    """
    m = _MODULE.search(tensor_name.replace("/", "."))
    return m.group(0).strip("._") if m else None


def _where(op: OpInfo) -> str:
    for name in op.outputs:
        module = source_module(name)
        if module:
            return f" (from PyTorch module {module}; tensor {name!r})"
    return f" (tensor {op.outputs[0]!r})" if op.outputs else ""


def check_micro(info: ModelInfo) -> None:
    """Raise UnsupportedOp, naming the first problem found, if TFLite-Micro cannot run the model."""
    problems = []
    for op in info.ops:
        if op.name.startswith(("CUSTOM:", "FLEX:")) or op.name not in MICRO_BUILTINS:
            kind = "a Flex (TF Select) op" if op.name.startswith("FLEX:") else \
                "a custom op" if op.name.startswith("CUSTOM:") else "not a TFLite-Micro builtin"
            problems.append(f"op {op.index} {op.name} is {kind}{_where(op)}")
    io = set(info.inputs) | set(info.outputs)
    for i, t in enumerate(info.tensors):
        if t.dtype == "INT64":
            problems.append(f"tensor {t.name!r} is int64; TFLite-Micro has no int64 kernels here")
        elif t.dtype in ("FLOAT32", "FLOAT16") and i not in io:
            producer = next((op for op in info.ops if t.name in op.outputs), None)
            what = f"op {producer.index} {producer.name}{_where(producer)}" if producer else f"tensor {t.name!r}"
            problems.append(f"float tensor left in the int8 graph: {what}")
    for i in info.offset_buffers:
        problems.append(f"buffer {i} is stored by offset; TFLite-Micro would read it as zeros")
    for i in info.inputs:
        if info.tensors[i].dtype not in ("INT32", "INT8"):
            problems.append(f"input {info.tensors[i].name!r} is {info.tensors[i].dtype}, not int32/int8")
    for i in info.outputs:
        if info.tensors[i].dtype != "INT8":
            problems.append(f"output {info.tensors[i].name!r} is {info.tensors[i].dtype}, not int8")
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise UnsupportedOp(f"not runnable on TFLite-Micro: {problems[0]}{more}")
