"""Training cost of mamba-2mb's selective scan: the reference loop against the fast scan.

    OMP_NUM_THREADS=1 nice -n 5 python bench/mamba_scan.py

Forward + backward of one batch at the study's shapes (batch 32; pretraining
windows of 128 tokens; fine-tuning batches padded to their longest sentence,
64 here), on one thread: the scan of one layer alone, then the whole model
(MLM on 15 % of the positions, or the classifier). CPU time of this process,
the best of a few runs, so other jobs on a shared machine weigh less.
Prints a table and writes bench/results/mamba_scan.json.
"""

import time

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

import embbert.models.mamba as mamba
from common import write_result
from embbert.models import Classifier, MaskedLM
from embbert.presets import get_preset

B = 32
SCANS = {"reference": mamba.selective_scan_reference, "fast": mamba.selective_scan}


def cpu_ms(step, runs: int) -> float:
    step()  # warm-up
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        step()
        best = min(best, time.process_time() - started)
    return best * 1e3


def scan_step(scan, T: int):
    """One layer's scan, fwd + bwd: inputs shaped and ranged as MambaBlock makes them."""
    cfg = get_preset("mamba-2mb")
    di, n = cfg.mamba_expand * cfg.d_model, cfg.state_dim
    g = torch.Generator().manual_seed(0)
    u = torch.randn(B, T, di, generator=g)
    dt = F.softplus(torch.randn(B, T, di, generator=g) - 3)
    A = -torch.arange(1, n + 1, dtype=torch.float32).repeat(di, 1)
    b, c = torch.randn(B, T, n, generator=g), torch.randn(B, T, n, generator=g)
    inputs = [x.requires_grad_() for x in (u, dt, A, b, c, torch.ones(di))]
    return lambda: scan(*inputs).sum().backward()


def model_step(kind: str, T: int):
    cfg = get_preset("mamba-2mb")
    torch.manual_seed(0)
    ids = torch.randint(5, cfg.vocab_size, (B, T))
    if kind == "pretrain":
        model, where = MaskedLM(cfg), torch.rand(B, T) < 0.15
        return lambda: F.cross_entropy(model(ids, where), ids[where]).backward()
    model, labels = Classifier(cfg, 2), torch.randint(0, 2, (B,))
    return lambda: F.cross_entropy(model(ids), labels).backward()


CASES = [  # (what, T, how many timed runs of the reference, of the fast scan)
    ("scan, 1 layer", 128, lambda scan: scan_step(scan, 128), 3, 10),
    ("pretrain step", 128, lambda scan: model_step("pretrain", 128), 2, 5),
    ("fine-tune step", 64, lambda scan: model_step("finetune", 64), 2, 5),
]


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for what, T, make, *runs in CASES:
        ms = {}
        for (name, scan), n in zip(SCANS.items(), runs):
            mamba.selective_scan = scan  # what MambaBlock calls
            ms[name] = cpu_ms(make(scan), n)
        mamba.selective_scan = SCANS["fast"]
        rows.append({"what": what, "batch": B, "seq_len": T, "reference_ms": round(ms["reference"], 1),
                     "fast_ms": round(ms["fast"], 1), "speedup": round(ms["reference"] / ms["fast"], 1),
                     "fast_tokens_per_cpu_s": None if what.startswith("scan") else round(B * T / ms["fast"] * 1e3)})
    table = Table("fwd + bwd, 1 thread", "B x T", "reference", "fast", "speedup", "tokens / CPU s (fast)",
                  title="mamba-2mb selective scan (CPU ms per batch, best of a few)")
    for r in rows:
        tps = r["fast_tokens_per_cpu_s"]
        table.add_row(r["what"], f"{r['batch']} x {r['seq_len']}", f"{r['reference_ms']:,.1f}",
                      f"{r['fast_ms']:,.1f}", f"{r['speedup']:.1f}x", "" if tps is None else f"{tps:,}")
    Console().print(table)
    print(f"wrote {write_result('mamba_scan', rows)}")


if __name__ == "__main__":
    main()
