"""Build an artifact's aot C++ for the host (g++).

    python -m embbert.convert.aot.host ART_DIR OUT_DIR [KERNELS]   # -> OUT_DIR/aot_host

The sources are the artifact's own (ART_DIR/aot/<kernels>/, checked against
manifest.json; `embbert convert` generated them). The host binary uses the
firmware's flags that matter for bit-exactness (-ffp-contract=off, never
-ffast-math), so its logits are the device's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from embbert.device.paths import FIRMWARE_DIR

from ..manifest import read_manifest
from . import headers
from .artifact import AOT_SRC, checked_folder, kernel_dirs

CXXFLAGS = ["-std=c++17", "-O2", "-ffp-contract=off", "-fno-exceptions", "-fno-rtti"]


def build_host(art_dir: Path, out_dir: Path, kernels: str = "reference") -> Path:
    """kernels "optimized" on the host is their plain-C path (no DSP extension)."""
    src = checked_folder(art_dir, read_manifest(art_dir), kernels)
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / "aot_host"
    includes = [src, AOT_SRC, *kernel_dirs(kernels), *headers.include_dirs()]
    cmd = ["g++", *CXXFLAGS, *[f"-I{d}" for d in includes], str(src / "model_aot.cc"),
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
    print(build_host(Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:4]))
