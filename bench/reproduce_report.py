"""docs/results.md from the study's result JSONs (bench/reproduce.py --report).

Every figure in the document comes from a JSON of bench/results/reproduce/;
what has not run yet reads "not yet measured". The paper's own figures are
constants below, with their source.
"""

from __future__ import annotations

import fnmatch
import statistics
import time
from pathlib import Path

from reproduce import (LEARNED_MARGIN, MAX_VAL_LOSS, MIN_AGREEMENT, Job, Setup, backbone, choose_quant_noise, cut_reason,
                       graph_version, jobs, learned, own_wall_s, pretrain_name, remaining, stale, sweep_rows, wall_s)

# Bianchi et al., EmbBERT (figures as collected in the team's notes): TinyNLP
# average accuracy, fp32 and 8-bit, and the memory the paper gives for each.
PAPER_POINTS = {"fp32": (1.95e6, 87.19), "int8": (781e3, 88.18)}
PAPER_SCALING_MB = {"embbert-nano": 0.65, "embbert-tiny": 1.24, "embbert": 1.95, "embbert-medium": 9.60,
                    "embbert-big": 39.71}
MISSING = "not yet measured"
# A claim that one model is better holds when its four-task average is ahead by
# more than this many points, fails when behind by more, and is unclear in between:
# one seed of one task moves an average by about as much (the main table's std).
MARGIN = 1.0


def verdict(ahead: float) -> str:
    """`ahead`: the claimed-better model's average minus the other's, in points."""
    return "held" if ahead > MARGIN else "not held" if ahead < -MARGIN else "unclear"


def overall(verdicts: list[str]) -> str:
    return "not held" if "not held" in verdicts else "unclear" if "unclear" in verdicts else "held"


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def int8_now(r: dict, key: str = "int8") -> dict:
    """A row's int8 figures (`int8` on test, `int8_val` on validation) at the current graph; {} if none or stale."""
    return {} if stale(r) else r.get(key, {})


def int8_before(r: dict) -> dict | None:
    """The figures of an earlier int8 graph: a stale row's own, or those a re-conversion replaced."""
    if stale(r):
        return {"graph_version": r.get("graph_version", 1), "int8": r["int8"], "int8_val": r.get("int8_val", {})}
    return r.get("int8_superseded")


def mean_std(xs: list[float]) -> str:
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{100 * xs[0]:.2f}"
    return f"{100 * statistics.mean(xs):.2f} ± {100 * statistics.stdev(xs):.2f}"


class Results:
    """The finished JSONs, indexed the way the tables read them."""

    def __init__(self, done: dict, s: Setup):
        self.done, self.s = done, s
        self.choice = choose_quant_noise(sweep_rows(done, s), s)
        self.e = s.model  # EmbBERT, or its stand-in in the smoke study
        self.main_models = (s.model, *s.baselines3, *s.baselines1)
        self.scaling = tuple(sorted({s.model, *s.scaling}, key=lambda m: memory_of(m)))
        self.qn = self.choice["level"]
        self.ft = [r for r in done.values() if r["kind"] == "finetune"]

    def runs(self, model: str, task: str, init: str | None = "1x", qn: float | None = None,
             seeds: set[int] | None = None) -> list[dict]:
        """Fine-tunes of `model` on `task`; init "1x"/"3x" is the model's own pretraining (the
        backbone its fine-tunes start from), None none; `seeds`: only those seeds (each seed
        is also its own train/val/test split)."""
        want_init = self.backbone(model, int(init[0])) if init else None
        want_qn = self.qn if qn is None else qn
        return [r for r in self.ft if r["model"] == model and r["task"] == task and r["init"] == want_init
                and r["quant_noise"] == want_qn and (seeds is None or r["seed"] in seeds)]

    def acc(self, runs: list[dict], precision: str) -> list[float]:
        if precision == "fp32":
            return [r["fp32"]["test_accuracy"] for r in runs]
        return [int8_now(r)["accuracy_micro"] for r in runs if "accuracy_micro" in int8_now(r)]

    def average(self, model: str, precision: str, init: str | None = "1x", tasks=None,
                seeds: set[int] | None = None) -> float | None:
        """Mean over the four tasks of the per-task mean over seeds; None unless all four are there."""
        per_task = []
        for task in tasks or self.s.tasks4:
            xs = self.acc(self.runs(model, task, init, seeds=seeds), precision)
            if not xs:
                return None
            per_task.append(statistics.mean(xs))
        return statistics.mean(per_task)

    def common_seeds(self, models: tuple[str, ...]) -> set[int]:
        """The seeds every one of `models` has run on every task (a like-for-like comparison)."""
        sets = [{r["seed"] for r in self.runs(m, t)} for m in models for t in self.s.tasks4]
        return set.intersection(*sets) if sets else set()

    def tfidf(self, task: str, seeds: set[int] | None = None) -> list[float]:
        """TF-IDF + LR test accuracies on `task`, every seed's split (or those of `seeds`)."""
        return [r["test_accuracy"] for r in self.done.values() if r["kind"] == "tfidf" and r["task"] == task
                and (seeds is None or r["seed"] in seeds)]

    def tfidf_average(self, like: str | None = None, init: str | None = "1x",
                      seeds: set[int] | None = None) -> float | None:
        """TF-IDF + LR's four-task average over every seed's split, over `seeds`, or, like for
        like, over the splits (seeds) the model `like` has run on for each task."""
        xs = [self.tfidf(t, seeds=seeds if like is None else {r["seed"] for r in self.runs(like, t, init)})
              for t in self.s.tasks4]
        return statistics.mean(statistics.mean(x) for x in xs) if all(xs) else None

    def pretrain(self, name: str) -> dict | None:
        return self.done.get(f"pretrain-{name}")

    def backbone(self, model: str, factor: int = 1) -> str:
        """The pretraining `model`'s fine-tunes start from (a retry, where the first learned nothing)."""
        return backbone(self.s, model, self.done, factor)[1]

    def retries(self, models) -> str:
        """A sentence for each of `models` whose first pretraining learned nothing."""
        out = []
        for model in models:
            first, used_name = self.pretrain(pretrain_name(model)), self.backbone(model)
            if first is not None and used_name != first["init"]:
                used = self.pretrain(used_name)
                state = (f"at {used['plan']['lr']:g} it reached {pct(used['mlm_eval_accuracy'])}"
                         + ("" if learned(used) else ", still nothing learned") if used else
                         f"its retry at {first['plan']['lr'] * self.s.retry_lr_factor:g} has not run yet")
                out.append(f" {model}'s pretraining learned nothing at peak lr {first['plan']['lr']:g} (masked-token "
                           f"accuracy {pct(first['mlm_eval_accuracy'])}, its unigram baseline "
                           f"{pct(first['mlm_eval_unigram_accuracy'])}); {state}, and its fine-tunes start from that.")
        return "".join(out)


def memory_of(model: str) -> int:
    from embbert.memory import memory_report
    from embbert.presets import get_preset

    return memory_report(get_preset(model)).total_bytes_fp32


def label(model: str, init: str | None) -> str:
    return f"{model} (no pretraining)" if init is None else model


def accuracy_table(res: Results, rows: list[tuple[str, str | None]], tasks: tuple[str, ...], memory: bool,
                   average: bool = True) -> list[str]:
    from embbert.memory import memory_report
    from embbert.presets import get_preset

    head = ["model", *tasks, *(["average (4 tasks)"] if average else [])]
    if memory:
        head += ["memory fp32", "memory int8 (paper formula)", "int8 flash + arena (measured)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, init in rows:
        mem = memory_report(get_preset(model))
        for precision in ("fp32", "int8"):
            cells = [f"{label(model, init)} {precision}"]
            for task in tasks:
                cells.append(mean_std(res.acc(res.runs(model, task, init), precision)))
            if average:
                cells.append(pct(res.average(model, precision, init)))
            if memory:
                measured = [int8_now(r)["total_bytes"] for t in tasks for r in res.runs(model, t, init)
                            if "total_bytes" in int8_now(r)]
                cells += [f"{mem.total_bytes_fp32 / 1e6:.3f} MB", f"{mem.total_bytes_int8 / 1e3:.0f} kB",
                          f"{max(measured) / 1e3:.0f} kB" if measured else "–"]
                if precision == "int8":
                    cells[-3] = cells[-2] = ""
                    errors = {int8_now(r)["error"] for t in tasks for r in res.runs(model, t, init) if "error" in int8_now(r)}
                    if errors:
                        cells[-1] = "does not convert: " + "; ".join(sorted(errors))[:200]
            lines.append("| " + " | ".join(cells) + " |")
    tf = ["TF-IDF + LR", *(mean_std(res.tfidf(t)) for t in tasks), *([pct(res.tfidf_average())] if average else [])]
    lines.append("| " + " | ".join(tf + ([""] * 3 if memory else [])) + " |")
    return lines


def sweep_section(res: Results) -> list[str]:
    c = res.choice
    out = [f"Rule (validation splits only): int8 (host TFLite-Micro) argmax agreement >= {MIN_AGREEMENT:.0%} with the "
           f"float model on every task, and no task losing more than {100 * MAX_VAL_LOSS:.1f} point of float "
           "validation accuracy against no noise. EmbBERT from the shared 1x backbone, seed 0.", ""]
    if c["level"] is None or not c["levels"]:
        return out + [f"Chosen level: {MISSING} ({c['why']}).", ""] + sweep_table(res)
    verdict = {"held": "passes the rule", "compromise": "is the rule's compromise"}[c["rule"]]
    out += [f"**Chosen: `--quant-noise {c['level']:g}`**, which {verdict} ({c['why']}).", ""]
    out += ["| level | passes | shortfall (points) | mean int8 val | " + " | ".join(
        f"{t} agree / loss" for t in res.s.all_tasks) + " |", "|" + "---|" * (4 + len(res.s.all_tasks))]
    for q, lv in c["levels"].items():
        out.append(f"| {float(q):g} | {'yes' if lv['passes'] else 'no'} | {lv['shortfall_points']} | "
                   f"{pct(lv['mean_int8'])} | " + " | ".join(
                       f"{pct(p['agreement'])} / {100 * p['float_loss']:+.2f}" for p in lv["tasks"].values()) + " |")
    return out + [""] + sweep_table(res)


def sweep_table(res: Results) -> list[str]:
    now = graph_version()
    out = [f"Every sweep run (validation and test; fp32 = PyTorch, int8 = host TFLite-Micro). The int8 figures are "
           f"those of the current int8 graph (version {now}); the last two columns are the same model's validation "
           "figures with an earlier graph (its version in brackets), where it was converted with one: the trained "
           "model is the same, only its conversion was re-run.", "",
           f"| task | noise | val fp32 | val int8 | val agreement | test fp32 | test int8 | test agreement | fine-tune s "
           "| val int8, earlier graph | val agreement, earlier graph |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for task in res.s.all_tasks:
        for q in res.s.noise_levels:
            rs = [r for r in res.runs(res.e, task, "1x", q) if r["seed"] == 0]
            if not rs:
                out.append(f"| {task} | {q:g} | {MISSING} | | | | | | | | |")
                continue
            r = rs[0]
            v, t = int8_now(r, "int8_val"), int8_now(r)
            before = int8_before(r)
            old, tag = (before["int8_val"], f" (v{before['graph_version']})") if before else ({}, "")
            out.append(f"| {task} | {q:g} | {pct(v.get('accuracy_float', r['fp32']['val_accuracy']))} | "
                       f"{'awaits re-conversion' if stale(r) else pct(v.get('accuracy_micro'))} | "
                       f"{pct(v.get('agreement_micro'))} | {pct(r['fp32']['test_accuracy'])} | "
                       f"{pct(t.get('accuracy_micro'))} | {pct(t.get('agreement_micro'))} | "
                       f"{r['fp32']['wall_time_s']:.0f} | {pct(old.get('accuracy_micro'))}{tag} | "
                       f"{pct(old.get('agreement_micro'))}{tag} |")
    return out


def _plot(path: Path, size: tuple[float, float], draw, xlabel: str, ylabel: str) -> bool:
    """Draw with `draw(ax) -> bool` (anything measured?) and save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    drawn = draw(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def memory_plot(res: Results, path: Path) -> bool:
    from embbert.memory import memory_report
    from embbert.presets import get_preset

    def draw(ax) -> bool:
        any_point = False
        for model in dict.fromkeys((*res.main_models, *res.scaling)):
            mem = memory_report(get_preset(model))
            for precision, size, marker in (("fp32", mem.total_bytes_fp32, "o"), ("int8", mem.total_bytes_int8, "s")):
                avg = res.average(model, precision)
                if avg is None:
                    continue
                any_point = True
                ax.scatter(size / 1e6, 100 * avg, marker=marker, color="C0" if precision == "fp32" else "C1")
                ax.annotate(model, (size / 1e6, 100 * avg), fontsize=7, xytext=(3, 3), textcoords="offset points")
        for precision, (size, acc) in PAPER_POINTS.items():
            ax.scatter(size / 1e6, acc, marker="*", s=120, color="C3")
            ax.annotate(f"paper EmbBERT {precision} (TinyNLP)", (size / 1e6, acc), fontsize=7, xytext=(3, -10),
                        textcoords="offset points")
        tf = res.tfidf_average()
        if tf is not None:
            ax.axhline(100 * tf, color="grey", linestyle="--", linewidth=1, label="TF-IDF + LR (ours)")
        ax.scatter([], [], marker="o", color="C0", label="ours, fp32")
        ax.scatter([], [], marker="s", color="C1", label="ours, int8 (TFLite-Micro)")
        ax.scatter([], [], marker="*", color="C3", label="paper (TinyNLP, other tasks)")
        ax.set_xscale("log")
        return any_point

    return _plot(path, (7, 4.5), draw, "total memory, MB (weights + activations, paper formula)",
                 "average accuracy, 4 tasks (%)")


def budget_plot(res: Results, path: Path, factors: list[int]) -> bool:
    def draw(ax) -> bool:
        drawn = False
        for i, task in enumerate(res.s.tasks4):
            pts = []
            for f in factors:
                pre = res.pretrain(res.backbone(res.e, f))
                xs = res.acc([r for r in res.runs(res.e, task, f"{f}x") if r["seed"] == 0], "fp32")
                if pre and xs:
                    pts.append((pre["tokens"] / 1e6, 100 * xs[0]))
            if pts:
                drawn = True
                ax.plot(*zip(*pts), marker="o", color=f"C{i}", label=task)
            tf = res.tfidf(task, seeds={0})
            if tf:
                ax.axhline(100 * tf[0], color=f"C{i}", linestyle=":", linewidth=1)
        return drawn

    return _plot(path, (6, 4), draw, "pretraining tokens (M)", "test accuracy fp32, seed 0 (%); dotted: TF-IDF + LR")


def claims(res: Results) -> list[str]:
    """One paragraph per claim; every comparison on the same seeds (= splits) for both sides."""
    out = []
    e32, e8 = res.average(res.e, "fp32"), res.average(res.e, "int8")
    both = res.common_seeds((res.e, "bert-2mb", "mamba-2mb")) or None  # None: a side is missing anyway
    b, m = res.average("bert-2mb", "fp32", seeds=both), res.average("mamba-2mb", "fp32", seeds=both)
    e_both = res.average(res.e, "fp32", seeds=both)
    e0 = res.average(res.e, "fp32", seeds={0})  # against the one-seed stages
    tf = res.tfidf_average(like=res.e)  # on the same splits as EmbBERT's runs
    if e32 is None or b is None or m is None:
        out.append(f"**1. EmbBERT beats BERT and MAMBA at 2 MB: {MISSING}.** Average fp32 test accuracy on the four "
                   f"tasks: EmbBERT {pct(e32)}, bert-2mb {pct(b)}, mamba-2mb {pct(m)}.")
    else:
        vs = {"bert-2mb": 100 * (e_both - b), "mamba-2mb": 100 * (e_both - m)}
        out.append(f"**1. EmbBERT beats BERT and MAMBA at 2 MB: {overall([verdict(d) for d in vs.values()])}.** "
                   f"Average fp32 test accuracy on the four tasks, seeds {', '.join(map(str, sorted(both)))} of each: "
                   f"EmbBERT {pct(e_both)}, bert-2mb {pct(b)}, mamba-2mb {pct(m)}; EmbBERT is " + ", ".join(f"{d:+.2f} points from {k} ({verdict(d)})" for k, d in vs.items())
                   + f". Held means ahead by more than {MARGIN:g} point, not held behind by more, unclear in between."
                   + res.retries((res.e, *res.s.baselines3)))
    extra = [task for task in res.s.all_tasks if task not in res.s.tasks4]  # news20: one seed, not in the average
    for task in extra:
        accs = {m: res.acc(res.runs(m, task, seeds={0}), "fp32") for m in (res.e, "bert-2mb", "mamba-2mb")}
        if all(accs.values()):
            out.append(f"On {task} (seed 0, not in the average): " + ", ".join(f"{m} {pct(a[0])}" for m, a in accs.items())
                       + f"; TF-IDF + LR {pct((res.tfidf(task, seeds={0}) or [None])[0])}.")
    med = res.average("embbert-medium", "fp32")
    med_cut = cut_reason(res.s, Job("pretrain", "pretrain", "embbert-medium", init=pretrain_name("embbert-medium")))
    state = "unclear" if med is not None else "not measured: -medium was cut (last section)" if med_cut else MISSING
    out.append(f"The part 'rivals models ten times its size' is {state}. The largest model of the plan is "
               f"embbert-medium (9.60 MB, five times), at {pct(med)}; the paper's 20 MB BERT-Tiny is not in the "
               "offline suite.")
    if tf is not None and e32 is not None:
        out.append(f"TF-IDF + logistic regression averages {pct(tf)} on the same splits: EmbBERT is "
                   f"{100 * (e32 - tf):+.2f} points from it.")
    if e32 is None or e8 is None:
        out.append(f"**2. Resilient to 8-bit quantization: {MISSING}.** (paper: TinyNLP 87.19 fp32 -> 88.18 int8)")
    else:
        delta = 100 * (e8 - e32)
        kept = "held" if delta >= -0.5 else "not held"
        out.append(f"**2. Resilient to 8-bit quantization: {kept}.** EmbBERT averages {pct(e32)} fp32 and "
                   f"{pct(e8)} int8 on host TFLite-Micro ({delta:+.2f} points; paper: 87.19 -> 88.18 on TinyNLP), "
                   f"with `--quant-noise {res.qn:g}`. Held means within 0.5 point.")
    abl = {name: res.average(name, "fp32", seeds={0}) for name in res.s.ablations}
    abl["no pretraining"] = res.average(res.e, "fp32", init=None, seeds={0})
    if e0 is None or any(v is None for v in abl.values()):
        out.append(f"**3. Every component and the pretraining help (ablation): {MISSING}.** Measured so far: "
                   + ", ".join(f"{k} {pct(v)}" for k, v in abl.items()) + f"; EmbBERT {pct(e0)}."
                   + res.retries(res.s.ablations))
    else:
        gain = {k: 100 * (e0 - v) for k, v in abl.items()}
        out.append(f"**3. Every component and the pretraining help (ablation): "
                   f"{overall([verdict(d) for d in gain.values()])}.** EmbBERT {pct(e0)} against "
                   + ", ".join(f"{k} {pct(abl[k])} (EmbBERT {d:+.2f}: {verdict(d)})" for k, d in gain.items())
                   + f". Seed 0 on both sides; held means EmbBERT ahead by more than {MARGIN:g} point."
                   + res.retries(res.s.ablations))
    sc = [(name, res.average(name, "fp32", seeds={0})) for name in res.scaling]  # one seed each
    measured = [(n, v) for n, v in sc if v is not None]
    if len(measured) < 3:
        out.append(f"**4. It scales from 0.65 MB to 39.71 MB: {MISSING}.** Measured so far: "
                   + ", ".join(f"{n} {pct(v)}" for n, v in sc) + "." + res.retries(res.scaling))
    else:
        steps = [(a, b, 100 * (b[1] - a[1])) for a, b in zip(measured, measured[1:])]
        out.append(f"**4. It scales from 0.65 MB to 39.71 MB: {overall([verdict(d) for *_, d in steps])} over the "
                   "sizes measured** (embbert-big, 39.71 MB, is beyond this machine's budget): "
                   + ", ".join(f"{n} ({PAPER_SCALING_MB.get(n, '?')} MB) {pct(v)}" for n, v in measured)
                   + "; each step up: " + ", ".join(f"{a[0]} -> {b[0]} {d:+.2f} ({verdict(d)})" for a, b, d in steps)
                   + "." + res.retries(res.scaling))
    e3 = res.average(res.e, "fp32", init="3x", seeds={0})
    tf0 = res.tfidf_average(seeds={0})  # the budget runs' splits (seed 0)
    if e3 is None or e0 is None:
        out.append(f"**Pretraining budget: {MISSING}.** Does 3x the tokens close the gap to TF-IDF? EmbBERT 1x "
                   f"{pct(e0)}, 3x {pct(e3)}, TF-IDF + LR {pct(tf0)}.")
    else:
        closes = (f"; TF-IDF + LR averages {pct(tf0)}, so the gap to it is {100 * (tf0 - e0):.2f} points at 1x and "
                  f"{100 * (tf0 - e3):.2f} at 3x" if tf0 is not None else "")
        out.append(f"**Pretraining budget: more pretraining helps, {verdict(100 * (e3 - e0))}.** EmbBERT averages "
                   f"{pct(e0)} at 1x and {pct(e3)} at 3x ({100 * (e3 - e0):+.2f} points){closes}.")
    return out


def _span(done: dict) -> tuple[str, str] | None:
    """When the first job started and the last one ended, by the JSONs' dates (written as each job ended)."""
    import datetime as dt

    starts, ends = [], []
    for r in done.values():
        jobs_of_row = [(r, own_wall_s(r)), *((rc, rc.get("job_wall_s", 0.0)) for rc in r.get("reconversions", []))]
        for job, wall in jobs_of_row:
            if "machine" in job:
                end = dt.datetime.strptime(job["machine"]["date"], "%Y-%m-%d %H:%M:%S")
                starts.append(end - dt.timedelta(seconds=wall))
                ends.append(end)
    return (min(starts).strftime("%Y-%m-%d %H:%M"), max(ends).strftime("%Y-%m-%d %H:%M")) if ends else None


def time_section(done: dict, s: Setup) -> list[str]:
    """The study's wall time so far, what remains (estimated), and what was cut."""
    rows = list(done.values())
    redone = [rc for r in rows for rc in r.get("reconversions", [])]
    at_once = sorted({r.get("jobs_at_once", 1) for r in rows} | {rc.get("jobs_at_once", 1) for rc in redone})
    span = _span(done)
    left = remaining(s, done)
    todo = [(j, state, secs) for j, state, secs, _ in left if state != "cut"]
    waits = [secs for _, state, secs in todo if state == "waits"]
    cut = [(j, secs) for j, state, secs, _ in left if state == "cut"]
    out = [f"**Machine time{' so far' if todo else ''}:** {sum(wall_s(r) for r in rows) / 3600:.2f} h, the sum of the "
           "wall times of the "
           f"{len(rows)} finished jobs" + (f" (re-conversions included: {len(redone)})" if redone else "")
           + (f", from {span[0]} to {span[1]} (machine clock)" if span else "")
           + f"; jobs at once: {', '.join(map(str, at_once)) if rows else '–'} (each job one torch thread, niced, on a "
           "2-core machine shared with other work).", ""]
    if todo:
        out += [f"**What remains:** {len(todo)} jobs, about {sum(secs for _, _, secs in todo) / 3600:.1f} h of job time"
                + (f", {len(waits)} of them ({sum(waits) / 3600:.1f} h) planned once the quant-noise level is chosen "
                   "(estimated at the current default)" if waits else "")
                + ". Each estimate comes from the finished jobs of the same kind, model and task, else is scaled from "
                "the nearest ones or a stated guess; `python bench/reproduce.py --plan` lists them.", ""]
    out += ["**What was cut:** " + ("" if s.cuts else "nothing so far." if todo else "nothing.")]
    for pattern, why in s.cuts.items():
        gone = [secs for j, secs in cut if fnmatch.fnmatchcase(j.name, pattern)]
        out.append(f"- `{pattern}` ({len(gone)} jobs, about {sum(gone) / 3600:.1f} h): {why}")
    names = [j.name for j, state, _ in todo if state == "todo"]
    out += ["", ("Not run yet: " + ", ".join(f"`{n}`" for n in names[:40]) + (" ..." if len(names) > 40 else "")
                 + (f"; and the {len(waits)} jobs planned once the level is chosen" if waits else "") + ".")
            if todo else "Every planned job has run."]
    return out


def write_report(done: dict, s: Setup, doc: Path) -> Path:
    res = Results(done, s)
    doc.parent.mkdir(parents=True, exist_ok=True)
    planned = jobs(s, done)
    finished = [j for j in planned if j.name in done]
    factors = [1, s.budget_factor]
    lines = [
        "# Reproducing the EmbBERT paper on the offline suite",
        "",
        f"Generated by `python bench/reproduce.py --report` from the {len(done)} result JSONs of "
        "`bench/results/reproduce/` (one per job); nothing here is typed by hand. Study: `bench/reproduce.py` "
        f"(preset `{s.preset}`); its wall time, what remains and what was cut: the last section.",
        "",
        (f"**Complete:** all {len(planned)} planned jobs have run" if res.qn is not None and len(finished) == len(planned)
         else f"**Progress:** {len(finished)} of the {len(planned)} jobs planned so far have run")
        + ("" if res.qn is not None else " (the main table, baselines, ablation, scaling and budget jobs are planned "
           "once the quant-noise sweep has chosen the level)")
        + f". Last generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "Tasks: the five of README \"Data\" (train/val/test splits of real data shipped in PyPI packages), not the "
        "paper's TinyNLP or GLUE, so the paper's figures are a reference, not a target. news20 is fine-tuned for "
        "2 epochs (as bench/accuracy.py), every other task for 10.",
        "",
        "## The quant-noise default",
        "",
        *sweep_section(res),
        "",
        "## Main table (test accuracy %, mean ± std over seeds)",
        "",
        f"fp32 = the PyTorch model; int8 = the `embbert convert` artifact on host TFLite-Micro (bit-exact with the "
        f"emulated board). Fine-tuned with `--quant-noise {'?' if res.qn is None else f'{res.qn:g}'}`. "
        "Memory: the paper's formula (weights + L² map + 2·L·d activations), and the measured int8 flash + arena.",
        "",
        *accuracy_table(res, [(m, "1x") for m in res.main_models], s.tasks4, memory=True),
        "",
        "news20 (one seed):",
        "",
        *accuracy_table(res, [(m, "1x") for m in (s.model, *s.baselines3)], tuple(t for t in s.all_tasks if t not in s.tasks4),
                        memory=False, average=False),
        "",
        "![accuracy against memory](results-memory.png)" if memory_plot(res, doc.parent / "results-memory.png")
        else f"Accuracy against memory: {MISSING}.",
        "",
        "## Ablation (seed 0, test accuracy %)",
        "",
        "Each ablation model is pretrained at the same token budget; only the sweep and the main table are "
        "converted, so the int8 rows of this table and the next stay empty.",
        "",
        *accuracy_table(res, [(s.model, "1x"), *[(m, "1x") for m in s.ablations], (s.model, None)], s.tasks4,
                        memory=True),
        "",
        "## Scaling (seed 0, each size pretrained at its own size, same token budget)",
        "",
        *accuracy_table(res, [(m, "1x") for m in res.scaling], s.tasks4, memory=True),
        "",
        "Not in the plan: embbert-big (39.71 MB, 9.4 M parameters); issue 16 asks for the nano and tiny sizes, "
        "and medium if the budget of about 9 hours on this machine allows.",
        "",
        "## Pretrainings",
        "",
        "Masked-token accuracy on held-out text; the unigram baseline always predicts the most frequent masked "
        f"token. A pretraining learned something when it is at least {100 * LEARNED_MARGIN:g} point above that "
        "baseline; one that did not at the shared peak lr runs once more at "
        f"{s.retry_lr_factor or 0:g} of it, and its model's fine-tunes start from the retry.",
        "",
        "| pretraining | steps | tokens | peak lr | wall | tokens/s | masked-token accuracy | unigram baseline "
        "| MLM loss | learned |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in sorted((r for r in done.values() if r["kind"] == "pretrain"), key=lambda r: r["name"]):
        lines.append(f"| {r['init']} | {r['steps']:,} | {r['tokens']:,} | {r['plan']['lr']:g} | "
                     f"{r['wall_time_s']:.0f} s | {r['tokens_per_s']:,.0f} | {pct(r.get('mlm_eval_accuracy'))} | "
                     f"{pct(r.get('mlm_eval_unigram_accuracy'))} | {r.get('mlm_eval_loss', '–')} | "
                     f"{'yes' if learned(r) else '**no**'} |")
    lines += ["", "## Pretraining budget (EmbBERT, seed 0, fp32 test accuracy %)", "",
              "| task | " + " | ".join(f"{f}x" for f in factors) + " | TF-IDF + LR |", "|---|" + "---:|" * (len(factors) + 1)]
    for task in s.tasks4:
        cells = [mean_std(res.acc([r for r in res.runs(res.e, task, f"{f}x") if r["seed"] == 0], "fp32"))
                 for f in factors]
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {mean_std(res.tfidf(task, seeds={0}))} |")
    lines += ["", "![pretraining budget](results-budget.png)" if budget_plot(res, doc.parent / "results-budget.png", factors)
              else f"Pretraining-budget curve: {MISSING}.", "", "## The claims", ""]
    for para in claims(res):
        lines += [para, ""]
    lines += ["## Wall time, what remains, what was cut", "", *time_section(done, s), ""]
    doc.write_text("\n".join(lines))
    return doc
