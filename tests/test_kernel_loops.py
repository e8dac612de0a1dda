"""bench/kernel_loops.py: its bare-metal program builds over both kernel sets, counts
instructions per call and hashes the outputs the same; the inner loop's marginal cost."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from kernel_loops import Shape, calls, marginal, measure, mismatches  # noqa: E402

SMALL = [Shape("fc", "FULLY_CONNECTED", True, 5, 12, 16, "a small one"),
         Shape("bmm", "BATCH_MATMUL", False, 4, 8, 24, "a small one"),
         Shape("bmm-rhs", "BATCH_MATMUL", False, 6, 8, 24, "V untransposed", adj_y=False, variables=("rows", "depth")),
         Shape("fc-one-row", "FULLY_CONNECTED", True, 1, 12, 16, "constant dimensions", variables=())]


def test_program_counts_each_call_on_both_kernel_sets(tmp_path):
    cs = calls(SMALL)
    got = {k: measure("qemu-m4", k, cs, tmp_path / k) for k in ("optimized", "reference")}
    assert not mismatches({("qemu-m4", k): r for k, r in got.items()}, cs)  # bit-exact: the same output hashes
    assert len({r["hash"] for r in got["optimized"]}) == len(cs)  # the hashes tell the calls apart
    assert [c["kernel"] for c in cs[::2]] == ["FullyConnected", "BatchMatMul", "BatchMatMulRhsDepthUnits",
                                              "FullyConnected"]
    for k, r in got.items():
        for d, d2, c in zip(r[::2], r[1::2], cs[::2]):
            macs = c["rows"] * c["units"] * c["depth"]
            assert 0 < d["instructions"] < d2["instructions"], (k, r)
            # the real count: no fewer instructions than SMLAD's 2 MACs each, nor than the reference's 1 per MAC
            assert d2["instructions"] - d["instructions"] >= macs / (2 if k == "optimized" else 1), (k, r)
    assert all(o["instructions"] < r["instructions"] for o, r in zip(got["optimized"], got["reference"]))


def test_mismatched_outputs_are_named():
    cs = calls(SMALL)
    same = [{"instructions": 1, "hash": 7}] * len(cs)
    assert not mismatches({("b", "reference"): same, ("b", "optimized"): same}, cs)
    bad = mismatches({("b", "reference"): same, ("b", "optimized"): [*same[:2], {"instructions": 1, "hash": 8},
                                                                     *same[3:]]}, cs)
    assert len(bad) == 1 and bad[0].startswith("call 2 (BATCH_MATMUL 4 x 8 x 24)")


def test_marginal_cost_cancels_what_does_not_grow_with_depth():
    """I = per call + per row + per output + per MAC * MACs + packing per row and depth element:
    the marginal cost is the per-MAC cost plus the packing shared by the units, exactly."""
    def instructions(rows, units, depth):
        return 500 + 37 * rows + 29 * rows * units + 1 * rows * units * depth + 5 * rows * depth

    rows, units, depth = 256, 128, 128
    at = [{"instructions": instructions(rows, units, d), "macs": rows * units * d} for d in (depth, 2 * depth)]
    assert marginal(*at) == 1 + 5 / units
    assert calls([SMALL[0]])[1]["depth"] == 2 * calls([SMALL[0]])[0]["depth"]  # all else the same
    assert {k: v for k, v in calls([SMALL[0]])[1].items() if k != "depth"} == \
        {k: v for k, v in calls([SMALL[0]])[0].items() if k != "depth"}


def test_a_board_that_is_not_emulated_is_one_clear_error():
    r = subprocess.run([sys.executable, str(BENCH / "kernel_loops.py"), "--boards", "nucleo-l4r5zi"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not an emulated bare-metal board" in r.stderr, r.stderr
    assert subprocess.run([sys.executable, str(BENCH / "kernel_loops.py"), "--help"], capture_output=True,
                          text=True).stdout.count("inner loop") >= 1
