"""Refuse an output folder that cannot be written, before any work is done.

Permission bits do not say it (root ignores them, a read-only mount or /proc
refuses root too), so the folder that would receive OUT is asked the real
question: a probe folder is made in it and removed at once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from embbert.errors import UserError


def check_writable(out: Path) -> None:
    """OUT, or the nearest folder above it that exists, takes new files; else one UserError."""
    out = Path(out)
    folder = out
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"cannot write {out}: {folder} is a file, not a folder")
    try:
        tempfile.TemporaryDirectory(dir=folder, prefix=".embbert-probe-").cleanup()
    except OSError as error:
        raise UserError(f"cannot write {out}: {folder} does not take new files ({error.strerror or error})") from None
