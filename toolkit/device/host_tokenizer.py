"""The device tokenizer's C++ (firmware/src/tokenizer.cc) built for the host
with g++, to check it against HF tokenizers on many texts in seconds."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

from embbert.device.paths import FIRMWARE_DIR
from embbert.device.tokenizer_tables import write_tables
from embbert.errors import UserError

# Big enough for any test text whole (news20 has 53 kB posts).
HOST_MAX_TEXT_BYTES = 1 << 20


class HostTokenizer:
    """Runs the built driver; one process per call, texts in one batch."""

    def __init__(self, exe: Path):
        self.exe = exe

    def run(self, texts: list[str], max_len: int) -> list[str]:
        """Raw result lines: ids (+ " T" if truncated) or "E status offset"."""
        data = b"".join(struct.pack("<I", len(b)) + b for b in (t.encode("utf-8") for t in texts))
        proc = subprocess.run([str(self.exe), str(max_len)], input=data, capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.exe} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
        lines = proc.stdout.decode().splitlines()
        if len(lines) != len(texts):
            raise RuntimeError(f"{self.exe}: {len(texts)} texts in, {len(lines)} lines out")
        return lines

    def encode(self, texts: list[str], max_len: int) -> list[list[int]]:
        """Ids like embbert.tokenizer.encode; raises on a device error."""
        out = []
        for text, line in zip(texts, self.run(texts, max_len)):
            if line.startswith("E"):
                raise ValueError(f"device tokenizer refused {text[:40]!r}: {line}")
            out.append([int(x) for x in line.split() if x != "T"])
        return out


def build_host_tokenizer(tokenizer_json, work_dir) -> HostTokenizer:
    """Generate the tables for ``tokenizer_json`` and compile the driver."""
    compiler = shutil.which("g++")
    if compiler is None:
        raise UserError("g++ not found; install it (apt-get install g++) to build the host tokenizer")
    work = Path(work_dir)
    write_tables(tokenizer_json, work)
    src = FIRMWARE_DIR / "src"
    exe = work / "host_tokenize"
    cmd = [compiler, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", f"-DEMBBERT_MAX_TEXT_BYTES={HOST_MAX_TEXT_BYTES}",
           f"-I{src}", str(FIRMWARE_DIR / "host" / "tokenize_main.cc"), str(src / "tokenizer.cc"),
           str(work / "tokenizer_tables.cc"), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"host tokenizer build failed:\n{' '.join(cmd)}\n{proc.stderr}")
    return HostTokenizer(exe)
