"""The aot kernels (firmware/src/backends/aot/kernels/), bit-exact against
TFLite-Micro's reference kernels on an emulated board: the same test program
(kernels/matmul_test.cc) is built over each kernels folder and runs both the
folder's kernel and TFLite-Micro's on generated cases: odd sizes, extreme zero
points, multipliers and shifts across their ranges, per-tensor and per-channel.
The whole model over the optimized kernels is held to host TFLite-Micro by
tests/test_aot.py."""

import math
import random

import pytest

from embbert.convert.aot import headers
from embbert.convert.aot.host import AOT_SRC, kernel_dirs
from embbert.convert.aot.profile import RELEASE_DEFINES
from embbert.device.baremetal import build_program, run_program

SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33]
MAX_ROWS, MAX_UNITS, MAX_DEPTH = 40, 40, 300


def cases(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for k in range(count):
        big = rng.random() < 0.1  # now and then a model-sized product
        rows = rng.choice([*SIZES, 40]) if not big else rng.choice([20, 40])
        units = rng.choice([*SIZES, 40]) if not big else 40
        depth = rng.choice([*SIZES, 64, 127, 128, 129]) if not big else rng.choice([128, 256, 300])
        zp = lambda: rng.choice([-128, 127, 0, rng.randint(-128, 127)])  # noqa: E731
        xz, wz, oz = zp(), zp(), zp()
        bmm = rng.random() < 0.4
        per_channel = not bmm and rng.random() < 0.3
        fit = round(math.log2(96 / (5500 * math.sqrt(depth))))  # outputs mostly inside int8, not clamped
        narrow = rng.random() < 0.2  # now and then tensors near one end of the int8 range
        x_lo, x_hi = (100, 127) if narrow else (-128, 127)
        w_lo, w_hi = (-128, -100) if narrow else (-128, 127)
        out.append(dict(rows=rows, units=units, depth=depth, x_offset=-xz, w_offset=0 if per_channel else -wz,
                        out_offset=oz, multiplier=rng.choice([1 << 30, (1 << 31) - 1, rng.randint(1 << 30, (1 << 31) - 1)]),
                        shift=rng.choice([-31, 5, rng.randint(-31, 5), fit, fit, fit]), per_channel=int(per_channel),
                        bias=int(not bmm and rng.random() < 0.8), batch_matmul=int(bmm), seed=rng.randint(1, 2**32 - 1),
                        x_lo=x_lo, x_hi=x_hi, w_lo=w_lo, w_hi=w_hi))
    return out


FIELDS = ["rows", "units", "depth", "x_offset", "w_offset", "out_offset", "multiplier", "shift", "per_channel", "bias",
          "batch_matmul", "seed", "x_lo", "x_hi", "w_lo", "w_hi"]


def cases_header(cs: list[dict]) -> str:
    decl = "struct Case {\n" + "".join(
        f"  {'uint32_t' if f == 'seed' else 'int32_t'} {f};\n" for f in FIELDS) + "};\n"
    rows = ",\n".join("  {" + ", ".join(f"{c[f]}u" if f == "seed" else str(c[f]) for f in FIELDS) + "}" for c in cs)
    return (f"#pragma once\n#include <stdint.h>\nconstexpr int kMaxRows = {MAX_ROWS}, kMaxUnits = {MAX_UNITS}, "
            f"kMaxDepth = {MAX_DEPTH};\n{decl}constexpr int kNumCases = {len(cs)};\n"
            f"const Case kCases[] = {{\n{rows}}};\n")


def run_matmul_cases(board: str, kernels: str, cs: list[dict], work) -> str:
    (work / "matmul_cases.h").write_text(cases_header(cs))
    elf = build_program(board, [AOT_SRC / "kernels" / "matmul_test.cc", AOT_SRC / "aot_common.cc"],
                        work / f"matmul_test-{kernels}.elf", include_dirs=headers.include_dirs(),
                        defines=RELEASE_DEFINES,
                        extra_flags=[f"-I{work}", f"-I{AOT_SRC}", *[f"-I{d}" for d in kernel_dirs(kernels)]])
    return run_program(board, elf, timeout=600)


@pytest.mark.parametrize("board, kernels", [("qemu-m4", "optimized"), ("qemu-m4", "reference"),
                                            ("qemu-m7", "optimized")])
def test_matmul_kernels_are_bit_exact_with_tflite_micro(board, kernels, tmp_path):
    cs = cases(300, seed=15)
    text = run_matmul_cases(board, kernels, cs, tmp_path)
    assert f"cases {len(cs)} mismatches 0" in text, text[-2000:]


@pytest.mark.slow
def test_matmul_kernels_bit_exact_over_thousands_of_cases(tmp_path):
    cs = cases(3000, seed=1515)
    text = run_matmul_cases("qemu-m4", "optimized", cs, tmp_path)
    assert f"cases {len(cs)} mismatches 0" in text, text[-2000:]


def test_a_broken_kernel_is_caught(tmp_path):
    """The oracle is real: the optimized kernel with the requantization's
    rounding shift off by one disagrees on many cases."""
    import shutil

    broken = tmp_path / "kernels"
    shutil.copytree(AOT_SRC / "kernels", broken)
    matmul = broken / "optimized" / "matmul.h"
    text = matmul.read_text()
    assert "(int64_t{1} << 30)) >> 31)" in text
    matmul.write_text(text.replace("(int64_t{1} << 30)) >> 31)", "(int64_t{1} << 30)) >> 30)"))
    cs = cases(40, seed=3)
    (tmp_path / "matmul_cases.h").write_text(cases_header(cs))
    elf = build_program("qemu-m4", [broken / "matmul_test.cc", AOT_SRC / "aot_common.cc"], tmp_path / "broken.elf",
                        include_dirs=headers.include_dirs(), defines=RELEASE_DEFINES,
                        extra_flags=[f"-I{tmp_path}", f"-I{AOT_SRC}", f"-I{broken}", f"-I{broken / 'optimized'}"])
    out = run_program("qemu-m4", elf)
    bad = int(out.split("mismatches ")[1].split()[0])
    assert bad > len(cs) // 3, bad
