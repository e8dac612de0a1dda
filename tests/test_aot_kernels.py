"""The aot kernels (firmware/src/backends/aot/kernels/), bit-exact against
TFLite-Micro's reference kernels on an emulated board: the same test program
(kernels/matmul_test.cc; BATCH_MATMUL with and without adj_y) is built over each kernels folder and runs both the
folder's kernel and TFLite-Micro's on generated cases: odd sizes, extreme zero
points, multipliers and shifts across their ranges, per-tensor and per-channel.
The whole model over the optimized kernels is held to host TFLite-Micro by
tests/test_aot.py."""

import math
import random

import numpy as np
import pytest

from embbert.convert.aot import headers, quant
from embbert.convert.aot.codegen import pack_depthwise_weights
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
        rhs_depth_units = bmm and rng.random() < 0.5  # BATCH_MATMUL without adj_y: the RHS as [depth, units]
        per_channel = not bmm and rng.random() < 0.3
        in_place = not bmm and rng.random() < 0.2  # out over x where the folder allows (units == depth)
        if in_place:
            units = depth = rng.choice([4, 6, 8, 12, 16, 32, 40])
        fit = round(math.log2(96 / (5500 * math.sqrt(depth))))  # outputs mostly inside int8, not clamped
        narrow = rng.random() < 0.2  # now and then tensors near one end of the int8 range
        x_lo, x_hi = (100, 127) if narrow else (-128, 127)
        w_lo, w_hi = (-128, -100) if narrow else (-128, 127)
        out.append(dict(rows=rows, units=units, depth=depth, x_offset=-xz, w_offset=0 if per_channel else -wz,
                        out_offset=oz, multiplier=rng.choice([1 << 30, (1 << 31) - 1, rng.randint(1 << 30, (1 << 31) - 1)]),
                        shift=rng.choice([-31, 5, rng.randint(-31, 5), fit, fit, fit]), per_channel=int(per_channel),
                        bias=int(not bmm and rng.random() < 0.8), batch_matmul=2 if rhs_depth_units else int(bmm),
                        in_place=int(in_place), seed=rng.randint(1, 2**32 - 1),
                        x_lo=x_lo, x_hi=x_hi, w_lo=w_lo, w_hi=w_hi))
    return out


def one_row_cases(seed: int) -> list[dict]:
    """One row of x (the last layer's [CLS] calls: matmul.h's matrix-vector path where depth is a multiple
    of 16, the plain one elsewhere) for FULLY_CONNECTED, BATCH_MATMUL adj_y and without it: units not a
    multiple of the 3 per pass, depths around 16's multiples, zero points at both ends, per-tensor and
    per-channel multipliers."""
    rng = random.Random(seed)
    out = []
    for units in (1, 2, 3, 4, 5, 7, 16, 17, 32, 33, 40):
        for depth in (7, 15, 16, 32, 33, 48, 128, 256, 300):
            for kind in ("fc", "fc-per-channel", "adj_y", "rhs_depth_units"):
                zp = lambda: rng.choice([-128, 127, rng.randint(-128, 127)])  # noqa: E731
                per_channel = kind == "fc-per-channel"
                bmm = kind in ("adj_y", "rhs_depth_units")
                fit = round(math.log2(96 / (5500 * math.sqrt(depth))))
                narrow = rng.random() < 0.2
                out.append(dict(rows=1, units=units, depth=depth, x_offset=-zp(), w_offset=0 if per_channel else -zp(),
                                out_offset=zp(), multiplier=rng.choice([1 << 30, (1 << 31) - 1,
                                                                        rng.randint(1 << 30, (1 << 31) - 1)]),
                                shift=rng.choice([-31, 5, fit, fit]), per_channel=int(per_channel),
                                bias=int(not bmm and rng.random() < 0.8),
                                batch_matmul={"adj_y": 1, "rhs_depth_units": 2}.get(kind, 0),
                                in_place=int(not bmm and units == depth), seed=rng.randint(1, 2**32 - 1),
                                x_lo=100 if narrow else -128, x_hi=127, w_lo=-128, w_hi=-100 if narrow else 127))
    return out


FIELDS = ["rows", "units", "depth", "x_offset", "w_offset", "out_offset", "multiplier", "shift", "per_channel", "bias",
          "batch_matmul", "in_place", "seed", "x_lo", "x_hi", "w_lo", "w_hi"]


def cases_header(cs: list[dict]) -> str:
    decl = "struct Case {\n" + "".join(
        f"  {'uint32_t' if f == 'seed' else 'int32_t'} {f};\n" for f in FIELDS) + "};\n"
    rows = ",\n".join("  {" + ", ".join(f"{c[f]}u" if f == "seed" else str(c[f]) for f in FIELDS) + "}" for c in cs)
    return (f"#pragma once\n#include <stdint.h>\nconstexpr int kMaxRows = {MAX_ROWS}, kMaxUnits = {MAX_UNITS}, "
            f"kMaxDepth = {MAX_DEPTH};\n{decl}constexpr int kNumCases = {len(cs)};\n"
            f"const Case kCases[] = {{\n{rows}}};\n")


def run_kernel_test(board: str, kernels: str, name: str, header: str, work) -> str:
    """kernels/NAME_test.cc over kernels/KERNELS/, with NAME_cases.h = header, on the board."""
    (work / f"{name}_cases.h").write_text(header)
    elf = build_program(board, [AOT_SRC / "kernels" / f"{name}_test.cc", AOT_SRC / "aot_common.cc"],
                        work / f"{name}_test-{kernels}.elf", include_dirs=headers.include_dirs(),
                        defines=RELEASE_DEFINES,
                        extra_flags=[f"-I{work}", f"-I{AOT_SRC}", *[f"-I{d}" for d in kernel_dirs(kernels)]])
    return run_program(board, elf, timeout=600)


def run_matmul_cases(board: str, kernels: str, cs: list[dict], work) -> str:
    return run_kernel_test(board, kernels, "matmul", cases_header(cs), work)


# ---------------------------------------------------------------- softmax, logistic, add, mul, mean, sum

EW_FIELDS = ["kind", "outer", "inner", "b_outer", "b_inner", "lo", "hi", "seed", "multiplier", "shift", "diff_min",
             "zero_point", "radius", "left_shift", "offset1", "multiplier1", "shift1", "offset2", "multiplier2", "shift2",
             "out_offset", "quantized", "compute_sum", "padded"]
MAX_ELEMENTS = 12000


def elementwise_cases(count: int, seed: int) -> list[dict]:
    """Prepare's parameters from random scales (convert/aot/quant.py), shapes with odd sizes, tables' paths
    (more than 256 / 512 elements) and the reference's (fewer), every broadcast the kernels take; softmax
    rows with 0, 1, L - 1 and any number of padded keys."""
    rng = random.Random(seed)
    scale = lambda lo, hi: 10 ** rng.uniform(lo, hi)  # noqa: E731
    zp = lambda: rng.choice([-128, 127, 0, rng.randint(-128, 127)])  # noqa: E731
    out = []
    for k in range(count):
        kind = k % 5
        outer = rng.choice([1, 2, 3, 7, 17, 33, 64])
        inner = rng.choice([1, 3, 7, 16, 31, 128, 129, 256])
        padded = 0
        if kind == 0:  # the full row's padded keys (-128) after the inner real ones: none, 1, L - 1 (L 256), any
            padded = [0, 1, 256 - inner, rng.randint(0, 300)][k // 5 % 4]
            inner = 1 if k // 5 % 8 == 2 else inner  # 255 padded keys beside one real key
            padded = 255 if k // 5 % 8 == 2 else padded
        while outer * (inner + padded) > MAX_ELEMENTS:
            outer = max(1, outer // 2)
        c = dict.fromkeys(EW_FIELDS, 0) | dict(kind=kind, outer=outer, inner=inner, padded=padded,
                                              seed=rng.randint(1, 2**32 - 1))
        c["lo"], c["hi"] = rng.choice([(-128, 127), (-128, 127), (100, 127), (-128, -100), (-5, 5)])
        if kind == 0:
            c["multiplier"], c["shift"], c["diff_min"] = quant.softmax_params(1.0, scale(-3, 0))
        elif kind == 4:  # MEAN / SUM over the last axis: Prepare's multiplier of input / output scale
            c["quantized"], c["compute_sum"] = rng.choice([(1, 0), (1, 1), (0, 0)])
            c["multiplier"], c["shift"] = quant.quantize_multiplier(quant.f32(scale(-3, 0)) / quant.f32(scale(-3, 0)))
            c["zero_point"], c["out_offset"] = zp(), zp()
        elif kind == 1:
            c["multiplier"], c["shift"], c["radius"] = quant.logistic_params(scale(-3, -0.3))
            c["zero_point"] = zp()
        else:
            c["b_outer"], c["b_inner"] = rng.choice([(inner, 1), (0, 1), (1, 0), (0, 0)])
            s1, s2, so = scale(-3, 0), scale(-3, 0), scale(-3, 0)
            c["offset1"], c["offset2"], c["out_offset"] = -zp(), -zp(), zp()
            if kind == 2:
                p = quant.add_params(s1, s2, so)
                c.update(left_shift=p["left_shift"], multiplier1=p["input1_multiplier"], shift1=p["input1_shift"],
                         multiplier2=p["input2_multiplier"], shift2=p["input2_shift"],
                         multiplier=p["output_multiplier"], shift=p["output_shift"])
            else:
                c["multiplier"], c["shift"] = quant.mul_params(s1, s2, so)
        out.append(c)
    return out


def elementwise_header(cs: list[dict]) -> str:
    decl = "struct Case {\n" + "".join(f"  {'uint32_t' if f == 'seed' else 'int32_t'} {f};\n" for f in EW_FIELDS) + "};\n"
    rows = ",\n".join("  {" + ", ".join(f"{c[f]}u" if f == "seed" else str(c[f]) for f in EW_FIELDS) + "}" for c in cs)
    return (f"#pragma once\n#include <stdint.h>\nconstexpr int kMaxElements = {MAX_ELEMENTS};\n{decl}"
            f"constexpr int kNumCases = {len(cs)};\nconst Case kCases[] = {{\n{rows}}};\n")


# ---------------------------------------------------------------- depthwise conv

def depthwise_header(count: int, seed: int, kernels: str) -> str:
    """Cases with the weights in TFLite's layout and packed for `kernels` by the code generator."""
    rng = random.Random(seed)
    arrays, rows, max_in, max_ch, max_scratch = [], [], 1, 1, 16
    for k in range(count):
        taps = rng.choice([1, 2, 3, 4, 5, 7, 8, 16, 31, 32, 33])
        pad = rng.choice([0, 0, taps - 1, rng.randint(0, taps - 1)])  # a PAD folded in: causal, or any
        in_len = max(1, taps - pad + rng.choice([0, 1, 2, 3, 4, 5, 7, 16, 40]))
        channels = rng.choice([1, 2, 3, 7, 16, 17, 33])
        w = np.array([[rng.randint(-128, 127) for _ in range(channels)] for _ in range(taps)], np.int8)
        mults, shifts = quant.per_channel_multipliers(10 ** rng.uniform(-3, 0),
                                                      [10 ** rng.uniform(-4, -1) for _ in range(channels)],
                                                      10 ** rng.uniform(-3, 0))
        arrays.append(f"const int8_t w{k}[] = {{{', '.join(map(str, w.reshape(-1)))}}};\n"
                      f"alignas(4) const int8_t wp{k}[] = "
                      f"{{{', '.join(map(str, pack_depthwise_weights(w, kernels).reshape(-1)))}}};\n"
                      f"const int32_t m{k}[] = {{{', '.join(map(str, mults))}}};\n"
                      f"const int32_t s{k}[] = {{{', '.join(map(str, shifts))}}};\n")
        lo, hi = rng.choice([(-128, 127), (-128, 127), (100, 127), (-128, -100)])
        zx, zo = rng.choice([-128, 127, 0, rng.randint(-128, 127)]), rng.choice([-128, 127, rng.randint(-128, 127)])
        rows.append(f"  {{{in_len}, {pad}, {channels}, {taps}, {-zx}, {zo}, {int(rng.random() < 0.8)}, "
                    f"{rng.randint(1, 2**32 - 1)}u, {lo}, {hi}, w{k}, wp{k}, m{k}, s{k}}}")
        max_in, max_ch = max(max_in, pad + in_len), max(max_ch, channels)
        max_scratch = max(max_scratch, 2 * ((pad + in_len - taps + 1 + 3) // 4 * 4 + (taps + 3) // 4 * 4 + 4))
    return ("#pragma once\n#include <stdint.h>\n"
            f"constexpr int kMaxIn = {max_in}, kMaxChannels = {max_ch}, kMaxScratch = {max_scratch};\n"
            "struct Case {\n  int32_t in_len, pad_before, channels, taps, x_offset, out_offset, bias;\n  uint32_t seed;\n"
            "  int32_t lo, hi;\n  const int8_t* w;\n  const int8_t* w_packed;\n  const int32_t* multiplier;\n"
            "  const int32_t* shift;\n};\n" + "".join(arrays)
            + f"constexpr int kNumCases = {count};\nconst Case kCases[] = {{\n" + ",\n".join(rows) + "};\n")


@pytest.mark.parametrize("board, kernels", [("qemu-m4", "optimized"), ("qemu-m4", "reference"),
                                            ("qemu-m7", "optimized")])
def test_elementwise_kernels_are_bit_exact_with_tflite_micro(board, kernels, tmp_path):
    cs = elementwise_cases(200, seed=15)
    text = run_kernel_test(board, kernels, "elementwise", elementwise_header(cs), tmp_path)
    assert f"cases {len(cs)} mismatches 0" in text, text[-2000:]


@pytest.mark.parametrize("board, kernels", [("qemu-m4", "optimized"), ("qemu-m4", "reference"),
                                            ("qemu-m7", "optimized")])
def test_depthwise_conv_kernels_are_bit_exact_with_tflite_micro(board, kernels, tmp_path):
    text = run_kernel_test(board, kernels, "depthwise_conv", depthwise_header(150, 15, kernels), tmp_path)
    assert "cases 150 mismatches 0" in text, text[-2000:]


@pytest.mark.parametrize("board, kernels", [("qemu-m4", "optimized"), ("qemu-m4", "reference"),
                                            ("qemu-m7", "optimized")])
def test_matmul_kernels_are_bit_exact_with_tflite_micro(board, kernels, tmp_path):
    cs = cases(300, seed=15) + one_row_cases(seed=15)
    text = run_matmul_cases(board, kernels, cs, tmp_path)
    assert f"cases {len(cs)} mismatches 0" in text, text[-2000:]


@pytest.mark.slow
def test_kernels_bit_exact_over_thousands_of_cases(tmp_path):
    cs = cases(3000, seed=1515) + one_row_cases(seed=1515)
    assert f"cases {len(cs)} mismatches 0" in run_matmul_cases("qemu-m4", "optimized", cs, tmp_path)
    ew = elementwise_cases(2000, seed=1515)
    text = run_kernel_test("qemu-m4", "optimized", "elementwise", elementwise_header(ew), tmp_path)
    assert f"cases {len(ew)} mismatches 0" in text
    text = run_kernel_test("qemu-m4", "optimized", "depthwise_conv", depthwise_header(1000, 1515, "optimized"), tmp_path)
    assert "cases 1000 mismatches 0" in text


def test_a_broken_kernel_is_caught(tmp_path):
    """The oracle is real: the optimized kernel with its accumulators one unit
    off (most outputs still round the same) is caught."""
    import shutil

    broken = tmp_path / "kernels"
    shutil.copytree(AOT_SRC / "kernels", broken)
    matmul = broken / "optimized" / "matmul.h"
    text = matmul.read_text()
    assert "acc[r] = b;" in text
    matmul.write_text(text.replace("acc[r] = b;", "acc[r] = b + 1;"))
    cs = cases(40, seed=3)
    (tmp_path / "matmul_cases.h").write_text(cases_header(cs))
    elf = build_program("qemu-m4", [broken / "matmul_test.cc", AOT_SRC / "aot_common.cc"], tmp_path / "broken.elf",
                        include_dirs=headers.include_dirs(), defines=RELEASE_DEFINES,
                        extra_flags=[f"-I{tmp_path}", f"-I{AOT_SRC}", f"-I{broken}", f"-I{broken / 'optimized'}"])
    out = run_program("qemu-m4", elf)
    bad = int(out.split("mismatches ")[1].split()[0])
    assert bad > 0


def test_board_description_names_the_kernels(tmp_path):
    """board.toml build.aot_kernels: "reference" or "optimized"; anything else is one clear error."""
    import tomllib

    from embbert.device.boards import load_board
    from embbert.device.paths import BOARDS_DIR
    from embbert.errors import UserError

    assert load_board("qemu-m4").build.aot_kernels == "optimized"
    assert load_board("esp32-s3-devkitc").build.aot_kernels == "reference"  # the default: not verified there
    text = (BOARDS_DIR / "qemu-m4" / "board.toml").read_text()
    assert tomllib.loads(text)["build"]["aot_kernels"] == "optimized"
    (tmp_path / "qemu-m4").mkdir()
    (tmp_path / "qemu-m4" / "board.toml").write_text(
        text.replace('aot_kernels = "optimized"', 'aot_kernels = "fast"').replace('"../common', f'"{BOARDS_DIR}/common'))
    with pytest.raises(UserError, match="build.aot_kernels"):
        load_board("qemu-m4", tmp_path)


def test_bare_metal_programs_run_on_emulated_boards_only(tmp_path):
    from embbert.errors import UserError

    with pytest.raises(UserError, match="bare-metal programs run on qemu"):
        build_program("nucleo-l4r5zi", [AOT_SRC / "kernels" / "matmul_test.cc"], tmp_path / "x.elf")
    assert not (tmp_path / "x.elf").exists()
