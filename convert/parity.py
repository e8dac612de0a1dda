"""Parity: the proof that the int8 model is still the model.

For the same test sentences: (a) float PyTorch (the trained Classifier on
unpadded ids), (b) int8 on LiteRT, (c) int8 on the real TFLite-Micro
interpreter. (c) is the bit-exact reference for the device; LiteRT's kernels
round differently, so (b) and (c) need not agree bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch


def padded(seq: list[int], length: int) -> np.ndarray:
    ids = np.zeros((1, length), dtype=np.int32)  # [PAD] = 0
    ids[0, : len(seq)] = seq
    return ids


def run_litert(model: bytes, batch: list[np.ndarray]) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    rows = []
    for ids in batch:
        interp.set_tensor(inp, ids)
        interp.invoke()
        rows.append(interp.get_tensor(out)[0].copy())
    return np.stack(rows)


def run_micro(model: bytes, batch: list[np.ndarray], arena_size: int) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    rows = []
    for ids in batch:
        interp.set_input(ids, 0)
        interp.invoke()
        rows.append(interp.get_output(0)[0].copy())
    return np.stack(rows)


def artifact_micro_logits(art, seqs: list[list[int]]) -> list[list[int]]:
    """Host TFLite-Micro int8 logits of an artifact directory (model.tflite +
    manifest.json) for token-id lists: the device's bit-exact reference."""
    import json
    from pathlib import Path

    art = Path(art)
    manifest = json.loads((art / "manifest.json").read_text())
    batch = [padded(s, manifest["sequence_length"]) for s in seqs]
    model = (art / "model.tflite").read_bytes()
    return run_micro(model, batch, manifest["arena_bytes"] + 1024).astype(int).tolist()


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over inputs of the cosine between two logit vectors."""
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.mean(num / np.maximum(den, 1e-12)))


def compare(float_logits: np.ndarray, litert_q: np.ndarray, micro_q: np.ndarray, labels: np.ndarray,
            scale: float, zero_point: int) -> dict:
    """The parity figures; logits are (N, C), the int8 ones raw."""
    lit = (litert_q.astype(np.float32) - zero_point) * scale
    mic = (micro_q.astype(np.float32) - zero_point) * scale
    pa, pb, pc = float_logits.argmax(1), lit.argmax(1), mic.argmax(1)
    diff = np.abs(litert_q.astype(np.int32) - micro_q.astype(np.int32))
    return {
        "test_sentences": int(len(labels)),
        "accuracy_float": float((pa == labels).mean()),
        "accuracy_litert": float((pb == labels).mean()),
        "accuracy_micro": float((pc == labels).mean()),
        "agreement_litert": float((pb == pa).mean()),
        "agreement_micro": float((pc == pa).mean()),
        "cosine_litert": _cosine(float_logits, lit),
        "cosine_micro": _cosine(float_logits, mic),
        "bit_exact_litert_micro": float((diff.max(1) == 0).mean()),
        "max_lsb_litert_micro": int(diff.max()) if diff.size else 0,
    }


@torch.no_grad()
def float_logits(model: torch.nn.Module, seqs: list[list[int]]) -> np.ndarray:
    """(a): the trained Classifier, one unpadded sentence at a time."""
    model.eval()
    return np.stack([model(torch.tensor([s]))[0].numpy() for s in seqs])
