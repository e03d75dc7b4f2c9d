"""Issue 16, pooling: hypothesis over sizes/strides/padding/dilation/ceil_mode against
PyTorch (values and gradients; indices compared exactly), NaN/inf/empty edge cases, the
layers (nn_oracle), fractional pooling's generator, and error messages."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw
import tinyfw.nn as nn
import tinyfw.nn.functional as F
from helpers import assert_close, npy, requires_torch, torch
from nn_oracle import compare

pytestmark = requires_torch
TF = torch.nn.functional if torch is not None else None


def _run(fn_tf, fn_th, x: np.ndarray, grad: bool = True):
    """Outputs of both (indices exactly), then the input gradient for one upstream grad."""
    a = tinyfw.tensor(x, requires_grad=grad)
    b = torch.tensor(x, requires_grad=grad)
    of, ot = fn_tf(a), fn_th(b)
    of = of if isinstance(of, tuple) else (of,)
    ot = ot if isinstance(ot, tuple) else (ot,)
    assert len(of) == len(ot)
    for u, v in zip(of[1:], ot[1:]):
        np.testing.assert_array_equal(npy(u), v.numpy())
    assert_close(of[0], ot[0], "float64")
    if grad and x.size:
        g = np.random.default_rng(1).standard_normal(tuple(ot[0].shape))
        (of[0] * tinyfw.tensor(g)).sum().backward()
        (ot[0] * torch.tensor(g)).sum().backward()
        assert_close(a.grad, b.grad, "float64")


@st.composite
def windows(draw, n: int):
    sizes = [draw(st.integers(1, 7)) for _ in range(n)]
    k = [draw(st.integers(1, 4)) for _ in range(n)]
    s = [draw(st.integers(1, 3)) for _ in range(n)]
    p = [draw(st.integers(0, ki // 2)) for ki in k]
    d = [draw(st.integers(1, 2)) for _ in range(n)]
    sizes = [max(si, di * (ki - 1) + 1 - 2 * pi) for si, ki, pi, di in zip(sizes, k, p, d)]
    return sizes, k, s, p, d, draw(st.booleans())


@settings(max_examples=40, deadline=None)
@given(w=windows(3), seed=st.integers(0, 2 ** 16))
def test_max_pool3d_hypothesis(w, seed):
    sizes, k, s, p, d, ceil = w
    x = np.random.default_rng(seed).standard_normal([2, 2] + sizes)
    _run(lambda t: F.max_pool3d(t, k, s, p, d, ceil, True),
         lambda t: TF.max_pool3d(t, k, s, p, d, ceil, True), x)


@settings(max_examples=40, deadline=None)
@given(w=windows(1), seed=st.integers(0, 2 ** 16), inc=st.booleans())
def test_max_and_avg_pool1d_hypothesis(w, seed, inc):
    sizes, k, s, p, d, ceil = w
    x = np.random.default_rng(seed).standard_normal([2, 3] + sizes)
    _run(lambda t: F.max_pool1d(t, k, s, p, d, ceil, True),
         lambda t: TF.max_pool1d(t, k, s, p, d, ceil, True), x)
    if sizes[0] + 2 * p[0] >= k[0]:
        _run(lambda t: F.avg_pool1d(t, k, s, p, ceil, inc),
             lambda t: TF.avg_pool1d(t, k, s, p, ceil, inc), x)


@settings(max_examples=40, deadline=None)
@given(w=windows(3), seed=st.integers(0, 2 ** 16), inc=st.booleans(),
       div=st.sampled_from([None, 3, -2]))
def test_avg_pool3d_hypothesis(w, seed, inc, div):
    sizes, k, s, p, _, ceil = w
    sizes = [max(si, ki) for si, ki in zip(sizes, k)]  # PyTorch refuses input < kernel
    x = np.random.default_rng(seed).standard_normal([2, 2] + sizes)
    _run(lambda t: F.avg_pool3d(t, k, s, p, ceil, inc, div),
         lambda t: TF.avg_pool3d(t, k, s, p, ceil, inc, div), x)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), data=st.data(), seed=st.integers(0, 2 ** 16))
def test_adaptive_pools_hypothesis(n, data, seed):
    sizes = [data.draw(st.integers(1, 9)) for _ in range(n)]
    outs = [data.draw(st.one_of(st.none(), st.integers(1, 10))) for _ in range(n)]
    x = np.random.default_rng(seed).standard_normal([2, 2] + sizes)
    fmax, favg = f"adaptive_max_pool{n}d", f"adaptive_avg_pool{n}d"
    if hasattr(TF, favg) and (n > 1 or outs[0] is not None):
        o = outs if n > 1 else outs[0]
        _run(lambda t: getattr(F, fmax)(t, o, True), lambda t: getattr(TF, fmax)(t, o, True), x)
        _run(lambda t: getattr(F, favg)(t, o), lambda t: getattr(TF, favg)(t, o), x)


@settings(max_examples=30, deadline=None)
@given(n=st.sampled_from([2, 3]), data=st.data(), seed=st.integers(0, 2 ** 16))
def test_fractional_hypothesis(n, data, seed):
    sizes = [data.draw(st.integers(2, 9)) for _ in range(n)]
    k = [data.draw(st.integers(1, s)) for s in sizes]
    # PyTorch's 3-d op needs out + k - 1 < size, the 2-d one <=
    k = [min(ki, s - (n == 3)) for ki, s in zip(k, sizes)]
    out = [data.draw(st.integers(1, s - ki + 1 - (n == 3))) for s, ki in zip(sizes, k)]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal([2, 2] + sizes)
    u = rng.random((2, 2, n))
    name = f"fractional_max_pool{n}d"
    _run(lambda t: getattr(F, name)(t, k, out, return_indices=True,
                                    _random_samples=tinyfw.tensor(u)),
         lambda t: getattr(TF, name)(t, k, out, return_indices=True,
                                     _random_samples=torch.tensor(u)), x)


def test_nan_inf_and_empty_batches():
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4, 4))
    x[0, 0, 1, 1, 1] = np.nan
    x[1, 1, 2, 2, 2] = np.inf
    x[1, 0, 0, 0, 0] = -np.inf
    for fn in ("max_pool3d", "avg_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d"):
        arg = 2 if "adaptive" in fn else (2, 1, 1)
        _run(lambda t: getattr(F, fn)(t, arg), lambda t: getattr(TF, fn)(t, arg), x, grad=False)
    e = np.zeros((0, 3, 4, 5, 6))
    for fn, arg in (("max_pool3d", 2), ("avg_pool3d", 2), ("adaptive_avg_pool3d", 3),
                    ("adaptive_max_pool3d", 3), ("lp_pool3d", None)):
        if fn == "lp_pool3d":
            _run(lambda t: F.lp_pool3d(t, 2.0, 2), lambda t: TF.lp_pool3d(t, 2.0, 2), e)
        else:
            _run(lambda t: getattr(F, fn)(t, arg), lambda t: getattr(TF, fn)(t, arg), e)
    _run(lambda t: F.max_pool1d(t, 2), lambda t: TF.max_pool1d(t, 2), np.zeros((0, 2, 5)))


LAYERS = [
    (lambda m: m.MaxPool1d(3, 2, 1, return_indices=True), (2, 3, 9)),
    (lambda m: m.MaxPool3d((2, 3, 2), ceil_mode=True), (2, 2, 5, 6, 5)),
    (lambda m: m.AvgPool1d(3, 2, 1, count_include_pad=False), (2, 3, 9)),
    (lambda m: m.AvgPool3d(2, 1, 1, divisor_override=3), (2, 2, 4, 3, 5)),
    (lambda m: m.AdaptiveAvgPool1d(4), (2, 3, 9)),
    (lambda m: m.AdaptiveAvgPool3d((2, None, 3)), (2, 2, 4, 3, 5)),
    (lambda m: m.AdaptiveMaxPool1d(4, return_indices=True), (2, 3, 9)),
    (lambda m: m.AdaptiveMaxPool2d((3, 2)), (2, 3, 7, 5)),
    (lambda m: m.AdaptiveMaxPool3d(2, return_indices=True), (2, 2, 4, 3, 5)),
    (lambda m: m.LPPool1d(2, 3), (2, 3, 9)),
    (lambda m: m.LPPool2d(2.0, (2, 3), 1, True), (2, 3, 7, 5)),
    (lambda m: m.LPPool3d(2, 2), (2, 2, 4, 3, 5)),
]


@pytest.mark.parametrize("make,shape", LAYERS, ids=[str(i) for i in range(len(LAYERS))])
def test_layers(make, shape):
    x = np.random.default_rng(2).uniform(0.2, 2.0, shape)
    compare(make(torch.nn), make(nn), [x], "float64")


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_unpool_layers_invert_max_pool(n):
    x = np.random.default_rng(4).standard_normal((2, 3) + (6,) * n)
    pool_t = getattr(torch.nn, f"MaxPool{n}d")(2, return_indices=True)
    pool_f = getattr(nn, f"MaxPool{n}d")(2, return_indices=True)
    vf, idf = pool_f(tinyfw.tensor(x))
    vt, idt = pool_t(torch.tensor(x))
    np.testing.assert_array_equal(npy(idf), idt.numpy())
    unf, unt = getattr(nn, f"MaxUnpool{n}d")(2), getattr(torch.nn, f"MaxUnpool{n}d")(2)
    assert f"MaxUnpool{n}d" in ("MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d")
    compare(unt, unf, [vt.numpy(), idt.numpy()], "float64")


@pytest.mark.parametrize("n", [2, 3])
def test_fractional_layers(n):
    x = np.random.default_rng(5).standard_normal((2, 3) + (8,) * n)
    u = np.random.default_rng(6).random((2, 3, n))
    name = f"FractionalMaxPool{n}d"
    assert name in ("FractionalMaxPool2d", "FractionalMaxPool3d")
    mt = getattr(torch.nn, name)(2, output_ratio=0.5, _random_samples=torch.tensor(u))
    mf = getattr(nn, name)(2, output_ratio=0.5, _random_samples=tinyfw.tensor(u))
    compare(mt, mf, [x], "float64")
    # without samples: drawn from the generator, reproducible by seed, fresh each call
    a = getattr(nn, name)(3, output_size=4, generator=tinyfw.Generator(7))
    b = getattr(nn, name)(3, output_size=4, generator=tinyfw.Generator(7))
    xt = tinyfw.tensor(x)
    y1, y2 = a(xt), b(xt)
    np.testing.assert_array_equal(npy(y1), npy(y2))
    outs = {npy(a(xt)).tobytes() for _ in range(6)}
    assert len(outs) > 1, "the generator should give new windows on every call"


ERRORS = [
    (lambda: F.max_pool3d(tinyfw.zeros(1, 1, 2, 2, 2), 3), r"max_pool3d: input \(1, 1, 2, 2, 2\) "
     r"is too small for kernel \(3, 3, 3\)"),
    (lambda: F.avg_pool1d(tinyfw.zeros(1, 1, 5), 2, 1, 2), r"avg_pool1d: padding \(2,\) must be "
     r"at most half of the kernel size \(2,\)"),
    (lambda: F.max_pool1d(tinyfw.zeros(2, 2, 2, 5), 2), r"max_pool1d: expected a 2-d \(C, W\) "
     r"or 3-d \(N, C, W\) input, got shape \(2, 2, 2, 5\)"),
    (lambda: F.avg_pool3d(tinyfw.zeros(1, 1, 4, 4, 4), 2, divisor_override=0),
     "avg_pool3d: divisor_override must be a non-zero int"),
    (lambda: F.max_pool3d(tinyfw.zeros(1, 1, 4, 4, 4), (2, 2)),
     r"max_pool3d: kernel_size must be an int or a tuple of 3 ints, got \(2, 2\)"),
    (lambda: F.adaptive_max_pool2d(tinyfw.zeros(1, 1, 4, 4), (2, 0)),
     r"adaptive_max_pool2d: cannot pool input \(1, 1, 4, 4\) to size \(2, 0\)"),
    (lambda: F.adaptive_avg_pool3d(tinyfw.zeros(1, 1, 4, 4, 4), (2, 2)),
     "adaptive_avg_pool3d: output_size must be an int or a tuple of 3"),
    (lambda: F.max_unpool2d(tinyfw.zeros(1, 1, 2, 2), tinyfw.tensor([[[[0, 1], [2, 99]]]]), 2),
     r"max_unpool2d: found an invalid max index 99 \(output volume of size \(4, 4\)"),
    (lambda: F.max_unpool1d(tinyfw.zeros(1, 1, 2), tinyfw.zeros(1, 1, 3).long(), 2),
     r"max_unpool1d: indices of shape \(1, 1, 3\) must match the input shape \(1, 1, 2\)"),
    (lambda: F.max_unpool1d(tinyfw.zeros(1, 1, 2), tinyfw.zeros(1, 1, 2).long(), 2,
                            output_size=(9,)),
     r"max_unpool1d: invalid output_size \(9,\) \(dim 0 must lie between 2 and 6"),
    (lambda: F.fractional_max_pool2d(tinyfw.zeros(1, 1, 5, 5), 3, (4, 4)),
     "fractional_max_pool2d: kernel size 3 is too large for input size 5 and output size 4"),
    (lambda: F.fractional_max_pool3d(tinyfw.zeros(1, 1, 4, 4, 4), 2, 3),
     "fractional_max_pool3d: kernel size 2 is too large for input size 4 and output size 3"),
    (lambda: F.fractional_max_pool2d(tinyfw.zeros(1, 1, 5, 5), 2),
     "fractional_max_pool2d requires specifying either an output_size or an output_ratio"),
    (lambda: F.fractional_max_pool3d(tinyfw.zeros(2, 1, 5, 5, 5), 2, 3,
                                     _random_samples=tinyfw.zeros(1, 1, 3)),
     r"fractional_max_pool3d: _random_samples must have shape \(2, 1, 3\), got \(1, 1, 3\)"),
    (lambda: nn.FractionalMaxPool2d(2, output_ratio=1.5),
     r"FractionalMaxPool2d: output_ratio must be between 0 and 1 \(got 1.5\)"),
    (lambda: F.max_pool3d(tinyfw.zeros(1, 1, 4, 4, 4, dtype=tinyfw.int64), 2), "max_pool3d"),
    (lambda: F.avg_pool3d(tinyfw.zeros(1, 1, 4, 1, 4), 2, padding=1),
     r"avg_pool3d: input image \(D, H, W\) = \(4, 1, 4\) is smaller than the kernel size"),
]


@pytest.mark.parametrize("fn,msg", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors_name_the_problem(fn, msg):
    with pytest.raises((ValueError, RuntimeError, TypeError), match=msg):
        fn()
