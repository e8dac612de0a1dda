"""TFLite-Micro's reference-kernel headers and gemmlowp, from pinned wheels, cached.

No registry ships TFLite-Micro's C++ sources, but two wheels ship the headers
the `aot` backend includes (never copied into the repository):
- xmos-ai-tools 1.4.2: tensorflow/lite/kernels/internal/reference (namespace
  tflite_micro) and the rest of TFLite-Micro's include tree;
- tensorflow-cpu 2.20.0: gemmlowp (fixedpoint/fixedpoint.h) under
  tensorflow/include/external/gemmlowp.

`pip download --no-deps` fetches each wheel into the user cache (the venv's
pinned tensorflow 2.19 is never touched); only the include trees are unzipped,
then the wheel is deleted. `./setup.sh` calls `python -m embbert.convert.aot.headers`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from embbert.errors import UserError
from embbert.tokenizer import cache_dir

# (pip requirement, prefix inside the wheel to unzip, include dir under it)
WHEELS = {
    "tflm": ("xmos-ai-tools==1.4.2", "xmos_ai_tools/runtime/include/", "xmos_ai_tools/runtime/include"),
    "gemmlowp": ("tensorflow-cpu==2.20.0", "tensorflow/include/external/gemmlowp/", "tensorflow/include/external/gemmlowp"),
}


def headers_root() -> Path:
    return cache_dir() / "aot-headers"


def _user_root() -> Path:
    """The user's own cache, where ./setup.sh put the headers, even when
    $EMBBERT_CACHE points elsewhere (the tests give each session a fresh cache:
    it must not download 320 MB of wheels again)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "embbert" / "aot-headers"


def _fetch(name: str, requirement: str, prefix: str, dest: Path) -> None:
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               requirement, "-d", tmp]
        print(f"aot headers: pip download --no-deps {requirement} (once)", file=sys.stderr)
        r = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if r.returncode != 0 or len(wheels) != 1:
            raise UserError(f"cannot download {requirement} for the aot headers: {r.stderr.strip()[-400:]}")
        staging = Path(tmp) / "tree"
        with zipfile.ZipFile(wheels[0]) as zf:
            members = [m for m in zf.namelist() if m.startswith(prefix) and not m.endswith("/")]
            zf.extractall(staging, members)
        staging.rename(dest)  # atomic: a half-unzipped tree never looks complete


def include_dirs() -> list[Path]:
    """The -I paths for the aot kernels (downloads once, then cached)."""
    root = headers_root()
    dirs = []
    for name, (requirement, prefix, inc) in WHEELS.items():
        folder = requirement.replace("==", "-")
        found = [r / folder for r in (root, _user_root()) if (r / folder).is_dir()]
        if found:
            dest = found[0]
        else:
            root.mkdir(parents=True, exist_ok=True)
            dest = root / folder
            _fetch(name, requirement, prefix, dest)
        dirs.append(dest / inc)
    return dirs


if __name__ == "__main__":
    for d in include_dirs():
        print(d)
