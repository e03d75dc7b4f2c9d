"""Lab 7's grader: the student's passes on graphs traced from random programs (seeded by
the student id): the graph must still compute what eager tinyfw computes, and each pass
must do its job — every dead node gone, every duplicate merged, valid and sufficiently
large fusion groups, one node per fused group."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import tinyfw
from tinyfw.jit.kernels import fusable
from tinyfw.labs.student import expect_array, expect_equal, load, seed

SKELETON = pathlib.Path(__file__).resolve().parent.parent / "skeleton"
CASES = 12


@pytest.fixture
def J():
    return load("passes", SKELETON)


def _program(rng):
    """A random function of two (4, 3) float64 inputs: elementwise ops, repeated
    subexpressions, a row broadcast, a reduction feeding back into elementwise ops."""
    ops = [int(v) for v in rng.integers(0, 8, int(rng.integers(4, 10)))]
    consts = [float(v) for v in rng.uniform(0.5, 2.0, len(ops))]

    def f(x, y):
        vals = [x, y]
        for k, (op, c) in enumerate(zip(ops, consts)):
            a, b = vals[-1], vals[-2]
            if op == 0:
                v = (a * c).tanh()
            elif op == 1:
                v = (a * c).tanh() + (a * c).tanh()  # a repeated subexpression
            elif op == 2:
                v = a * b + c
            elif op == 3:
                v = a.sigmoid() * a.sum(1, keepdim=True)  # through a reduction
            elif op == 4:
                v = (a - b).exp() * 0.5
            elif op == 5:
                v = a + vals[0][0]  # a row broadcast
            elif op == 6:
                v = a.sum(1, keepdim=True) * a.sum(0, keepdim=True)  # same op, other attrs
            else:
                v = (b * c).tanh() - a
            vals.append(v)
        return vals[-1] * 1.0, vals[-2]

    return f


def _traced(rng):
    f = _program(rng)
    x = tinyfw.tensor(rng.standard_normal((4, 3)), dtype=tinyfw.float64)
    y = tinyfw.tensor(rng.standard_normal((4, 3)), dtype=tinyfw.float64)
    graph = tinyfw.jit.trace(f, (x, y), passes=()).graph(x, y)[0]
    want = [o.numpy() for o in f(x, y)]
    return graph, [x.numpy(), y.numpy()], want


def _same_results(J, graph, inputs, want, what: str) -> None:
    try:
        got = J.run_graph(graph, inputs)
    except KeyError as e:
        raise AssertionError(f"{what}: value %{e.args[0]} is read but no node produces it "
                             "any more (a pass removed or hid a value still in use)") from None
    for k, (g, w) in enumerate(zip(got, want)):
        expect_array(np.asarray(g), w, f"{what}: output {k}", rtol=1e-12, atol=1e-12)


def _add_dead_nodes(graph, rng) -> int:
    """Append copies of random nodes (and chains on them) whose outputs nobody uses."""
    added = 0
    for n in [graph.nodes[int(i)] for i in rng.integers(0, len(graph.nodes), 3)]:
        copy = graph.add_node(n.op, n.fn, n.inputs, n.attrs,
                              [(v.shape, v.dtype) for v in n.outputs])
        added += 1
        if fusable(copy) and copy.outputs[0].dtype == np.float64:
            tanh = next((m for m in graph.nodes if m.op == "Tanh"), None)
            if tanh is not None:
                graph.add_node("Tanh", tanh.fn, [copy.outputs[0]], {},
                               [(copy.outputs[0].shape, copy.outputs[0].dtype)])
                added += 1
    return added


# -- 7.1 ---------------------------------------------------------------------------------
@pytest.mark.task("7.1")
def test_dce_removes_every_dead_node(J):
    rng = np.random.default_rng(seed("7.1"))
    for case in range(CASES):
        graph, inputs, want = _traced(rng)
        live = len(graph.nodes)
        added = _add_dead_nodes(graph, rng)
        removed = J.dce(graph)
        expect_equal(int(removed), added, f"program {case}: nodes dce removed")
        expect_equal(len(graph.nodes), live, f"program {case}: nodes left")
        _same_results(J, graph, inputs, want, f"program {case} after dce")


# -- 7.2 ---------------------------------------------------------------------------------
def _duplicates(graph) -> int:
    from tinyfw.jit.passes import cse as ref_cse

    return ref_cse.run(graph)["removed"]


@pytest.mark.task("7.2")
def test_cse_merges_every_duplicate(J):
    rng = np.random.default_rng(seed("7.2"))
    for case in range(CASES):
        s = int(rng.integers(1 << 30))
        graph, inputs, want = _traced(np.random.default_rng(s))
        ref, _, _ = _traced(np.random.default_rng(s))
        expected = _duplicates(ref)
        removed = J.cse(graph)
        expect_equal(int(removed), expected, f"program {case}: nodes cse merged (tinyfw's "
                                             "own cse as the reference)")
        _same_results(J, graph, inputs, want, f"program {case} after cse")


# -- 7.3 ---------------------------------------------------------------------------------
def _check_groups(graph, groups, what: str) -> None:
    where = {}
    for gi, members in enumerate(groups):
        if not members:
            raise AssertionError(f"{what}: group {gi} is empty")
        for n in members:
            if id(n) in where:
                raise AssertionError(f"{what}: {n.op} is in two groups")
            where[id(n)] = gi
            if not fusable(n):
                raise AssertionError(f"{what}: {n.op} in group {gi} is not fusable")
            if n.outputs[0].shape != members[0].outputs[0].shape:
                raise AssertionError(f"{what}: group {gi} mixes shapes "
                                     f"{members[0].outputs[0].shape} and {n.outputs[0].shape}")
    for n in graph.nodes:
        if fusable(n) and id(n) not in where:
            raise AssertionError(f"{what}: fusable {n.op} is in no group (groups of one count)")
    # contracting every group must leave the graph acyclic: a value path leaving a group
    # may not come back into it
    prod = {v.id: n for n in graph.nodes for v in n.outputs}

    def unit(n):
        return ("g", where[id(n)]) if id(n) in where else ("n", id(n))

    succ: dict = {}
    for n in graph.nodes:
        for v in n.inputs:
            p = prod.get(v.id)
            if p is not None and unit(p) != unit(n):
                succ.setdefault(unit(p), set()).add(unit(n))
    state: dict = {}

    def visit(u):
        state[u] = 1
        for w in succ.get(u, ()):
            if state.get(w) == 1:
                raise AssertionError(f"{what}: fusing the groups creates a cycle")
            if w not in state:
                visit(w)
        state[u] = 2
    for u in list(succ):
        if u not in state:
            visit(u)


@pytest.mark.task("7.3")
def test_fusion_groups_are_valid_and_fuse_chains(J):
    rng = np.random.default_rng(seed("7.3"))
    for case in range(CASES):
        graph, _, _ = _traced(rng)
        groups = [list(g) for g in J.fusion_groups(graph)]
        _check_groups(graph, groups, f"program {case}")
    x = tinyfw.tensor(np.ones((4, 3)), dtype=tinyfw.float64)
    chain = tinyfw.jit.trace(lambda t: ((t * 2.0).tanh() + 1.0).exp().sigmoid(), (x,),
                             passes=()).graph(x)[0]
    groups = [g for g in J.fusion_groups(chain) if g]
    expect_equal(len(groups), 1, "groups for a chain of 5 elementwise ops")


# -- 7.4 ---------------------------------------------------------------------------------
@pytest.mark.task("7.4")
def test_fuse_replaces_each_group_by_one_node(J):
    rng = np.random.default_rng(seed("7.4"))
    from tinyfw.jit.passes import fuse_elementwise  # noqa: F401  (the real pass, for reading)

    for case in range(CASES):
        graph, inputs, want = _traced(rng)
        groups = [list(g) for g in J.fusion_groups(graph)]
        before = len(graph.nodes)
        lost = J.fuse(graph, groups)
        expected = sum(len(g) - 1 for g in groups if len(g) > 1)
        expect_equal(int(lost), expected, f"program {case}: nodes removed by fuse")
        expect_equal(len(graph.nodes), before - expected, f"program {case}: nodes left")
        fused = [n for n in graph.nodes if n.kernel is not None]
        expect_equal(len(fused), sum(1 for g in groups if len(g) > 1),
                     f"program {case}: fused nodes")
        _same_results(J, graph, inputs, want, f"program {case} after fuse")
