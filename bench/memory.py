"""Parameters and memory of every preset, beside the paper's figures.

    python bench/memory.py

Prints a table and writes bench/results/memory.json.
"""

from rich.console import Console
from rich.table import Table

from common import write_result
from embbert.memory import memory_report
from embbert.presets import PRESETS

# The paper's fp32 totals (MB) for the models it sizes explicitly.
PAPER_TOTAL_MB = {"embbert": 1.95, "embbert-nano": 0.65, "embbert-tiny": 1.24,
                  "embbert-medium": 9.60, "embbert-big": 39.71}
PAPER_PARAMS = {"embbert": 357_248}


def main() -> None:
    rows = []
    for cfg in PRESETS.values():
        r = memory_report(cfg)
        paper = PAPER_TOTAL_MB.get(cfg.name)
        rows.append(r.model_dump() | {
            "family": cfg.family,
            "paper_total_mb_fp32": paper,
            "error_vs_paper": None if paper is None else r.total_bytes_fp32 / (paper * 1e6) - 1,
            "paper_params": PAPER_PARAMS.get(cfg.name),
        })
    table = Table("model", "params", "fp32 total", "paper", "diff", "int8 total", title="memory (paper accounting)")
    for row in rows:
        diff = row["error_vs_paper"]
        table.add_row(row["model"], f"{row['params']:,}", f"{row['total_bytes_fp32'] / 1e6:.3f} MB",
                      "" if row["paper_total_mb_fp32"] is None else f"{row['paper_total_mb_fp32']:.2f} MB",
                      "" if diff is None else f"{diff:+.2%}", f"{row['total_bytes_int8'] / 1e3:.0f} kB")
    Console().print(table)
    print(f"wrote {write_result('memory', rows)}")


if __name__ == "__main__":
    main()
