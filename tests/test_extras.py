"""Issue 13, item 12: `pip install .` gave a CLI whose convert and eval failed on
an import. The converter's and the board's dependencies are extras of
pyproject.toml, and a command whose extra is missing says which, in one line."""

import importlib.metadata
import re
import subprocess
import sys
import tomllib

import pytest

from embbert.device.paths import REPO
from embbert.extras import EXTRAS, NO_DEPS_FILE

# Hides the named modules, as if their extra was never installed.
BLOCKER = """
import sys
class Blocker:
    def __init__(self, names): self.names = names
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker(set(sys.argv[1].split(","))))
from embbert.cli import main
sys.argv = ["embbert", *sys.argv[2:]]
main()
"""


def _run_without(modules: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER, modules, *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("hidden, command, extra", [
    ("tflite_micro", ["convert", "RUN", "--out", "ART"], "convert"),
    ("onnx2tf", ["convert", "RUN", "--out", "ART"], "convert"),
    ("serial", ["eval", "ART", "--board", "qemu-m4", "--task", "sms_spam", "--out", "E"], "device"),
    ("onnxruntime", ["eval", "ART", "--board", "qemu-m4", "--task", "sms_spam", "--out", "E"], "convert"),
    ("platformio", ["deploy", "RUN", "--board", "qemu-m4"], "device"),
    ("platformio", ["build", "ART", "--board", "qemu-m4"], "device"),
])
def test_a_missing_extra_is_one_line_naming_it(tmp_path, hidden, command, extra):
    args = [str(tmp_path / a) if a.isupper() else a for a in command]
    proc = _run_without(hidden, *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"embbert {command[0]} needs the '{extra}' extra" in lines[0], proc.stderr
    assert f"{hidden} is not installed" in lines[0] and f"pip install -e '.[{extra}]'" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_train_needs_no_extra(tmp_path):
    """The core install trains: its errors are about its input, not about a missing extra."""
    proc = _run_without(",".join(EXTRAS["convert"] + EXTRAS["device"]), "train", "--task", "nope", "--out",
                        tmp_path / "o")
    assert proc.returncode == 2 and "unknown task 'nope'" in proc.stderr


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for line in requirements:
        name, _, version = line.strip().partition("==")
        if line.strip() and not line.startswith("#"):
            assert version, f"{line!r} is not an exact pin"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_every_module_an_extra_checks_is_pinned_in_it():
    """Each module `require` checks comes from a distribution pinned exactly in its extra
    (onnx2tf and its helpers: in the --no-deps file), at the version installed here."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    no_deps = _pins((REPO / NO_DEPS_FILE).read_text().splitlines())
    owners = importlib.metadata.packages_distributions()
    for extra, modules in EXTRAS.items():
        pinned = _pins(extras[extra])
        for module in modules:
            dist = re.sub(r"[-_.]+", "-", owners[module][0]).lower()
            where = pinned if dist in pinned else no_deps if extra == "convert" else {}
            assert dist in where, f"{module} ({dist}) is not pinned in the {extra!r} extra"
            assert importlib.metadata.version(dist) == where[dist], dist
