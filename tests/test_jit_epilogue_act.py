"""Bias + activation epilogues: the activations' ``out=`` entry (C++ and ref), the
bias_act op (values and gradients against the composition it replaces), the built-in
rewrite (jit/rewrites_epilogue.py) and the epilogue pass running it over the product's
buffer.  The traced results are compared with eager bit for bit: both run the same add and
the same activation kernel."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyfw
import tinyfw.nn.functional as F
from tinyfw import jit, nn
from tinyfw.autograd import gradcheck
from tinyfw.backend import cpu, ref
from tinyfw.jit.compiler import DEFAULT_PASSES
from tinyfw.jit.passes import layout
from tinyfw.jit.rewrites_epilogue import make
from tests.helpers import explain_text, npy

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (activation, gelu's approximate)
ACTS = [("gelu", "none"), ("gelu", "tanh"), ("silu", "none"), ("tanh", "none"),
        ("sigmoid", "none")]
NO_REWRITE = tuple(p for p in DEFAULT_PASSES if p != "rewrite")
IDS = [f"{a}-{p}" if a == "gelu" else a for a, p in ACTS]


def _prim(B, act: str, approx: str):
    """The backend kernel as a function of (x, out=...)."""
    if act == "gelu":
        return lambda x, **kw: B.gelu(x, approx, **kw)
    return getattr(B, act)


def _eager_act(t, act: str, approx: str):
    return F.gelu(t, approximate=approx) if act == "gelu" else getattr(tinyfw, act)(t)


def _inputs(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    if x.size >= 4:
        x.flat[:4] = [0.0, -0.0, 30.0, -30.0]
    return x


# -- the out= entry -----------------------------------------------------------------------
@pytest.mark.parametrize("B", [cpu, ref], ids=["cpp", "ref"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("act,approx", ACTS, ids=IDS)
def test_out_writes_the_same_values_in_place_or_elsewhere(B, dtype, act, approx):
    f = _prim(B, act, approx)
    x = _inputs((37, 19), dtype)
    want = f(x)
    other = np.empty_like(x)
    assert f(x, out=other) is other
    np.testing.assert_array_equal(other, want)
    y = x.copy()
    assert f(y, out=y) is y  # in place
    np.testing.assert_array_equal(y, want)
    # a strided view written in place: the untouched columns stay as they were
    z = x.copy()
    v = z[:, ::2]
    f(v, out=v)
    np.testing.assert_array_equal(z[:, ::2], want[:, ::2])
    np.testing.assert_array_equal(z[:, 1::2], x[:, 1::2])


@given(shape=st.lists(st.integers(0, 9), min_size=0, max_size=4),
       dtype=st.sampled_from([np.float32, np.float64]), k=st.integers(0, len(ACTS) - 1),
       order=st.sampled_from(["C", "F"]))
@settings(max_examples=60, deadline=None)
def test_out_in_place_matches_a_fresh_result_for_any_shape_and_order(shape, dtype, k, order):
    act, approx = ACTS[k]
    x = np.asarray(_inputs(tuple(shape), dtype, seed=len(shape)), order=order)
    f = _prim(cpu, act, approx)
    want = f(x)
    f(x, out=x)
    np.testing.assert_array_equal(x, want)


@pytest.mark.parametrize("B", [cpu, ref], ids=["cpp", "ref"])
def test_bad_out_arguments_raise_naming_the_problem(B):
    x = _inputs((8, 8), np.float32)
    f = _prim(B, "gelu", "none")
    with pytest.raises(ValueError, match="shape"):
        f(x, out=np.empty((8, 7), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        f(x, out=np.empty((8, 8), np.float64))
    with pytest.raises(ValueError, match="overlaps"):
        buf = np.zeros(65, np.float32)
        a = buf[:64].reshape(8, 8)
        a[:] = x
        f(a, out=buf[1:].reshape(8, 8))
    ro = np.empty((8, 8), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        f(x, out=ro)
    with pytest.raises(ValueError, match="numpy array"):
        _prim(B, "silu", "none")(x, out=[0.0] * 64)


# -- the op -------------------------------------------------------------------------------
BIAS_CASES = [((6, 5), (5,)), ((2, 3, 4, 4), (1, 3, 1, 1)), ((3, 4), (1, 4))]


@pytest.mark.parametrize("act,approx", ACTS, ids=IDS)
@pytest.mark.parametrize("ys,bs", BIAS_CASES)
def test_bias_act_is_the_composition_bit_for_bit(act, approx, ys, bs):
    y0, b0 = _inputs(ys, np.float32, 1), _inputs(bs, np.float32, 2)
    y, b = tinyfw.tensor(y0, requires_grad=True), tinyfw.tensor(b0, requires_grad=True)
    out = tinyfw.ops.bias_act(y, b, act, approx)
    g = tinyfw.tensor(_inputs(ys, np.float32, 3))
    out.backward(g)
    y2, b2 = tinyfw.tensor(y0, requires_grad=True), tinyfw.tensor(b0, requires_grad=True)
    want = _eager_act(y2 + b2, act, approx)
    want.backward(g)
    np.testing.assert_array_equal(npy(out), npy(want))
    np.testing.assert_array_equal(npy(y.grad), npy(y2.grad))
    np.testing.assert_array_equal(npy(b.grad), npy(b2.grad))


@pytest.mark.parametrize("act,approx", ACTS, ids=IDS)
@pytest.mark.parametrize("ys,bs", BIAS_CASES)
def test_bias_act_gradcheck(act, approx, ys, bs):
    y = tinyfw.tensor(_inputs(ys, np.float64, 4) / 4, requires_grad=True)
    b = tinyfw.tensor(_inputs(bs, np.float64, 5) / 4, requires_grad=True)
    assert gradcheck(lambda y, b: tinyfw.ops.bias_act(y, b, act, approx), (y, b))


def test_bias_act_bad_arguments():
    y, b = tinyfw.randn(4, 5), tinyfw.randn(5)
    with pytest.raises(ValueError, match="act must be one of"):
        tinyfw.ops.bias_act(y, b, "relu6")
    with pytest.raises(ValueError, match="approximate"):
        tinyfw.ops.bias_act(y, b, "gelu", "erf")
    with pytest.raises(ValueError, match="does not broadcast"):
        tinyfw.ops.bias_act(y, tinyfw.randn(3, 4, 5), "silu")


# -- the rewrite and the epilogue ----------------------------------------------------------
class LinearAct(nn.Module):
    def __init__(self, act, approx, n_in=24, n_out=16):
        super().__init__()
        self.lin, self.act, self.approx = nn.Linear(n_in, n_out), act, approx

    def forward(self, x):
        return _eager_act(self.lin(x), self.act, self.approx)


class ConvAct(nn.Module):
    def __init__(self, act, approx):
        super().__init__()
        self.conv, self.act, self.approx = nn.Conv2d(3, 8, 3, padding=1), act, approx

    def forward(self, x):
        return _eager_act(self.conv(x), self.act, self.approx)


def _matmul_act(act, approx):
    w = tinyfw.tensor(_inputs((24, 16), np.float32, 7) / 8)
    b = tinyfw.tensor(_inputs((16,), np.float32, 8))
    return lambda x: _eager_act(x @ w + b, act, approx)


FORMS = {"linear": (LinearAct, (12, 24)), "conv2d": (ConvAct, (2, 3, 9, 9)),
         "matmul": (_matmul_act, (12, 24))}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("act,approx", ACTS, ids=IDS)
def test_inference_is_one_node_and_equals_eager(form, act, approx):
    """NCHW layout forced: the traced conv is eager's kernel (the NHWC conv sums in
    another order; test_channels_last_chain_takes_it_too).  On the CPU, where the
    epilogue pass runs (the check device: test_on_the_check_device)."""
    make_fn, xs = FORMS[form]
    with tinyfw.device("cpu"):
        fn = make_fn(act, approx)
        x = tinyfw.tensor(_inputs(xs, np.float32, 9))
    with tinyfw.device("cpu"), tinyfw.no_grad(), layout.force("nchw"):
        want = npy(fn(x))
        tf = jit.trace(fn, (x,))
        got = npy(tf(x))
        text = explain_text(tf, x)
        fwd = tf.graph(x)[0]
    np.testing.assert_array_equal(got, want)
    assert f"rewrite" in text and f"bias_{act}_epilogue: " in text, text
    line = next(ln for ln in text.splitlines() if f"bias_{act}_epilogue: " in ln)
    assert "Add" in line and "BiasAct" in line, line
    assert "-> BiasAct(" + act in text, text  # fuse_epilogue's line
    prods = [n for n in fwd.nodes if n.op.startswith(("Matmul+", "Conv2d+"))]
    assert len(prods) == 1 and prods[0].op.endswith("BiasAct"), [n.op for n in fwd.nodes]
    assert not any(n.op in ("Gelu", "Silu", "Tanh", "Sigmoid", "Add") for n in fwd.nodes)


@pytest.mark.parametrize("act,approx", ACTS, ids=IDS)
def test_channels_last_chain_takes_it_too(act, approx):
    """Under the layout pass bias_act joins the NHWC chain as an elementwise op and runs in
    the NHWC conv's epilogue; the values are those of the same trace without the rewrite
    (same conv kernel), bit for bit."""
    with tinyfw.device("cpu"):
        fn = ConvAct(act, approx)
        x = tinyfw.tensor(_inputs((2, 3, 9, 9), np.float32, 25))
    with tinyfw.device("cpu"), tinyfw.no_grad(), layout.force("nhwc"):
        on = jit.trace(fn, (x,))
        off = jit.trace(fn, (x,), passes=NO_REWRITE)
        np.testing.assert_array_equal(npy(on(x)), npy(off(x)))
        ops = [n.op for n in on.graph(x)[0].nodes]
    assert "Conv2dNHWC+BiasAct" in ops, ops


@pytest.mark.parametrize("act,approx", ACTS, ids=IDS)
def test_frozen_model_takes_the_rewrite(act, approx):
    m = LinearAct(act, approx).eval()
    x = tinyfw.tensor(_inputs((12, 24), np.float32, 10))
    with tinyfw.no_grad():
        want = npy(m(x))
    fz = jit.freeze(jit.trace(m, (x,)))
    np.testing.assert_array_equal(npy(fz(x)), want)
    assert f"bias_{act}_epilogue: " in explain_text(fz, x)


@pytest.mark.parametrize("act,approx", ACTS, ids=IDS)
def test_training_gradients_unchanged(act, approx):
    """With gradients the built-in rewrite stays off (the product is saved, so no epilogue
    could run in its buffer); the training variant through ``rewrites=`` gives the
    composition's outputs and gradients bit for bit."""
    x0 = _inputs((12, 24), np.float32, 11)
    m = LinearAct(act, approx)
    x = tinyfw.tensor(x0, requires_grad=True)
    want = m(x)
    want.sum().backward()
    wants = [npy(x.grad).copy(), npy(m.lin.weight.grad).copy(),
             npy(m.lin.bias.grad).copy()]
    for rewrites, fires in (((), False), ((make(act, training=True),), True)):
        m.zero_grad()
        x = tinyfw.tensor(x0, requires_grad=True)
        tf = jit.trace(m, (x,), rewrites=list(rewrites))
        y = tf(x)
        y.sum().backward()
        np.testing.assert_array_equal(npy(y), npy(want))
        for got, w in zip([x.grad, m.lin.weight.grad, m.lin.bias.grad], wants):
            np.testing.assert_array_equal(npy(got), w)
        assert (f"bias_{act}_epilogue" in explain_text(tf, x)) == fires


def test_training_variant_gradcheck_float64():
    w = tinyfw.tensor(_inputs((5, 4), np.float64, 12) / 4, requires_grad=True)
    b = tinyfw.tensor(_inputs((4,), np.float64, 13) / 4, requires_grad=True)
    x = tinyfw.tensor(_inputs((3, 5), np.float64, 14) / 4, requires_grad=True)
    tf = jit.trace(lambda x, w, b: F.gelu(x @ w + b), (x, w, b), rewrites=[make("gelu", True)])
    assert "bias_gelu_epilogue_training" in explain_text(tf, x, w, b)
    assert gradcheck(tf, (x, w, b))


def test_not_an_epilogue_when_the_bias_enlarges_or_no_product():
    y = tinyfw.tensor(_inputs((6, 1), np.float32, 15))
    b = tinyfw.tensor(_inputs((6, 5), np.float32, 16))
    w = tinyfw.tensor(_inputs((6, 6), np.float32, 17))
    with tinyfw.no_grad():
        for fn in (lambda y: F.gelu(w @ y + b), lambda y: F.gelu(y * 2 + b)):
            tf = jit.trace(fn, (y,))
            np.testing.assert_array_equal(npy(tf(y)), npy(fn(y)))
            assert "epilogue:" not in explain_text(tf, y)


def test_product_read_twice_keeps_its_buffer():
    """The rewrite fires, but the product is read again, so bias_act allocates (the
    epilogue pass refuses): the other reader sees the product, not the activation."""
    w = tinyfw.tensor(_inputs((24, 16), np.float32, 18) / 8)
    b = tinyfw.tensor(_inputs((16,), np.float32, 19))
    x = tinyfw.tensor(_inputs((12, 24), np.float32, 20))

    def fn(x):
        y = x @ w
        return F.silu(y + b) * y

    with tinyfw.no_grad():
        tf = jit.trace(fn, (x,))
        np.testing.assert_array_equal(npy(tf(x)), npy(fn(x)))
        assert "bias_silu_epilogue: " in explain_text(tf, x)


@given(n=st.integers(1, 40), k=st.integers(1, 40), m=st.integers(1, 40),
       a=st.integers(0, len(ACTS) - 1), dtype=st.sampled_from([np.float32, np.float64]))
@settings(max_examples=25, deadline=None)
def test_any_linear_shape_matches_eager(n, k, m, a, dtype):
    act, approx = ACTS[a]
    w = tinyfw.tensor(_inputs((k, m), dtype, 21))
    b = tinyfw.tensor(_inputs((m,), dtype, 22))
    x = tinyfw.tensor(_inputs((n, k), dtype, 23))
    fn = lambda x: _eager_act(x @ w + b, act, approx)  # noqa: E731
    with tinyfw.no_grad():
        tf = jit.trace(fn, (x,))
        np.testing.assert_array_equal(npy(tf(x)), npy(fn(x)))


def test_on_the_check_device():
    with tinyfw.device("check"):
        m = LinearAct("gelu", "tanh")
        x = tinyfw.tensor(_inputs((12, 24), np.float32, 24))
        with tinyfw.no_grad():
            want = m(x)
            tf = jit.trace(m, (x,))
            got = tf(x)
            assert "bias_gelu_epilogue: " in explain_text(tf, x)
    np.testing.assert_array_equal(npy(got.cpu()), npy(want.cpu()))


_AVX2_SCRIPT = """
import numpy as np, tinyfw, tinyfw.nn.functional as F
from tinyfw import jit
from tinyfw.backend import cpu
assert cpu.isa() == "avx2", cpu.isa()
rng = np.random.default_rng(0)
x = (rng.standard_normal((64, 48)) * 4).astype(np.float32)
for f in (lambda a, **k: cpu.gelu(a, "tanh", **k), cpu.silu, cpu.tanh, cpu.sigmoid):
    y = x.copy(); f(y, out=y); assert np.array_equal(y, f(x))
w = tinyfw.tensor(rng.standard_normal((48, 40)).astype(np.float32))
b = tinyfw.tensor(rng.standard_normal(40).astype(np.float32))
t = tinyfw.tensor(x)
fn = lambda t: F.gelu(t @ w + b)
with tinyfw.no_grad():
    tf = jit.trace(fn, (t,))
    assert np.array_equal(tf(t).numpy(), fn(t).numpy())
    assert any(n.op == "Matmul+BiasAct" for n in tf.graph(t)[0].nodes)
print("ok")
"""


def test_under_the_avx2_level():
    info = cpu.isa_info()
    if "avx2" not in info.get("usable", []):
        pytest.skip("this build or machine has no usable avx2 level")
    env = {k: v for k, v in os.environ.items() if k not in ("TINYFW_ISA", "TINYFW_ISA_HIDE")}
    env.update(TINYFW_ISA="avx2", TINYFW_DEVICE="cpu", PYTHONPATH=_ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", _AVX2_SCRIPT], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]
