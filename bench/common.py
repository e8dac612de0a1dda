"""What every bench script shares: where results go and how they are stamped."""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Enough to tell whose numbers these are."""
    import torch

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def write_result(name: str, rows, **extra) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **extra, "rows": rows}, indent=2, allow_nan=False) + "\n")
    return path


def embbert(*args) -> dict:
    """Run the real command; return its --json output. Progress stays on the terminal."""
    cmd = [sys.executable, "-m", "embbert", *map(str, args), "--json"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return json.loads(proc.stdout)
