"""The optional parts of the toolkit (pyproject.toml extras) and the one line
that names the missing one, before a command does any work.

`pip install .` gives train, pretrain and the other light commands; convert
and the board commands need these too.
"""

from __future__ import annotations

import importlib.util

from embbert.errors import UserError

# extra -> the modules its commands import (checked by tests/test_extras.py
# against the pins of pyproject.toml).
EXTRAS = {
    "convert": ("tensorflow", "tf_keras", "onnx", "onnxruntime", "onnxsim", "onnx_graphsurgeon", "ai_edge_litert",
                "tflite_micro", "flatbuffers", "onnx2tf", "sng4onnx", "sne4onnx"),
    "device": ("serial", "platformio", "SCons", "elftools"),
}
NO_DEPS_FILE = "requirements-convert-nodeps.txt"


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a broken or half-imported package counts as missing
        return True


def require(command: str, *extras: str) -> None:
    """Refuse `embbert COMMAND` in one line if a module of one of its extras is missing."""
    for extra in extras:
        missing = [module for module in EXTRAS[extra] if _missing(module)]
        if not missing:
            continue
        install = f"pip install -e '.[{extra}]'"
        if extra == "convert":
            install += f" && pip install --no-deps -r {NO_DEPS_FILE}"
        raise UserError(f"embbert {command} needs the '{extra}' extra, and {', '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} not installed: run ./setup.sh, or in the clone "
                        f"{install}")
