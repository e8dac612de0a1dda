"""Instructions per multiply-accumulate of single FULLY_CONNECTED and BATCH_MATMUL
calls on the emulated boards, whole and in the inner loop, our kernels and
TFLite-Micro's reference kernels, at the model's shapes.

    python bench/kernel_loops.py [--boards qemu-m4 qemu-m7]

One bare-metal program (firmware/test/kernel_loops_main.cc, built and run by
embbert.device.baremetal as the kernel tests and the per-op profile are) is
built over each kernels folder: "optimized" (ours, kernels/optimized/) and
"reference" (TFLite-Micro's reference kernels, kernels/reference/). It makes
each call once on seeded random tensors, reading the board's counter (QEMU
-icount: instructions, never cycles) just before and just after; the cost of
the two reads themselves (measured back to back) is taken off. Every call's
output is hashed on the board, and the bench stops before writing anything
unless each hash is the same in both kernel sets on every board: the figures
are those of kernels that give the reference kernels' output bit for bit.

Per shape, two figures:
- whole call: instructions / MACs at the model's shape, everything included
  (packing x, per-output setup, requantization, the call itself);
- inner loop: the marginal cost, (instructions at depth 2D - instructions at
  depth D) / (MACs at 2D - MACs at D), with rows, units, the parameters and the
  seed unchanged. Whatever is paid once per call, per row or per output does
  not grow with the depth and cancels exactly; what is left is what grows with
  it: the multiply-accumulate loop, and packing x (per row and depth element,
  shared by all units). The issue's target for it is <= 1.25 (CMSIS-NN's int8
  loop: about 13 instructions per 8 MACs, about 1.6).

The shapes are the calls the converted EmbBERT makes at 256 tokens (the model
of bench/results/device_latency.json: d_model 128, embedding 32, one attention
head of 128, K = V = x), in each kernel set's generated model
(convert/aot/codegen.py, attention.py): attention runs in tiles of
attention.TILE_ROWS query rows, 32 for the optimized kernels and 4 for the
reference ones. P V differs between them: the optimized model reads V = x
untransposed, [depth, units] (BatchMatMulRhsDepthUnits, rhs_transpose.py
folds the TRANSPOSE); the reference model still runs BATCH_MATMUL adj_y on V
transposed. Both are measured ("pv" and "pv-adj-y"), each over both kernel
sets (the reference kernels' BatchMatMulRhsDepthUnits transposes V into
scratch first, as TFLite-Micro's batch_matmul.cc does). The last layer's
[CLS]-only calls have one row. Dimensions that are variables in the
generated model (n, the tokens, and the tile's rows) are variables here too;
the others are constants. Prints a table per board and writes
bench/results/kernel_loops.json.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from common import write_result
from rich.console import Console
from rich.table import Table

from embbert.convert.aot import headers
from embbert.convert.aot.artifact import AOT_SRC, kernel_dirs
from embbert.convert.aot.attention import TILE_ROWS
from embbert.convert.aot.codegen import KERNELS
from embbert.convert.aot.profile import RELEASE_DEFINES
from embbert.device.baremetal import TEST_DIR, build_program, run_program
from embbert.device.boards import load_board
from embbert.errors import UserError


@dataclass(frozen=True)
class Shape:
    name: str
    op: str  # FULLY_CONNECTED or BATCH_MATMUL
    per_channel: bool
    rows: int
    units: int
    depth: int
    where: str  # in the model
    adj_y: bool = True  # BATCH_MATMUL: w [units, depth] (BatchMatMul), else [depth, units] (BatchMatMulRhsDepthUnits)
    variables: tuple[str, ...] = ("rows",)  # of rows, units, depth: those the generated model passes as variables

    @property
    def kernel(self) -> str:
        """The kernels' function the generated model calls."""
        if self.op == "FULLY_CONNECTED":
            return "FullyConnected"
        return "BatchMatMul" if self.adj_y else "BatchMatMulRhsDepthUnits"

    @property
    def macs(self) -> int:
        return self.rows * self.units * self.depth


OPT, REF = TILE_ROWS["optimized"], TILE_ROWS["reference"]  # attention's tile of query rows per kernel set
SHAPES = [  # the model's FULLY_CONNECTED weights are quantized per channel
    Shape("fc", "FULLY_CONNECTED", True, 256, 128, 128, "q, k, v, output and feed-forward projections (9 calls)"),
    Shape("fc-per-tensor", "FULLY_CONNECTED", False, 256, 128, 128, "the same with weights quantized per tensor"),
    Shape("fc-embedding", "FULLY_CONNECTED", True, 256, 128, 32, "the embedding's projection to d_model"),
    Shape("fc-one-row", "FULLY_CONNECTED", True, 1, 128, 128, "the last layer's projections of the [CLS] row",
          variables=()),
    Shape("qk", "BATCH_MATMUL", False, OPT, 256, 128, f"scores Q K^T, a tile of {OPT} query rows (optimized model)",
          variables=("rows", "units")),
    Shape(f"qk-{REF}-rows", "BATCH_MATMUL", False, REF, 256, 128,
          f"scores Q K^T, a tile of {REF} query rows (reference model)", variables=("rows", "units")),
    Shape("qk-one-row", "BATCH_MATMUL", False, 1, 256, 128, "the last layer's [CLS] scores", variables=("units",)),
    Shape("pv", "BATCH_MATMUL", False, OPT, 128, 256, f"P V, V [depth, units] untransposed, a tile of {OPT} rows "
          "(optimized model)", adj_y=False, variables=("rows", "depth")),
    Shape("pv-adj-y", "BATCH_MATMUL", False, REF, 128, 256, f"P V, V transposed (adj_y), a tile of {REF} rows "
          "(reference model)", variables=("rows", "depth")),
    Shape("pv-one-row", "BATCH_MATMUL", False, 1, 128, 256, "the last layer's [CLS] P V, V untransposed "
          "(optimized model; the reference model's is adj_y)", adj_y=False, variables=("depth",)),
]

CALL_FIELDS = ["rows", "units", "depth", "x_offset", "w_offset", "out_offset", "multiplier", "shift", "per_channel",
               "seed"]


def calls(shapes: list[Shape], seed: int = 15) -> list[dict]:
    """Two calls per shape, at its depth D and at 2 D, with everything else the same: rows, units,
    zero points, the multiplier, the shift (outputs mostly inside int8 at D) and the tensors' seed."""
    rng = random.Random(seed)
    out = []
    for s in shapes:
        # TFLite's int8 weights are symmetric (zero point 0); BATCH_MATMUL's operands are activations
        same = dict(rows=s.rows, units=s.units, x_offset=rng.randint(-127, 128),
                    w_offset=rng.randint(-127, 128) if s.op == "BATCH_MATMUL" else 0, out_offset=rng.randint(-128, 127),
                    multiplier=rng.randint(1 << 30, (1 << 31) - 1),
                    shift=round(math.log2(96 / (5500 * math.sqrt(s.depth)))), per_channel=int(s.per_channel),
                    seed=rng.randint(1, 2**32 - 1), op=s.op, kernel=s.kernel, variables=list(s.variables))
        out += [dict(same, depth=s.depth), dict(same, depth=2 * s.depth)]
    return out


def calls_header(cs: list[dict]) -> str:
    """kernel_loops_calls.h: the calls' table, and RunCall(k, ...) making call k with the
    dimensions the generated model passes as constants as constants (its rows, units and depth
    arguments stand for the dimensions that are variables there: n, a tile's rows)."""
    decl = "struct Call {\n" + "".join(f"  {'uint32_t' if f == 'seed' else 'int32_t'} {f};\n"
                                       for f in CALL_FIELDS) + "};\n"
    table = ",\n".join("  {" + ", ".join(f"{c[f]}u" if f == "seed" else str(c[f]) for f in CALL_FIELDS) + "}"
                        for c in cs)
    cases = []
    for k, c in enumerate(cs):
        rows, units, depth = (d if d in c["variables"] else str(c[d]) for d in ("rows", "units", "depth"))
        if c["kernel"] == "FullyConnected":
            call = f"FullyConnected(p, x, {rows}, w, {units}, {depth}, bias, out, scratch)"
        else:
            call = f"{c['kernel']}(p, x, w, 1, {rows}, {units}, {depth}, out, scratch)"
        cases.append(f"    case {k}: embbert_aot::kernels::{call}; return;\n")
    depth = max(c["depth"] for c in cs)
    # the reference kernels' BatchMatMulRhsDepthUnits transposes w into scratch
    transposed = max((c["units"] * c["depth"] for c in cs if c["kernel"] == "BatchMatMulRhsDepthUnits"), default=0)
    fc, bmm = (f"embbert_aot::kernels::{f}ScratchBytes({depth})" for f in ("FullyConnected", "BatchMatMul"))
    return ("#pragma once\n#include <stdint.h>\n#include \"batch_matmul.h\"\n#include \"fully_connected.h\"\n"
            f"constexpr int kMaxX = {max(c['rows'] * c['depth'] for c in cs)}, "
            f"kMaxW = {max(c['units'] * c['depth'] for c in cs)}, kMaxOut = {max(c['rows'] * c['units'] for c in cs)}, "
            f"kMaxUnits = {max(c['units'] for c in cs)};\n"
            "constexpr int Larger(int a, int b) { return a > b ? a : b; }\n"
            f"constexpr int kScratchBytes = 8 + Larger(Larger({fc}, {bmm}), {transposed});\n"
            f"{decl}constexpr int kNumCalls = {len(cs)};\nconst Call kCalls[] = {{\n{table}}};\n"
            "inline void RunCall(int k, const embbert_aot::kernels::MatMulParams& p, const int8_t* x, int rows,\n"
            "                    int units, int depth, const int8_t* w, const int32_t* bias, int8_t* out,\n"
            "                    void* scratch) {\n"
            "  switch (k) {\n" + "".join(cases) + "    default: return;\n  }\n}\n")


def measure(board: str, kernels: str, cs: list[dict], work: Path) -> list[dict]:
    """Per call: {"instructions", "hash"} from the program built over kernels/KERNELS/ on the board."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "kernel_loops_calls.h").write_text(calls_header(cs))
    elf = build_program(board, [TEST_DIR / "kernel_loops_main.cc", AOT_SRC / "aot_common.cc"],
                        work / f"kernel_loops-{kernels}.elf", include_dirs=headers.include_dirs(),
                        defines=RELEASE_DEFINES,
                        extra_flags=[f"-I{work}", f"-I{AOT_SRC}", *[f"-I{d}" for d in kernel_dirs(kernels)]])
    counter = load_board(board).counter
    empty, out = None, {}
    for line in run_program(board, elf).splitlines():
        parts = line.split()
        if parts[:1] == ["empty"]:
            empty = int(parts[1])
        elif parts[:1] == ["call"]:
            out[int(parts[1])] = (int(parts[3]), int(parts[5]))
    if empty is None or sorted(out) != list(range(len(cs))):
        raise RuntimeError(f"kernel_loops on {board} ({kernels}) printed {len(out)} of {len(cs)} calls")
    return [{"instructions": round((ticks - empty) * counter.num / counter.den), "hash": h}
            for ticks, h in (out[k] for k in range(len(cs)))]


def marginal(at_d: dict, at_2d: dict) -> float:
    """Instructions per MAC of what grows with the depth: (I(2D) - I(D)) / (M(2D) - M(D)). Everything
    paid per call, per row or per output is in both counts and cancels."""
    return (at_2d["instructions"] - at_d["instructions"]) / (at_2d["macs"] - at_d["macs"])


def mismatches(results: dict, cs: list[dict]) -> list[str]:
    """Calls whose output hash is not the same in every (board, kernels) run: one line each."""
    bad = []
    for k, c in enumerate(cs):
        hashes = {run: r[k]["hash"] for run, r in results.items()}
        if len(set(hashes.values())) > 1:
            bad.append(f"call {k} ({c['op']} {c['rows']} x {c['units']} x {c['depth']}): output hashes {hashes}")
    return bad


def rows_of(results: dict, cs: list[dict], shapes: list[Shape]) -> list[dict]:
    rows = []
    for (board, kernels), r in results.items():
        for i, s in enumerate(shapes):
            d, d2 = ({**r[k], "macs": cs[k]["rows"] * cs[k]["units"] * cs[k]["depth"]} for k in (2 * i, 2 * i + 1))
            rows.append({"board": board, "kernels": kernels, **asdict(s), "macs": d["macs"],
                         "instructions": d["instructions"],
                         "instructions_per_mac": round(d["instructions"] / d["macs"], 4),
                         "instructions_at_2d": d2["instructions"], "macs_at_2d": d2["macs"],
                         "inner_loop_per_mac": round(marginal(d, d2), 4), "bit_exact": True})
    return rows


def table(rows: list[dict], board: str) -> Table:
    t = Table(title=f"{board}: instructions per MAC of one call (QEMU -icount), reference and optimized kernels",
              caption="whole: the call at depth D; inner: (I(2D) - I(D)) / (MACs(2D) - MACs(D)); "
                      "target <= 1.25, CMSIS-NN ~1.6")
    for col in ("shape", "rows x units x depth", "MACs", "ref. whole", "ref. inner", "opt. whole", "opt. inner",
                "ratio"):
        t.add_column(col, justify="right")
    by = {(r["kernels"], r["name"]): r for r in rows if r["board"] == board}
    for name in dict.fromkeys(r["name"] for r in rows):
        ref, opt = by[("reference", name)], by[("optimized", name)]
        t.add_row(name, f"{ref['rows']}x{ref['units']}x{ref['depth']}", f"{ref['macs']:,}",
                  f"{ref['instructions_per_mac']:.3f}", f"{ref['inner_loop_per_mac']:.3f}",
                  f"{opt['instructions_per_mac']:.3f}", f"{opt['inner_loop_per_mac']:.3f}",
                  f"{ref['instructions'] / opt['instructions']:.2f}x")
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--boards", nargs="+", default=["qemu-m4", "qemu-m7"],
                        help="emulated bare-metal boards (board.toml kind = qemu)")
    args = parser.parse_args()
    for board in args.boards:
        try:
            b = load_board(board)
        except UserError as e:
            parser.error(str(e))
        if b.kind != "qemu" or not b.build.linker_script:
            parser.error(f"board {board} is not an emulated bare-metal board; use qemu-*")

    cs = calls(SHAPES)
    work = Path(tempfile.mkdtemp(prefix="embbert-kernel-loops-"))
    results = {}
    for board in args.boards:
        for kernels in KERNELS:
            print(f"{board}, {kernels} kernels: {len(cs)} calls", file=sys.stderr, flush=True)
            results[(board, kernels)] = measure(board, kernels, cs, work / f"{board}-{kernels}")
    bad = mismatches(results, cs)
    if bad:
        raise SystemExit("outputs differ between kernel sets or boards; nothing written:\n" + "\n".join(bad))
    rows = rows_of(results, cs, SHAPES)
    console = Console(width=120)  # the table's width, on a terminal or not
    for board in args.boards:
        console.print(table(rows, board))
    path = write_result("kernel_loops", rows, counter="QEMU -icount instructions (board.toml [counter])",
                        calls=cs)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
