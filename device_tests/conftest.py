"""Fixtures of the on-board suite: one board per session, given on the command line.

    pytest device_tests --board qemu-m4                      # builds a smoke model, emulates it
    pytest device_tests --board qemu-m4 --art ART_DIR        # ART_DIR/build/qemu-m4/firmware.elf
    pytest device_tests --board nucleo-l4r5zi --port /dev/ttyACM0 --art ART_DIR   # deployed board
    pytest device_tests --board qemu-m4 --runtime micropython   # MicroPython, through its raw REPL

Without --board every test here is skipped, so a plain `pytest` is unaffected.
The board is reached through the harness's links (embbert.harness.link): a
QEMU board gets its own emulator for the session, restarted if a test leaves
it dead; a board on a port must already run ART_DIR's model (refused if not).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from .support import sample

HERE = Path(__file__).resolve().parent
SKIP_REASON = ("device_tests need a board: pytest device_tests --board qemu-m4 "
               "(or --board BOARD --port PORT --art ART_DIR for a deployed board)")
REPLY_TIMEOUT_S = 30.0


def pytest_addoption(parser):
    group = parser.getgroup("embbert device tests")
    group.addoption("--board", default=None, help="board to test (boards/<name>/board.toml), e.g. qemu-m4")
    group.addoption("--port", default=None,
                    help="serial port or pyserial URL of a board already flashed by `embbert deploy` "
                         "(/dev/ttyACM0, socket://127.0.0.1:PORT)")
    group.addoption("--art", default=None,
                    help="the artifact folder the board runs (embbert convert/deploy output); without it a qemu "
                         "board gets a smoke model built for this session")
    group.addoption("--runtime", default="bare", choices=("bare", "micropython"),
                    help="bare: our firmware and its framed protocol; micropython: MicroPython with the embbert "
                         "module, driven through its raw REPL (qemu boards) [bare]")
    group.addoption("--sample", type=int, default=40,
                    help="sentences per check (tokenizer parity: this many per task) [40]")


FIGURES = pytest.StashKey[dict]()  # what the suite measured, printed at the end


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes-long runs (run with -m slow)")
    config.addinivalue_line("markers", "bare_protocol: checks the framed protocol (PROTOCOL.md) itself")
    config.addinivalue_line("markers", "micropython: checks the MicroPython module itself")
    config.stash[FIGURES] = {}


def pytest_terminal_summary(terminalreporter, config):
    figures = config.stash.get(FIGURES, {})
    if figures:
        terminalreporter.section(f"device_tests on {config.getoption('--board')}")
        for key, value in figures.items():
            terminalreporter.write_line(f"{key}: {value}")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--board"):
        runtime = config.getoption("--runtime")
        other = "bare_protocol" if runtime == "micropython" else "micropython"
        skip = pytest.mark.skip(reason=f"a {other.replace('_', ' ')} check; this session runs --runtime {runtime}")
        for item in items:
            if other in item.keywords:
                item.add_marker(skip)
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


def _refuse(message: str) -> None:
    """Stop the whole session with one clear line (nothing here can be tested)."""
    pytest.exit(f"device_tests: {message}", returncode=pytest.ExitCode.USAGE_ERROR)


# -- the smoke artifact ----------------------------------------------------------
def make_smoke_artifact(root: Path, board_name: str, timings: dict | None = None, runtime: str = "bare") -> Path:
    """A tiny EmbBERT (L 64, d 32, 2 layers) fine-tuned for a few seconds on
    sms_spam with the smoke plan, converted by `embbert convert` (20
    calibration sentences) and built for the board at full length, so that
    its logits must equal host TFLite-Micro's bit for bit. About a minute.
    ``timings`` gets the seconds of each step."""
    from embbert.config import ModelConfig
    from embbert.data import TASKS, load_task
    from embbert.device.build import build_firmware
    from embbert.tokenizer import train_tokenizer
    from embbert.train.finetune import finetune
    from embbert.train.plan import finetune_plan

    cfg = ModelConfig(name="embbert-device-tests", family="embbert", vocab_size=1024, max_len=64, d_model=32,
                      embed_rank=8, n_layers=2, conv_kernel=8)
    timings = {} if timings is None else timings
    started = time.monotonic()

    def lap(step):
        nonlocal started
        timings[step] = round(time.monotonic() - started, 1)
        started = time.monotonic()

    root.mkdir(parents=True, exist_ok=True)
    # the tokenizer sees text of every task, so the parity test meets real merges everywhere
    texts = [e.text for name in TASKS for e in load_task(name, limit=300).train]
    train_tokenizer(texts, cfg.vocab_size).save(str(root / "tokenizer.json"))
    data = load_task("sms_spam", seed=0, limit=600)
    plan = finetune_plan("smoke", epochs=3, lr=3e-3, limit=600)
    finetune(cfg, data, plan, root / "tokenizer.json", root / "run", resume=False)
    lap("tokenizer + fine-tune")
    art = root / "art"
    cmd = [sys.executable, "-c", "from embbert.cli import main; main()", "convert", str(root / "run"),
           "--out", str(art), "--calibration", "20", "--test-limit", "20", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    if proc.returncode != 0:
        raise RuntimeError(f"embbert convert of the smoke run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lap("convert")
    if runtime == "micropython":
        from embbert.micropython.firmware import build_micropython

        build_micropython(art, board_name)  # length-aware, the default -> ART/build/<board>-micropython/firmware.elf
    else:
        build_firmware(art, board_name)  # length-aware, the default -> ART/build/<board>/firmware.elf
    lap("build")
    return art


# -- session fixtures ----------------------------------------------------------------
@pytest.fixture(scope="session")
def board(request):
    from embbert.device.boards import load_board
    from embbert.errors import UserError

    try:
        return load_board(request.config.getoption("--board"))
    except UserError as error:
        _refuse(str(error))


@pytest.fixture(scope="session")
def port(request) -> str | None:
    return request.config.getoption("--port")


@pytest.fixture(scope="session")
def runtime(request) -> str:
    return request.config.getoption("--runtime")


@pytest.fixture(scope="session")
def art_dir(request, board, port, runtime, tmp_path_factory, figures) -> Path:
    given = request.config.getoption("--art")
    if given:
        return Path(given).resolve()
    if board.kind != "qemu" and port is None:
        _refuse(f"{board.name} is a hardware board: deploy first (`embbert deploy RUN_DIR --board {board.name} "
                "--port PORT`), then give --port PORT --art ART_DIR")
    if port is not None:
        _refuse(f"--art ART_DIR is needed with --port: the artifact folder {board.name} was deployed from")
    timings = {}
    art = make_smoke_artifact(tmp_path_factory.mktemp("device-tests"), board.name, timings, runtime)
    figures["smoke model (seconds)"] = ", ".join(f"{k} {v}" for k, v in timings.items())
    return art


@pytest.fixture(scope="session")
def manifest(art_dir) -> dict:
    from embbert.errors import UserError
    from embbert.convert.manifest import read_manifest

    try:
        return read_manifest(art_dir)
    except UserError as error:
        _refuse(str(error))


@pytest.fixture(scope="session")
def build_report(art_dir, board, port, runtime) -> dict | None:
    """ART_DIR/build/<board>/build.json (<board>-micropython for MicroPython)
    when the session runs that very firmware (an emulator it started); None
    for a board on a port."""
    from embbert.micropython.firmware import build_dir

    folder = build_dir(art_dir, board.name) if runtime == "micropython" else art_dir / "build" / board.name
    path = folder / "build.json"
    return json.loads(path.read_text()) if port is None and path.is_file() else None


@pytest.fixture(scope="session")
def link(board, art_dir, port, manifest, runtime):
    """The session's link. On a port, the board must run ART_DIR's model."""
    from embbert.device.protocol import DeviceError, DeviceRestarted, DeviceTimeout
    from embbert.errors import UserError
    from embbert.harness.evaluate import EvalOptions, check_board, open_link

    try:
        link = open_link(board, art_dir, port, EvalOptions(timeout=REPLY_TIMEOUT_S), runtime)
    except UserError as error:
        _refuse(str(error))
    try:
        if port is not None:
            for attempt in range(3):  # a board (or emulator) that just booted sends its ready line first
                try:
                    info = link.device.info()
                    break
                except DeviceRestarted:
                    continue
                except (DeviceError, DeviceTimeout) as error:
                    _refuse(f"{board.name} on {port} does not answer INFO: {error}")
            else:
                _refuse(f"{board.name} on {port} keeps restarting instead of answering INFO")
            if info.get("board") != board.name:
                _refuse(f"the board on {port} says it is {info.get('board')!r}, not {board.name}")
            try:
                check_board(info, manifest, art_dir, board)
            except UserError as error:
                _refuse(f"refusing to test: {error}")
        yield link
    finally:
        link.close()


def answering(link):
    """The link's device, answering: a board a test left dead is restarted
    (a new emulator on QEMU; RESET, then a DTR/RTS pulse, on a port)."""
    import serial

    try:
        alive = link.alive(tries=3)
    except (serial.SerialException, OSError):  # the emulator died and took its socket with it
        alive = False
    if not alive:
        link.hard_reset()
    return link.device


@pytest.fixture
def device(link):
    return answering(link)


@pytest.fixture(scope="session")
def info(link) -> dict:
    """INFO, once per session (the tests compare later answers with it)."""
    return answering(link).info()


@pytest.fixture(scope="session")
def figures(request) -> dict:
    """Measured figures (bit-exact share, accuracies, ...), printed at the end of the run."""
    return request.config.stash[FIGURES]


@pytest.fixture(scope="session")
def host_tokenizer(art_dir):
    from embbert.tokenizer import load_tokenizer

    return load_tokenizer(art_dir / "tokenizer.json")


@pytest.fixture(scope="session")
def reference(art_dir, manifest):
    """Host ids, host TFLite-Micro int8 logits and label of a text."""
    from embbert.harness.reference import HostReference

    return HostReference(art_dir, manifest)


@pytest.fixture(scope="session")
def sample_size(request) -> int:
    return max(1, request.config.getoption("--sample"))


@pytest.fixture(scope="session")
def task_name(manifest) -> str | None:
    """The built-in task the artifact classifies: the manifest's, else the
    one whose labels are the model's; None for a model of the user's own data."""
    from embbert.data import TASKS, load_task

    if manifest.get("task") in TASKS:
        return manifest["task"]
    for name in TASKS:
        if load_task(name).labels == manifest["labels"]:
            return name
    return None


@pytest.fixture(scope="session")
def task_sample(task_name, sample_size) -> list:
    """Test examples of the artifact's task (sms_spam for a model of other data)."""
    from embbert.data import load_task

    return sample(load_task(task_name or "sms_spam").test, sample_size, f"device-tests {task_name}")
