"""convert/arena_plan.py, the one arena planner (TFLite-Micro's offline plan and
the aot backend's arena), on small graphs whose best plan is known."""

from embbert.convert.arena_plan import Graph, plan


def _graph(ops, size, inputs=(0,), outputs=None, scratch=()):
    """ops: (kind, [inputs], [outputs]); every tensor int8 of shape (size[t],)."""
    outputs = list(outputs) if outputs is not None else list(ops[-1][2])
    return Graph([k for k, _, _ in ops], [list(i) for _, i, _ in ops], [list(o) for _, _, o in ops], dict(size),
                 {t: (n,) for t, n in size.items()}, {t: "INT8" for t in size}, list(inputs), outputs, list(scratch))


def _no_overlap(p):
    pieces = {id(b): b for b in [*p.buffers.values(), *p.scratch.values()]}.values()
    for a in pieces:
        assert a.offset % 16 == 0 and a.offset + a.size <= p.total
        for b in pieces:
            if a is not b and a.first <= b.last and b.first <= a.last:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset


def test_dead_tensors_give_their_bytes_to_later_ones():
    # 0 -> FC -> 1 -> FC -> 2 -> FC -> 3: 1 and 3 never live together
    g = _graph([("FULLY_CONNECTED", [0], [1]), ("FULLY_CONNECTED", [1], [2]), ("FULLY_CONNECTED", [2], [3])],
               {0: 16, 1: 100, 2: 50, 3: 100})
    p = plan(g)
    _no_overlap(p)
    assert p.buffers[1].offset == p.buffers[3].offset
    assert p.total == 112 + 64  # 1 (or 3) beside 2, aligned; 2 also takes the input's bytes


def test_reshape_and_in_place_ops_share_their_input_bytes():
    g = _graph([("FULLY_CONNECTED", [0], [1]), ("RESHAPE", [1], [2]), ("LOGISTIC", [2], [3]),
                ("ADD", [3, 1], [4]), ("FULLY_CONNECTED", [4], [5])], {0: 16, 1: 64, 2: 64, 3: 64, 4: 64, 5: 16})
    p = plan(g)
    _no_overlap(p)
    assert p.buffers[2] is p.buffers[1]  # RESHAPE
    assert p.buffers[4] is p.buffers[3]  # ADD over its first input that dies there
    assert p.buffers[3] is not p.buffers[1]  # LOGISTIC's input (2 = 1) is read again by the ADD
    unshared = plan(g, inplace=False)
    assert unshared.buffers[4] is not unshared.buffers[3] and unshared.total > p.total


def test_in_place_needs_the_same_shape_and_dtype():
    g = _graph([("FULLY_CONNECTED", [0], [1]), ("MUL", [1], [2]), ("FULLY_CONNECTED", [2], [3])],
               {0: 16, 1: 64, 2: 32, 3: 16})
    assert plan(g).buffers[2] is not plan(g).buffers[1]
    g.dtype[1] = "INT32"
    g.size[2] = 64
    g.shape[2] = g.shape[1]
    assert plan(g).buffers[2] is not plan(g).buffers[1]


def test_scratch_lives_only_while_its_op_runs():
    g = _graph([("FULLY_CONNECTED", [0], [1]), ("BATCH_MATMUL", [1], [2]), ("FULLY_CONNECTED", [2], [3])],
               {0: 16, 1: 64, 2: 64, 3: 64}, scratch=[0, 200, 0])
    p = plan(g)
    _no_overlap(p)
    assert list(p.scratch) == [1] and p.scratch[1].first == p.scratch[1].last == 1
    assert p.total == 208 + 64 + 64  # the scratch beside the matmul's input and output


def test_op_order_decides_the_lifetimes():
    # two independent branches off the input, joined by an ADD
    ops = [("FULLY_CONNECTED", [0], [1]), ("FULLY_CONNECTED", [1], [2]), ("FULLY_CONNECTED", [0], [3]),
           ("FULLY_CONNECTED", [3], [4]), ("ADD", [2, 4], [5])]
    g = _graph(ops, {0: 16, 1: 400, 2: 16, 3: 400, 4: 16, 5: 16})
    branch_by_branch = plan(g, [0, 1, 2, 3, 4]).total
    interleaved = plan(g, [0, 2, 1, 3, 4]).total
    assert branch_by_branch < interleaved
