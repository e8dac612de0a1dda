"""bench/reproduce.py: the study's machinery (every stage once, tiny), its resume, its report, its noise rule."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from reproduce import choose_quant_noise, setup  # noqa: E402


def _study(tmp_path, *args):
    cmd = [sys.executable, str(BENCH / "reproduce.py"), "--preset", "smoke", "--work", str(tmp_path / "work"),
           "--results", str(tmp_path / "results"), "--doc", str(tmp_path / "doc" / "results.md"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_smoke_study_every_stage_once_then_resumes_and_reports(tmp_path):
    proc = _study(tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")}
    # The smoke study puts embbert-nano in EmbBERT's place (the quickest conversion) and embbert-tiny in scaling.
    assert set(rows) == {
        "pretrain-embbert-nano-1x", "pretrain-bert-2mb-1x", "pretrain-embbert-tiny-1x", "pretrain-embbert-nano-3x",
        "tfidf-sms_spam-s0",
        "ft-embbert-nano-1x-sms_spam-s0-qn0", "ft-embbert-nano-1x-sms_spam-s0-qn24",  # the sweep
        "ft-bert-2mb-1x-sms_spam-s0-qn24",  # a baseline, from its own pretraining
        "ft-embbert-nano-scratch-sms_spam-s0-qn24",  # the ablation without pretraining
        "ft-embbert-tiny-1x-sms_spam-s0-qn24",  # scaling
        "ft-embbert-nano-3x-sms_spam-s0-qn24",  # the pretraining budget
    }
    # One pretraining shared by its fine-tunes, at the same token budget for every model; 3x is three times it.
    budgets = {n: r["token_budget"] for n, r in rows.items() if r["kind"] == "pretrain"}
    assert budgets["pretrain-embbert-nano-3x"] == 3 * budgets["pretrain-embbert-nano-1x"] == 3 * budgets["pretrain-bert-2mb-1x"]
    assert rows["ft-embbert-nano-1x-sms_spam-s0-qn24"]["init"] == "embbert-nano-1x"
    assert rows["pretrain-embbert-nano-1x"]["shipped"] is None  # the smoke study never ships into the package
    # Exactly one conversion (smoke), with parity on test and on validation, both on host TFLite-Micro.
    converted = [r for r in rows.values() if "int8" in r]
    assert len(converted) == 1
    int8, val = converted[0]["int8"], converted[0]["int8_val"]
    assert int8["test_sentences"] == 20 and val["split"] == "val" and val["test_sentences"] == 20
    assert 0 <= val["agreement_micro"] <= 1 and int8["flash_bytes"] > 100_000
    # The noise level of the later stages: the current default, since the sweep's other run was not converted.
    assert {r["quant_noise"] for r in rows.values() if r.get("stage") not in ("sweep", None) and "quant_noise" in r} == {24.0}

    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "results").iterdir()}
    again = _study(tmp_path)
    assert again.returncode == 0 and "nothing left to run" in again.stderr, again.stderr[-2000:]
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "results").iterdir()} == before

    report = _study(tmp_path, "--report")
    assert report.returncode == 0, report.stderr[-2000:]
    text = (tmp_path / "doc" / "results.md").read_text()
    for heading in ("## The quant-noise default", "## Main table", "## Ablation", "## Scaling", "## Pretraining budget",
                    "## The claims"):
        assert heading in text
    assert "not yet measured" in text  # the smoke study has no rt_reviews, no mamba-2mb, ...
    assert (tmp_path / "doc" / "results-memory.png").stat().st_size > 1000


def test_a_second_study_on_the_same_work_folder_is_refused(tmp_path):
    import fcntl

    (tmp_path / "work").mkdir()
    with open(tmp_path / "work" / "study.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = _study(tmp_path)
    assert proc.returncode != 0 and "another study is running" in proc.stderr
    assert not (tmp_path / "results").exists()


def _sweep(figures):
    """Sweep rows from {(task, level): (val float, val int8, agreement)}."""
    return [{"task": t, "quant_noise": q, "int8_val": {"accuracy_float": f, "accuracy_micro": i, "agreement_micro": a}}
            for (t, q), (f, i, a) in figures.items()]


def _paper_sweep(**changes):
    s = setup("paper")
    figures = {(t, q): (0.80, 0.80, 0.995) for t in s.all_tasks for q in s.noise_levels}
    figures.update(changes.get("figures", {}))
    return s, _sweep(figures)


def test_noise_rule_waits_for_the_whole_sweep():
    s, rows = _paper_sweep()
    assert choose_quant_noise(rows[:-1], s)["level"] is None


def test_noise_rule_picks_the_best_passing_level():
    s, rows = _paper_sweep(figures={
        ("news20", 0.0): (0.60, 0.55, 0.97),  # no noise: int8 disagrees on news20
        ("news20", 8.0): (0.598, 0.597, 0.992),  # passes, loses 0.2 point
        ("news20", 16.0): (0.599, 0.599, 0.995),  # passes, better int8
        ("news20", 24.0): (0.58, 0.58, 0.999),  # loses 2 points: fails
    })
    c = choose_quant_noise(rows, s)
    assert c["rule"] == "held" and c["level"] == 16.0
    assert not c["levels"][0.0]["passes"] and not c["levels"][24.0]["passes"]


def test_noise_rule_compromise_when_no_level_passes():
    s, rows = _paper_sweep(figures={
        ("trec_questions", 0.0): (0.85, 0.80, 0.95),
        ("trec_questions", 8.0): (0.84, 0.83, 0.98),  # shortfall 1 (agreement) + 0.5 (accuracy) points
        ("trec_questions", 16.0): (0.82, 0.82, 0.99),  # shortfall 2.5 points
        ("trec_questions", 24.0): (0.80, 0.80, 0.995),  # shortfall 4.5 points
    })
    c = choose_quant_noise(rows, s)
    assert c["rule"] == "compromise" and c["level"] == 8.0
    assert c["levels"][8.0]["shortfall_points"] == pytest.approx(1.5)
