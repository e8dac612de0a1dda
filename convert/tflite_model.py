"""The one reader (and writer) of .tflite flatbuffers.

A .tflite is read with the schema that the pinned tflite-micro wheel ships
(flatbuffers' object API, `schema_py_generated`) into one mutable in-memory
form, `TfliteModel`: tensors (dtype, shape, quantization, constant data),
operators (kind, options, inputs, outputs), the graph's inputs and outputs.
Everything that reads a model reads it here:
- check_ops.py: what TFLite-Micro can run;
- rewrites/ (through optimize.py): the exact rewrites, which change this form
  and `pack` it back into a flatbuffer;
- aot/graph.py: the graph the aot code generator emits.
"""

from __future__ import annotations

import copy

import numpy as np

ALIGN = 16  # TFLite-Micro's kBufferAlignment; also the alignment of the constant buffers `pack` writes
_NUMPY = {"INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8,
          "FLOAT16": np.float16, "FLOAT32": np.float32, "FLOAT64": np.float64, "BOOL": np.bool_}


def schema():
    """The flatbuffer schema's generated Python (TensorT, OperatorT, BuiltinOperator, ...)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


def _names(enum) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


class TfliteModel:
    """A .tflite in memory (object API), with the helpers its readers and rewrites share.

    `g` is the first subgraph (the firmware runs exactly one; `subgraphs` says how many)."""

    def __init__(self, data: bytes):
        s = schema()
        self.s = s
        self.m = s.ModelT.InitFromObj(s.Model.GetRootAsModel(data, 0))
        self.g = self.m.subgraphs[0] if self.m.subgraphs else None
        self.op_names = _names(s.BuiltinOperator)
        self.type_names = _names(s.TensorType)

    @property
    def subgraphs(self) -> int:
        return len(self.m.subgraphs or [])

    def clone(self) -> "TfliteModel":
        other = copy.copy(self)
        other.m = copy.deepcopy(self.m)
        other.g = other.m.subgraphs[0]
        return other

    # the graph ---------------------------------------------------------
    @property
    def ops(self) -> list:
        return self.g.operators or []

    @property
    def inputs(self) -> list[int]:
        return [int(t) for t in self.g.inputs]

    @property
    def outputs(self) -> list[int]:
        return [int(t) for t in self.g.outputs]

    def kind(self, op) -> str:
        """The op's builtin name ("ADD"); "CUSTOM:<code>" or "FLEX:<op>" for a custom op."""
        code = self.m.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = self.op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            custom = code.customCode or b""
            custom = custom.decode() if isinstance(custom, bytes) else str(custom)
            name = f"FLEX:{custom[4:]}" if custom.startswith("Flex") else f"CUSTOM:{custom}"
        return name

    def options(self, op) -> dict:
        """The op's builtin options as a dict of the schema's field names ({} when it has none)."""
        return dict(vars(op.builtinOptions)) if op.builtinOptions is not None else {}

    def opcode(self, name: str, version: int) -> int:
        """The index of builtin `name`'s operator code, added when the model has none yet."""
        code_value = getattr(self.s.BuiltinOperator, name)
        for i, c in enumerate(self.m.operatorCodes):
            if max(c.builtinCode, c.deprecatedBuiltinCode) == code_value:
                return i
        c = self.s.OperatorCodeT()
        c.builtinCode = code_value
        c.deprecatedBuiltinCode = min(code_value, 127)
        c.version = version
        self.m.operatorCodes.append(c)
        return len(self.m.operatorCodes) - 1

    # tensors -----------------------------------------------------------
    def tensor(self, i: int):
        return self.g.tensors[i]

    def name(self, i: int) -> str:
        return (self.g.tensors[i].name or b"").decode()

    def dtype(self, i: int) -> str:
        """"INT8", "INT32", "FLOAT32", ... (the schema's TensorType name)."""
        t = self.g.tensors[i].type
        return self.type_names.get(t, str(t))

    def shape(self, i: int) -> list[int]:
        t = self.g.tensors[i]
        return [int(x) for x in t.shape] if t.shape is not None else []

    def nbytes(self, i: int) -> int:
        """The tensor's size in bytes."""
        return int(np.prod(self.shape(i) or [1])) * np.dtype(_NUMPY[self.dtype(i)]).itemsize

    def quantization(self, i: int) -> tuple[list[float] | None, list[int]]:
        """(scales, zero points): one per tensor, or one per channel; (None, []) when not quantized."""
        q = self.g.tensors[i].quantization
        if q is None:
            return None, []
        scale = [float(x) for x in q.scale] if q.scale is not None else None
        return scale, [int(x) for x in q.zeroPoint] if q.zeroPoint is not None else []

    def const(self, i: int) -> np.ndarray | None:
        """A constant tensor's data (shaped), or None for a tensor computed at run time."""
        t = self.g.tensors[i]
        buf = self.m.buffers[t.buffer]
        if buf.data is None or len(buf.data) == 0:
            return None
        raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
        return np.frombuffer(raw, dtype=_NUMPY[self.dtype(i)]).reshape(self.shape(i) or ())

    def offset_buffers(self) -> list[int]:
        """Indices of the buffers stored by offset (after the flatbuffer, the > 2 GB layout)."""
        return [i for i, b in enumerate(self.m.buffers or []) if b.offset]

    def set_const(self, i: int, arr: np.ndarray) -> None:
        self.m.buffers[self.g.tensors[i].buffer].data = np.frombuffer(np.ascontiguousarray(arr).tobytes(), np.uint8)

    def add_const(self, name: str, arr: np.ndarray) -> int:
        """A new int32 constant tensor (shapes, permutations); its index."""
        s = self.s
        buf = s.BufferT()
        buf.data = np.frombuffer(np.ascontiguousarray(arr).tobytes(), np.uint8)
        self.m.buffers.append(buf)
        t = s.TensorT()
        t.name = name.encode()
        t.shape = np.array(arr.shape, dtype=np.int32)
        t.type = {np.dtype(np.int32): s.TensorType.INT32}[arr.dtype]
        t.buffer = len(self.m.buffers) - 1
        self.g.tensors.append(t)
        return len(self.g.tensors) - 1

    # who reads and writes what -----------------------------------------
    def producers(self) -> dict[int, object]:
        return {int(t): op for op in self.ops for t in op.outputs}

    def consumers(self) -> dict[int, list]:
        users: dict[int, list] = {}
        for op in self.ops:
            for t in op.inputs:
                if t >= 0:
                    users.setdefault(int(t), []).append(op)
        return users

    # serialization -----------------------------------------------------
    def replace_uses(self, old: int, new: int) -> None:
        """Every reader of tensor `old` (and the graph's outputs) reads `new` instead."""
        for op in self.ops:
            op.inputs = np.array([new if int(t) == old else int(t) for t in op.inputs], dtype=np.int32)
        self.g.outputs = np.array([new if int(t) == old else int(t) for t in self.g.outputs], dtype=np.int32)

    def pack(self) -> bytes:
        import flatbuffers

        class _Builder(flatbuffers.Builder):
            def CreateNumpyVector(self, x):  # constant data (uint8) 16-byte aligned, as the converter writes it
                if x.dtype == np.uint8 and x.size:
                    self.StartVector(1, x.size, ALIGN)
                    self.head = self.head - x.size
                    self.Bytes[self.head:self.head + x.size] = x.tobytes()
                    self.vectorNumElems = x.size
                    return self.EndVector()
                return super().CreateNumpyVector(x)

        b = _Builder(1 << 20)
        b.Finish(self.m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())
