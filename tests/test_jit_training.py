"""Traced mode in training mode: dropout (random draws replayed from the same generator)
and batch norm (running statistics written back after each call) agree with eager, call
after call, seeded alike; the passes keep every draw, in order."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyfw
import tinyfw.nn.functional as F
from tinyfw import jit, nn
from tinyfw.jit import TraceError
from tests.helpers import DEVICE, npy, requires_torch, torch

F32 = dict(rtol=1e-5, atol=1e-6)
# without the fusion passes the traced graph runs eager's very kernels: bit-exact; the
# generated fused kernels' transcendental functions (tanh, exp, erf) may round differently
# from a backend's by an ulp (+ - * / round alike)
UNFUSED = ("dce", "cse", "const_fold", "simplify", "shrink_saved", "memory_plan")


def _eq(a, b) -> None:
    np.testing.assert_array_equal(_arr(a), _arr(b))


def _arr(t):
    return npy(t) if isinstance(t, tinyfw.Tensor) else np.asarray(t)


def _run_and_grads(fn, x, params=()):
    """Output and gradients (of x and params) of (out * out).sum()."""
    for t in (x, *params):
        t.grad = None
    out = fn(x)
    (out * out).sum().backward()
    return out.detach(), [None if t.grad is None else t.grad.detach() for t in (x, *params)]


def _close(a, b, tol, **kw) -> None:
    """Equal to tolerance `tol`, or bit for bit when `tol` is empty."""
    if tol:
        np.testing.assert_allclose(_arr(a), _arr(b), **tol, **kw)
    else:
        np.testing.assert_array_equal(_arr(a), _arr(b), **kw)


def _compare_calls(eager, traced, make_x, calls=3, params=(), seed=11):
    """Seed, run `calls` eager calls; seed again, run as many traced calls: outputs and
    gradients equal bit for bit, and the default generator ends in the same state."""
    xs = [make_x() for _ in range(calls)]
    results = []
    for fn in (eager, traced):
        tinyfw.manual_seed(seed)
        results.append([_run_and_grads(fn, x, params) for x in xs])
        results[-1].append(tinyfw.random.default_generator.get_state())
    (e, t) = results
    assert e[-1] == t[-1], "the default generator advanced differently"
    for (eo, eg), (to, tg) in zip(e[:-1], t[:-1]):
        _eq(to, eo)
        for a, b in zip(tg, eg):
            assert (a is None) == (b is None)
            if a is not None:
                _eq(a, b)
    return e, t


# -- dropout -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["cpu", "ref"])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_functional_dropout_matches_eager(p, backend):
    tinyfw.set_backend(backend)

    def f(x):
        return F.dropout(x * 1.5, p, training=True)

    make = lambda: tinyfw.randn(6, 7, requires_grad=True)  # noqa: E731
    traced = jit.trace(f, (make(),))
    e, t = _compare_calls(f, traced, make)
    if p == 0.3:  # fresh masks on every call, not one baked in
        assert not np.array_equal(npy(t[0][0]) != 0, npy(t[1][0]) != 0)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout_module_matches_eager(p):
    tinyfw.manual_seed(0)
    m = nn.Sequential(nn.Linear(5, 8), nn.Dropout(p), nn.Linear(8, 3))
    traced = jit.trace(m, (tinyfw.randn(4, 5),))
    _compare_calls(m, traced, lambda: tinyfw.randn(4, 5, requires_grad=True),
                   params=list(m.parameters()))


def test_dropout_with_explicit_generator():
    gen_e, gen_t = tinyfw.Generator(5), tinyfw.Generator(5)

    def make_f(gen):
        return lambda x: F.dropout(x, 0.4, training=True, generator=gen).exp()

    f_e, f_t = make_f(gen_e), make_f(gen_t)
    traced = jit.trace(f_t, (tinyfw.ones(3, 9),))
    assert gen_t.get_state() == tinyfw.Generator(5).get_state()  # tracing drew nothing
    xs = [tinyfw.randn(3, 9, requires_grad=True) for _ in range(3)]
    default_before = tinyfw.random.default_generator.get_state()
    for x in xs:
        _eq(traced(x), f_e(x))
        assert gen_t.get_state() == gen_e.get_state()
    # the explicit generator is the one advanced, never the default one
    assert tinyfw.random.default_generator.get_state() == default_before
    gen_t.manual_seed(5)  # reseeding the captured generator is seen by the replay
    gen_e.manual_seed(5)
    x = tinyfw.randn(3, 9)
    _eq(traced(x), f_e(x))


def test_two_dropouts_are_neither_merged_nor_reordered():
    # same input, same p: CSE must not merge the draws, and the order of the two draws
    # from one generator decides which mask goes where
    def f(x):
        a = F.dropout(x, 0.5, training=True)
        b = F.dropout(x, 0.5, training=True)
        return a * 2.0 + b

    make = lambda: tinyfw.randn(8, 8, requires_grad=True)  # noqa: E731
    traced = jit.trace(f, (make(),))
    fwd, _ = traced.graph(make())
    assert sum(n.op == "DrawSeed" for n in fwd.nodes) == 2
    assert sum(n.op == "Dropout" for n in fwd.nodes) == 2
    _compare_calls(f, traced, make)


@pytest.mark.parametrize("dead_last", [False, True])
def test_dropout_with_unused_output_still_advances_the_generator(dead_last):
    def f(x):
        if dead_last:
            y = F.dropout(x, 0.25, training=True) + 1.0
            F.dropout(x, 0.5, training=True)  # dead value, but eager drew a seed for it
            return y
        F.dropout(x, 0.5, training=True)
        return F.dropout(x, 0.25, training=True) + 1.0

    make = lambda: tinyfw.randn(5, 6, requires_grad=True)  # noqa: E731
    traced = jit.trace(f, (make(),))
    fwd, _ = traced.graph(make())
    assert sum(n.op == "DrawSeed" for n in fwd.nodes) == 2
    _compare_calls(f, traced, make)


def test_each_pass_leaves_the_draws_alone():
    # a graph built for the passes: two draws from one generator feeding identical
    # dropouts of a constant (CSE and constant folding would fire on pure ops), the
    # second dropout dead (DCE would fire)
    c = tinyfw.ones(4, 4)

    def f(x):
        a = F.dropout(c, 0.5, training=True)
        F.dropout(c, 0.5, training=True)
        return x + a

    from tinyfw.jit.compiler import trace_graph
    from tinyfw.jit.passes import const_fold, cse, dce

    tr = trace_graph(f, (tinyfw.ones(4, 4),), {})
    g = tr.graph
    g.outputs = g.outputs[:tr.n_out + len(tr.state)]
    draws = [n for n in g.nodes if n.op == "DrawSeed"]
    assert len(draws) == 2 and draws[1].inputs == draws[0].outputs  # chained in order
    for run in (cse.run, dce.run, lambda gr: const_fold.run(gr, tinyfw.dispatch.get_backend())):
        run(g)
        assert [n for n in g.nodes if n.op == "DrawSeed"] == draws
    assert sum(n.op == "Dropout" for n in g.nodes) == 1  # the dead dropout itself went


def test_compile_first_call_draws_once():
    @jit.compile
    def f(x):
        return F.dropout(x, 0.5, training=True)

    x = tinyfw.ones(32)
    tinyfw.manual_seed(3)
    eager = [F.dropout(x, 0.5, training=True) for _ in range(2)]
    tinyfw.manual_seed(3)
    for e in eager:  # the trace on the first call must not consume a draw of its own
        _eq(f(x), e)


@settings(max_examples=15, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       p=st.sampled_from([0.1, 0.5, 0.9]), seed=st.integers(0, 2**31))
def test_dropout_property(shape, p, seed):
    def f(x):
        return F.dropout(x, p, training=True).tanh()

    make = lambda: tinyfw.randn(*shape, requires_grad=True)  # noqa: E731
    # unfused: tanh's backward as a generated kernel may differ from the backend's by an
    # ulp, and this compares bit for bit
    traced = jit.trace(f, (make(),), passes=UNFUSED)
    _compare_calls(f, traced, make, calls=2, seed=seed)


def test_untracked_draw_restores_state_and_raises():
    before = tinyfw.random.default_generator.get_state()

    def f(x):
        return F.dropout(x, 0.5, training=True) + tinyfw.rand(4)

    with pytest.raises(TraceError, match="random numbers were drawn"):
        jit.trace(f, (tinyfw.ones(4),))
    assert tinyfw.random.default_generator.get_state() == before


def test_submodule_eval_retraces():
    tinyfw.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    traced = jit.trace(m, (tinyfw.randn(3, 4),))
    m[1].eval()  # only the dropout: the top module still says training
    x = tinyfw.randn(3, 4)
    _eq(traced(x), m[0](x))
    assert len(traced.cache) == 2


def test_compiled_bound_method_retraces_on_eval():
    tinyfw.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    step = jit.compile(m.forward)
    x = tinyfw.randn(6, 4)
    ref = copy.deepcopy(m)
    tinyfw.manual_seed(1)
    e = ref(x)
    tinyfw.manual_seed(1)
    _eq(step(x), e)
    for a, b in zip(_buffers(m), _buffers(ref)):
        _eq(a, b)
    m.eval()
    ref.eval()
    _eq(step(x), ref(x))
    assert len(step.cache) == 2


# -- batch norm ----------------------------------------------------------------------------
def _buffers(m):
    return [npy(b).copy() for b in m.buffers()]


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm1d_running_stats_match_eager(momentum):
    tinyfw.manual_seed(1)
    m = nn.BatchNorm1d(4, momentum=momentum)
    ref = copy.deepcopy(m)
    v0 = [b._version[0] for b in m.buffers()], [b._version[0] for b in ref.buffers()]
    traced = jit.trace(m, (tinyfw.randn(6, 4).requires_grad_(True),))
    assert int(m.num_batches_tracked.item()) == 0  # tracing updated nothing
    for i in range(4):
        x = (tinyfw.randn(6, 4) * (i + 1)).requires_grad_(True)
        eo, eg = _run_and_grads(ref, x, list(ref.parameters()))
        to, tg = _run_and_grads(traced, x, list(m.parameters()))
        np.testing.assert_allclose(npy(to), npy(eo), **F32)
        for a, b in zip(tg[1:], eg[1:]):
            np.testing.assert_allclose(npy(a), npy(b), **F32)
        for a, b in zip(_buffers(m), _buffers(ref)):
            np.testing.assert_allclose(a, b, **F32)
        # each replay bumps the buffers' versions as one eager call does
        assert [b._version[0] - v for b, v in zip(m.buffers(), v0[0])] == \
            [b._version[0] - v for b, v in zip(ref.buffers(), v0[1])] == [i + 1] * 3
    assert int(m.num_batches_tracked.item()) == 4
    assert len(traced.cache) == 1  # momentum=None: 1/n is a live value, no retrace


@requires_torch
def test_batchnorm1d_cumulative_average_matches_torch():
    m = nn.BatchNorm1d(3, momentum=None)
    tm = torch.nn.BatchNorm1d(3, momentum=None)
    traced = jit.trace(m, (tinyfw.randn(5, 3),))
    for i in range(3):
        x = tinyfw.randn(5, 3) * (i + 2) + i
        traced(x)
        tm(torch.from_numpy(npy(x).copy()))
    np.testing.assert_allclose(npy(m.running_mean), tm.running_mean.numpy(), **F32)
    np.testing.assert_allclose(npy(m.running_var), tm.running_var.numpy(), **F32)
    assert int(m.num_batches_tracked.item()) == int(tm.num_batches_tracked)


def test_eval_after_training_retraces_with_updated_stats():
    tinyfw.manual_seed(2)
    m = nn.BatchNorm1d(4)
    traced = jit.trace(m, (tinyfw.randn(8, 4),))
    for _ in range(3):
        traced(tinyfw.randn(8, 4) * 3 + 1)
    m.eval()
    x = tinyfw.randn(8, 4)
    out = traced(x)
    assert len(traced.cache) == 2  # training flag is part of the signature
    expect = (npy(x) - npy(m.running_mean)) / np.sqrt(npy(m.running_var) + m.eps)
    np.testing.assert_allclose(npy(out), expect, **F32)
    nbt = int(m.num_batches_tracked.item())
    traced(x)
    assert int(m.num_batches_tracked.item()) == nbt  # eval mode writes nothing back
    # running stats are live in eval too: a later update is seen without retracing
    with tinyfw.no_grad():
        m.running_mean.add_(1.0)
    np.testing.assert_allclose(npy(traced(x)), npy(m(x)), **F32)
    assert len(traced.cache) == 2


# -- what still cannot be traced -----------------------------------------------------------
class _ViewWrite(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("count", tinyfw.zeros(3))

    def forward(self, x):
        with tinyfw.no_grad():
            self.count[0:1].add_(1.0)  # a write through a view of a buffer
        return x * 2


def test_buffer_write_through_a_view_raises_before_writing():
    m = _ViewWrite()
    with pytest.raises(TraceError, match="view of a parameter or buffer"):
        jit.trace(m, (tinyfw.ones(2),))
    _eq(m.count, np.zeros(3, np.float32))


class _ParamUpdate(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        with tinyfw.no_grad():
            self.lin.weight.mul_(0.5)
        return self.lin(x)


def test_inplace_update_of_parameter_requiring_grad_raises():
    m = _ParamUpdate()
    w = npy(m.lin.weight).copy()
    with pytest.raises(TraceError, match="requires grad"):
        jit.trace(m, (tinyfw.ones(2, 3),))
    _eq(m.lin.weight, w)  # nothing was written


def test_inplace_on_traced_activation_still_raises():
    def f(x):
        y = F.dropout(x, 0.5, training=True)
        y.mul_(2.0)
        return y + 1

    with pytest.raises(TraceError, match="in-place"):
        jit.trace(f, (tinyfw.ones(4),))


class _BranchOnStats(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(2)

    def forward(self, x):
        y = self.bn(x)
        return y * 2 if float(self.bn.running_mean.sum().item()) > 0 else y


def test_value_dependent_control_flow_still_raises():
    m = _BranchOnStats()
    with pytest.raises(TraceError, match="item"):
        jit.trace(m, (tinyfw.randn(4, 2),))
    assert int(m.bn.num_batches_tracked.item()) == 0  # the failed trace was undone


def test_compiled_function_closing_over_a_training_module():
    # the module is not an argument: its buffers are found when they are written
    tinyfw.manual_seed(3)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    ref = copy.deepcopy(m)

    @jit.compile
    def step(x):
        return m(x).sum(1)

    xs = [tinyfw.randn(5, 3) for _ in range(3)]
    for model, fn in ((ref, lambda x: ref(x).sum(1)), (m, step)):
        tinyfw.manual_seed(8)
        model.outs = [npy(fn(x).detach()) for x in xs]
    for a, b in zip(m.outs, ref.outs):
        np.testing.assert_allclose(a, b, **F32)
    for a, b in zip(_buffers(m), _buffers(ref)):
        np.testing.assert_allclose(a, b, **F32)
