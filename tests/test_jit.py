"""Traced mode end to end: traced and eager agree (outputs and gradients), guards, retrace,
training through a traced module, nn layers."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyfw
from tinyfw import jit, nn
from tinyfw.jit import TraceError
from tests.helpers import DEVICE, assert_close, npy

F32 = dict(rtol=1e-5, atol=1e-5)


def _grads(fn, args, params):
    for t in list(args) + list(params):
        t.grad = None
    out = fn(*args)
    loss = out if out.ndim == 0 else (out * out).sum()
    loss.backward()
    return out.detach(), [None if t.grad is None else t.grad.detach()
                          for t in list(args) + list(params)]


def check_agree(fn, args, params=(), **tol):
    """Eager vs traced: outputs and gradients of every input and parameter."""
    tol = tol or F32
    e_out, e_g = _grads(fn, args, params)
    traced = jit.trace(fn, tuple(args))
    t_out, t_g = _grads(traced, args, params)
    np.testing.assert_allclose(npy(t_out), npy(e_out), **tol)
    for a, b in zip(t_g, e_g):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(npy(a), npy(b), **tol)
    return traced


def test_mlp_function_agrees_and_fuses():
    tinyfw.manual_seed(0)
    w1 = tinyfw.randn(8, 16, requires_grad=True)
    b1 = tinyfw.zeros(16, requires_grad=True)
    w2 = tinyfw.randn(16, 4, requires_grad=True)

    def f(x):
        return (tinyfw.nn.functional.gelu(x @ w1 + b1) @ w2).tanh()

    x = tinyfw.randn(5, 8, requires_grad=True)
    traced = check_agree(f, [x], [w1, b1, w2])
    fwd, bwd = traced.graph(x)
    # fused kernels are CPU code; on another device the graph runs the ops' own forwards
    assert any(n.kernel is not None for n in fwd.nodes) == (DEVICE.type == "cpu")
    assert bwd is not None


# -- random compositions of ops (hypothesis) -------------------------------------------------
UNARY = ["exp_small", "tanh", "sigmoid", "relu", "gelu", "neg", "sin", "square", "silu",
         "abs", "log_pos", "sqrt_pos"]
BINARY = ["add", "sub", "mul", "div_safe", "maximum", "minimum"]
SHAPES = [(3, 4), (4,), (1, 4), (3, 1), ()]


def _unary(name, x):
    return {"exp_small": lambda: (x * 0.1).exp(), "tanh": x.tanh, "sigmoid": x.sigmoid,
            "relu": x.relu, "gelu": lambda: tinyfw.nn.functional.gelu(x), "neg": lambda: -x, "sin": x.sin,
            "square": lambda: x * x, "silu": lambda: tinyfw.nn.functional.silu(x),
            "abs": x.abs, "log_pos": lambda: (x * x + 1).log(),
            "sqrt_pos": lambda: (x * x + 0.5).sqrt()}[name]()


def _binary(name, a, b):
    return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
            "div_safe": lambda: a / (b * b + 1), "maximum": lambda: tinyfw.maximum(a, b),
            "minimum": lambda: tinyfw.minimum(a, b)}[name]()


@st.composite
def programs(draw):
    n_in = draw(st.integers(1, 3))
    shapes = [draw(st.sampled_from(SHAPES)) for _ in range(n_in)]
    ops = []
    n_vals = n_in
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()):
            ops.append(("u", draw(st.sampled_from(UNARY)), draw(st.integers(0, n_vals - 1))))
        else:
            ops.append(("b", draw(st.sampled_from(BINARY)), draw(st.integers(0, n_vals - 1)),
                        draw(st.integers(0, n_vals - 1))))
        n_vals += 1
    reduce = draw(st.sampled_from(["none", "sum", "mean_last"]))
    return shapes, ops, reduce


def _run_program(ops, reduce, *xs):
    vals = list(xs)
    for op in ops:
        if op[0] == "u":
            vals.append(_unary(op[1], vals[op[2]]))
        else:
            vals.append(_binary(op[1], vals[op[2]], vals[op[3]]))
    out = vals[-1]
    if reduce == "sum":
        out = out.sum()
    elif reduce == "mean_last" and out.ndim:
        out = out.mean(-1)
    return out


@settings(deadline=None, max_examples=30)
@given(programs(), st.integers(0, 2 ** 16))
def test_random_compositions_agree(prog, seed):
    shapes, ops, reduce = prog
    rng = np.random.default_rng(seed)
    xs = [tinyfw.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
          for s in shapes]

    def f(*a):
        return _run_program(ops, reduce, *a)

    check_agree(f, xs, rtol=2e-5, atol=2e-5)


CPU_ONLY = pytest.mark.skipif(DEVICE.type != "cpu", reason="fused kernels are CPU code: "
                              "graphs on other devices are not fused")


@CPU_ONLY
@pytest.mark.parametrize("cc", ["1", "0"])
def test_fused_kernel_and_fallback_agree(cc, monkeypatch):
    monkeypatch.setenv("TINYFW_JIT_CC", cc)
    x = tinyfw.randn(33, 17, requires_grad=True)
    b = tinyfw.randn(17, requires_grad=True)

    def f(x, b):
        y = tinyfw.nn.functional.gelu(x + b) * 0.5 + x
        return tinyfw.where(y > 0, y.sigmoid(), y.tanh())

    traced = check_agree(f, [x, b])
    fwd, _ = traced.graph(x, b)
    kernels = [n.kernel for n in fwd.nodes if n.kernel is not None]
    assert kernels and all(k.compiled == (cc == "1") for k in kernels
                           if hasattr(k, "compiled"))


@CPU_ONLY
@pytest.mark.parametrize("dtype", [tinyfw.float32, tinyfw.float64])
def test_fused_cast_to_bool_tests_against_zero(dtype):
    # C's float -> unsigned char conversion truncates (0.5 -> 0): the kernel must compare
    x = tinyfw.tensor([0.5, -0.25, 0.0, -0.0, 2.0, 1e-30, float("inf"), float("nan"), 300.0],
                      dtype=dtype)

    def f(t):
        return (t * 1.5).to(tinyfw.bool) & (t < 100)

    traced = jit.trace(f, (x,))
    fwd, _ = traced.graph(x)
    assert [n.kernel is not None for n in fwd.nodes] == [True]
    np.testing.assert_array_equal(traced(x).numpy(), f(x).numpy())


def test_float64_and_gradcheck_of_traced():
    x = tinyfw.randn(4, 3, dtype=tinyfw.float64, requires_grad=True)
    w = tinyfw.randn(3, 3, dtype=tinyfw.float64, requires_grad=True)

    def f(x):
        return ((x @ w).sigmoid() * x).sum(1)

    traced = jit.trace(f, (x,))
    assert tinyfw.gradcheck(traced, (x,))
    check_agree(f, [x], [w], rtol=1e-12, atol=1e-12)


# -- guards -----------------------------------------------------------------------------------
def test_data_dependent_branch_names_the_line():
    def f(x):
        if x.sum() > 0:  # the guarded line
            return x * 2
        return x

    with pytest.raises(TraceError) as e:
        jit.trace(f, (tinyfw.randn(3),))
    msg = str(e.value)
    assert os.path.basename(__file__) in msg and "if x.sum() > 0" in msg


@pytest.mark.parametrize("read", ["item", "tolist", "numpy", "float", "int_index"])
def test_value_reads_raise(read):
    def f(x):
        y = x + 1
        if read == "item":
            y.sum().item()
        elif read == "tolist":
            y.tolist()
        elif read == "numpy":
            y.numpy()
        elif read == "float":
            float(y.sum())
        else:
            [0, 1][y.sum().to(tinyfw.int64)]
        return y

    with pytest.raises(TraceError, match="traced tensor"):
        jit.trace(f, (tinyfw.ones(2),))


def test_constant_reads_are_allowed():
    c = tinyfw.tensor([2.0])

    def f(x):
        return x * float(c.item())

    traced = jit.trace(f, (tinyfw.ones(3),))
    assert_close(traced(tinyfw.ones(3)), tinyfw.full((3,), 2.0))


def test_inplace_on_traced_value_raises():
    def f(x):
        y = x * 2
        y.add_(1)
        return y * 3

    with pytest.raises(TraceError, match="in-place"):
        jit.trace(f, (tinyfw.ones(3),))


def test_dropout_in_trace_draws_afresh_each_call():
    # the draw is a node: each replay advances the default generator as eager does, so
    # seeded alike, eager and traced calls give the same masks call after call
    def f(x):
        return tinyfw.nn.functional.dropout(x, 0.5, training=True)

    x = tinyfw.ones(64)
    traced = jit.trace(f, (x,))
    tinyfw.manual_seed(7)
    eager = [f(x) for _ in range(3)]
    tinyfw.manual_seed(7)
    replayed = [traced(x) for _ in range(3)]
    for e, t in zip(eager, replayed):
        np.testing.assert_array_equal(npy(t), npy(e))
    assert not np.array_equal(npy(replayed[0]), npy(replayed[1]))


def test_untracked_random_draw_in_trace_raises():
    def f(x):
        return x + tinyfw.rand(8)  # drawn outside a dispatched op: would be baked in

    with pytest.raises(TraceError, match="random"):
        jit.trace(f, (tinyfw.ones(8),))


def test_compile_retraces_per_signature():
    calls = []

    @jit.compile
    def f(x):
        calls.append(1)
        return (x * 2).relu()

    a = f(tinyfw.randn(3, 4))
    f(tinyfw.randn(3, 4))
    assert len(calls) == 1
    f(tinyfw.randn(5, 4))                      # new shape
    f(tinyfw.randn(3, 4, dtype=tinyfw.float64))  # new dtype
    with tinyfw.no_grad():
        f(tinyfw.randn(3, 4))                  # new grad mode
    f(tinyfw.randn(4, 3).t())                  # same shape, other strides
    assert len(calls) == 5
    assert len(f.cache) == 5
    assert a.shape == (3, 4)


def test_tuple_outputs_and_multiple_gradients():
    x = tinyfw.randn(4, 3, requires_grad=True)

    def f(x):
        return x.exp(), (x * 3).sum(0)

    traced = jit.trace(f, (x,))
    a, b = traced(x)
    (a.sum() + (b * b).sum()).backward()
    g = npy(x.grad).copy()
    x.grad = None
    a, b = f(x)
    (a.sum() + (b * b).sum()).backward()
    np.testing.assert_allclose(g, npy(x.grad), **F32)


def test_second_backward_needs_retain_graph_and_double_backward_refused():
    x = tinyfw.randn(3, requires_grad=True)
    traced = jit.trace(lambda x: (x * x).sum(), (x,))
    y = traced(x)
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(npy(x.grad), 4 * npy(x), **F32)
    y = traced(x)
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    with pytest.raises(RuntimeError, match="double backward"):
        tinyfw.autograd.grad(traced(x), [x], create_graph=True)


# -- modules and training ---------------------------------------------------------------------
def test_traced_mlp_trains_like_eager():
    def make():
        tinyfw.manual_seed(1)
        return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))

    x = tinyfw.randn(10, 6)
    y = tinyfw.randint(0, 3, (10,))
    losses = {}
    for mode in ("eager", "traced"):
        model = make()
        opt = tinyfw.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        step = model if mode == "eager" else jit.trace(model, (x,))
        hist = []
        for _ in range(5):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(step(x), y)
            loss.backward()
            opt.step()
            hist.append(loss.item())
        losses[mode] = hist
    np.testing.assert_allclose(losses["traced"], losses["eager"], rtol=1e-5, atol=1e-6)
    assert losses["traced"][-1] < losses["traced"][0]


def test_traced_loss_function_with_params():
    tinyfw.manual_seed(2)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    x = tinyfw.randn(7, 5)
    t = tinyfw.randn(7, 2)

    def loss_fn(x, t):
        return ((model(x) - t) ** 2).mean()

    check_agree(loss_fn, [x, t], list(model.parameters()))


@pytest.mark.parametrize("layer", ["linear", "conv_pool", "layernorm", "batchnorm_eval",
                                   "transformer", "embedding_mlp", "softmax"])
def test_nn_layers_agree(layer):
    tinyfw.manual_seed(3)
    if layer == "linear":
        m, x = nn.Linear(7, 5), tinyfw.randn(4, 7)
    elif layer == "conv_pool":
        m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        x = tinyfw.randn(2, 3, 8, 8)
    elif layer == "layernorm":
        m, x = nn.LayerNorm(6), tinyfw.randn(3, 4, 6)
    elif layer == "batchnorm_eval":
        m = nn.BatchNorm2d(3)
        m.eval()
        x = tinyfw.randn(2, 3, 4, 4)
    elif layer == "transformer":
        m = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                       batch_first=True)
        m.eval()
        x = tinyfw.randn(2, 5, 8)
    elif layer == "embedding_mlp":
        emb, lin = nn.Embedding(10, 4), nn.Linear(4, 3)
        m = lambda i: lin(emb(i)).relu()  # noqa: E731
        m.parameters = lambda: list(emb.parameters()) + list(lin.parameters())
        x = tinyfw.tensor([[1, 2, 3], [4, 5, 9]])
    else:
        m, x = nn.Softmax(dim=-1), tinyfw.randn(3, 5)
    params = list(m.parameters()) if hasattr(m, "parameters") else []
    args = [x.requires_grad_(True) if x.dtype.is_floating_point else x]
    check_agree(m, args, params, rtol=1e-4, atol=1e-5)


def test_batchnorm_training_updates_running_stats():
    tinyfw.manual_seed(0)
    m, ref = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    traced = jit.trace(m, (tinyfw.randn(4, 3),))
    assert int(m.num_batches_tracked.item()) == 0  # tracing itself updates nothing
    for _ in range(2):
        x = tinyfw.randn(4, 3)
        np.testing.assert_array_equal(npy(traced(x)), npy(ref(x)))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_array_equal(npy(getattr(m, name)), npy(getattr(ref, name)))


def test_param_updates_are_seen_without_retrace():
    lin = nn.Linear(3, 2)
    traced = jit.trace(lin, (tinyfw.ones(1, 3),))
    with tinyfw.no_grad():
        lin.weight.mul_(2.0)
    assert_close(traced(tinyfw.ones(1, 3)), lin(tinyfw.ones(1, 3)))
    assert len(traced.cache) == 1


def test_graph_printing_text_and_dot():
    w = tinyfw.randn(3, 3, requires_grad=True)
    traced = jit.trace(lambda x: (x @ w).relu().sum(), (tinyfw.randn(2, 3),))
    fwd, bwd = traced.graph(tinyfw.randn(2, 3))
    text = str(fwd)
    assert "graph(" in text and "float32[2, 3]" in text and "return" in text
    dot = fwd.to_dot()
    assert dot.startswith("digraph") and "->" in dot and dot.rstrip().endswith("}")
    assert "Matmul" in str(bwd)


def test_explain_reports_every_pass(capsys):
    b = tinyfw.randn(16)

    def block(x):
        return tinyfw.nn.functional.gelu(x + b) + x

    text = jit.explain(block, tinyfw.randn(4, 16))
    cpu = DEVICE.type == "cpu"  # other devices run no CPU-only pass (compiler.CPU_ONLY_PASSES)
    for p in ("dce", "cse", "const_fold", "simplify", "fuse_elementwise", "memory_plan"):
        assert (p in text) == (cpu or p != "fuse_elementwise")
    assert ("fused:" in text) == cpu and "bytes_saved" in text and "peak_bytes" in text
    assert capsys.readouterr().out.strip() == text.strip()


@pytest.mark.parametrize("kind", ["layernorm", "maxpool", "cross_entropy"])
def test_forward_state_for_backward_follows_new_inputs(kind):
    """Backward state a forward keeps on its ctx (norm statistics, pooling indices, the
    log-sum-exp) must come from the current call, not be baked in at trace time."""
    tinyfw.manual_seed(4)
    if kind == "layernorm":
        m = nn.LayerNorm(6)
        fn, shape = (lambda x: (m(x) * tinyfw.arange(6.0)).sum()), (4, 6)
    elif kind == "maxpool":
        fn, shape = (lambda x: (nn.functional.max_pool2d(x, 2) ** 2).sum()), (1, 2, 4, 4)
    else:
        y = tinyfw.tensor([0, 2, 1])
        fn, shape = (lambda x: nn.functional.cross_entropy(x, y)), (3, 4)
    traced = jit.trace(fn, (tinyfw.randn(*shape, requires_grad=True),))
    x = tinyfw.randn(*shape, requires_grad=True) * 3
    x = x.detach().requires_grad_(True)
    traced(x).backward()
    g = npy(x.grad).copy()
    x.grad = None
    fn(x).backward()
    np.testing.assert_allclose(g, npy(x.grad), rtol=1e-5, atol=1e-5)


def test_a_closed_over_detached_leaf_is_its_own_parameter():
    """w = (w0 * s).detach().requires_grad_(): w shares its base's memory but is a leaf of
    its own; the trace must make w the parameter, not the base (whose history a first
    backward frees: the second call then failed with "backward through the graph a
    second time", and the gradient went to w0 instead of w)."""
    tinyfw.manual_seed(0)
    w0 = tinyfw.randn(5, 4, requires_grad=True)
    w = (w0 * 0.5).detach().requires_grad_(True)
    x = tinyfw.randn(3, 5)

    def f(x):
        return ((x @ w).tanh() * 2).sum()

    traced = jit.trace(f, (x,))
    for _ in range(2):
        traced(x).backward()
    got = npy(w.grad).copy()
    w.grad = None
    for _ in range(2):
        f(x).backward()
    np.testing.assert_allclose(got, npy(w.grad), rtol=1e-6, atol=1e-6)
    assert w0.grad is None
