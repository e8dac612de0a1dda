"""`embbert deploy`: convert + build + flash + smoke check, one command.

SOURCE is a fine-tuned run (converted into SOURCE/artifact unless that is
already this checkpoint's conversion) or an artifact folder. "Flash" on a
qemu board starts the emulator in the background; on hardware it is
PlatformIO's upload. The smoke check: INFO names the artifact's model and
tokenizer, and 5 sentences classify on the board exactly as on the host.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from embbert.console import err
from embbert.device.boards import Board, load_board
from embbert.device.protocol import DeviceTimeout
from embbert.errors import UserError
from embbert.harness import emulator
from embbert.harness.evaluate import check_board
from embbert.harness.link import open_port
from embbert.convert.manifest import MANIFEST_VERSION, read_manifest
from embbert.harness.reference import HostReference

STAMP = "source.json"  # which checkpoint an artifact came from
SMOKE_SENTENCES = [
    "Congratulations! You have won a free prize, call now to claim it.",
    "Are we still meeting for lunch tomorrow?",
    "What is the capital of France?",
    "A moving, beautifully acted film that stays with you.",
    "The plot was dull and the jokes fell flat.",
]


def _step(message: str) -> None:
    err.print(f"deploy: {message}", highlight=False, soft_wrap=True)


def _checkpoint_sha(run_dir: Path) -> str:
    from embbert.train.rundir import CHECKPOINT

    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise UserError(f"{run_dir} is neither an artifact folder (manifest.json) nor a finished `embbert train` run "
                        f"({CHECKPOINT})")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def artifact_for(source: Path, art_dir: Path | None, calibration: int) -> Path:
    """The artifact folder to deploy: SOURCE itself, or SOURCE's conversion
    (made now unless the existing one came from the same checkpoint)."""
    source = Path(source)
    if not source.is_dir():
        raise UserError(f"not found: {source}")
    if (source / "manifest.json").is_file():
        return source
    sha = _checkpoint_sha(source)
    art_dir = Path(art_dir) if art_dir else source / "artifact"
    stamp = art_dir / STAMP
    if stamp.is_file() and (art_dir / "manifest.json").is_file():
        current = json.loads((art_dir / "manifest.json").read_text()).get("manifest_version") == MANIFEST_VERSION
        if json.loads(stamp.read_text()).get("checkpoint_sha256") == sha and current:  # else converted again
            _step(f"{art_dir} is already this checkpoint's conversion")
            return art_dir
    from embbert.convert.pipeline import convert_run

    _step(f"converting {source} -> {art_dir}")
    convert_run(source, art_dir, calibration=calibration, force=True)
    stamp.write_text(json.dumps({"run_dir": str(source.resolve()), "checkpoint_sha256": sha}, indent=1))
    return art_dir


def _upload(board: Board, build: dict, port: str | None) -> None:
    """PlatformIO's upload of the firmware just built: the environment of its backend."""
    from embbert.device.build import pio_run

    proc = pio_run(board, build["backend"], Path(build["elf"]).parent, ("upload", "nobuild"), port, timeout=600)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise UserError(f"upload to {board.name} failed: {' / '.join(tail) or 'no output'}")


def check_firmware(info: dict, board: Board, build: dict) -> None:
    """The board runs the firmware just built: this board's, with its backend (an upload from
    another environment leaves an older build, or none, on the board)."""
    if info.get("board") != board.name or info.get("backend") != build["backend"]:
        raise UserError(f"the board runs {info.get('board')} firmware with backend {info.get('backend')}, not the "
                        f"{build['backend']} build just made for {board.name} (PlatformIO environment "
                        f"{board.pio_env(build['backend'])}); the upload did not replace it")


def smoke_check(device, art_dir: Path, manifest: dict, board: Board, build: dict | None = None) -> dict:
    """INFO matches (and names the build just made, if given); 5 sentences give the host's
    label and exact int8 logits (full-length and length-aware builds alike)."""
    info = check_board(device.info(), manifest, art_dir, board)
    if build is not None:
        check_firmware(info, board, build)
    reference = HostReference(art_dir, manifest)
    rows = []
    for text in SMOKE_SENTENCES:
        host, reply = reference(text), device.classify(text)
        same_label = reply["label"] == host["host_label"]
        exact = reply["logits"] == host["host_logits"]
        if not same_label or not exact:
            raise UserError(f"smoke check failed on {text!r}: board says {reply['label']} {reply['logits']}, "
                            f"host TFLite-Micro says {host['host_label']} {host['host_logits']}")
        rows.append({"text": text, "label": reply["label"], "bit_exact": exact, info["counter"]: reply[info["counter"]]})
    return {"info": info, "sentences": rows}


def _smoke(device, art: Path, manifest: dict, board: Board, build: dict, ready_s: float) -> dict:
    try:
        try:
            device.wait_ready(ready_s)
        except DeviceTimeout:  # a board that did not restart on upload prints no new ready line
            pass
        return smoke_check(device, art, manifest, board, build)
    finally:
        device.close()


def _build(art: Path, board: Board, backend: str | None, full_length: bool, runtime: str) -> dict:
    from embbert.device.build import build_firmware

    if runtime != "micropython":
        return build_firmware(art, board.name, backend=backend, full_length=full_length)
    from embbert.micropython.firmware import build_micropython

    return build_micropython(art, board.name, full_length=full_length, backend=backend)


def _device_class(runtime: str):
    """What talks to the firmware: None (the protocol's Device), or MicroPython's raw REPL."""
    if runtime != "micropython":
        return None
    from embbert.micropython.board import MicroPythonDevice

    return MicroPythonDevice


def deploy(source: Path, board_name: str, port: str | None = None, backend: str | None = None,
           art_dir: Path | None = None, full_length: bool = False, calibration: int = 500,
           runtime: str = "bare") -> dict:
    board = load_board(board_name)
    if board.kind != "qemu" and port is None:
        raise UserError(f"{board.name} is a hardware board: give --port (e.g. /dev/ttyACM0)")
    if runtime == "micropython" and board.kind != "qemu":
        raise UserError(f"--runtime micropython deploys our MicroPython port to the QEMU boards, not {board.name}; "
                        "for MicroPython's own ports build the module of `embbert micropython`")
    art = artifact_for(source, art_dir, calibration)
    manifest = read_manifest(art)
    if board.kind == "qemu":  # no other client may be using the emulator this replaces
        from embbert.micropython.firmware import build_dir as micropython_build_dir

        build_dir = micropython_build_dir(art, board.name) if runtime == "micropython" else art / "build" / board.name
        build_dir.mkdir(parents=True, exist_ok=True)
        with emulator.lock(build_dir):
            return _deploy(art, manifest, board, port, backend, full_length, runtime)
    return _deploy(art, manifest, board, port, backend, full_length, runtime)


def _deploy(art: Path, manifest: dict, board: Board, port: str | None, backend: str | None,
            full_length: bool, runtime: str) -> dict:
    _step(f"building the firmware for {board.name}" + (" (MicroPython)" if runtime == "micropython" else ""))
    build = _build(art, board, backend, full_length, runtime)
    _step(f"firmware: flash {build['flash_bytes']:,} B, RAM {build['ram_bytes']:,} B ({build['backend']} backend)")
    build_dir = Path(build["elf"]).parent
    if board.kind == "qemu":
        state = emulator.start(board, Path(build["elf"]), build_dir)
        url = state["url"]
        try:
            device = emulator.connect(state, board.serial.baudrate, 30.0, _device_class(runtime))
            smoke = _smoke(device, art, manifest, board, build, 30.0)
        except BaseException:
            emulator.stop(build_dir)  # a failed deploy leaves no emulator behind
            raise
    else:
        _step(f"uploading to {port}")
        _upload(board, build, port)
        state, url = None, port
        smoke = _smoke(open_port(port, board.serial.baudrate, 30.0), art, manifest, board, build, 10.0)
    _step(f"smoke check passed: INFO matches the manifest, {len(smoke['sentences'])} sentences as on the host")
    result = {"artifact": str(art), "board": board.name, "url": url, "build": build, "smoke": smoke}
    if state:
        result["emulator"] = {"pid": state["pid"], "url": url, "log": state["log"], "stop": f"kill {state['pid']}"}
    return result
