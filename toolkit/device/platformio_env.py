"""PlatformIO, run offline: its core folder lives in the user's cache, and
the build engine it would fetch from its registry (tool-scons) is placed
there by hand, backed by the pip-installed SCons (see firmware/README.md)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from embbert.errors import UserError
from embbert.tokenizer import cache_dir

# PlatformIO names tool-scons versions 4.MMmmpp.0 after SCons M.m.p.
SCONS_SHIM = "import SCons.Script\nSCons.Script.main()\n"


def core_dir() -> Path:
    """One core folder per clone: the local platform is installed as a
    symlink into the clone, so two clones must not share it."""
    from embbert.device.paths import FIRMWARE_DIR

    clone = hashlib.sha256(str(FIRMWARE_DIR).encode()).hexdigest()[:10]
    return cache_dir() / f"platformio-{clone}"


def _scons_package_version() -> str:
    try:
        version = importlib.metadata.version("scons")
    except importlib.metadata.PackageNotFoundError:
        raise UserError("SCons is not installed; run ./setup.sh (it pins scons for PlatformIO)") from None
    major, minor, patch = (int(x) for x in (version.split(".") + ["0", "0"])[:3])
    return f"{major}.{major}{minor:02d}{patch:02d}.0"  # SCons 4.11.1 -> 4.41101.0


def ensure_core() -> Path:
    """Create the core folder with tool-scons if missing; return it."""
    core = core_dir()
    pkg = core / "packages" / "tool-scons"
    version = _scons_package_version()
    manifest = {"name": "tool-scons", "version": version, "description": "SCons from pip (embbert offline shim)"}
    if not (pkg / "package.json").is_file() or json.loads((pkg / "package.json").read_text()).get("version") != version:
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "package.json").write_text(json.dumps(manifest))
        (pkg / ".piopm").write_text(json.dumps({
            "type": "tool", "name": "tool-scons", "version": version,
            "spec": {"owner": "platformio", "id": None, "name": "tool-scons", "requirements": None, "uri": None}}))
        (pkg / "scons.py").write_text(SCONS_SHIM)
    return core


def pio_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PLATFORMIO_CORE_DIR": str(ensure_core()),
        "PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No",
        "PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL": "3650",
        "PLATFORMIO_DISABLE_PROGRESSBAR": "true",
        "PLATFORMIO_NO_ANSI": "true",
    })
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
    return env


# The PlatformIO the toolkit runs: the pip-installed one of this interpreter (tests put a fake here).
PIO_COMMAND = [sys.executable, "-m", "platformio"]
# A build's time limit. Building TFLite-Micro from source (the tflm backend's lib_deps) took
# 465-600 s on a 2-core machine: three times that, so a slow machine is not cut off mid-build.
BUILD_TIMEOUT_S = 1800


class PlatformIOTimeout(RuntimeError):
    """PlatformIO ran past its time limit; it and every process it started were stopped."""


def pio(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None, timeout: float = 600):
    """Run `platformio ARGS`; returns the CompletedProcess (text). It runs in a process group of
    its own: on a timeout (PlatformIOTimeout) or an interrupt the whole group is killed, SCons and
    the compilers it started too, so nothing keeps writing into the build folder after we return."""
    proc = subprocess.Popen([*PIO_COMMAND, *args], cwd=cwd, env=pio_env(extra_env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException as error:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        if isinstance(error, subprocess.TimeoutExpired):
            raise PlatformIOTimeout(f"`platformio {' '.join(args)}` ran past {timeout:.0f} s; it was stopped with "
                                    "every process it started") from None
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def platform_installed(spec: str) -> bool:
    """Is the registry platform `name@version` (board.toml pins it; or any version of `name`) installed?"""
    name, _, version = spec.partition("@")
    for manifest in (core_dir() / "platforms").glob(f"{name}*/platform.json"):
        data = json.loads(manifest.read_text())
        if data.get("name") == name and data.get("version") == (version or data.get("version")):
            return True
    return False
