"""Issue 16 activations: NaN / inf / kinks / signed zeros / empty inputs against PyTorch,
in-place semantics, the randomised ones (rrelu, gumbel_softmax) by their structure and
statistics, and the error messages."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from helpers import assert_close, npy, requires_torch, torch

TH = torch.nn.functional if torch is not None else None

# every special value and every kink of the functions below
SPECIAL = [math.nan, math.inf, -math.inf, 0.0, -0.0, 0.5, -0.5, 3.0, -3.0, 1.0, -1.0, 6.0,
           20.0, 0.1, -0.3, 1e-300, -1e-300, 700.0, -700.0]

# (name, tinyfw fn, torch fn): elementwise forms
ELEMENTWISE = [
    # alpha 0.5: PyTorch's elu kernel rounds 1/alpha to float32 (5.6e-8 off for 0.7)
    ("celu", lambda m, x: m.celu(x, 0.5)),
    ("selu", lambda m, x: m.selu(x)),
    ("elu_", lambda m, x: m.elu_(x * 1, 0.5)),
    ("hardshrink", lambda m, x: m.hardshrink(x)),
    ("softshrink", lambda m, x: m.softshrink(x)),
    ("hardsigmoid", lambda m, x: m.hardsigmoid(x)),
    ("hardswish", lambda m, x: m.hardswish(x)),
    ("hardtanh_", lambda m, x: m.hardtanh_(x * 1)),
    ("leaky_relu_", lambda m, x: m.leaky_relu_(x * 1, 0.1)),
    ("mish", lambda m, x: m.mish(x)),
    ("relu_", lambda m, x: m.relu_(x * 1)),
    ("rrelu_eval", lambda m, x: m.rrelu(x)),
    ("softsign", lambda m, x: m.softsign(x)),
    ("tanhshrink", lambda m, x: m.tanhshrink(x)),
    ("threshold", lambda m, x: m.threshold(x, 0.5, -2.0)),
    ("prelu", lambda m, x: m.prelu(x, x.new_full((1,), 0.25))),
    ("glu", lambda m, x: m.glu(x[:18])),
    ("softmin", lambda m, x: m.softmin(x.reshape(1, -1)[:, 3:], 1)),
]

# PyTorch's gradient at a NaN input, and the sign of some zeros, differ between its
# vectorised loop and its scalar tail (celu's NaN gradient is 1.0 or NaN by position):
# those are not compared.  relu gives +0.0 for -0.0 in tinyfw (the Relu kernel's choice,
# ops/_elementwise_activation.py), -0.0 in PyTorch.
SIGN_UNSPECIFIED = {"softshrink", "relu_"}
# PyTorch's hardsigmoid backward multiplies by a float32 1/6 (test below)
GRAD_RTOL64 = {"hardsigmoid": abs(float(np.float32(1 / 6)) - 1 / 6) * 6 + 2 ** -52}


@requires_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,fn", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_special_values_match_torch(name, fn, dtype):
    a = np.array(SPECIAL, dtype=dtype)
    x = tinyfw.tensor(a, requires_grad=True)
    xt = torch.tensor(a, requires_grad=True)
    y, yt = fn(F, x), fn(TH, xt)
    assert_close(y, yt, dtype, msg=name)
    if name not in SIGN_UNSPECIFIED:
        zeros = npy(y) == 0
        np.testing.assert_array_equal(np.signbit(npy(y)[zeros]),
                                      np.signbit(yt.detach().numpy()[zeros]), err_msg=name)
    g = np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape)).astype(dtype)
    (y * tinyfw.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    got, want = npy(x.grad), xt.grad.numpy()
    keep = ~np.isnan(a)
    rtol = GRAD_RTOL64.get(name) if dtype == "float64" else None
    assert_close(got[keep], want[keep], dtype, rtol=rtol, msg=f"grad of {name}")


@requires_torch
@pytest.mark.parametrize("name,fn", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_empty_input(name, fn):
    if name in ("glu", "softmin"):
        x, xt = tinyfw.zeros(0, 4), torch.zeros(0, 4)
        y = F.glu(x) if name == "glu" else F.softmin(x, 1)
        yt = TH.glu(xt) if name == "glu" else TH.softmin(xt, 1)
    else:
        y, yt = fn(F, tinyfw.zeros(0, 3)), fn(TH, torch.zeros(0, 3))
    assert tuple(y.shape) == tuple(yt.shape)


@requires_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_hardsigmoid_grad_is_exact_sixth(dtype):
    """PyTorch's hardsigmoid backward multiplies by a float32 1/6 in float64 too (relative
    error |fl32(1/6) - 1/6| / (1/6) = 2.98e-8): tinyfw's gradient is g / 6 rounded once in
    the dtype, and PyTorch's agrees with it to that one float32 rounding."""
    a = np.random.default_rng(0).uniform(-5, 5, 64).astype(dtype)
    g = np.random.default_rng(1).standard_normal(64).astype(dtype)
    x = tinyfw.tensor(a, requires_grad=True)
    (F.hardsigmoid(x) * tinyfw.tensor(g)).sum().backward()
    exact = np.where((a > -3) & (a < 3), g.astype(np.float64) / 6, 0.0)
    np.testing.assert_allclose(npy(x.grad), exact, rtol=np.finfo(dtype).eps, atol=0)
    xt = torch.tensor(a, requires_grad=True)
    (TH.hardsigmoid(xt) * torch.tensor(g)).sum().backward()
    sixth32 = float(np.float32(1 / 6))
    bound = abs(sixth32 - 1 / 6) * 6 + np.finfo(dtype).eps
    np.testing.assert_allclose(npy(x.grad), xt.grad.numpy(), rtol=bound, atol=0)


# -- in place ---------------------------------------------------------------------------------
INPLACE = [("celu_", lambda x: F.celu_(x)), ("selu_", lambda x: F.selu_(x)),
           ("elu_", lambda x: F.elu_(x)), ("hardtanh_", lambda x: F.hardtanh_(x)),
           ("leaky_relu_", lambda x: F.leaky_relu_(x)), ("relu_", lambda x: F.relu_(x)),
           ("rrelu_", lambda x: F.rrelu_(x)), ("threshold_", lambda x: F.threshold_(x, 0, 1)),
           ("torch.relu_", lambda x: tinyfw.relu_(x)),
           ("mish", lambda x: F.mish(x, inplace=True)),
           ("hardswish", lambda x: F.hardswish(x, inplace=True))]


@pytest.mark.parametrize("name,fn", INPLACE, ids=[e[0] for e in INPLACE])
def test_inplace_writes_and_bumps_version(name, fn):
    x = tinyfw.tensor([-1.5, -0.2, 0.0, 0.4, 2.0])
    before = npy(x).copy()
    v = x._version[0]
    y = fn(x)
    assert y is x and x._version[0] > v
    assert not np.array_equal(npy(x), before)


@pytest.mark.parametrize("name,fn", INPLACE, ids=[e[0] for e in INPLACE])
def test_inplace_on_a_leaf_that_requires_grad_raises(name, fn):
    x = tinyfw.tensor([-1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        fn(x)


# -- randomised ---------------------------------------------------------------------------
def test_rrelu_training_slopes_and_gradient():
    """Each element <= 0 gets its own slope in [lower, upper); the gradient is that slope.
    With 4000 negative draws, P(max - min spread < 80% of the range) = 2 * 0.9**4000, and
    P(|mean - centre| > 5 sd) < 1e-6: a false failure is that unlikely."""
    lo, hi = 0.1, 0.4
    a = -np.linspace(0.5, 2.0, 4000)
    x = tinyfw.tensor(np.concatenate([a, [0.0, 1.5]]), requires_grad=True)
    y = F.rrelu(x, lo, hi, training=True, generator=tinyfw.Generator().manual_seed(3))
    y.sum().backward()
    slope = npy(y)[:4000] / a
    assert slope.min() >= lo and slope.max() < hi
    assert slope.max() - slope.min() > 0.8 * (hi - lo)
    sd = (hi - lo) / math.sqrt(12) / math.sqrt(4000)
    assert abs(slope.mean() - (lo + hi) / 2) < 5 * sd
    np.testing.assert_allclose(npy(x.grad)[:4000], slope, rtol=1e-6)
    assert npy(y)[-1] == 1.5 and npy(x.grad)[-1] == 1.0
    assert lo <= npy(x.grad)[-2] < hi  # PyTorch's kernel draws a slope at 0 too


def test_gumbel_softmax_distribution_and_straight_through():
    """The argmax of a Gumbel-softmax sample is a draw from softmax(logits).  With 20000
    samples of 3 classes, each frequency is off by more than 5 sd with probability < 1e-6.
    hard=True gives one-hot rows with the soft sample's gradient."""
    logits = np.log(np.array([0.2, 0.5, 0.3]))
    n = 20000
    x = tinyfw.tensor(np.tile(logits, (n, 1)))
    gen = tinyfw.Generator().manual_seed(7)
    y = F.gumbel_softmax(x, tau=0.5, generator=gen)
    np.testing.assert_allclose(npy(y).sum(1), 1.0, rtol=1e-12)
    freq = np.bincount(npy(y).argmax(1), minlength=3) / n
    p = np.array([0.2, 0.5, 0.3])
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n))
    xs = tinyfw.tensor(np.tile(logits, (4, 1)), requires_grad=True)
    hard = F.gumbel_softmax(xs, hard=True, generator=tinyfw.Generator().manual_seed(1))
    h = npy(hard)
    assert set(np.unique(h)) <= {0.0, 1.0} and np.all(h.sum(1) == 1)
    w = tinyfw.tensor(np.arange(12.0).reshape(4, 3))
    (hard * w).sum().backward()
    xs2 = tinyfw.tensor(np.tile(logits, (4, 1)), requires_grad=True)
    soft = F.gumbel_softmax(xs2, hard=False, generator=tinyfw.Generator().manual_seed(1))
    (soft * w).sum().backward()
    np.testing.assert_allclose(npy(xs.grad), npy(xs2.grad), rtol=1e-12, atol=1e-15)


def test_gumbel_softmax_other_dim():
    x = tinyfw.randn(3, 4, 2)
    y = F.gumbel_softmax(x, dim=1, hard=True)
    assert np.all(npy(y).sum(1) == 1)


# -- errors -------------------------------------------------------------------------------
ERRORS = [
    (lambda: F.glu(tinyfw.randn(3, 5)), RuntimeError, "glu: halving"),
    (lambda: F.glu(tinyfw.tensor(1.0)), RuntimeError, "glu: .*0-d"),
    (lambda: F.glu(tinyfw.randn(2, 4), dim=2), IndexError, "glu: dim 2"),
    (lambda: F.softshrink(tinyfw.randn(3), -1.0), RuntimeError, "softshrink: lambd"),
    (lambda: F.celu(tinyfw.randn(3), 0.0), ValueError, "celu: alpha"),
    (lambda: F.rrelu(tinyfw.randn(3), 0.5, 0.1), ValueError, "rrelu: lower"),
    (lambda: F.prelu(tinyfw.randn(2, 3), tinyfw.ones(4)), RuntimeError, "prelu: weight has 4"),
    (lambda: F.prelu(tinyfw.randn(2, 3), tinyfw.ones(3, 1)), RuntimeError, "prelu: .*1-d"),
    (lambda: F.prelu(tinyfw.randn(3), tinyfw.ones(3)), RuntimeError, "prelu: weight has 3"),
    (lambda: F.mish(tinyfw.tensor([1, 2])), TypeError, "mish"),
    (lambda: F.hardshrink(tinyfw.tensor([1, 2])), TypeError, "hardshrink"),
    (lambda: tinyfw.softmax(tinyfw.randn(3), None), TypeError, "softmax: dim"),
    (lambda: tinyfw.randn(3).log_softmax(1), IndexError, "log_softmax"),
    (lambda: F.gumbel_softmax(tinyfw.randn(3), tau=0), ValueError, "gumbel_softmax: tau"),
]


@pytest.mark.parametrize("k", range(len(ERRORS)))
def test_errors_name_the_op(k):
    fn, exc, msg = ERRORS[k]
    with pytest.raises(exc, match=msg):
        fn()


@requires_torch
def test_threshold_keeps_integer_dtype():
    x = np.array([-3, 0, 2, 5], dtype=np.int64)
    y = F.threshold(tinyfw.tensor(x), 1, 7)
    yt = TH.threshold(torch.tensor(x), 1, 7)
    assert npy(y).dtype == yt.numpy().dtype
    np.testing.assert_array_equal(npy(y), yt.numpy())


# -- half precision --------------------------------------------------------------------------
HALF = [("celu", lambda m, x: m.celu(x, 0.5)), ("selu", lambda m, x: m.selu(x)),
        ("mish", lambda m, x: m.mish(x)), ("hardswish", lambda m, x: m.hardswish(x)),
        ("hardsigmoid", lambda m, x: m.hardsigmoid(x)),
        ("softshrink", lambda m, x: m.softshrink(x)), ("softsign", lambda m, x: m.softsign(x)),
        ("tanhshrink", lambda m, x: m.tanhshrink(x)), ("glu", lambda m, x: m.glu(x)),
        ("threshold", lambda m, x: m.threshold(x, 0.5, 2.0)),
        ("rrelu_eval", lambda m, x: m.rrelu(x))]
MANTISSA = {"float16": (10, -14), "bfloat16": (7, -126)}


@requires_torch
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name,fn", HALF, ids=[h[0] for h in HALF])
def test_half_inputs_are_rounded_once(name, fn, dtype):
    """float16/bfloat16 inputs are computed in float32 and rounded once (PyTorch's kernels
    do so): the result is within 1 ulp of the float64 value rounded to the dtype, since the
    float32 value is a few float32 ulps (2**-24 relative) from the true one and only a true
    value that close to a rounding boundary can round to the neighbour."""
    a = np.random.default_rng(0).uniform(-6, 6, 4096)
    x = tinyfw.tensor(a).to(getattr(tinyfw, dtype))
    xs = x.to(tinyfw.float64)
    y = fn(F, x)
    assert y.dtype == x.dtype
    exact = fn(TH, torch.from_numpy(npy(xs)))  # float64 on the same (rounded) inputs
    ref = exact.to(getattr(torch, dtype)).double().numpy()
    got = npy(y.to(tinyfw.float64))
    bits, emin = MANTISSA[dtype]
    mag = np.maximum(np.abs(ref), 2.0 ** emin)
    ulp = 2.0 ** (np.floor(np.log2(mag)) - bits)
    if name == "tanhshrink":
        # x - tanh(x) cancels for small |x| in float32 (PyTorch computes it the same way):
        # the float32 value carries up to 2 float32 ulps of |x| in absolute error
        ulp = ulp + 2 * np.spacing(np.abs(npy(xs)).astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(got - ref) <= ulp), name
