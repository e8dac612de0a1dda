"""The `embbert` command: JSON contracts, and bad input as one line + exit 2 with nothing written."""

import json
from pathlib import Path

import pytest
import torch

from conftest import run_cli


def _json(proc):
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_memory_embbert_matches_paper():
    r = _json(run_cli("memory", "embbert", "--json"))
    assert r["params"] == 357_248
    assert abs(r["total_bytes_fp32"] - 1.95e6) / 1.95e6 < 0.01
    assert r["weights_bytes_int8"] == 357_248
    for key in ("weights_bytes_fp32", "activation_bytes_fp32", "total_bytes_int8"):
        assert key in r


def test_models_lists_every_preset():
    names = {m["model"] for m in _json(run_cli("models", "--json"))["models"]}
    assert {"embbert", "embbert-nano", "embbert-big", "bert-2mb", "mamba-2mb", "embedder", "nanobert"} <= names


def _fails(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for w in words:
        assert w in message, message
    return message


def test_unknown_model_lists_known(tmp_path):
    _fails(run_cli("memory", "gpt-5"), "unknown model", "embbert-nano")
    _fails(run_cli("train", "--model", "gpt-5", "--task", "sms_spam", "--out", tmp_path / "o"), "embbert")
    assert not (tmp_path / "o").exists()


def test_unknown_task_lists_known(tmp_path):
    _fails(run_cli("train", "--task", "imdb", "--out", tmp_path / "o", "--preset", "smoke"), "imdb", "sms_spam")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "content, args, words",
    [
        (b"text,label\nhello,a\nworld,b\n", ["--text-col", "sentence", "--label-col", "label"], ["sentence", "text"]),
        (b"", ["--text-col", "text", "--label-col", "label"], ["empty"]),
        (b"text,label\ncaf\xe9 au lait,a\n", ["--text-col", "text", "--label-col", "label"], ["UTF-8"]),
    ],
    ids=["missing-column", "empty", "not-utf8"],
)
def test_bad_data_file(tmp_path, content, args, words):
    data = tmp_path / "data.csv"
    data.write_bytes(content)
    _fails(run_cli("train", "--data", data, *args, "--out", tmp_path / "o", "--preset", "smoke"), *words)
    assert not (tmp_path / "o").exists()


def test_label_only_in_test(tmp_path):
    rows = ["text,label"] + [f"good sentence {i},pos" for i in range(30)] + [f"bad sentence {i},neg" for i in range(30)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "test.csv").write_text("text,label\nfine words,pos\none of a kind,weird\n")
    proc = run_cli("train", "--data", tmp_path / "train.csv", "--test-data", tmp_path / "test.csv",
                   "--text-col", "text", "--label-col", "label", "--out", tmp_path / "o", "--preset", "smoke")
    _fails(proc, "weird")
    assert not (tmp_path / "o").exists()


def _fake_run(path, model="embbert-nano", payload=None):
    from embbert.presets import get_preset

    path.mkdir()
    if payload is None:
        torch.save({"config": get_preset(model).model_dump(), "state_dict": {}}, path / "checkpoint.pt")
    else:
        (path / "checkpoint.pt").write_bytes(payload)
    return path


def test_checkpoint_of_another_model(tmp_path):
    init = _fake_run(tmp_path / "pre", model="embbert-nano")
    _fails(run_cli("train", "--model", "embbert", "--task", "sms_spam", "--init", init,
                   "--out", tmp_path / "o", "--preset", "smoke"), "embbert-nano", "embbert")
    assert not (tmp_path / "o").exists()


def test_corrupted_checkpoint(tmp_path):
    init = _fake_run(tmp_path / "pre", payload=b"\x00not a checkpoint")
    _fails(run_cli("train", "--task", "sms_spam", "--init", init, "--out", tmp_path / "o", "--preset", "smoke"),
           "checkpoint")
    assert not (tmp_path / "o").exists()


def test_existing_out_needs_resume_or_force(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    _fails(run_cli("train", "--task", "sms_spam", "--out", out, "--preset", "smoke"), "--resume", "--force")
    assert (out / "metrics.json").read_text() == "{}"  # untouched


def test_smoke_train_end_to_end_and_deterministic(tmp_path):
    common = ["train", "--model", "embbert", "--task", "sms_spam", "--preset", "smoke", "--json"]
    a = _json(run_cli(*common, "--out", tmp_path / "a"))
    b = _json(run_cli(*common, "--out", tmp_path / "b"))
    assert set(a["per_class"]) == {"ham", "spam"}
    matrix = a["confusion_matrix"]  # rows: true label, columns: predicted
    assert a["test_accuracy"] == pytest.approx(sum(row[i] for i, row in enumerate(matrix)) / sum(map(sum, matrix)))
    assert a["test_accuracy"] == b["test_accuracy"] and a["losses"] == b["losses"]
    for name in ("checkpoint.pt", "metrics.json", "run.json", "tokenizer.json"):
        assert (tmp_path / "a" / name).is_file()
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["test_accuracy"] == a["test_accuracy"]
    # --resume of a finished run changes nothing; --force starts over.
    assert _json(run_cli(*common, "--out", tmp_path / "a", "--resume"))["test_accuracy"] == a["test_accuracy"]
    assert _json(run_cli(*common, "--out", tmp_path / "a", "--force"))["losses"] == a["losses"]
    # Killed before its first checkpoint, a run has only run.json: --resume starts it from step 0.
    for name in ("resume.pt", "checkpoint.pt", "metrics.json"):
        (tmp_path / "a" / name).unlink()
    assert _json(run_cli(*common, "--out", tmp_path / "a", "--resume"))["losses"] == a["losses"]


def test_every_path_a_command_takes_is_made_absolute():
    """Issue 13, item 1: PlatformIO, QEMU and the converter run in other folders, so every
    path argument of every command is resolved once, where the CLI reads it."""
    import typing

    import typer

    from embbert.cli import app

    group = typer.main.get_command(app)
    paths = [(name, p.name, p.type_descriptor.parameter_info.resolve_path)
             for name, command in group.commands.items() for p in command.params
             if Path in (p.type_descriptor.annotation, *typing.get_args(p.type_descriptor.annotation))]
    # pretrain --out; train --data --test-data --out (--init, a name or a path, is resolved in train);
    # convert, build, deploy, stop, eval, micropython
    assert len(paths) == 16
    assert [(name, param) for name, param, resolved in paths if not resolved] == []


def _unwritable(tmp_path, where):
    """An --out nobody can write, root included: below a regular file, or in /proc."""
    if where == "below-a-file":
        (tmp_path / "file").write_text("not a folder")
        return tmp_path / "file" / "out"
    return Path("/proc/embbert-test") / tmp_path.name / "out"


@pytest.mark.parametrize("where", ["below-a-file", "proc"])
def test_an_unwritable_out_is_refused_before_any_work(tmp_path, where):
    """Issue 13, item 9: train and pretrain refuse it in one line before reading any data,
    convert before its work (the one line is all of stderr: no progress came first)."""
    from test_convert import _make_run

    out = _unwritable(tmp_path, where)
    _fails(run_cli("train", "--task", "sms_spam", "--preset", "smoke", "--out", out), "cannot write", str(out))
    _fails(run_cli("pretrain", "--preset", "smoke", "--out", out), "cannot write")
    run = _make_run(tmp_path / "run")
    _fails(run_cli("convert", run, "--out", out), "cannot write", str(out))
    assert not out.exists() and sorted(p.name for p in (tmp_path).iterdir()) == sorted(
        ["run"] + (["file"] if where == "below-a-file" else []))


@pytest.mark.parametrize("rows", [[("a fine film", "pos"), ("a dull film", "neg")],
                                  [(f"sentence number {i}", f"label{i}") for i in range(40)]],
                         ids=["2-rows", "40-labels-of-1"])
def test_data_too_small_to_split_is_refused(tmp_path, rows):
    """Issue 13, item 8: it trained and wrote "test_accuracy": NaN, which is not JSON."""
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    _fails(run_cli("train", "--data", data, "--text-col", "text", "--label-col", "label", "--preset", "smoke",
                   "--out", tmp_path / "o"), "too small to split", "needs 6 rows")
    assert not (tmp_path / "o").exists()


def test_results_are_never_written_with_nan(tmp_path):
    from embbert.train import rundir

    with pytest.raises(ValueError, match="not JSON compliant"):
        rundir.write_json(tmp_path / "metrics.json", {"test_accuracy": float("nan")})
    assert list(tmp_path.iterdir()) == []
