"""Lab 2's grader: the student's engine.py on random tinyfw graphs (reused tensors,
diamonds, broadcasting, matmul, non-linearities), against tinyfw's own engine and, where
installed, PyTorch.  Cases are seeded by the student id."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import tinyfw
from tinyfw.autograd.function import Function
from tinyfw.labs.student import expect_array, expect_equal, load, seed

SKELETON = pathlib.Path(__file__).resolve().parent.parent / "skeleton"
CASES = 25


@pytest.fixture
def E():
    mod = load("engine", SKELETON)
    yield mod
    if hasattr(mod, "clear_hooks"):
        try:
            mod.clear_hooks()
        except NotImplementedError:
            pass


def _graph(rng):
    """(leaves, output, intermediates): a random float64 graph over 2-4 leaves where
    tensors are reused (so nodes have several consumers)."""
    n = int(rng.integers(2, 5))
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    leaves = [tinyfw.tensor(rng.standard_normal(shape), dtype=tinyfw.float64,
                            requires_grad=True) for _ in range(n)]
    pool = list(leaves)
    mids = []
    for _ in range(int(rng.integers(3, 9))):
        a, b = (pool[int(i)] for i in rng.integers(0, len(pool), 2))
        op = int(rng.integers(0, 6))
        if op == 0:
            t = a + b
        elif op == 1:
            t = a * b
        elif op == 2:
            t = a.tanh() - b
        elif op == 3:
            t = (a @ b.T) @ b if a.shape[1] == b.shape[1] else a * 2.0
        elif op == 4:
            t = a.sum(0, keepdim=True) * b  # broadcasting
        else:
            t = (a * a + 1.0).log() + b.sigmoid()
        pool.append(t)
        mids.append(t)
    out = sum((t * float(rng.standard_normal())).sum() for t in pool[n:])
    return leaves, out, mids


def _nodes_reachable(root) -> set:
    seen, stack = set(), [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(x for x in node.next if isinstance(x, Function))
    return seen


# -- 2.1 ---------------------------------------------------------------------------------
@pytest.mark.task("2.1")
def test_topological_order_holds_each_node_once_before_its_inputs(E):
    rng = np.random.default_rng(seed("2.1"))
    for case in range(CASES):
        _, out, _ = _graph(rng)
        order = E.topological_order(out.grad_fn)
        ids = [id(n) for n in order]
        expect_equal(len(ids), len(set(ids)), f"graph {case}: nodes listed more than once")
        expect_equal(set(ids), _nodes_reachable(out.grad_fn),
                     f"graph {case}: the set of nodes (reachable through .next)")
        pos = {i: k for k, i in enumerate(ids)}
        for node in order:
            for nxt in node.next:
                if isinstance(nxt, Function) and pos[id(nxt)] < pos[id(node)]:
                    raise AssertionError(f"graph {case}: {type(nxt).__name__} comes before "
                                         f"{type(node).__name__}, which uses its output")


# -- 2.2 ---------------------------------------------------------------------------------
def _reference_grads(rng_state, make):
    """tinyfw's own engine on an identical graph."""
    leaves, out, _ = make(np.random.default_rng(rng_state))
    out.backward()
    return [lf.grad for lf in leaves]


@pytest.mark.task("2.2")
def test_backward_matches_tinyfws_engine(E):
    for case in range(CASES):
        s = seed(f"2.2/{case}")
        leaves, out, _ = _graph(np.random.default_rng(s))
        E.backward(out)
        for k, (lf, want) in enumerate(zip(leaves, _reference_grads(s, _graph))):
            if want is None:
                expect_equal(lf.grad, None, f"graph {case}: leaf {k} is unused, its grad")
                continue
            if lf.grad is None:
                raise AssertionError(f"graph {case}: leaf {k} got no gradient")
            expect_array(lf.grad.numpy(), want.numpy(), f"graph {case}: grad of leaf {k}",
                         rtol=1e-12, atol=1e-12)


@pytest.mark.task("2.2")
def test_backward_accumulates_and_checks_the_seed(E):
    x = tinyfw.tensor([1.0, 2.0, 3.0], dtype=tinyfw.float64, requires_grad=True)
    E.backward((x * x).sum())
    E.backward((x * 3.0).sum())
    expect_array(x.grad.numpy(), [5.0, 7.0, 9.0], "grad after two backward passes (2x + 3)")
    y = x * 2.0
    E.backward(y, tinyfw.tensor([1.0, 0.0, -1.0], dtype=tinyfw.float64))
    expect_array(x.grad.numpy(), [7.0, 7.0, 7.0], "grad with an explicit output gradient")
    with pytest.raises(RuntimeError):
        E.backward(x * 2.0)
        raise AssertionError("backward of a non-scalar output without grad should raise")


@pytest.mark.task("2.2")
def test_each_node_runs_once(E):
    # a node whose output feeds 3 ops: its backward must run once, with the summed gradient
    x = tinyfw.tensor([0.5, -1.0], dtype=tinyfw.float64, requires_grad=True)
    h = x.tanh()
    calls = []
    node = h.grad_fn
    original = node.backward
    node.backward = lambda g: (calls.append(1), original(g))[1]
    E.backward((h * 2.0 + h * h + h.exp()).sum())
    expect_equal(len(calls), 1, "calls of the shared node's backward")


# -- 2.3 ---------------------------------------------------------------------------------
@pytest.mark.task("2.3")
def test_leaf_hooks_see_the_total_and_may_replace_it(E):
    rng = np.random.default_rng(seed("2.3"))
    for case in range(CASES // 5):
        s = int(rng.integers(1 << 30))
        leaves, out, _ = _graph(np.random.default_rng(s))
        want = _reference_grads(s, _graph)
        seen = []
        target = leaves[0]
        E.register_leaf_hook(target, lambda g: seen.append(g.numpy().copy()))
        E.register_leaf_hook(leaves[1], lambda g: g * 0.0 + 7.0)
        E.backward(out)
        if want[0] is not None:
            expect_equal(len(seen), 1, f"graph {case}: hook calls in one backward")
            expect_array(seen[0], want[0].numpy(), f"graph {case}: gradient the hook saw",
                         rtol=1e-12, atol=1e-12)
        if want[1] is not None:
            expect_array(leaves[1].grad.numpy(), np.full(want[1].shape, 7.0),
                         f"graph {case}: grad replaced by the hook")
        E.clear_hooks()


# -- 2.4 ---------------------------------------------------------------------------------
@pytest.mark.task("2.4")
def test_grad_of_leaves_and_intermediates(E):
    for case in range(CASES):
        s = seed(f"2.4/{case}")
        leaves, out, mids = _graph(np.random.default_rng(s))
        wanted = leaves + mids[:2]
        got = E.grad(out, wanted)
        for lf in leaves:
            expect_equal(lf.grad, None, f"graph {case}: grad() must not touch .grad")
        ref_leaves, ref_out, ref_mids = _graph(np.random.default_rng(s))
        want = tinyfw.autograd.grad(ref_out, ref_leaves + ref_mids[:2], allow_unused=True)
        for k, (g, w) in enumerate(zip(got, want)):
            what = f"graph {case}: d out / d input {k}"
            if w is None:
                if g is not None and np.any(g.numpy()):
                    raise AssertionError(f"{what}: expected None (unused), got a gradient")
                continue
            if g is None:
                raise AssertionError(f"{what}: got None, the output depends on it")
            expect_array(g.numpy(), w.numpy(), what, rtol=1e-12, atol=1e-12)
