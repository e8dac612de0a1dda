import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory):
    """One tokenizer cache for the whole session, never the user's own."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["EMBBERT_CACHE"] = str(path)
    return path


def run_cli(*args: str, check: bool = False, cwd=None) -> subprocess.CompletedProcess:
    """Run the real `embbert` entry point in a subprocess (real exit codes, real stderr),
    in the working directory `cwd` (default: this one)."""
    cmd = [sys.executable, "-c", "from embbert.cli import main; main()", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"embbert {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def converter_graph(tmp_path_factory):
    """converter_graph(family) -> (the converter's own int8 flatbuffer of a smoke model of that
    family, before convert/optimize.py; 24 padded real sentences): tests/rewrite_graphs.py."""
    from rewrite_graphs import converter_model

    return lambda family: converter_model(family, tmp_path_factory)
