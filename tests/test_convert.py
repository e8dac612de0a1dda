"""embbert convert on a smoke-sized EmbBERT (random weights, L 64): export
parity in float, the int8 pipeline end to end, determinism, and the checks
that must refuse a conversion."""

import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import run_cli
from embbert.config import ModelConfig
from embbert.data import load_task
from embbert.models import Classifier
from embbert.presets import get_preset
from embbert.tokenizer import train_tokenizer
from embbert.train import rundir

SMOKE = ModelConfig(name="embbert-smoke", family="embbert", vocab_size=512, max_len=64, d_model=32,
                    embed_rank=8, n_layers=2, conv_kernel=8)


def _random_ids(n: int, vocab: int, L: int, gen) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(5, vocab, (1, n), generator=gen)
    ids[0, 0], ids[0, -1] = 2, 4  # [CLS] ... [SEP]
    full = torch.zeros(1, L, dtype=torch.int32)
    full[0, :n] = ids
    return ids, full


@pytest.mark.parametrize("cfg", [get_preset(n) for n in ("embbert", "embbert-nano", "nanobert-efficient", "bert-2mb", "bert-efficient", "nanobert", "embedder", "embedder-conv")] + [SMOKE], ids=lambda c: c.name)
def test_export_twin_matches_classifier_in_float(cfg):
    from embbert.convert.export import exportable

    torch.manual_seed(0)
    model = Classifier(cfg, 3).eval()
    twin = exportable(model)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n in (2, 17, cfg.max_len):
            ids, full = _random_ids(n, cfg.vocab_size, cfg.max_len, gen)
            torch.testing.assert_close(twin(full), model(ids), atol=1e-4, rtol=1e-4)


def _make_run(path, cfg=SMOKE, seed=0):
    """A run directory as `embbert train` writes it, with random weights."""
    data = load_task("sms_spam", seed=0)
    tok = train_tokenizer([e.text for e in data.train[:400]], cfg.vocab_size)
    path.mkdir(parents=True)
    tok.save(str(path / "tokenizer.json"))
    run = {"kind": "train", "model": cfg.model_dump(), "task": "sms_spam", "source": None,
           "labels": data.labels, "split_seed": 0}
    rundir.write_json(path / rundir.RUN_JSON, run)
    torch.manual_seed(seed)
    rundir.write_checkpoint(path, cfg, Classifier(cfg, len(data.labels)), run, labels=data.labels)
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return _make_run(tmp_path_factory.mktemp("convert") / "run")


@pytest.fixture(scope="module")
def converted(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("art") / "a"
    proc = run_cli("convert", run_dir, "--out", out, "--calibration", "20", "--test-limit", "40", "--json", check=True)
    return out, json.loads(proc.stdout)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_convert_writes_checked_artifacts(converted, run_dir):
    from embbert.convert.check_ops import MICRO_BUILTINS, check_micro, read_model
    from embbert.convert.manifest import Manifest

    out, summary = converted
    assert sorted(p.name for p in out.iterdir()) == ["aot", "manifest.json", "model.tflite", "model_data.cc",
                                                      "model_data.h", "model_float.onnx", "parity.json",
                                                      "tokenizer.json"]
    manifest = Manifest.model_validate_json((out / "manifest.json").read_text())
    model = (out / "model.tflite").read_bytes()
    assert manifest.model_file.sha256 == _sha(out / "model.tflite") and manifest.flash_bytes == len(model)
    assert manifest.tokenizer_file.sha256 == _sha(run_dir / "tokenizer.json") == _sha(out / "tokenizer.json")
    assert manifest.float_model_file.sha256 == _sha(out / "model_float.onnx")
    assert manifest.config == SMOKE.model_dump() and manifest.sequence_length == 64
    assert manifest.input.dtype == "int32" and manifest.input.shape == [1, 64]
    assert manifest.output.dtype == "int8" and manifest.output.shape == [1, 2] and manifest.output.quantization
    info = read_model(model)
    check_micro(info)
    assert set(manifest.ops) <= MICRO_BUILTINS and sum(manifest.ops.values()) == manifest.op_count
    # the depthwise conv as DEPTHWISE_CONV_2D; no negative-index guard (LESS, CAST) before the GATHER
    assert manifest.ops["DEPTHWISE_CONV_2D"] == SMOKE.n_layers and "CONV_2D" not in manifest.ops
    assert not {"ERF", "CUSTOM", "LESS", "CAST"} & set(manifest.ops)
    rw = manifest.graph_rewrites
    assert rw["negative_index_guards"] == 1 and rw["depthwise_convs"] == SMOKE.n_layers
    assert rw["exact_masks"] == SMOKE.n_layers  # convert/exact_mask.py: one per softmax
    assert rw["offline_plan_bytes"] == rw["planned_bytes"] <= rw["planned_bytes_converter_order"]
    # C array: 16-byte aligned, the same bytes
    cc = (out / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_model_data[]" in cc
    body = cc[cc.index("{") + 1 : cc.index("}")]
    assert bytes(int(x, 16) for x in body.replace(",", " ").split()) == model
    assert summary["wall_time_s"] > 0 and summary["parity"] == json.loads((out / "manifest.json").read_text())["parity"]


def test_artifact_holds_the_aot_sources_with_their_hashes_and_memory(converted):
    """The aot backend's C++ is generated by convert, per kernel set, into aot/<kernels>/;
    the manifest names every file (sha256) and records both backends' memory."""
    from embbert.convert.manifest import Manifest

    out, summary = converted
    manifest = Manifest.model_validate_json((out / "manifest.json").read_text())
    assert set(manifest.aot) == {"reference", "optimized"} and manifest.aot_unsupported is None
    assert sorted(str(p.relative_to(out)) for p in (out / "aot").rglob("*") if p.is_file()) == sorted(
        f.path for aot in manifest.aot.values() for f in aot.files)  # nothing unnamed
    for kernels, aot in manifest.aot.items():
        names = sorted(f.path.rsplit("/", 1)[1] for f in aot.files)
        assert names == ["aot_model_info.h", "model_aot.cc", "model_aot.h", "plan.json"]
        for f in aot.files:
            assert f.path.startswith(f"aot/{kernels}/") and f.sha256 == _sha(out / f.path)
            assert f.bytes == (out / f.path).stat().st_size
        plan = json.loads((out / "aot" / kernels / "plan.json").read_text())
        assert plan["kernels"] == kernels and plan["arena_bytes"] == aot.arena_bytes > 0
        assert plan["weights_bytes"] == aot.weights_bytes and 0 < aot.weights_bytes < manifest.flash_bytes
        assert f"kArenaBytes = {aot.arena_bytes};" in (out / "aot" / kernels / "model_aot.h").read_text()
        assert manifest.model_file.sha256 in (out / "aot" / kernels / "model_aot.cc").read_text()
        assert aot.arena_bytes < manifest.arena_bytes  # TFLite-Micro's arena, recorded beside it
    # the kernel sets' code differs (the optimized depthwise conv's pre-packed weights)
    assert _sha(out / "aot/reference/model_aot.cc") != _sha(out / "aot/optimized/model_aot.cc")
    assert summary["aot"] == json.loads((out / "manifest.json").read_text())["aot"]


def test_graph_rewrites_keep_tflite_micro_logits_bit_for_bit(converter_graph):
    """optimize.py on the converter's own flatbuffer: the same int8 logits on
    TFLite-Micro, fewer ops, a smaller planned arena (the offline plan with its
    in-place ops included). Each rewrite alone: tests/test_rewrite_<name>.py."""
    from embbert.convert import optimize
    from embbert.convert.arena import allocations
    from embbert.convert.check_ops import read_model
    from embbert.convert.parity import run_micro
    from embbert.convert.tflite_model import TfliteModel

    raw, batch = converter_graph("embbert")
    new, report = optimize.optimize(raw)
    unplanned, _ = optimize.optimize(raw, offline_plan=False)
    room = 4 << 20
    ref = run_micro(raw, batch, room)
    assert len({tuple(r) for r in ref}) > 3
    assert np.array_equal(run_micro(new, batch, room), ref)
    assert np.array_equal(run_micro(unplanned, batch, room), ref)
    before, after = read_model(raw).op_counts(), read_model(new).op_counts()
    assert {"LESS", "CAST", "CONV_2D"} <= set(before) and not {"LESS", "CAST", "CONV_2D"} & set(after)
    for model in (new, unplanned):  # every operator code is used (the tflm runner checks the codes it sees)
        mm = TfliteModel(model)
        assert sorted({op.opcodeIndex for op in mm.g.operators}) == list(range(len(mm.m.operatorCodes)))
    assert sum(after.values()) < sum(before.values())
    assert allocations(new, room)["head"] < allocations(raw, room)["head"]


def test_mamba_is_refused_with_the_reason():
    from embbert.convert.export import ExportError, exportable

    with pytest.raises(ExportError) as e:
        exportable(Classifier(get_preset("mamba-2mb"), 2))
    msg = str(e.value)
    assert "256-step recurrence" in msg and "6,400 ops" in msg and "kB" in msg and "\n" not in msg


def test_run_dir_vanishing_mid_conversion_is_one_line(run_dir, tmp_path, monkeypatch):
    import shutil

    from embbert.convert import pipeline
    from embbert.errors import UserError

    gone = tmp_path / "run"
    shutil.copytree(run_dir, gone)
    load_run = pipeline.source.load_run

    def load_then_vanish(path):
        src = load_run(path)
        shutil.rmtree(path)
        return src

    monkeypatch.setattr(pipeline.source, "load_run", load_then_vanish)
    with pytest.raises(UserError) as e:
        pipeline.convert_run(gone, tmp_path / "o", calibration=20)
    assert "disappeared" in str(e.value) and str(gone) in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "o").exists()


def test_arena_is_the_smallest_that_allocates(converted):
    from embbert.convert.arena import fits

    out, summary = converted
    model = (out / "model.tflite").read_bytes()
    minimal = summary["arena"]["minimal_bytes"]
    assert fits(model, minimal) and not fits(model, minimal - 1)
    assert summary["arena_bytes"] == minimal and summary["arena"]["used_bytes"] <= minimal


def test_parity_figures_hold_on_tflite_micro(converted):
    p = converted[1]["parity"]
    assert p["test_sentences"] == 40
    # random weights make near-ties, yet int8 should still follow float closely
    assert p["agreement_micro"] >= 0.9 and p["cosine_micro"] >= 0.95
    assert p["agreement_litert"] >= 0.9 and p["cosine_litert"] >= 0.95
    # a share of the 40 sentences, and all of them exactly when no logit differs
    assert (p["bit_exact_litert_micro"] * 40) == pytest.approx(round(p["bit_exact_litert_micro"] * 40))
    assert (p["bit_exact_litert_micro"] == 1.0) == (p["max_lsb_litert_micro"] == 0)


def test_micro_output_matches_recorded_parity(converted, run_dir):
    """Re-run TFLite-Micro on the artifact: the figures are reproducible, not just recorded."""
    from embbert.convert.parity import padded, run_micro
    from embbert.tokenizer import encode, load_tokenizer

    out, summary = converted
    model = (out / "model.tflite").read_bytes()
    data = load_task("sms_spam", seed=0)
    seqs = encode(load_tokenizer(out / "tokenizer.json"), [e.text for e in data.test[:40]], 64)
    logits = run_micro(model, [padded(s, 64) for s in seqs], summary["arena_bytes"])
    q = summary["output"]["quantization"]
    pred = ((logits.astype(np.float32) - q["zero_point"]) * q["scale"]).argmax(1)
    y = np.array([data.labels.index(e.label) for e in data.test[:40]])
    assert float((pred == y).mean()) == pytest.approx(summary["parity"]["accuracy_micro"])


def test_parity_on_another_split_is_the_same_code(converted, run_dir):
    """artifact_parity: convert's parity, on any part of the run's split (the study's validation figures)."""
    from embbert.convert.pipeline import artifact_parity
    from embbert.errors import UserError

    out, summary = converted
    assert artifact_parity(run_dir, out, "test", limit=40) == {"split": "test", **summary["parity"]}
    val = artifact_parity(run_dir, out, "val", limit=25)
    assert val["split"] == "val" and val["test_sentences"] == 25 and val["agreement_micro"] >= 0.9
    with pytest.raises(UserError, match="unknown split"):
        artifact_parity(run_dir, out, "dev")


def test_same_run_same_bytes(converted, run_dir, tmp_path):
    out, _ = converted
    from embbert.convert.pipeline import convert_run

    again = tmp_path / "b"  # in-process this time (the fixture used the CLI)
    convert_run(run_dir, again, calibration=20, test_limit=40)
    assert _sha(again / "model.tflite") == _sha(out / "model.tflite")
    assert (again / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()  # aot sources' sha256 too


def _fails(proc, *words):
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    for w in words:
        assert w in line, line


def test_existing_out_needs_force(converted, run_dir):
    out, _ = converted
    _fails(run_cli("convert", run_dir, "--out", out), "--force")


@pytest.mark.parametrize("n", ["0", "9"])
def test_calibration_too_small(run_dir, tmp_path, n):
    _fails(run_cli("convert", run_dir, "--out", tmp_path / "o", "--calibration", n), "--calibration", "10")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("damage", ["no_checkpoint", "no_tokenizer", "corrupt_checkpoint", "not_a_dir"])
def test_bad_run_dir(run_dir, tmp_path, damage):
    import shutil

    bad = tmp_path / "run"
    shutil.copytree(run_dir, bad)
    if damage == "no_checkpoint":
        (bad / "checkpoint.pt").unlink()
        words = ["checkpoint.pt"]
    elif damage == "no_tokenizer":
        (bad / "tokenizer.json").unlink()
        words = ["tokenizer.json"]
    elif damage == "corrupt_checkpoint":
        data = (bad / "checkpoint.pt").read_bytes()
        (bad / "checkpoint.pt").write_bytes(data[: len(data) // 2])
        words = ["checkpoint", "not a readable"]
    else:
        bad = tmp_path / "nothing"
        words = ["not a run directory"]
    _fails(run_cli("convert", bad, "--out", tmp_path / "o"), *words)
    assert not (tmp_path / "o").exists()


class ExactGELU(nn.Module):
    """A small classifier whose feed-forward uses exact GELU (erf)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(64, 8)
        self.ff = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, ids):
        return self.head(F.gelu(self.ff(self.embed(ids))).mean(1))


def test_exact_gelu_is_refused_naming_op_and_module(tmp_path):
    from embbert.convert.check_ops import UnsupportedOp
    from embbert.convert.pipeline import build_tflite

    torch.manual_seed(0)
    cal = [np.random.default_rng(i).integers(0, 64, (1, 16)).astype(np.int32) for i in range(10)]
    with pytest.raises(UnsupportedOp) as e:
        build_tflite(ExactGELU().eval(), 16, cal, tmp_path)
    msg = str(e.value)
    assert "Erf" in msg and "Flex" in msg and "ff" in msg and "\n" not in msg


def test_check_refuses_float_and_int64_tensors(tmp_path):
    """A plain float conversion must be refused by the TFLite-Micro check, naming the op."""
    import tensorflow as tf

    from embbert.convert.check_ops import UnsupportedOp, check_micro, read_model

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def f(x):
        return tf.nn.relu(x * 2.0 + 1.0)

    model = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f).convert()
    with pytest.raises(UnsupportedOp, match="float tensor|FLOAT32"):
        check_micro(read_model(model))

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.int64)])
    def g(x):
        return x + 1

    model = tf.lite.TFLiteConverter.from_concrete_functions([g.get_concrete_function()], g).convert()
    with pytest.raises(UnsupportedOp, match="int64"):
        check_micro(read_model(model))


@pytest.mark.slow
def test_full_embbert_parity_on_test_sample(tmp_path):
    """The paper-shaped EmbBERT, fine-tuned: int8 on TFLite-Micro within 1 point of
    float and >= 99 % argmax agreement on 200 test sentences.

    EMBBERT_CONVERT_RUN may name a fine-tuned run (e.g. a bench run); without it
    the test pretrains and fine-tunes the smoke recipe first (a few minutes).
    """
    import os
    from pathlib import Path

    run = Path(os.environ.get("EMBBERT_CONVERT_RUN", tmp_path / "missing"))
    if not (run / "checkpoint.pt").exists():
        run_cli("pretrain", "--preset", "smoke", "--out", tmp_path / "pre", check=True)
        run = tmp_path / "sms"
        run_cli("train", "--task", "sms_spam", "--init", tmp_path / "pre", "--preset", "smoke", "--out", run, check=True)
    proc = run_cli("convert", run, "--out", tmp_path / "art", "--test-limit", "200", "--json", check=True)
    summary = json.loads(proc.stdout)
    assert summary["config"]["d_model"] == 128 and summary["config"]["n_layers"] == 4
    p = summary["parity"]
    assert p["test_sentences"] == 200
    assert abs(p["accuracy_micro"] - p["accuracy_float"]) <= 0.01
    assert p["agreement_micro"] >= 0.99 and p["cosine_micro"] >= 0.99


class Pooled(nn.Module):
    """A tiny classifier: embedding, one Linear, mean over positions."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(64, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, ids):
        return self.head(self.embed(ids).mean(1))


def test_float_graph_check_catches_a_graph_that_is_not_the_model(tmp_path):
    """onnx2tf's float graph is checked against PyTorch before int8: a graph of
    other weights (what a mis-read axis looks like from outside) is refused."""
    from embbert.convert import export, quantize

    torch.manual_seed(0)
    model = Pooled().eval()
    batch = [np.random.default_rng(i).integers(0, 64, (1, 16)).astype(np.int32) for i in range(4)]
    export.to_onnx(model, 16, tmp_path / "m.onnx")
    saved = quantize.onnx_to_saved_model(tmp_path / "m.onnx", tmp_path / "sm")
    assert quantize.check_float_graph(saved, model, batch) < 1e-4
    with torch.no_grad():
        model.head.bias += 0.5
    with pytest.raises(quantize.FloatGraphMismatch, match="float graph differs .* off by up to 0.5"):
        quantize.check_float_graph(saved, model, batch)
