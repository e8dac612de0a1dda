"""Shipped backbones: `embbert train --init NAME`, checked by sha256, model and tokenizer."""

import json
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from embbert import backbones
from embbert.errors import UserError
from embbert.presets import get_preset
from embbert.train.finetune import init_tokenizer, load_backbone


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    run = tmp_path_factory.mktemp("pre") / "run"
    run_cli("pretrain", "--model", "embbert-nano", "--preset", "smoke", "--steps", "5", "--out", run, check=True)
    return run


@pytest.fixture
def shipped(pretrained, tmp_path, monkeypatch):
    monkeypatch.setattr(backbones, "DIR", tmp_path)
    meta = backbones.ship(pretrained, "nano-test", "embbert pretrain --model embbert-nano --preset smoke --steps 5")
    return meta


def test_ship_writes_weights_and_record(shipped, pretrained):
    meta = json.loads((backbones.DIR / "nano-test.json").read_text())
    assert meta == json.loads(json.dumps(shipped))
    summary = json.loads((pretrained / "pretrain.json").read_text())
    assert meta["masked_token_accuracy"] == summary["mlm_eval_accuracy"]
    assert meta["recipe"]["steps"] == 5 and meta["recipe"]["token_budget"] == 5 * 32 * 64
    saved = torch.load(backbones.DIR / "nano-test.pt", weights_only=True)
    assert "optimizer" not in saved and saved["kind"] == "backbone"
    assert all(v.dtype == torch.float32 for v in saved["state_dict"].values())
    ckpt = torch.load(pretrained / "checkpoint.pt", weights_only=True)
    run_weights = {k.removeprefix("backbone."): v for k, v in ckpt["state_dict"].items() if k.startswith("backbone.")}
    loaded = load_backbone(Path("nano-test"), get_preset("embbert-nano"))
    assert loaded.keys() == run_weights.keys() and all(torch.equal(loaded[k], run_weights[k]) for k in loaded)


def test_damaged_backbone_is_refused(shipped):
    path = backbones.DIR / "nano-test.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256"):
        load_backbone(Path("nano-test"), get_preset("embbert-nano"))


def test_backbone_of_another_model_is_refused(shipped):
    with pytest.raises(UserError, match="embbert-nano"):
        load_backbone(Path("nano-test"), get_preset("embbert"))


def test_tokenizer_mismatch_is_one_line(shipped, pretrained, tmp_path):
    backbones.check_tokenizer("nano-test", pretrained / "tokenizer.json")  # its own: accepted
    other = tmp_path / "other.json"
    other.write_text((pretrained / "tokenizer.json").read_text().replace('"[UNK]"', '"[UNK]" ', 1))
    with pytest.raises(UserError) as e:
        backbones.check_tokenizer("nano-test", other)
    assert "not the one backbone 'nano-test' was trained with" in str(e.value) and "\n" not in str(e.value)


def test_a_run_directory_wins_over_a_name(shipped, pretrained, tmp_path, monkeypatch):
    assert init_tokenizer(pretrained) == pretrained / "tokenizer.json"
    assert not backbones.is_name(pretrained)
    monkeypatch.chdir(tmp_path)
    assert backbones.is_name(Path("nano-test"))
    (tmp_path / "nano-test").mkdir()
    assert not backbones.is_name(Path("nano-test"))


def test_unknown_init_names_the_shipped_ones(tmp_path):
    proc = run_cli("train", "--task", "sms_spam", "--init", "no-such-backbone", "--out", tmp_path / "o",
                   "--preset", "smoke")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "neither a shipped backbone" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_the_shipped_embbert_backbone():
    """The real one in the package: its sha256, the preset's shape, a pretraining that learned something."""
    meta = backbones.info("embbert")
    cfg, weights = backbones.load("embbert")
    assert cfg == get_preset("embbert") and meta["params"] == 357_248
    assert sum(v.numel() for v in weights.values()) == meta["params"]
    assert meta["masked_token_accuracy"] > 3 * meta["unigram_accuracy"]
    assert meta["recipe"]["token_budget"] == 3000 * 32 * 128 and len(meta["tokenizer_sha256"]) == 64
