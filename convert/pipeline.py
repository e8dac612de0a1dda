"""embbert convert: run dir -> ONNX -> int8 TFLite -> checks -> aot sources -> artifact dir.

    embbert convert runs/sms --out artifacts/sms

Everything is built in a temporary directory beside ART_DIR and moved into
place at the end, so a failed conversion leaves nothing half-written.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from embbert.console import err
from embbert.errors import UserError
from embbert.tokenizer import PAD_ID, encode, load_tokenizer
from embbert.writable import check_writable

from . import arena, carray, check_ops, exact_mask, export, optimize, parity, quantize, source
from .aot.artifact import generate_sources as aot_sources
from .aot.graph import AotUnsupported
from .manifest import Arena, FileHash, Manifest, Parity, Quantization, TensorSpec, read_manifest

DEFAULT_CALIBRATION = 500
CHECK_SENTENCES = 16  # calibration sentences on which each step is checked: float graph vs PyTorch, rewritten vs converted int8
FLOAT_MODEL = "model_float.onnx"  # the float graph, fixed length: the harness's float reference
TOOLCHAIN = ("torch", "onnx", "onnxsim", "onnx2tf", "tensorflow", "ai-edge-litert", "tflite-micro", "numpy")


def _step(msg: str) -> None:
    err.print(f"convert: {msg}", highlight=False, soft_wrap=True)


def _versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in TOOLCHAIN}


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise UserError(f"{out} already exists; pass --force to replace it")
    check_writable(out)


def build_tflite(module, max_len: int, calibration: list[np.ndarray], work: Path,
                 rewrites: dict | None = None) -> bytes:
    """Exportable module -> checked full-int8 flatbuffer (raises FloatGraphMismatch
    when onnx2tf's float graph is not the module, UnsupportedOp),
    with its padded-key masks made exact (exact_mask.py), rewritten for
    TFLite-Micro (optimize.py; what was done goes into `rewrites`).
    Leaves the float graph in work/model.onnx."""
    onnx_path = work / "model.onnx"
    export.to_onnx(module, max_len, onnx_path)
    saved = quantize.onnx_to_saved_model(onnx_path, work / "saved_model")
    quantize.check_float_graph(saved, module, calibration[:CHECK_SENTENCES])
    try:
        model = quantize.quantize(saved, calibration)
    except Exception as e:  # tf.lite ConverterError and friends
        if type(e).__name__ != "ConverterError":
            raise
        raise check_ops.UnsupportedOp(quantize.explain_converter_error(e, onnx_path)) from None
    check_ops.check_micro(check_ops.read_model(model))
    model, masks = exact_mask.rewrite(model, calibration)  # changes the numerics by design: before the checked rewrites
    model, done = optimize.optimize_checked(model, calibration[:CHECK_SENTENCES])
    check_ops.check_micro(check_ops.read_model(model))
    if rewrites is not None:
        rewrites.update(exact_masks=len(masks), **done)
    return model


def convert_run(run_dir: Path, out: Path, calibration: int = DEFAULT_CALIBRATION, force: bool = False,
                test_limit: int | None = None) -> dict:
    """Convert a fine-tuned run; returns a summary (manifest + wall time).

    Everything needed from the run directory is read at the start (weights,
    tokenizer bytes); a file that disappears while it is being read is a
    UserError naming it, not a traceback."""
    try:
        return _convert_run(run_dir, out, calibration, force, test_limit)
    except FileNotFoundError as e:
        if not e.filename or not Path(e.filename).absolute().is_relative_to(Path(run_dir).absolute()):
            raise
        raise UserError(f"{e.filename} disappeared during the conversion (was {run_dir} moved or deleted?); "
                        "nothing was written") from None


def _convert_run(run_dir: Path, out: Path, calibration: int, force: bool, test_limit: int | None) -> dict:
    started = time.monotonic()
    _prepare_out(out, force)
    src = source.load_run(run_dir)
    tokenizer_json = src.tokenizer_path.read_bytes()  # the run dir is not read again after this point
    tok = load_tokenizer(src.tokenizer_path)
    data, pairs = source.load_sentences(src)
    export.check_single_segment(pairs, src.config.name)
    cal_texts = source.calibration_texts(data, calibration)
    module = export.exportable(src.model)
    L = src.config.max_len
    cal = [parity.padded(s, L) for s in encode(tok, cal_texts, L)]

    with tempfile.TemporaryDirectory(prefix="embbert-convert-") as work:
        _step(f"{src.config.name}: PyTorch -> ONNX (opset {export.OPSET}) -> onnx2tf -> int8 TFLite "
              f"({len(cal)} calibration sentences)")
        rewrites: dict = {}
        model = build_tflite(module, L, cal, Path(work), rewrites)
        float_onnx = (Path(work) / "model.onnx").read_bytes()
    info = check_ops.read_model(model)
    _step(f"model.tflite: {len(model):,} bytes, {len(info.ops)} ops, all TFLite-Micro builtins; rewrites: "
          + ", ".join(f"{k} {v}" for k, v in rewrites.items()))

    _step("arena: binary search on TFLite-Micro's AllocateTensors")
    mem = arena.measure(model)
    _step("aot backend: C++ and arena plan per kernel set (convert/aot)")
    try:
        aot_files, aot, aot_unsupported = *aot_sources(model, src.labels), None
    except AotUnsupported as e:
        aot_files, aot, aot_unsupported = {}, {}, str(e)
        _step(f"aot backend: not generated ({e}); the artifact serves the tflm backend")

    test = data.test[:test_limit] if test_limit else data.test
    _step(f"parity on {len(test)} test sentences: float PyTorch, LiteRT int8, TFLite-Micro int8")
    out_t = info.tensors[info.outputs[0]]
    q_out = _output_quantization(model)
    figures = _parity(src, tok, model, mem["minimal"], test, q_out)

    in_t = info.tensors[info.inputs[0]]
    model_sha = _sha(model)
    manifest = Manifest(
        model=src.config.name, config=src.config.model_dump(), task=src.task, labels=src.labels,
        sequence_length=L, pad_id=PAD_ID,
        input=TensorSpec(name=in_t.name, dtype=in_t.dtype.lower(), shape=in_t.shape),
        output=TensorSpec(name=out_t.name, dtype=out_t.dtype.lower(), shape=out_t.shape, quantization=q_out),
        model_file=FileHash(path="model.tflite", sha256=model_sha, bytes=len(model)),
        tokenizer_file=FileHash(path="tokenizer.json", sha256=_sha(tokenizer_json), bytes=len(tokenizer_json)),
        float_model_file=FileHash(path=FLOAT_MODEL, sha256=_sha(float_onnx), bytes=len(float_onnx)),
        ops=info.op_counts(), op_count=len(info.ops), flash_bytes=len(model), arena_bytes=mem["minimal"],
        arena=Arena(minimal_bytes=mem["minimal"], used_bytes=mem["used"], head_bytes=mem["head"],
                    tail_bytes=mem["tail"]), aot=aot, aot_unsupported=aot_unsupported,
        calibration_sentences=len(cal), parity=Parity(**figures), toolchain=_versions(), graph_rewrites=rewrites,
    )
    _write_artifacts(out, force, model, float_onnx, manifest, src, mem, tokenizer_json, aot_files)
    seconds = round(time.monotonic() - started, 1)
    return {"out": str(out), "wall_time_s": seconds, **manifest.model_dump()}


def _parity(src, tok, model: bytes, arena_bytes: int, examples, q_out: Quantization) -> dict:
    """Parity figures of the int8 `model` against the run's float model on `examples`."""
    L = src.config.max_len
    seqs = encode(tok, [e.text for e in examples], L)
    y = np.array([src.labels.index(e.label) for e in examples])
    batch = [parity.padded(s, L) for s in seqs]
    return parity.compare(parity.float_logits(src.model, seqs), parity.run_litert(model, batch),
                          parity.run_micro(model, batch, arena_bytes), y, q_out.scale, q_out.zero_point)


def artifact_parity(run_dir: Path, art_dir: Path, split: str, limit: int | None = None) -> dict:
    """The parity figures of an artifact of `run_dir` on another part of the run's
    own split ("val", "test" or "train"; its first `limit` sentences), with the
    same three interpreters: e.g. to choose a training option on validation, not
    on test. `test_sentences` in the result counts the sentences of `split`."""
    src = source.load_run(run_dir)
    data, _ = source.load_sentences(src)
    parts = {"train": data.train, "val": data.val, "test": data.test}
    if split not in parts:
        raise UserError(f"unknown split {split!r}; known: {', '.join(parts)}")
    manifest = Manifest.model_validate(read_manifest(art_dir))
    model = (Path(art_dir) / manifest.model_file.path).read_bytes()
    if _sha(model) != manifest.model_file.sha256:
        raise UserError(f"{art_dir}: {manifest.model_file.path} does not match its manifest's sha256")
    q_out = manifest.output.quantization
    return {"split": split, **_parity(src, load_tokenizer(src.tokenizer_path), model, manifest.arena_bytes,
                                      parts[split][:limit], q_out)}


def _output_quantization(model: bytes) -> Quantization:
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=model).get_output_details()[0]
    scale, zero_point = details["quantization"]
    return Quantization(scale=float(scale), zero_point=int(zero_point))


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _write_artifacts(out: Path, force: bool, model: bytes, float_onnx: bytes, manifest: Manifest, src,
                     mem: dict, tokenizer_json: bytes, aot_files: dict[str, bytes]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "model.tflite").write_bytes(model)
        (tmp / FLOAT_MODEL).write_bytes(float_onnx)
        (tmp / "tokenizer.json").write_bytes(tokenizer_json)
        (tmp / "model_data.h").write_text(carray.header(src.config.name))
        (tmp / "model_data.cc").write_text(carray.source(model, src.config.name, manifest.model_file.sha256))
        for path, data in aot_files.items():  # aot/<kernels>/...
            (tmp / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp / path).write_bytes(data)
        (tmp / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n")
        (tmp / "parity.json").write_text(json.dumps(
            {**manifest.parity.model_dump(), "arena": mem}, indent=2, sort_keys=True, allow_nan=False) + "\n")
        tmp.chmod(0o755)
        if out.exists():  # --force (checked before any work)
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def report(summary: dict) -> str:
    """The short human-readable report printed at the end."""
    p = summary["parity"]
    a = summary["arena"]
    return "\n".join([
        f"{summary['model']} on {summary['task']}: model.tflite {summary['flash_bytes']:,} B, "
        f"arena {a['minimal_bytes']:,} B minimal ({a['used_bytes']:,} B used), "
        f"total {(summary['flash_bytes'] + a['minimal_bytes']) / 1e3:.0f} kB",
        "aot: " + (", ".join(f"{k} kernels arena {v['arena_bytes']:,} B, weights {v['weights_bytes']:,} B"
                             for k, v in summary["aot"].items()) or f"none ({summary['aot_unsupported']})"),
        f"ops ({summary['op_count']}): " + ", ".join(f"{k} {v}" for k, v in summary["ops"].items()),
        f"parity on {p['test_sentences']} test sentences:",
        f"  (a) float PyTorch      accuracy {p['accuracy_float']:.4f}",
        f"  (b) int8 LiteRT        accuracy {p['accuracy_litert']:.4f}  agreement {p['agreement_litert']:.4f}  "
        f"cosine {p['cosine_litert']:.4f}",
        f"  (c) int8 TFLite-Micro  accuracy {p['accuracy_micro']:.4f}  agreement {p['agreement_micro']:.4f}  "
        f"cosine {p['cosine_micro']:.4f}",
        f"  (b) vs (c): {p['bit_exact_litert_micro']:.1%} bit-identical, max {p['max_lsb_litert_micro']} LSB apart",
        f"wall time {summary['wall_time_s']} s -> {summary['out']}",
    ])
