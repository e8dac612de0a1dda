"""The `embbert` command.

Every command takes --json: one JSON object on stdout, progress on stderr.
A problem with the input is one line on stderr and exit code 2.
Every path argument is made absolute here, once (resolve_path=True): what runs
below (PlatformIO in firmware/, QEMU, the converter) works in other folders.
"""

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from .console import err, out
from .device.build import BACKEND_HELP
from .errors import UserError
from .extras import require
from .train.plan import QUANT_NOISE
from .writable import check_writable

app = typer.Typer(
    help="Train EmbBERT, a 2 MB text classifier, and prove it on a microcontroller.",
    epilog="Workflow: pretrain -> train -> deploy (convert + build + flash) -> eval.  "
    "Every command takes --json; bad input is one line on stderr and exit code 2.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

JsonOpt = typer.Option(False, "--json", help="Print one JSON object on stdout instead of a table.")
RuntimeOpt = typer.Option("bare", "--runtime", help="bare: our firmware, the framed protocol of "
                          "firmware/PROTOCOL.md; micropython: MicroPython (pinned sdist) with the `embbert` module "
                          "built in, driven through its raw REPL (qemu-m4, qemu-m7).")
OutOpt = typer.Option(..., "--out", resolve_path=True, help="Run directory to write.")
ResumeOpt = typer.Option(False, "--resume", help="Continue the interrupted run in --out.")
ForceOpt = typer.Option(False, "--force", help="Replace the run in --out.")
PresetOpt = typer.Option("paper", "--preset", help="paper: the full recipe; smoke: a < 2 min run for tests.")
SeedOpt = typer.Option(0, "--seed", help="Seed for data order, masking and init: same seed, same result.")
LrOpt = typer.Option(None, "--lr", help="Peak AdamW learning rate (default: the preset's).")
ModelOpt = typer.Option("embbert", "--model", help="A model preset (see `embbert models`).")


def _runtime(runtime: str) -> str:
    if runtime not in ("bare", "micropython"):
        raise UserError(f"unknown runtime {runtime!r}; choose bare or micropython")
    return runtime


def _emit(as_json: bool, obj: dict, table: Table | None = None) -> None:
    if as_json:
        out.print_json(json.dumps(obj, allow_nan=False))
    elif table is not None:
        out.print(table)
    else:
        for k, v in obj.items():
            if not isinstance(v, (list, dict)):
                out.print(f"{k}: {v}")


@app.command()
def models(as_json: bool = JsonOpt):
    """List the model presets with their size and memory (paper accounting)."""
    from .memory import memory_report
    from .presets import PRESETS

    rows = [memory_report(cfg) for cfg in PRESETS.values()]
    table = Table("model", "family", "params", "fp32 total", "int8 total", title="model presets")
    for cfg, r in zip(PRESETS.values(), rows):
        table.add_row(cfg.name, cfg.family, f"{r.params:,}", f"{r.total_bytes_fp32 / 1e6:.2f} MB",
                      f"{r.total_bytes_int8 / 1e3:.0f} kB")
    _emit(as_json, {"models": [r.model_dump() | {"family": c.family} for c, r in zip(PRESETS.values(), rows)]}, table)


@app.command()
def memory(model: str = typer.Argument(..., help="A model preset (see `embbert models`)."), as_json: bool = JsonOpt):
    """The paper's memory accounting: weights + L^2 attention map + 2*L*d activations."""
    from .memory import memory_report
    from .presets import get_preset

    r = memory_report(get_preset(model))
    table = Table("", "fp32", "int8", title=f"{model}: {r.params:,} parameters (classifier head excluded)")
    table.add_row("weights", f"{r.weights_bytes_fp32:,} B", f"{r.weights_bytes_int8:,} B")
    table.add_row("activations (peak)", f"{r.activation_bytes_fp32:,} B", f"{r.activation_bytes_int8:,} B")
    table.add_row("total", f"{r.total_bytes_fp32:,} B ({r.total_bytes_fp32 / 1e6:.2f} MB)",
                  f"{r.total_bytes_int8:,} B ({r.total_bytes_int8 / 1e3:.0f} kB)")
    _emit(as_json, r.model_dump(), table)


@app.command()
def tokenizer(
    vocab: int = typer.Option(8192, "--vocab", help="Vocabulary size, specials included."),
    preset: str = PresetOpt,
    encode_text: Optional[str] = typer.Option(None, "--encode", help="Show the ids of this text."),
    as_json: bool = JsonOpt,
):
    """Train (or show the cached) BPE tokenizer of the pretraining corpus."""
    from .tokenizer import encode, sha256_file

    tok, path = _tokenizer(vocab, preset)
    info = {"path": str(path), "vocab_size": tok.get_vocab_size(), "sha256": sha256_file(path)}
    if encode_text is not None:
        ids = encode(tok, [encode_text], 10**9)[0]
        info |= {"ids": ids, "tokens": [tok.id_to_token(i) for i in ids]}
    _emit(as_json, info)


def _tokenizer(vocab: int, preset: str):
    from .tokenizer import default_tokenizer
    from .train.plan import SMOKE_CORPUS_CHARS

    if preset not in ("paper", "smoke"):
        raise UserError(f"unknown preset {preset!r}; known presets: paper, smoke")
    limit = SMOKE_CORPUS_CHARS if preset == "smoke" else None
    return default_tokenizer(vocab, limit_chars=limit)


@app.command()
def pretrain(
    model: str = ModelOpt,
    out_dir: Path = OutOpt,
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimizer steps (default: the preset's)."),
    lr: Optional[float] = LrOpt,
    preset: str = PresetOpt,
    seed: int = SeedOpt,
    resume: bool = ResumeOpt,
    force: bool = ForceOpt,
    as_json: bool = JsonOpt,
):
    """Masked-language-model pretraining (15 %) on the offline corpus."""
    from .presets import get_preset
    from .train.plan import pretrain_plan
    from .train.pretrain import pretrain as run_pretrain
    from .train.rundir import prepare_out_dir

    check_writable(out_dir)
    cfg = get_preset(model)
    plan = pretrain_plan(preset, steps=steps, lr=lr, seed=seed)
    _check_resume(out_dir, resume, {"kind": "pretrain", "model": cfg.model_dump(), "plan": plan.model_dump()})
    _, tok_path = _tokenizer(cfg.vocab_size, preset)
    prepare_out_dir(out_dir, resume=resume, force=force)
    summary = run_pretrain(cfg, plan, tok_path, out_dir, resume)
    _emit(as_json, summary | {"out": str(out_dir)})


@app.command()
def train(
    model: str = ModelOpt,
    task: Optional[str] = typer.Option(None, "--task", help="A built-in task: sms_spam, news20, rt_reviews, trec_questions, vader_movies."),
    data: Optional[Path] = typer.Option(None, "--data", resolve_path=True,
        help="Your own CSV, TSV or JSONL file instead of --task."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="With --data: the text column."),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="With --data: the label column."),
    pair_col: Optional[str] = typer.Option(None, "--pair-col", help="With --data: a second text column (pair tasks)."),
    test_data: Optional[Path] = typer.Option(
        None, "--test-data", resolve_path=True,
        help="With --data: a held-out test file (e.g. GLUE dev.tsv); else 10 % of --data."),
    init: Optional[str] = typer.Option(
        None, "--init", help="Start from a pretrained backbone: a pretraining run directory (embbert pretrain "
        "--out), or else a shipped one by name: `embbert`, the study's EmbBERT pretraining (its recipe and "
        "masked-token accuracy in embbert/backbones/embbert.json; docs/results.md)."),
    out_dir: Path = OutOpt,
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Passes over the training part (default: the preset's)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="At most this many examples per split part."),
    lr: Optional[float] = LrOpt,
    quant_noise: Optional[float] = typer.Option(
        None, "--quant-noise", min=0,
        help=f"Int8 rounding noise while training, in int8 steps (0 = off; default {QUANT_NOISE:g}). More noise "
             "makes the int8 model of `embbert convert` agree more with the float one, at some float accuracy "
             "on many-class tasks. Validation, seed 0, 0 against 24: rt_reviews 71.5 / 73.8 % float, 97.5 / "
             "99.1 % agreement; vader_movies 76.3 / 77.0 %, 98.3 / 99.5 %; trec_questions 78.4 / 75.8 %; news20 "
             "58.5 / 40.3 %. For a binary sentiment task try 16 or 24 and compare on validation; the parity "
             "report of `embbert convert` shows what a run got."),
    preset: str = PresetOpt,
    seed: int = SeedOpt,
    resume: bool = ResumeOpt,
    force: bool = ForceOpt,
    as_json: bool = JsonOpt,
):
    """Fine-tune a classifier; writes checkpoint.pt and metrics.json (test accuracy, per class)."""
    from .data import load_file, load_task
    from .presets import get_preset
    from .train.finetune import finetune, init_tokenizer, load_backbone
    from .train.plan import finetune_plan
    from .train.rundir import prepare_out_dir

    check_writable(out_dir)
    cfg = get_preset(model)
    plan = finetune_plan(preset, epochs=epochs, limit=limit, lr=lr, quant_noise=quant_noise, seed=seed)
    if (task is None) == (data is None):
        raise UserError("give exactly one of --task NAME or --data FILE")
    if test_data is not None and data is None:
        raise UserError("--test-data goes with --data")
    if data is not None:
        if not text_col or not label_col:
            raise UserError("--data needs --text-col and --label-col")
        dataset = load_file(data, text_col, label_col, seed=seed, text_pair_col=pair_col, limit=plan.limit,
                            test_path=test_data)
    else:
        dataset = load_task(task, seed=seed, limit=plan.limit)
    if init is not None:
        from .backbones import is_name

        init = init if is_name(init) else Path(init).resolve()  # a shipped backbone's name, or a run directory
        load_backbone(init, cfg)  # fail now, before anything is written
        tok_path = init_tokenizer(init)
    else:
        _, tok_path = _tokenizer(cfg.vocab_size, preset)
    _check_resume(out_dir, resume, {"kind": "train", "model": cfg.model_dump(), "plan": plan.model_dump(),
                                    "task": dataset.name})
    prepare_out_dir(out_dir, resume=resume, force=force)
    metrics = finetune(cfg, dataset, plan, tok_path, out_dir, resume, init)
    table = Table("label", "precision", "recall", "f1", "support",
                  title=f"{cfg.name} on {dataset.name}: test accuracy {metrics['test_accuracy']:.4f}")
    for name, m in metrics["per_class"].items():
        table.add_row(name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1-score']:.3f}", str(int(m["support"])))
    _emit(as_json, metrics | {"out": str(out_dir)}, table)


@app.command()
def convert(
    run_dir: Path = typer.Argument(..., resolve_path=True, help="A fine-tuned run directory (embbert train --out)."),
    out_dir: Path = typer.Option(..., "--out", resolve_path=True, help="Artifact directory to write."),
    calibration: int = typer.Option(500, "--calibration", help="Training sentences for int8 calibration (>= 10)."),
    test_limit: Optional[int] = typer.Option(None, "--test-limit", help="Parity on the first N test sentences only."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out."),
    as_json: bool = JsonOpt,
):
    """Convert to full-int8 TFLite, proven on the TFLite-Micro interpreter; writes model.tflite, the aot
    backend's C++ (aot/<kernels>/) and manifest.json: everything `embbert build` compiles."""
    require("convert", "convert")
    from .convert.pipeline import convert_run, report

    if test_limit is not None and test_limit < 1:
        raise UserError("--test-limit must be at least 1")
    summary = convert_run(run_dir, out_dir, calibration=calibration, force=force, test_limit=test_limit)
    if as_json:
        _emit(True, summary)
    else:
        out.print(report(summary), highlight=False, soft_wrap=True)


@app.command()
def build(
    art_dir: Path = typer.Argument(..., resolve_path=True,
        help="An artifact directory: tokenizer.json (+ manifest.json, the model and its aot sources, "
        "from `embbert convert`)."),
    board: str = typer.Option(..., "--board", help="A board under boards/: qemu-m4, qemu-m7, qemu-stm32f405, nucleo-l4r5zi, ..."),
    backend: Optional[str] = typer.Option(None, "--backend", help=BACKEND_HELP),
    out_dir: Optional[Path] = typer.Option(None, "--out", resolve_path=True,
        help="Build folder (default ART_DIR/build/BOARD)."),
    full_length: bool = typer.Option(False, "--full-length", help="aot: pad every input to L and run the whole "
                                     "graph, as host TFLite-Micro does (slower). Default: only the real tokens."),
    runtime: str = RuntimeOpt,
    as_json: bool = JsonOpt,
):
    """Build the firmware for one board; reports flash and RAM used, from the linker map."""
    if _runtime(runtime) == "micropython":
        require("build", "device")
        from .micropython.firmware import build_micropython

        report = build_micropython(art_dir, board, out=out_dir, full_length=full_length, backend=backend)
        _emit(as_json, report)
        return
    require("build", "device")  # compiles what `embbert convert` wrote: no converter needed
    from .device.build import build_firmware

    err.print(f"building the firmware for {board} ...", highlight=False)
    report = build_firmware(art_dir, board, backend=backend, out=out_dir, full_length=full_length)
    _emit(as_json, report)
    if not as_json and "aot" in report:
        from .convert.aot.artifact import format_plan_peak

        out.print(format_plan_peak(report["aot"]["plan_peak"]), highlight=False, markup=False, soft_wrap=True)


@app.command()
def micropython(
    art_dir: Path = typer.Argument(..., resolve_path=True, help="An artifact directory (embbert convert --out): "
                                   "manifest.json, tokenizer.json, the aot sources."),
    out_dir: Path = typer.Option(..., "--out", resolve_path=True, help="Folder to write: DIR/embbert/ (micropython.mk, "
                                 "micropython.cmake, sources) and DIR/micropython.cmake."),
    as_json: bool = JsonOpt,
):
    """Write the `embbert` MicroPython user C module of one artifact: build MicroPython with
    `make USER_C_MODULES=DIR` (stm32) or `USER_C_MODULES=DIR/micropython.cmake` (esp32, rp2)."""
    from .micropython.module import write_module

    report = write_module(art_dir, out_dir)
    if as_json:
        _emit(True, report)
        return
    out.print(f"wrote the embbert user C module for {art_dir} into {report['dir']} ({len(report['files'])} files; "
              f"aot arena {report['arena_bytes']:,} B, max_len {report['max_len']})", highlight=False)


FullLengthOpt = typer.Option(
    False, "--full-length", help="aot: pad every input to the model's length L and run the whole graph, as host "
    "TFLite-Micro does (bit-exact reference mode; slower). Default: only the real tokens.")


@app.command()
def deploy(
    source: Path = typer.Argument(..., resolve_path=True,
        help="A fine-tuned run (embbert train --out) or an artifact folder (embbert convert --out)."),
    board: str = typer.Option(..., "--board", help="A board under boards/: qemu-m4, qemu-m7, qemu-stm32f405, nucleo-l4r5zi, ..."),
    port: Optional[str] = typer.Option(None, "--port", help="The board's serial port (hardware boards), e.g. /dev/ttyACM0."),
    backend: Optional[str] = typer.Option(None, "--backend", help=BACKEND_HELP),
    art_dir: Optional[Path] = typer.Option(None, "--art", resolve_path=True,
        help="Where a run is converted to (default SOURCE/artifact)."),
    full_length: bool = FullLengthOpt,
    runtime: str = RuntimeOpt,
    as_json: bool = JsonOpt,
):
    """Convert + build + flash + smoke check. On a qemu board the emulator keeps running in the background."""
    require("deploy", "convert", "device")
    from .harness.deploy import deploy as run_deploy

    result = run_deploy(source, board, port=port, backend=backend, art_dir=art_dir, full_length=full_length,
                        runtime=_runtime(runtime))
    if as_json:
        _emit(True, result)
        return
    art = result["artifact"]
    flag = " --runtime micropython" if runtime == "micropython" else ""
    out.print(f"deployed {art} to {result['board']} ({result['build']['backend']} backend): flash "
              f"{result['build']['flash_bytes']:,} B, RAM {result['build']['ram_bytes']:,} B", highlight=False)
    if "emulator" in result:
        emu = result["emulator"]
        out.print(f"the emulator runs in the background (pid {emu['pid']}), its serial at {emu['url']}\n"
                  f"  evaluate on it:  embbert eval {art} --board {result['board']}{flag} --task TASK --out DIR\n"
                  + (f"  talk to it:      mpremote connect {emu['url']} exec \"import embbert; "
                     "print(embbert.classify('hello'))\"\n" if flag else
                     f"  talk to it:      python -c \"from embbert.device.protocol import Device; "
                     f"print(Device('{emu['url']}').classify('hello'))\"\n")
                  + f"  stop it:         embbert stop {art} --board {result['board']}{flag}   (or: {emu['stop']})",
                  highlight=False, soft_wrap=True)
    else:
        out.print(f"evaluate on it:  embbert eval {art} --board {result['board']} --port {result['url']} "
                  "--task TASK --out DIR", highlight=False, soft_wrap=True)


@app.command()
def stop(
    art_dir: Path = typer.Argument(..., resolve_path=True, help="The artifact folder that was deployed."),
    board: str = typer.Option(..., "--board", help="The qemu board it was deployed to."),
    runtime: str = RuntimeOpt,
    as_json: bool = JsonOpt,
):
    """Stop the emulator `embbert deploy` left running for ART_DIR on a qemu board."""
    from .device.boards import load_board
    from .harness import emulator
    from .micropython.firmware import build_dir

    name = load_board(board).name
    build = build_dir(art_dir, name) if _runtime(runtime) == "micropython" else art_dir / "build" / name
    if build.is_dir():
        with emulator.lock(build):  # never under a client (eval, device_tests) that is using it
            stopped = emulator.stop(build)
    else:
        stopped = False
    message = f"stopped the {name} emulator of {art_dir}" if stopped else f"no {name} emulator of {art_dir} was running"
    _emit(as_json, {"stopped": stopped, "message": message})


@app.command(name="eval")
def eval_(
    art_dir: Path = typer.Argument(..., resolve_path=True,
        help="The artifact folder the board runs (embbert convert / deploy)."),
    board: str = typer.Option(..., "--board", help="A board under boards/."),
    port: Optional[str] = typer.Option(None, "--port", help="Serial port or pyserial URL. Default on qemu boards: "
                                       "deploy's running emulator, else a fresh one of ART_DIR/build/BOARD."),
    task: Optional[str] = typer.Option(None, "--task", help="Evaluate on this built-in task's test split."),
    data: Optional[Path] = typer.Option(None, "--data", resolve_path=True,
        help="Or every row of your own CSV, TSV or JSONL file."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="With --data: the text column."),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="With --data: the label column."),
    seed: int = typer.Option(0, "--seed", help="With --task: the split seed the model was trained with."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N sentences."),
    out_dir: Path = typer.Option(..., "--out", resolve_path=True,
        help="Folder for results.jsonl, summary.json and report.md; "
                                 "rerun the same command to resume."),
    resets: int = typer.Option(3, "--resets", help="Hard resets per sentence before it is recorded as failed."),
    timeout: float = typer.Option(30.0, "--timeout", help="Longest wait for one reply, in seconds."),
    fault_rate: float = typer.Option(0.0, "--inject-faults", help="Testing the harness: corrupt or drop this share "
                                     "of the link's bytes (e.g. 0.01)."),
    force: bool = typer.Option(False, "--force", help="Start over in --out, dropping another evaluation's results."),
    runtime: str = RuntimeOpt,
    as_json: bool = JsonOpt,
):
    """Stream test sentences to the board; accuracy, bit-exactness and latency against the host. Resumable."""
    require("eval", "convert", "device")  # the host references: TFLite-Micro int8, ONNX float
    from .harness.evaluate import EvalOptions, evaluate

    if not 0 <= fault_rate < 0.5:
        raise UserError("--inject-faults is a share of bytes: 0 <= RATE < 0.5")
    options = EvalOptions(resets=resets, timeout=timeout, fault_rate=fault_rate, limit=limit, force=force)
    spec = {"task": task, "data": data, "text_col": text_col, "label_col": label_col, "seed": seed}
    summary = evaluate(art_dir, board, out_dir, spec, port=port, options=options, runtime=_runtime(runtime))
    if as_json:
        _emit(True, summary)
        return
    out.print((out_dir / "report.md").read_text().split("## Memory")[0].strip(), highlight=False, soft_wrap=True)
    out.print(f"-> {out_dir}/summary.json, {out_dir}/report.md", highlight=False)


def _check_resume(out_dir: Path, resume: bool, expected: dict) -> None:
    """--resume must continue the same run: same kind, model, plan (and task)."""
    from .train.rundir import RUN_JSON, read_json

    if not resume or not (out_dir / RUN_JSON).exists():
        return
    saved = read_json(out_dir / RUN_JSON)
    for key, value in expected.items():
        if saved.get(key) != value:
            raise UserError(f"--resume: {out_dir} was started with a different {key}; "
                            f"rerun with the original options or use --force to start over")


def main() -> None:
    try:
        app()
    except UserError as e:
        # soft_wrap: one line whatever the terminal width, so scripts can grep it.
        # escape: the message is text, never markup ("[convert]" must print as written).
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(e.exit_code)
