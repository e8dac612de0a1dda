"""The op order with the smallest planned arena.

TFLite-Micro runs the ops in file order and plans the arena from each tensor's
first and last use, and the converter's order keeps tensors alive for longer
than needed. (aot/codegen.py orders its graph with the same `best_order`, its
ops' scratch included.) Several topological orders are planned (convert/arena_plan.py,
TFLite-Micro's greedy rule) and the smallest is kept, then improved by moving
one op at a time; any topological order computes the same tensors.
"""

from __future__ import annotations

import heapq
import sys

from ..arena_plan import Graph, plan, tflite_graph
from ..tflite_model import TfliteModel


def toposort(mm: TfliteModel) -> None:
    """File order that runs every op after the producers of its inputs (stable)."""
    ops = mm.g.operators
    producer = {int(t): k for k, op in enumerate(ops) for t in op.outputs}
    deps = [{producer[int(t)] for t in op.inputs if t >= 0 and int(t) in producer} for op in ops]
    users: dict[int, list[int]] = {}
    for k, d in enumerate(deps):
        for p in d:
            users.setdefault(p, []).append(k)
    waiting = [len(d) for d in deps]
    ready = [k for k, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for u in users.get(k, []):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(ops):
        raise RuntimeError("the rewritten graph has a cycle")
    mm.g.operators = [ops[k] for k in order]


def schedule(mm: TfliteModel, rounds: int = 4) -> dict:
    """Reorder the ops for the smallest planned arena; returns the figures.
    The heuristics depend on the order they start from, so each round starts
    from the last round's best, until a round gains nothing."""
    first = None
    for _ in range(rounds):
        g = tflite_graph(mm)
        best, listed = best_order(g)
        first = listed if first is None else first
        mm.g.operators = [mm.g.operators[k] for k in best]
        if plan(g, best).total >= listed:
            break
    g = tflite_graph(mm)
    if not valid(g, list(range(len(g.kinds)))):
        raise RuntimeError("op order: an op before the producer of its input")
    return {"planned_bytes_converter_order": first, "planned_bytes": plan(g).total}


def best_order(g: Graph) -> tuple[list[int], int]:
    """(the order with the smallest plan, the plan's bytes for the ops as listed): the
    smallest of `orders(g)` (the first on a tie, so the listed order when nothing is
    smaller), then improved by moving one op at a time."""
    candidates = orders(g)
    sizes = [plan(g, o).total for o in candidates]
    return _improve(g, candidates[sizes.index(min(sizes))]), sizes[0]


def _postorder(g: Graph, producer: dict, children) -> list[int]:
    """The ops in post-order from the graph's outputs, iteratively; ``children(k)``
    lists k's producers in the order they are visited."""
    seen, out = set(), []
    stack = [(producer[t], False) for t in reversed(g.outputs)]
    while stack:
        k, expanded = stack.pop()
        if k in seen:
            continue
        if expanded:
            seen.add(k)
            out.append(k)
            continue
        stack.append((k, True))
        for p in reversed(children(k)):
            if p not in seen:
                stack.append((p, False))
    return out


def orders(g: Graph) -> list[list[int]]:
    """Candidate op orders: as listed, depth-first both ways, Sethi-Ullman, list scheduling."""
    n = len(g.kinds)
    producer = {t: k for k, o in enumerate(g.outs) for t in o}
    candidates = [list(range(n))]

    def deps(k: int) -> list[int]:
        return list(dict.fromkeys(producer[t] for t in g.ins[k] if t in producer))  # in input order

    candidates += [_postorder(g, producer, deps), _postorder(g, producer, lambda k: deps(k)[::-1])]

    # Sethi-Ullman on the DAG read as a tree: at each op, first the input whose
    # subtree needs the most memory beyond what it leaves behind.
    out_bytes = [sum(g.size[t] for t in o) for o in g.outs]
    peak: dict[int, int] = {}

    def need(k: int) -> int:
        if k not in peak:
            kids = sorted(set(producer[t] for t in g.ins[k] if t in producer),
                          key=lambda c: -(need(c) - out_bytes[c]))
            held, top = 0, 0
            for c in kids:
                top = max(top, held + need(c))
                held += out_bytes[c]
            peak[k] = max(top, held + out_bytes[k])
        return peak[k]

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * n + 1000))
    try:
        for k in range(n):
            need(k)
    finally:
        sys.setrecursionlimit(limit)
    su = _postorder(g, producer, lambda k: sorted(deps(k), key=lambda c: -(peak[c] - out_bytes[c])))
    candidates += [su, _list_schedule(g)]
    return [o for o in candidates if valid(g, o)]


def valid(g: Graph, order: list[int]) -> bool:
    """Every op after the producers of its inputs, each op once."""
    if sorted(order) != list(range(len(g.kinds))):
        return False
    done: set[int] = set()
    for k in order:
        if not g.deps[k] <= done:
            return False
        done.add(k)
    return True


def _list_schedule(g: Graph) -> list[int]:
    """Among the ready ops, the one that frees the most bytes net of what it allocates."""
    n = len(g.kinds)
    readers: dict[int, set[int]] = {}
    for k, i in enumerate(g.ins):
        for t in i:
            readers.setdefault(t, set()).add(k)
    done, order = set(), []
    while len(order) < n:
        ready = [k for k in range(n) if k not in done and g.deps[k] <= done]

        def gain(k):
            freed = sum(g.size[t] for t in set(g.ins[k]) if t not in g.outputs and readers[t] - done == {k})
            return freed - (0 if g.kinds[k] == "RESHAPE" else sum(g.size[t] for t in g.outs[k]))

        best = max(ready, key=lambda k: (gain(k), -k))
        order.append(best)
        done.add(best)
    return order


def _improve(g: Graph, order: list[int], sweeps: int = 3) -> list[int]:
    """Hill climbing: move one op to another valid position while the plan shrinks."""
    best = plan(g, order).total
    for _ in range(sweeps):
        improved = False
        for k in range(len(order)):
            pos = order.index(k)
            lo = max((order.index(p) for p in g.deps[k]), default=-1) + 1
            hi = min((order.index(u) for u in g.users[k]), default=len(order))
            for new in range(lo, hi):
                if new == pos:
                    continue
                cand = order[:pos] + order[pos + 1:]
                cand.insert(new if new < pos else new - 1, k)
                size = plan(g, cand).total
                if size < best:
                    best, order, improved = size, cand, True
                    pos = order.index(k)
        if not improved:
            break
    return order
