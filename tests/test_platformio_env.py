"""How the toolkit runs PlatformIO (embbert.device.platformio_env.pio): a
timeout stops PlatformIO and every process it started (SCons, compilers)."""

import sys
import time

import pytest

from embbert.device import platformio_env

# A fake `platformio` that starts a child (as PlatformIO starts SCons), says where, and hangs.
FAKE_PIO = r"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_timeout_kills_platformio_and_its_children(tmp_path, monkeypatch):
    fake = tmp_path / "fake_pio.py"
    fake.write_text(FAKE_PIO)
    monkeypatch.setattr(platformio_env, "PIO_COMMAND", [sys.executable, str(fake)])
    monkeypatch.setattr(platformio_env, "core_dir", lambda: tmp_path / "core")
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(platformio_env.PlatformIOTimeout, match="ran past 3 s"):
        platformio_env.pio([str(pid_file)], cwd=tmp_path, timeout=3)
    assert time.monotonic() - started < 30
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the child PlatformIO started outlived the timeout"


def test_pio_returns_the_completed_process(tmp_path, monkeypatch):
    fake = tmp_path / "fake_pio.py"
    fake.write_text("import os, sys\nprint(' '.join(sys.argv[1:]), os.environ['PLATFORMIO_CORE_DIR'])\n"
                    "sys.exit(3)\n")
    monkeypatch.setattr(platformio_env, "PIO_COMMAND", [sys.executable, str(fake)])
    monkeypatch.setattr(platformio_env, "core_dir", lambda: tmp_path / "core")
    proc = platformio_env.pio(["run", "-e", "x"], cwd=tmp_path)
    assert proc.returncode == 3 and proc.stdout.split() == ["run", "-e", "x", str(tmp_path / "core")]
