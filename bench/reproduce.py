"""The paper's claims on the offline suite: one resumable study (issue 16).

    python bench/reproduce.py --work /work/study          # run or resume the study (hours; one job at a time)
    python bench/reproduce.py --work /work/study --jobs 2 # two jobs at once (2 free cores)
    python bench/reproduce.py --report                    # docs/results.md from the result JSONs
    python bench/reproduce.py --plan                      # the jobs in order, each one's wall time or estimate
    python bench/reproduce.py --preset smoke --work W --results R --doc D   # every stage once, tiny (tests)

Each job writes one JSON into RESULTS (default bench/results/reproduce/),
atomically, when it finishes; a job whose JSON exists is never run again, so
the study can be stopped at any moment and resumed over days. Run directories,
artifacts and caches live under WORK, outside the repository; an interrupted
training continues from its last checkpoint (`embbert ... --resume`).

Jobs, most valuable first (a later session may be cut short):
  1. pretraining of EmbBERT at today's budget (1x: 3000 x 32 x 128 = 12.3 M tokens);
  2. the quant-noise sweep: EmbBERT from that backbone, seed 0, noise 0/8/16/24, five tasks,
     each converted (`embbert convert`) and checked on the validation split too, so the
     default is chosen on validation only (choose_quant_noise); the sweep and the main
     table get int8 figures, the later stages fp32 only;
  3. the 2 MB baselines bert-2mb and mamba-2mb, each pretrained once at the same token
     budget, seed 0 on the five tasks;
  4. the ablation's EmbBERT without pretraining (the cheapest ablation row);
  5. the main table's second seed: EmbBERT, bert-2mb and mamba-2mb, seed 1, four tasks;
  6. the pretraining budget: EmbBERT at 3x the tokens (its pretraining, the longest
     job, starts here so that it runs beside the short jobs, not alone at the end);
  7. the ablation (nanobert, bert-efficient, nanobert-efficient), each pretrained;
  8. scaling (embbert-nano, embbert-tiny, then embbert-medium), each pretrained at its own size;
  9. the embedder and embedder-conv baselines, one seed;
 10. the main table's third seed.
  Every comparison has one run before the third seed: a study cut short has one
  run of each, and two seeds of the main table.
A row with int8 figures records the int8 graph's design version (convert.GRAPH_VERSION;
none: version 1). When the graph changes, its stale conversions are re-run (`embbert
convert` and the validation parity on the same run dir, never a retraining) right after
the sweep's training jobs; the row keeps the figures it replaces (int8_superseded), and
the noise choice, hence every job after it, waits until the sweep's rows are current.
A job that Setup.cuts names is left out of the plan, and the report says why.
Every model pretrains at the same token budget and peak lr (chosen on EmbBERT); a
pretraining that learned nothing (held-out masked-token accuracy within a point of
always predicting the most frequent token) runs once more at Setup.retry_lr_factor of
that lr, and its model's fine-tunes start from the retry (backbone()).
TF-IDF + logistic regression (bench/accuracy.py) is computed beside every (task, seed).
Everything runs in subprocesses of the real `embbert` command; launch the study
niced with OMP_NUM_THREADS=1 (the children inherit both).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import fnmatch
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import median

from common import RESULTS, embbert, machine

REPO = Path(__file__).resolve().parent.parent
STUDY_RESULTS = RESULTS / "reproduce"
DOC = REPO / "docs" / "results.md"

TASKS4 = ("sms_spam", "rt_reviews", "trec_questions", "vader_movies")
ALL_TASKS = (*TASKS4, "news20")
# The quant-noise rule (issue 16), on validation splits only.
MIN_AGREEMENT = 0.99
MAX_VAL_LOSS = 0.005  # of accuracy, against no noise


@dataclass(frozen=True)
class Setup:
    """What a preset of the study changes: sizes and lists, never the recipe's logic."""

    preset: str  # the `embbert` preset of every run
    model: str  # the model of the sweep, the main table's first row, the ablation's reference, the budget
    tasks4: tuple[str, ...]
    all_tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    noise_levels: tuple[float, ...]
    steps_1x: int
    budget_factor: int
    baselines3: tuple[str, ...]  # 3 seeds (1 on news20)
    baselines1: tuple[str, ...]  # 1 seed, four tasks
    ablations: tuple[str, ...]
    scaling: tuple[str, ...]
    convert_limit: int | None  # convert at most this many fine-tunes (None: all)
    parity_limit: int | None = None  # parity on the first N sentences of test and of val (None: all)
    ship: tuple[str, ...] = ()  # models whose 1x pretraining goes into the package (embbert/backbones/)
    convert_stages: tuple[str, ...] = ("sweep", "main")  # the fine-tunes that get an int8 figure
    sweep_order: tuple[str, ...] | None = None  # the sweep's task order (None: all_tasks)
    calibration: int | None = None  # `embbert convert --calibration` (None: its default)
    epochs: dict = field(default_factory=dict)
    cuts: dict = field(default_factory=dict)  # job-name pattern (fnmatch) -> why those jobs were cut
    retry_lr_factor: float | None = None  # a pretraining that learned nothing runs once more at this share of the lr


def setup(preset: str) -> Setup:
    from accuracy import EPOCHS

    if preset == "paper":
        return Setup("paper", "embbert", TASKS4, ALL_TASKS, (0, 1, 2), (0.0, 8.0, 16.0, 24.0), 3000, 3,
                     ("bert-2mb", "mamba-2mb"), ("embedder", "embedder-conv"),
                     ("nanobert", "bert-efficient", "nanobert-efficient"),
                     ("embbert-nano", "embbert-tiny", "embbert-medium"), None, epochs=dict(EPOCHS),
                     ship=("embbert", "bert-2mb", "mamba-2mb"),
                     sweep_order=("trec_questions", "sms_spam", "vader_movies", "rt_reviews", "news20"),
                     retry_lr_factor=0.2,
                     cuts={"*embbert-medium*": "the issue asks for -medium only if the budget allows; at 1 thread "
                           "the study's estimate was 22.8 h left against a 9 h budget, and -medium's pretraining "
                           "alone is estimated at ~3 h"})
    # One of each stage, on tiny data: the test of the study's machinery.
    # EmbBERT's smallest sibling in EmbBERT's place: its conversion is the quickest.
    return Setup("smoke", "embbert-nano", ("sms_spam",), ("sms_spam",), (0,), (0.0, 24.0), 10, 3, ("bert-2mb",), (),
                 (), ("embbert-tiny",), 1, parity_limit=20, calibration=10)


# ---------------------------------------------------------------- jobs


@dataclass(frozen=True)
class Job:
    kind: str  # pretrain | tfidf | finetune | reconvert (a fine-tune's conversion at the current graph)
    stage: str
    model: str = "embbert"
    task: str | None = None
    seed: int = 0
    init: str | None = None  # a pretraining's name, e.g. "embbert-1x"; None = from scratch
    quant_noise: float | None = None
    steps: int | None = None  # pretraining steps
    lr: float | None = None  # a pretraining's peak lr (None: `embbert pretrain`'s default)
    convert: bool = False  # a fine-tune that gets int8 figures

    @property
    def name(self) -> str:
        if self.kind == "reconvert":
            return f"reconvert-{self.row}"
        if self.kind == "pretrain":
            return f"pretrain-{self.init}"
        if self.kind == "tfidf":
            return f"tfidf-{self.task}-s{self.seed}"
        init = self.init.removeprefix(f"{self.model}-") if self.init else "scratch"  # "1x": the model's own
        return f"ft-{self.model}-{init}-{self.task}-s{self.seed}-qn{self.quant_noise:g}"

    @property
    def row(self) -> str:
        """The result JSON this job writes (a re-conversion rewrites its fine-tune's)."""
        return replace(self, kind="finetune").name if self.kind == "reconvert" else self.name

    @property
    def needs(self) -> tuple[str, ...]:
        """The results this job reads: a fine-tune its pretraining, a re-conversion its row."""
        if self.kind == "reconvert":
            return (self.row,)
        return (f"pretrain-{self.init}",) if self.kind == "finetune" and self.init else ()


def pretrain_name(model: str, factor: int = 1) -> str:
    return f"{model}-{factor}x"


# A pretraining learned something when its held-out masked-token accuracy is at
# least this far above always predicting the most frequent masked token.
LEARNED_MARGIN = 0.01


def learned(row: dict) -> bool:
    return row["mlm_eval_accuracy"] >= row["mlm_eval_unigram_accuracy"] + LEARNED_MARGIN


def backbone(s: Setup, model: str, done: dict, factor: int = 1) -> tuple[list[Job], str]:
    """A model's pretraining jobs, and the backbone its fine-tunes start from.
    Every model pretrains at the same peak lr, chosen on EmbBERT; one that
    learned nothing there (post-LN NanoBERT stayed at its unigram baseline:
    `pretrain-nanobert-1x.json`) runs once more at s.retry_lr_factor of it, same
    token budget, and its fine-tunes start from the retry, whatever it learns."""
    first = Job("pretrain", "pretrain", model, init=pretrain_name(model, factor), steps=s.steps_1x * factor)
    row = done.get(first.name)
    if s.retry_lr_factor is None or row is None or learned(row):
        return [first], first.init
    lr = row["plan"]["lr"] * s.retry_lr_factor
    retry = replace(first, init=f"{first.init}-lr{lr:g}", lr=lr)
    return [first, retry], retry.init


def graph_version() -> int:
    from embbert.convert import GRAPH_VERSION

    return GRAPH_VERSION


def stale(row: dict) -> bool:
    """A row whose int8 figures come from another int8 graph than today's (no graph_version: version 1)."""
    return "int8" in row and row.get("graph_version", 1) != graph_version()


def jobs(s: Setup, done: dict) -> list[Job]:
    """The study's plan now: every job of all_jobs but the cut ones."""
    return [j for j in all_jobs(s, done) if cut_reason(s, j) is None]


def cut_reason(s: Setup, job: Job) -> str | None:
    return next((why for pattern, why in s.cuts.items() if fnmatch.fnmatchcase(job.name, pattern)), None)


def all_jobs(s: Setup, done: dict, level_if_unchosen: float | None = None) -> list[Job]:
    """The whole study in order of value. The main table's noise level is the
    sweep's choice, known once the sweep is done (at the current graph); until
    then those jobs wait, or are planned at `level_if_unchosen` (for estimates)."""
    out: list[Job] = []
    pres, emb = backbone(s, s.model, done)
    out += pres
    out += [Job("tfidf", "tfidf", task=task, seed=seed) for task in s.tasks4 for seed in s.seeds]
    for task in s.sweep_order or s.all_tasks:  # 2. the sweep, task by task, the quickest first
        for qn in s.noise_levels:
            out.append(Job("finetune", "sweep", s.model, task, 0, emb, qn))
    # Stale conversions, the sweep's first: the choice waits for them.
    redo = sorted((r for r in done.values() if r["kind"] == "finetune" and stale(r)),
                  key=lambda r: (r["stage"] != "sweep", r["name"]))
    out += [Job("reconvert", r["stage"], r["model"], r["task"], r["seed"], r["init"], r["quant_noise"]) for r in redo]
    # news20's TF-IDF (20 classes, 1-2-grams of 10k posts, five logistic regressions) had not ended after
    # 20 minutes, niced on the shared machine: it comes after the sweep.
    out += [Job("tfidf", "tfidf", task=task, seed=0) for task in s.all_tasks if task not in s.tasks4]
    choice = choose_quant_noise(sweep_rows(done, s), s)
    qn = choice["level"] if choice["level"] is not None else level_if_unchosen
    if qn is None:
        return _mark_conversions(s, out)  # the rest waits for the sweep
    # Every model's seed 0 first, the third seed last: a study cut short still
    # has one run of each comparison the claims need, and two seeds of the main table.
    def main_seed(seed: int) -> list[Job]:
        return [Job("finetune", "main", model, task, seed, backbone(s, model, done)[1], qn)
                for model in (s.model,) + s.baselines3 for task in s.tasks4]

    for model in s.baselines3:  # 3. the 2 MB baselines, pretrained at the same budget, seed 0 on every task
        pres, pre = backbone(s, model, done)
        out += pres
        out += [Job("finetune", "main", model, task, 0, pre, qn) for task in s.all_tasks]
    out += [Job("finetune", "ablation", s.model, task, 0, None, qn) for task in s.tasks4]  # 4. no pretraining
    for seed in s.seeds[1:2]:  # 5. the main table's second seed (EmbBERT's seed 0 is the sweep's run)
        out += main_seed(seed)
    # 6. the pretraining budget: its pretraining is the study's longest job, so it
    # starts early and runs beside the short ones instead of alone at the end.
    pres, pre3 = backbone(s, s.model, done, s.budget_factor)
    out += pres
    out += [Job("finetune", "budget", s.model, task, 0, pre3, qn) for task in s.tasks4]
    for model in s.ablations + s.scaling + s.baselines1:  # 7. the ablation, 8. scaling, 9. the embedder baselines
        pres, pre = backbone(s, model, done)
        stage = "ablation" if model in s.ablations else "scaling" if model in s.scaling else "main"
        out += pres
        out += [Job("finetune", stage, model, task, 0, pre, qn) for task in s.tasks4]
    for seed in s.seeds[2:]:  # 10. the main table's third seed
        out += main_seed(seed)
    return _mark_conversions(s, out)


def _mark_conversions(s: Setup, out: list[Job]) -> list[Job]:
    """The fine-tunes of the convert stages get int8 figures, the first
    convert_limit of them in plan order (a rule of the plan, so that jobs
    running at once agree on it)."""
    n = 0
    for i, j in enumerate(out):
        if j.kind == "finetune" and j.stage in s.convert_stages:
            out[i] = replace(j, convert=s.convert_limit is None or n < s.convert_limit)
            n += 1
    return out


def sweep_rows(done: dict, s: Setup) -> list[dict]:
    return [r for r in done.values() if r.get("kind") == "finetune" and r["model"] == s.model
            and r["init"] == pretrain_name(s.model) and r["seed"] == 0]


def choose_quant_noise(rows: list[dict], s: Setup) -> dict:
    """The rule, on validation only: int8 (TFLite-Micro) argmax agreement >=
    99 % on every task, and no task losing more than 0.5 point of float
    validation accuracy against no noise. Among the levels that pass, the one
    with the best mean int8 validation accuracy; if none passes, the level with
    the smallest total shortfall (agreement below 99 % plus accuracy lost
    beyond 0.5 point, in points), said as such. `level` is None until every
    (task, level) of the sweep has its fp32 and int8 validation figures, at
    the current int8 graph."""
    waiting = [r for r in rows if stale(r)]
    if waiting:
        return {"level": None, "rule": "not measured", "levels": {},
                "why": f"{len(waiting)} sweep runs wait for their re-conversion at int8 graph version {graph_version()}"}
    val = {(r["task"], r["quant_noise"]): r.get("int8_val") for r in rows}
    need = [(t, q) for t in s.all_tasks for q in s.noise_levels]
    missing = [k for k in need if not val.get(k) or "error" in val[k]]
    if missing:
        if all(k in val for k in need):  # finished, but some runs have no int8 figures (smoke: convert_limit)
            from embbert.train.plan import QUANT_NOISE

            return {"level": QUANT_NOISE, "rule": "not measured", "why": f"no int8 validation figures for "
                    f"{len(missing)} of {len(need)} sweep runs; the current default kept", "levels": {}}
        return {"level": None, "rule": "not measured", "why": f"{len(need) - len(missing)} of {len(need)} sweep runs done",
                "levels": {}}
    levels = {}
    for q in s.noise_levels:
        per_task = {}
        for t in s.all_tasks:
            v, v0 = val[(t, q)], val[(t, 0.0)]
            per_task[t] = {"agreement": v["agreement_micro"], "float": v["accuracy_float"],
                           "int8": v["accuracy_micro"], "float_loss": v0["accuracy_float"] - v["accuracy_float"]}
        shortfall = sum(max(0.0, MIN_AGREEMENT - p["agreement"]) + max(0.0, p["float_loss"] - MAX_VAL_LOSS)
                        for p in per_task.values())
        levels[q] = {"tasks": per_task, "passes": shortfall == 0.0, "shortfall_points": round(100 * shortfall, 3),
                     "mean_int8": sum(p["int8"] for p in per_task.values()) / len(per_task)}
    passing = [q for q in s.noise_levels if levels[q]["passes"]]
    if passing:
        best = max(passing, key=lambda q: (levels[q]["mean_int8"], -q))
        return {"level": best, "rule": "held", "why": f"passes: {', '.join(f'{q:g}' for q in passing)}; best mean "
                f"int8 validation accuracy", "levels": levels}
    best = min(s.noise_levels, key=lambda q: (levels[q]["shortfall_points"], q))
    return {"level": best, "rule": "compromise", "why": "no level passes; the smallest total shortfall",
            "levels": levels}


# ---------------------------------------------------------------- estimates

# Stated guesses, for jobs of which nothing alike has run yet.
GUESS_TFIDF_NEWS20_S = 1800.0  # had not ended after 20 minutes, niced on the shared machine (see all_jobs)
GUESS_FINETUNE_S = 600.0
GUESS_JOB_OVERHEAD_S = 30.0  # a fine-tune job beyond its training: start, memory report (no conversion)
GUESS_PRETRAIN_S_PER_STEP = 0.6  # EmbBERT's 1x pretraining: 1851 s for 3000 steps


def own_wall_s(row: dict) -> float:
    """The seconds of this machine a row's job took (a pretraining adopted from
    outside the study counts its own training time)."""
    return max(row.get("job_wall_s", 0.0), row.get("wall_time_s", 0.0) if row["kind"] == "pretrain" else 0.0)


def wall_s(row: dict) -> float:
    """A row's job time, its re-conversions included."""
    return own_wall_s(row) + sum(rc.get("job_wall_s", 0.0) for rc in row.get("reconversions", []))


def _params(model: str) -> int:
    from embbert.memory import memory_report
    from embbert.presets import get_preset

    return memory_report(get_preset(model)).params


def _cost_ratio(model: str, ref: str, done: dict) -> tuple[float, str]:
    """How much slower `model` trains than `ref`: their pretrainings' seconds
    per step when both ran, else (a guess) their parameter counts."""
    per_step = {}
    for r in done.values():
        if r["kind"] == "pretrain" and r["model"] in (model, ref):
            per_step.setdefault(r["model"], r["wall_time_s"] / r["steps"])
    if model in per_step and ref in per_step:
        return per_step[model] / per_step[ref], "their pretrainings' s/step"
    return _params(model) / _params(ref), "parameters (a guess)"


def estimate(job: Job, done: dict, s: Setup) -> tuple[float, str]:
    """The seconds `job` should take on this machine, and how that was reckoned:
    from the done jobs of the same kind, model and task (their median: one
    paused job does not count), else scaled from the nearest ones, else a
    stated guess."""
    rows = [r for r in done.values() if r["kind"] == ("finetune" if job.kind == "reconvert" else job.kind)]
    return globals()[f"_estimate_{job.kind}"](job, rows, done, s)


def _estimate_pretrain(job: Job, rows: list[dict], done: dict, s: Setup) -> tuple[float, str]:
    alike = [r for r in rows if r["model"] == job.model] or rows
    if not alike:
        return GUESS_PRETRAIN_S_PER_STEP * job.steps, "guess"
    ref = alike[0]
    ratio, how = _cost_ratio(job.model, ref["model"], done) if ref["model"] != job.model else (1.0, "")
    return ref["wall_time_s"] / ref["steps"] * job.steps * ratio, f"{ref['init']} per step" + (
        f", scaled by {how}" if how else "")


def _estimate_tfidf(job: Job, rows: list[dict], done: dict, s: Setup) -> tuple[float, str]:
    alike = [r for r in rows if r["task"] == job.task]
    if alike:
        return median([wall_s(r) for r in alike]), f"tfidf on {job.task}"
    if job.task == "news20":
        return GUESS_TFIDF_NEWS20_S, "guess: over 20 minutes niced"
    return (median([wall_s(r) for r in rows]), "tfidf on other tasks") if rows else (60.0, "guess")


def _estimate_reconvert(job: Job, rows: list[dict], done: dict, s: Setup) -> tuple[float, str]:
    redone = [rc["job_wall_s"] for r in rows if r["task"] == job.task for rc in r.get("reconversions", [])
              if "job_wall_s" in rc]
    if redone:
        return median(redone), f"re-conversions on {job.task}"
    r = done[job.row]
    return r["job_wall_s"] - r["fp32"]["wall_time_s"], "the first conversion (its job time beyond training)"


def _estimate_finetune(job: Job, rows: list[dict], done: dict, s: Setup) -> tuple[float, str]:
    """Its training, then the rest of the job (with or without a conversion)."""
    on_task = [r for r in rows if r["task"] == job.task]
    same = [r for r in on_task if r["model"] == job.model]
    if same:
        train, how = median([r["fp32"]["wall_time_s"] for r in same]), f"{job.model} on {job.task}"
    elif on_task:
        ref = on_task[0]["model"]
        ratio, scaled = _cost_ratio(job.model, ref, done)
        train = ratio * median([r["fp32"]["wall_time_s"] for r in on_task if r["model"] == ref])
        how = f"{ref} on {job.task}, scaled by {scaled}"
    elif rows:
        train, how = _train_on_a_new_task(job, rows, done, s)
    else:
        train, how = GUESS_FINETUNE_S, "guess"
    alike = [r for r in rows if ("int8" in r) == job.convert]
    extra = [r["job_wall_s"] - r["fp32"]["wall_time_s"] for r in [r for r in alike if r["task"] == job.task] or alike]
    return train + (median(extra) if extra else GUESS_JOB_OVERHEAD_S), how


def _train_on_a_new_task(job: Job, rows: list[dict], done: dict, s: Setup) -> tuple[float, str]:
    """A task the study has not trained on yet: bench/accuracy.py's EmbBERT
    fine-tune time on it (an earlier run on this machine), times how much
    slower or quicker the study's fine-tunes ran on the tasks both have."""
    path = RESULTS / "accuracy.json"
    bench = {r["task"]: r["finetune_wall_time_s"] for r in json.loads(path.read_text())["rows"]} if path.exists() else {}
    mine = [r for r in rows if r["model"] == job.model and r["task"] in bench]
    ref = mine or [r for r in rows if r["model"] == s.model and r["task"] in bench]
    if job.task not in bench or not ref:
        return GUESS_FINETUNE_S, "guess"
    ratio, scaled = (1.0, "") if mine else _cost_ratio(job.model, s.model, done)
    factor = median([r["fp32"]["wall_time_s"] / bench[r["task"]] for r in ref])
    how = "guess: bench/results/accuracy.json's time on the task, scaled by the study's on the others"
    return ratio * factor * bench[job.task], how + (f" and by {scaled}" if scaled else "")


# ---------------------------------------------------------------- running


class Study:
    def __init__(self, s: Setup, work: Path, results: Path):
        self.s, self.work, self.results = s, work, results

    def done(self) -> dict:
        if not self.results.is_dir():
            return {}
        return {p.stem: json.loads(p.read_text()) for p in sorted(self.results.glob("*.json"))}

    def write(self, name: str, row: dict) -> Path:
        from embbert.train.rundir import write_json

        path = self.results / f"{name}.json"
        write_json(path, row)
        return path

    def run(self, job: Job) -> Path:
        """Run `job` and write its row."""
        started = time.monotonic()
        row = getattr(self, f"_{job.kind}")(job)
        wall = round(time.monotonic() - started, 1)
        if job.kind == "reconvert":  # the row stays its fine-tune's; the conversion is added to it
            row["reconversions"][-1]["job_wall_s"] = wall
            return self.write(job.row, row)
        return self.write(job.name, {"name": job.name, "kind": job.kind, "stage": job.stage, "preset": self.s.preset,
                                     "machine": machine(), "jobs_at_once": jobs_at_once(), **row, "job_wall_s": wall})

    def _pretrain(self, job: Job) -> dict:
        run = self.work / "pretrain" / job.init
        summary_path = run / "pretrain.json"
        if summary_path.exists():  # finished (also a run adopted from elsewhere)
            summary = json.loads(summary_path.read_text())
        else:
            summary = embbert("pretrain", "--model", job.model, "--out", run, "--preset", self.s.preset,
                              "--steps", job.steps, "--seed", job.seed, *(("--lr", job.lr) if job.lr else ()),
                              *_resume(run))
        plan = json.loads((run / "run.json").read_text())["plan"]
        from embbert.tokenizer import sha256_file

        shipped = None
        if job.model in self.s.ship and job.init == pretrain_name(job.model):
            from embbert import backbones

            command = f"embbert pretrain --model {job.model} --steps {job.steps} --seed {job.seed} --out DIR"
            shipped = {k: v for k, v in backbones.ship(run, job.model, command).items() if k != "config"}
        return {"shipped": shipped, "model": job.model, "init": job.init, "seed": job.seed, "run_dir": str(run), "plan": plan,
                "token_budget": plan["steps"] * plan["batch_size"] * plan["seq_len"],
                "tokenizer_sha256": sha256_file(run / "tokenizer.json"),
                **{k: v for k, v in summary.items() if k != "out"}}

    def _tfidf(self, job: Job) -> dict:
        from accuracy import tfidf_reference

        limit = 200 if self.s.preset == "smoke" else None  # the smoke fine-tunes' limit
        return {"task": job.task, "seed": job.seed, **tfidf_reference(job.task, limit, seed=job.seed)}

    def _finetune(self, job: Job) -> dict:
        from embbert.memory import memory_report
        from embbert.presets import get_preset

        run = self.work / "finetune" / job.name.removeprefix("ft-")
        metrics_path = run / "metrics.json"
        if metrics_path.exists():
            metrics = json.loads(metrics_path.read_text())
        else:
            epochs = self.s.epochs.get(job.task)
            init = ("--init", self.work / "pretrain" / job.init) if job.init else ()
            metrics = embbert("train", "--model", job.model, "--task", job.task, "--out", run, *init,
                              "--preset", self.s.preset, "--seed", job.seed, "--quant-noise", job.quant_noise,
                              *(("--epochs", epochs) if epochs else ()), *_resume(run))
        mem = memory_report(get_preset(job.model))
        row = {"model": job.model, "task": job.task, "seed": job.seed, "init": job.init,
               "quant_noise": job.quant_noise, "run_dir": str(run),
               "plan": json.loads((run / "run.json").read_text())["plan"],
               "params": mem.params, "memory_fp32_bytes": mem.total_bytes_fp32,
               "memory_int8_bytes": mem.total_bytes_int8,
               "fp32": {k: metrics[k] for k in ("test_accuracy", "val_accuracy", "macro_f1", "best_epoch",
                                                "val_history", "sizes", "steps", "wall_time_s", "tokens_per_s")}}
        if job.convert:
            row["int8"], row["int8_val"] = self._convert(run)
            row["graph_version"] = graph_version()
        return row

    def _reconvert(self, job: Job) -> dict:
        """The fine-tune's row with int8 figures of today's graph, from its
        trained run dir; the figures they replace go into int8_superseded."""
        row = json.loads((self.results / f"{job.row}.json").read_text())
        before = {k: row[k] for k in ("int8", "int8_val", "int8_superseded") if k in row}
        int8, val = self._convert(Path(row["run_dir"]))
        return {**row, "int8": int8, "int8_val": val, "graph_version": graph_version(),
                "int8_superseded": {"graph_version": row.get("graph_version", 1), **before},
                "reconversions": [*row.get("reconversions", []), {"graph_version": graph_version(),
                                                                  "machine": machine(), "jobs_at_once": jobs_at_once()}]}

    def _convert(self, run: Path) -> tuple[dict, dict]:
        """`embbert convert` (parity on test), then the same parity on validation."""
        import convert as bench_convert
        from embbert.convert.pipeline import artifact_parity

        art = self.work / "artifacts" / run.name
        options = ("--calibration", str(self.s.calibration)) if self.s.calibration else ()
        summary = bench_convert.convert(run, art, self.s.parity_limit, *options)
        int8 = bench_convert.row(run.name, summary, True)
        if "error" in int8:
            return int8, {"error": int8["error"]}
        return int8, artifact_parity(run, art, "val", limit=self.s.parity_limit)


def _resume(run: Path) -> tuple[str, ...]:
    return ("--resume",) if run.exists() and any(run.iterdir()) else ()


def lock(work: Path):
    """One study per WORK folder: a second one would write the same run dirs."""
    work.mkdir(parents=True, exist_ok=True)
    f = open(work / "study.lock", "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another study is running in {work} (study.lock is held)") from None
    return f


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


IN_STUDY = "EMBBERT_REPRODUCE_CHILD"  # set (to --jobs) for the child that runs one job: the parent holds the lock


def jobs_at_once() -> int:
    """How many jobs the study that runs this one runs at once (they share the machine)."""
    return int(os.environ.get(IN_STUDY) or 1)


def remaining(s: Setup, done: dict) -> list[tuple[Job, str, float, str]]:
    """Every job not done, with its state (todo; waits, for a job planned once
    the quant-noise level is chosen, estimated at the current default; cut) and
    its estimated seconds with how they were reckoned."""
    from embbert.train.plan import QUANT_NOISE

    planned = {j.name for j in all_jobs(s, done)}
    out = []
    for j in all_jobs(s, done, level_if_unchosen=QUANT_NOISE):
        if j.name in done:
            continue
        state = "cut" if cut_reason(s, j) else "todo" if j.name in planned else "waits"
        out.append((j, state, *estimate(j, done, s)))
    return out


def print_plan(s: Setup, done: dict) -> None:
    for j in all_jobs(s, done):
        if j.name in done:
            print(f"done  {wall_s(done[j.name]):7.0f} s  {j.stage:9} {j.name}")
    left = remaining(s, done)
    for j, state, secs, how in left:
        print(f"{state:5} ~{secs:6.0f} s  {j.stage:9} {j.name}  ({cut_reason(s, j) if state == 'cut' else how})")
    choice = choose_quant_noise(sweep_rows(done, s), s)
    print(f"quant-noise choice: {choice['why']}" + ("" if choice["level"] is None else f": {choice['level']:g}"))
    todo = [(state, secs) for _, state, secs, _ in left if state != "cut"]
    waits = sum(1 for state, _ in todo if state == "waits")
    print(f"left: {len(todo)} jobs, about {sum(x for _, x in todo) / 3600:.1f} h of job time (one job at a time; "
          f"with --jobs 2 on two free cores, about half)" + (f", {waits} of them planned once the level is chosen "
                                                             "(estimated at the current default)" if waits else ""))


def run_study(study: Study, args: argparse.Namespace) -> None:
    """Each job in a child process of this script (`--job NAME`): its memory
    (TF-IDF matrices, TensorFlow) goes when it ends, and a study that runs for
    days picks up a fixed script at its next job. Up to --jobs children at
    once, each started in plan order once the results it needs are there; a
    failed child stops new starts, and the others finish."""
    running: dict[Job, subprocess.Popen] = {}
    failed: list[str] = []
    started = 0
    while True:
        ended = {job: proc.returncode for job, proc in running.items() if proc.poll() is not None}
        for job in ended:
            del running[job]
        done = study.done()
        todo = [j for j in jobs(study.s, done) if j.name not in done]
        left = {j.name for j in todo}
        for job, rc in ended.items():
            if rc != 0 or job.name in left:  # a child that ends without its result failed too
                failed.append(job.name)
                log(f"job {job.name} failed (exit {rc})" + ("; the others finish, no new job starts" if running else ""))
            else:
                log(f"wrote {study.results / job.row}.json")
        if not failed and (args.max_jobs is None or started < args.max_jobs):
            ready = [j for j in todo if j.name not in {r.name for r in running} and all(n in done for n in j.needs)]
            for job in ready[: args.jobs - len(running)]:
                log(f"{job.stage}: {job.name} ({len(todo)} jobs left, {len(done)} done, {len(running)} running)")
                cmd = [sys.executable, __file__, "--preset", study.s.preset, "--work", str(study.work),
                       "--results", str(study.results), "--job", job.name]
                # Its own process group: a study that is stopped stops its jobs' whole trees
                # (`embbert train` under the job), else a restarted study would train the same run dir twice.
                running[job] = subprocess.Popen(cmd, env={**os.environ, IN_STUDY: str(args.jobs)},
                                                start_new_session=True)
                started += 1
        if not running:
            break
        try:
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)  # until a child ends (Popen.poll reaps it)
        except BaseException:  # Ctrl-C, SIGTERM (see main), anything: no job outlives the study
            stop_jobs(running.values())
            raise
    if failed:
        raise SystemExit(f"job(s) failed: {', '.join(failed)}; the study stopped starting jobs (run it again to retry)")
    if todo and args.max_jobs is not None and started >= args.max_jobs:
        return
    if not todo:
        log("nothing left to run" if choose_quant_noise(sweep_rows(done, study.s), study.s)["level"] is not None
            else "the sweep is incomplete and nothing else can run")
    else:
        log(f"{len(todo)} jobs wait for results no job makes: {', '.join(j.name for j in todo[:5])}")


def stop_jobs(procs) -> None:
    """SIGTERM each running job's process group; SIGKILL what is left after 30 s."""
    procs = [p for p in procs if p.poll() is None]
    n = len(procs)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        deadline = time.monotonic() + 30
        while procs and time.monotonic() < deadline:
            procs = [p for p in procs if p.poll() is None]
            time.sleep(0.1)
        if not procs:
            break
    if n:
        log(f"stopped {n} running job(s); run the study again to resume them")


def run_one(study: Study, name: str) -> None:
    done = study.done()
    planned = {j.name: j for j in jobs(study.s, done)}
    if name in done or name not in planned:
        why = "already done" if name in done else "not a job of the plan now (see --plan)"
        choice = choose_quant_noise(sweep_rows(done, study.s), study.s)
        if choice["level"] is None:
            why += f"; the jobs after the quant-noise choice wait: {choice['why']}"
        raise SystemExit(f"--job {name}: {why}")
    study.run(planned[name])


def at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="paper", choices=["paper", "smoke"])
    ap.add_argument("--work", type=Path, default=None,
                    help="run dirs, artifacts, lock (default: the user cache, embbert/study-PRESET)")
    ap.add_argument("--results", type=Path, default=None, help=f"result JSONs (default {STUDY_RESULTS})")
    ap.add_argument("--doc", type=Path, default=DOC, help=f"the report --report writes (default {DOC})")
    ap.add_argument("--report", action="store_true", help="write the report from the JSONs; run nothing")
    ap.add_argument("--plan", action="store_true", help="print the jobs in order, each done one's wall time and "
                    "each other's estimate (from the done jobs of the same kind, model and task), and the time left; "
                    "run nothing")
    ap.add_argument("--jobs", type=at_least_one, default=1, help="run up to this many jobs at once, each in its own process, "
                    "each once the results it needs are there (default 1; each job uses one core)")
    ap.add_argument("--max-jobs", type=int, default=None, help="stop after this many jobs")
    ap.add_argument("--job", default=None, help="run this one job of the plan (what the study does in a child "
                    "process) and write its JSON")
    args = ap.parse_args()
    s = setup(args.preset)
    results = args.results or (STUDY_RESULTS if args.preset == "paper" else STUDY_RESULTS.with_name("reproduce-smoke"))
    if args.work is None:
        from embbert.tokenizer import cache_dir

        args.work = cache_dir() / f"study-{args.preset}"
    study = Study(s, args.work, results)
    if args.report:
        from reproduce_report import write_report

        print(f"wrote {write_report(study.done(), s, args.doc)}")
        return
    if args.plan:
        print_plan(s, study.done())
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # unwinds: locks and jobs let go
    held = None if os.environ.get(IN_STUDY) else lock(args.work)
    try:
        run_one(study, args.job) if args.job else run_study(study, args)
    finally:
        if held:
            held.close()


if __name__ == "__main__":
    main()
