"""What the host says about a sentence, to hold the board's answer against:
its ids (HF tokenizers), the int8 logits of the real TFLite-Micro interpreter
(the device's bit-exact reference) and the float logits of the graph the int8
model came from (model_float.onnx)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embbert.errors import UserError
from embbert.tokenizer import encode, load_tokenizer


class HostReference:
    """``ref(text)`` -> ids, host int8 logits and label, float logits and label."""

    def __init__(self, art_dir: Path, manifest: dict):
        import hashlib

        art_dir = Path(art_dir)
        self.labels = manifest["labels"]
        self.max_len = manifest["sequence_length"]
        model_path = art_dir / manifest["model_file"]["path"]
        try:
            model = model_path.read_bytes()
        except OSError as error:
            raise UserError(f"cannot read the model {model_path}: {error.strerror}") from None
        if hashlib.sha256(model).hexdigest() != manifest["model_file"]["sha256"]:
            raise UserError(f"{model_path} does not match the sha256 in manifest.json; convert again")
        self.tokenizer = load_tokenizer(art_dir / "tokenizer.json")
        from tflite_micro.python.tflite_micro import runtime

        self._micro = runtime.Interpreter.from_bytes(model, arena_size=manifest["arena_bytes"] + 1024)
        self._float = None
        spec = manifest.get("float_model_file")
        if spec and (art_dir / spec["path"]).is_file():
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            self._float = onnxruntime.InferenceSession(str(art_dir / spec["path"]), options,
                                                       providers=["CPUExecutionProvider"])
            self._float_input = self._float.get_inputs()[0].name

    @property
    def has_float(self) -> bool:
        return self._float is not None

    def __call__(self, text: str) -> dict:
        ids = encode(self.tokenizer, [text], self.max_len)[0]
        padded = np.zeros((1, self.max_len), dtype=np.int32)
        padded[0, :len(ids)] = ids
        self._micro.set_input(padded, 0)
        self._micro.invoke()
        host = self._micro.get_output(0)[0].astype(int).tolist()
        row = {"ids": ids, "n_tokens": len(ids), "host_logits": host,
               "host_label": self.labels[int(np.argmax(host))], "float_logits": None, "float_label": None}
        if self._float is not None:
            logits = self._float.run(None, {self._float_input: padded})[0][0]
            row["float_logits"] = [round(float(x), 6) for x in logits]
            row["float_label"] = self.labels[int(np.argmax(logits))]
        return row
