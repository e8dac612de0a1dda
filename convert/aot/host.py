"""Generate the aot C++ for an artifact dir and build it for the host (g++).

    python -m embbert.convert.aot.host ART_DIR OUT_DIR   # -> OUT_DIR/aot_host

The host binary uses the firmware's flags that matter for bit-exactness
(-ffp-contract=off, never -ffast-math), so its logits are the device's.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from embbert.device.paths import FIRMWARE_DIR

from . import headers
from .codegen import generate
from .graph import read_graph

AOT_SRC = FIRMWARE_DIR / "src" / "backends" / "aot"


def kernel_dirs(kernels: str) -> list[Path]:
    """Include dirs of the kernels the generated code calls: kernels/ (their
    parameters) and kernels/<kernels>/ (reference or optimized)."""
    return [AOT_SRC / "kernels", AOT_SRC / "kernels" / kernels]
CXXFLAGS = ["-std=c++17", "-O2", "-ffp-contract=off", "-fno-exceptions", "-fno-rtti"]


def write_sources(model_path: Path, out_dir: Path, kernels: str = "reference") -> dict:
    data = model_path.read_bytes()
    header, source, info = generate(read_graph(data), hashlib.sha256(data).hexdigest(), kernels)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model_aot.h").write_text(header)
    (out_dir / "model_aot.cc").write_text(source)
    return info


def include_flags(gen_dir: Path, kernels: str = "reference") -> list[str]:
    dirs = [gen_dir, AOT_SRC, *kernel_dirs(kernels), *headers.include_dirs()]
    return [f"-I{d}" for d in dirs]


def build_host(model_path: Path, out_dir: Path, kernels: str = "reference") -> Path:
    """kernels "optimized" on the host is their plain-C path (no DSP extension)."""
    write_sources(model_path, out_dir, kernels)
    exe = out_dir / "aot_host"
    cmd = ["g++", *CXXFLAGS, *include_flags(out_dir, kernels), str(out_dir / "model_aot.cc"),
           str(AOT_SRC / "aot_common.cc"), str(FIRMWARE_DIR / "host" / "aot_main.cc"), "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("aot host build failed:\n" + r.stderr[-4000:])
    return exe


class HostModel:
    """The built host binary as a process: infer(ids) -> int8 logits."""

    def __init__(self, exe: Path):
        self.proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def infer(self, ids) -> list[int]:
        self.proc.stdin.write(f"{len(ids)} {' '.join(str(int(i)) for i in ids)}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"aot host exited with {self.proc.wait()}")
        return [int(v) for v in line.split()]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    art, out = Path(sys.argv[1]), Path(sys.argv[2])
    print(build_host(art / "model.tflite", out))
