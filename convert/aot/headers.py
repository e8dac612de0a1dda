"""TFLite-Micro's reference-kernel headers and gemmlowp, from pinned wheels, cached.

No registry ships TFLite-Micro's C++ sources, but two wheels ship the headers
the `aot` backend includes (never copied into the repository):
- xmos-ai-tools 1.4.2: tensorflow/lite/kernels/internal/reference (namespace
  tflite_micro) and the rest of TFLite-Micro's include tree;
- tensorflow-cpu 2.20.0: gemmlowp (fixedpoint/fixedpoint.h) under
  tensorflow/include/external/gemmlowp.

`pip download --no-deps` fetches each wheel into the user cache
(embbert.pinned; the venv's pinned tensorflow 2.19 is never touched); only the
include trees are unzipped, then the wheel is deleted. `./setup.sh` calls `python -m embbert.convert.aot.headers`.
"""

from __future__ import annotations

from pathlib import Path

from embbert.pinned import unpacked

# (pip requirement, prefix inside the wheel to unzip, include dir under it)
WHEELS = {
    "tflm": ("xmos-ai-tools==1.4.2", "xmos_ai_tools/runtime/include/", "xmos_ai_tools/runtime/include"),
    "gemmlowp": ("tensorflow-cpu==2.20.0", "tensorflow/include/external/gemmlowp/", "tensorflow/include/external/gemmlowp"),
}


def include_dirs() -> list[Path]:
    """The -I paths for the aot kernels (downloads once, then cached)."""
    return [unpacked("aot-headers", requirement, prefix) / inc for requirement, prefix, inc in WHEELS.values()]


if __name__ == "__main__":
    for d in include_dirs():
        print(d)
