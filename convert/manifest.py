"""manifest.json: the typed hand-off from `embbert convert` to the firmware and the harness.

Versioned: a reader checks `manifest_version` and refuses one it does not know.
Everything in it is deterministic for a given run (no timestamps, no wall
times), so the same run gives the same manifest bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embbert.errors import UserError

# 2: the aot backend's generated sources in the artifact (aot/<kernels>/), their sha256 and memory
MANIFEST_VERSION = 2


def read_manifest(art_dir: Path) -> dict:
    """ART_DIR/manifest.json as a dict, checked for its version; one clear
    UserError if the folder or the file is missing or unreadable."""
    art_dir = Path(art_dir)
    path = art_dir / "manifest.json"
    if not art_dir.is_dir():
        raise UserError(f"artifact folder not found: {art_dir}")
    if not path.is_file():
        raise UserError(f"{art_dir} has no manifest.json; `embbert convert` (or `embbert deploy`) writes it")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != MANIFEST_VERSION:
        version = manifest.get("manifest_version") if isinstance(manifest, dict) else None
        raise UserError(f"{path}: manifest_version {version!r}, and this toolkit reads version {MANIFEST_VERSION} "
                        f"only; run `embbert convert` again to rewrite {art_dir}")
    try:
        Manifest.model_validate(manifest)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg'].lower()}"
                             for e in error.errors()[:3])
        more = f" (and {error.error_count() - 3} more)" if error.error_count() > 3 else ""
        raise UserError(f"{path} is not a complete manifest ({problems}{more}); run `embbert convert` again") from None
    return manifest


def verify_files(art_dir: Path, manifest: dict) -> None:
    """model.tflite and tokenizer.json are the files the manifest names (sha256),
    so what is built or evaluated is what the manifest claims; one UserError if not."""
    for entry in (manifest["model_file"], manifest["tokenizer_file"]):
        check_file(art_dir, entry)


def check_file(art_dir: Path, entry: dict) -> None:
    """ART_DIR/entry["path"] is there and has the entry's sha256 (a FileHash as a dict); one UserError if not."""
    path = Path(art_dir) / entry["path"]
    if not path.is_file():
        raise UserError(f"{art_dir} has a manifest.json but no {entry['path']}; run `embbert convert` again")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if sha != entry["sha256"]:
        raise UserError(f"{path} is not the file manifest.json names ({len(data):,} B, sha256 {sha[:12]}... vs "
                        f"{entry['bytes']:,} B, {entry['sha256'][:12]}...): it was changed or damaged; run "
                        "`embbert convert` again")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quantization(_Strict):
    scale: float = Field(description="real = scale * (q - zero_point)")
    zero_point: int


class TensorSpec(_Strict):
    name: str
    dtype: str = Field(description="int32 ids in, int8 logits out")
    shape: list[int]
    quantization: Quantization | None = Field(None, description="None for the int32 ids")


class FileHash(_Strict):
    path: str
    sha256: str
    bytes: int


class Arena(_Strict):
    minimal_bytes: int = Field(description="smallest arena_size for which TFLite-Micro's AllocateTensors succeeds")
    used_bytes: int = Field(description="what TFLite-Micro's recording allocator reports at that size")
    head_bytes: int = Field(description="planned activations (non-persistent)")
    tail_bytes: int = Field(description="persistent: per-op data, eval tensors, node structs")


class AotSources(_Strict):
    """One kernel set's generated sources in the artifact (convert/aot/artifact.py)."""
    arena_bytes: int = Field(description="the aot backend's static arena: activations and scratch, planned for n = L")
    weights_bytes: int = Field(description="its constant tensors (flash), instead of the .tflite")
    files: list[FileHash] = Field(description="aot/<kernels>/*: what `embbert build --backend aot` compiles")


class Parity(_Strict):
    test_sentences: int
    accuracy_float: float = Field(description="(a) PyTorch float")
    accuracy_litert: float = Field(description="(b) int8 on the LiteRT interpreter")
    accuracy_micro: float = Field(description="(c) int8 on the host TFLite-Micro interpreter")
    agreement_litert: float = Field(description="argmax agreement of (b) with (a)")
    agreement_micro: float = Field(description="argmax agreement of (c) with (a)")
    cosine_litert: float = Field(description="mean cosine of dequantized (b) logits with (a)")
    cosine_micro: float = Field(description="mean cosine of dequantized (c) logits with (a)")
    bit_exact_litert_micro: float = Field(description="share of inputs where (b) and (c) int8 logits are identical")
    max_lsb_litert_micro: int = Field(description="largest |(b) - (c)| in int8 steps")


class Manifest(_Strict):
    manifest_version: int = MANIFEST_VERSION
    model: str
    config: dict = Field(description="the full ModelConfig of the checkpoint")
    task: str
    labels: list[str]
    sequence_length: int
    pad_id: int
    input: TensorSpec
    output: TensorSpec
    model_file: FileHash
    tokenizer_file: FileHash
    float_model_file: FileHash | None = Field(
        None, description="the float ONNX graph the int8 model came from (padded input, same logits as PyTorch)")
    ops: dict[str, int] = Field(description="TFLite builtin op -> count")
    op_count: int
    flash_bytes: int = Field(description="size of model.tflite: what goes to flash (backend tflm)")
    arena_bytes: int = Field(description="= arena.minimal_bytes: what the tflm firmware must reserve")
    arena: Arena = Field(description="TFLite-Micro's arena (backend tflm)")
    aot: dict[str, AotSources] = Field(
        description="aot kernel set (board.toml build.aot_kernels) -> the aot backend's generated sources and "
        "memory; empty where its code generator does not take the graph (aot_unsupported says why)")
    aot_unsupported: str | None = Field(None, description="why the artifact has no aot sources")
    calibration_sentences: int
    parity: Parity
    toolchain: dict[str, str] = Field(description="versions of torch, onnx, onnx2tf, tensorflow, ...")
    graph_rewrites: dict[str, int] | None = Field(
        None, description="what convert/optimize.py did to the converter's flatbuffer (counts, planned bytes)")
