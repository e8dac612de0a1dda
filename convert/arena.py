"""Arena size, measured on the real TFLite-Micro interpreter (host build).

TFLite-Micro users usually guess the tensor arena. We measure two numbers:
- used: what the recording allocator reports after AllocateTensors (head:
  the planned activations; tail: persistent buffers, per-op data);
- minimal: the smallest arena_size for which AllocateTensors still succeeds,
  found by binary search. A too-small arena raises RuntimeError (checked: it
  does not abort the process), so the search runs in-process.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile

# Generous upper bound for the search: the planner never needs more than the
# sum of all tensors, and no model here comes near 64 MiB.
MAX_ARENA = 64 << 20


def _interpreter(model: bytes, arena_size: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model, arena_size=arena_size)


@contextlib.contextmanager
def _capture_fd(fd: int):
    """Capture what C++ writes to `fd` (print_allocations uses stderr directly)."""
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(fd)
        os.dup2(tmp.fileno(), fd)
        box = {}
        try:
            yield box
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            box["text"] = tmp.read().decode(errors="replace")


def fits(model: bytes, arena_size: int) -> bool:
    with _capture_fd(2):  # TFLite-Micro prints "Failed to resize buffer" on failure
        try:
            _interpreter(model, arena_size)
            return True
        except RuntimeError:
            return False


def allocations(model: bytes, arena_size: int) -> dict:
    """The recording allocator's report: total, head, tail and per-kind bytes."""
    interp = _interpreter(model, arena_size)
    with _capture_fd(2) as box:
        interp.print_allocations()
    text = box["text"]
    report = {}
    for part in ("total", "head", "tail"):
        m = re.search(rf"Arena allocation {part} (\d+) bytes", text)
        if not m:
            raise RuntimeError(f"could not read the arena {part} from print_allocations:\n{text}")
        report[part] = int(m.group(1))
    report["kinds"] = {name: int(n) for name, n in re.findall(r"'([^']+)' used (\d+) bytes", text)}
    return report


def minimal_arena(model: bytes, start: int) -> int:
    """Smallest arena_size (bytes) for which AllocateTensors succeeds."""
    hi = start
    while not fits(model, hi):
        if hi >= MAX_ARENA:
            raise RuntimeError(f"TFLite-Micro cannot allocate the model even with {MAX_ARENA} bytes")
        hi *= 2
    lo = 0  # invariant: lo does not fit (0 never does), hi fits
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(model, mid):
            hi = mid
        else:
            lo = mid
    return hi


def measure(model: bytes) -> dict:
    """{'used': ..., 'minimal': ..., 'head': ..., 'tail': ..., 'kinds': {...}}."""
    minimal = minimal_arena(model, 256 << 10)
    report = allocations(model, minimal)
    return {"used": report["total"], "minimal": minimal, "head": report["head"], "tail": report["tail"],
            "kinds": report["kinds"]}
