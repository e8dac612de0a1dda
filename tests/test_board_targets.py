"""Real boards without a board: what `embbert build`, `embbert deploy` and the
harness would do to one, checked against fakes that record it.

- build, upload and the smoke check agree on the PlatformIO environment and
  the backend, for every board (discovered from boards/*/board.toml) and
  backend: a fake `platformio` records its arguments and "flashes" the build
  of the environment it is asked to upload;
- each hard-reset strategy of board.toml [reset] makes the exact line changes
  (a fake serial port records them) or runs the exact probe command (a fake
  openocd / pyocd on PATH records it).
"""

import json
import sys

import pytest
from test_tflm_backend import EMBBERT_OPS, _artifact

from embbert.device import build, platformio_env, reset
from embbert.device.boards import board_names, load_board
from embbert.device.platformio_ini import project_config
from embbert.errors import UserError
from embbert.harness import deploy

# A fake `platformio run`: records each call; a build writes firmware files (its environment and
# the backend of the generated folder); an upload puts that environment's build on the "board".
FAKE_PIO = r"""
import json, os, shutil, sys
args = sys.argv[1:]
with open(os.environ["FAKE_PIO_LOG"], "a") as log:
    log.write(json.dumps({"args": args, "gen": os.environ["EMBBERT_GEN_DIR"],
                          "build_dir": os.environ["PLATFORMIO_BUILD_DIR"]}) + "\n")
env = args[args.index("-e") + 1]
built = os.path.join(os.environ["PLATFORMIO_BUILD_DIR"], env)
if "upload" in args:
    if not os.path.isfile(os.path.join(built, "firmware.info")):
        sys.exit(f"Error: nothing built in {built}")
    shutil.copy(os.path.join(built, "firmware.info"), os.environ["FAKE_BOARD"])
else:
    os.makedirs(built, exist_ok=True)
    backend = json.load(open(os.path.join(os.environ["EMBBERT_GEN_DIR"], "build.json")))["backend"]
    json.dump({"env": env, "backend": backend}, open(os.path.join(built, "firmware.info"), "w"))
    open(os.path.join(built, "firmware.elf"), "w").write("elf")
    shutil.copy(os.environ["FAKE_MAP"], os.path.join(built, "firmware.map"))
"""

CASES = [(name, backend) for name in board_names() for backend in build.BACKENDS
         if backend != "tflm" or load_board(name).has_tflm]


def _fake_map(board) -> str:
    """A linker map with the board's regions, 256 B of code and 256 B of data."""
    regions = [(r, 0x08000000 + i * 0x01000000) for i, r in enumerate(board.memory.flash_regions)]
    regions += [(r, 0x20000000 + i * 0x01000000) for i, r in enumerate(board.memory.ram_regions)]
    lines = ["Memory Configuration", "", "Name             Origin             Length             Attributes"]
    lines += [f"{r:<16} 0x{origin:08x}         0x00100000         xrw" for r, origin in regions]
    lines += ["*default*        0x00000000         0xffffffff", "", "Linker script and memory map", "",
              ".text           0x08000000      0x100", ".bss            0x20000000      0x100", ""]
    return "\n".join(lines)


def _fake_generate(art_dir, gen, backend, manifest, full_length=False, kernels="reference"):
    gen.mkdir(parents=True, exist_ok=True)
    (gen / "build.json").write_text(json.dumps({"backend": backend}))
    return {}


@pytest.mark.parametrize("name,backend", CASES)
def test_build_upload_and_smoke_check_agree_on_the_environment(name, backend, tmp_path, monkeypatch):
    board = load_board(name)
    art, manifest = _artifact(tmp_path / "art", EMBBERT_OPS)
    (tmp_path / "fake_pio.py").write_text(FAKE_PIO)
    (tmp_path / "map").write_text(_fake_map(board))
    log, flashed = tmp_path / "pio.log", tmp_path / "board.json"
    (tmp_path / "board.json").write_text(json.dumps({"env": "older", "backend": "older"}))
    monkeypatch.setenv("FAKE_PIO_LOG", str(log))
    monkeypatch.setenv("FAKE_BOARD", str(flashed))
    monkeypatch.setenv("FAKE_MAP", str(tmp_path / "map"))
    monkeypatch.setattr(platformio_env, "PIO_COMMAND", [sys.executable, str(tmp_path / "fake_pio.py")])
    monkeypatch.setattr(platformio_env, "core_dir", lambda: tmp_path / "core")
    monkeypatch.setattr(build, "platform_installed", lambda spec: True)  # no registry here
    monkeypatch.setattr(build, "_check_fits", lambda *a: None)  # the model's size is not what is tested
    monkeypatch.setattr(build, "generate_sources", _fake_generate)

    report = build.build_firmware(art, name, backend=backend, out=tmp_path / "out")
    deploy._upload(board, report, "/dev/ttyFAKE")
    built, uploaded = [json.loads(line) for line in log.read_text().splitlines()]

    env = board.pio_env(backend)
    assert built["args"] == ["run", "-e", env]
    assert uploaded["args"] == ["run", "-e", env, "-t", "upload", "-t", "nobuild", "--upload-port", "/dev/ttyFAKE"]
    assert built["build_dir"] == uploaded["build_dir"] and built["gen"] == uploaded["gen"]  # the same build
    assert report["pio_env"] == env and report["backend"] == backend
    assert f"env:{env}" in project_config().sections()  # an environment PlatformIO knows (boards.ini)
    assert json.loads(flashed.read_text()) == {"env": env, "backend": backend}  # that build is on the board

    # the smoke check accepts the firmware just uploaded, and refuses an older one
    manifest["tokenizer_file"] = {"sha256": "t" * 64}
    info = {"model_sha256": manifest["model_file"]["sha256"], "tokenizer_sha256": "t" * 64,
            "labels": manifest["labels"], "board": name, "backend": json.loads(flashed.read_text())["backend"]}
    deploy.check_firmware(info, board, report)
    other = next(b for b in build.BACKENDS if b != backend)

    class StaleBoard:
        def info(self):
            return {**info, "backend": other}

    with pytest.raises(UserError, match=f"backend {other}, not the {backend} build just made for {name} "
                                        rf"\(PlatformIO environment {env}\)"):
        deploy.smoke_check(StaleBoard(), art, manifest, board, report)


# --- hard resets --------------------------------------------------------------------------------

class FakePort:
    """Records each change of the DTR and RTS lines, and each wait, in order."""

    def __init__(self):
        object.__setattr__(self, "events", [])

    def __setattr__(self, line, value):
        self.events.append((line, value))

    def sleep(self, seconds):
        self.events.append(("sleep", seconds))


def _with_reset(name, **changes):
    board = load_board(name)
    return board.model_copy(update={"reset": board.reset.model_copy(update=changes)})


def _esp32_boards():
    return [n for n in board_names() if load_board(n).reset.method == "esp32-rts-dtr"]


@pytest.mark.parametrize("name", _esp32_boards())
def test_esp32_reset_is_esptools_hard_reset(name):
    """EN (RTS) pulsed low with IO0 (DTR) high: the application boots. The old pulse (both lines
    asserted together) is exactly what the two-transistor circuit ignores."""
    port = FakePort()
    reset.hard_reset(load_board(name), port, sleep=port.sleep)
    assert port.events == [("dtr", False), ("rts", True), ("sleep", 0.1), ("rts", False)]
    port = FakePort()
    reset.hard_reset(_with_reset(name, usb_jtag=True), port, sleep=port.sleep)
    assert port.events == [("dtr", False), ("rts", True), ("sleep", 0.2), ("rts", False), ("sleep", 0.2)]


def test_dtr_reset_pulses_dtr():
    port = FakePort()
    reset.hard_reset(_with_reset("esp32-s3-devkitc", method="dtr"), port, sleep=port.sleep)
    assert port.events == [("dtr", True), ("sleep", 0.1), ("dtr", False)]


FAKE_PROBE = """#!/bin/sh
printf '%s\\n' "$@" > "$FAKE_PROBE_LOG"
[ -z "$FAKE_PROBE_FAIL" ] || { echo "Error: open failed" >&2; exit 1; }
"""


@pytest.fixture
def fake_probes(tmp_path, monkeypatch):
    """openocd and pyocd on PATH that record their arguments; returns the log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("openocd", "pyocd"):
        (bin_dir / tool).write_text(FAKE_PROBE)
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_PROBE_LOG", str(tmp_path / "probe.log"))
    monkeypatch.delenv("FAKE_PROBE_FAIL", raising=False)
    return tmp_path / "probe.log"


@pytest.mark.parametrize("name", [n for n in board_names() if load_board(n).reset.method == "openocd"])
def test_stlink_boards_reset_through_openocd(name, fake_probes, monkeypatch):
    board = load_board(name)
    assert all(cfg.startswith("board/st_nucleo_") for cfg in board.reset.openocd_config)  # Debian openocd's scripts
    reset.hard_reset(board, port=None)
    scripts = [arg for cfg in board.reset.openocd_config for arg in ("-f", cfg)]
    assert fake_probes.read_text().splitlines() == [*scripts, "-c", "init", "-c", "reset run", "-c", "shutdown"]
    monkeypatch.setenv("FAKE_PROBE_FAIL", "1")
    with pytest.raises(UserError, match="failed \\(exit 1\\): Error: open failed"):
        reset.hard_reset(board, port=None)


def test_pyocd_reset_names_the_target(fake_probes):
    board = _with_reset("nucleo-l4r5zi", method="pyocd", pyocd_target="stm32l4r5zitx")
    reset.hard_reset(board, port=None)
    assert fake_probes.read_text().split("\n") == ["reset", "--target", "stm32l4r5zitx", ""]


def test_missing_probe_tool_and_emulated_boards_are_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no openocd here
    with pytest.raises(UserError, match="needs openocd \\(apt-get install openocd\\)"):
        reset.hard_reset(load_board("nucleo-h743zi"), port=None)
    for name in board_names():
        if load_board(name).kind == "qemu":
            with pytest.raises(UserError, match="restarting its emulator"):
                reset.hard_reset(load_board(name), FakePort())


def test_board_toml_reset_is_checked(tmp_path):
    board = load_board("nucleo-l4r5zi")
    with pytest.raises(ValueError, match="openocd_config"):
        type(board).model_validate({**board.model_dump(), "reset": {"method": "openocd"}})
    with pytest.raises(ValueError, match="emulator"):
        type(board).model_validate({**board.model_dump(), "reset": {"method": "emulator"}})


def test_port_link_hard_reset_uses_the_boards_strategy(monkeypatch):
    """The harness's hard reset on a port: RESET first (no answer on a loopback), then the
    board's own strategy on the port itself, then the ready line (none: one clear failure)."""
    from embbert.harness import link

    calls = []
    monkeypatch.setattr(link.reset, "hard_reset", lambda board, port: calls.append((board.name, port)))
    board = load_board("esp32-s3-devkitc")
    port_link = link.PortLink(board, "loop://", timeout=0.3)
    try:
        with pytest.raises(link.BoardUnresponsive, match="hard reset \\(esp32-rts-dtr\\)"):
            port_link.hard_reset()
        assert calls == [("esp32-s3-devkitc", port_link.device.port)]
    finally:
        port_link.close()
