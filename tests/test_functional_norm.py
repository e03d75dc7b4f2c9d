"""layer_norm and batch_norm (functional forms): against PyTorch, running statistics,
gradcheck / gradgradcheck (the hand-derived second derivative of the fused backward), errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
import tinyfw.nn.functional as F
from helpers import assert_close, npy, requires_torch, torch
from nn_check import arrays, compare, leaves

if torch is not None:
    import torch.nn.functional as TF

DTYPES = ["float32", "float64"]


@requires_torch
@given(lead=st.lists(st.integers(1, 3), max_size=2), norm=st.lists(st.integers(1, 4), min_size=1,
                                                                  max_size=2),
       affine=st.sampled_from(["none", "weight", "both", "bias"]),
       dtype=st.sampled_from(DTYPES), transposed=st.booleans())
def test_layer_norm_matches_torch(lead, norm, affine, dtype, transposed):
    rng = np.random.default_rng(len(lead) * 5 + len(norm))
    shape = tuple(lead) + tuple(norm)
    x = arrays(rng, shape, dtype, transposed)
    w = rng.standard_normal(norm).astype(dtype) if affine in ("weight", "both") else None
    b = rng.standard_normal(norm).astype(dtype) if affine in ("bias", "both") else None
    n = int(np.prod(norm))
    rows = x.astype(np.float64).reshape(-1, n)
    rstd = 1 / np.sqrt(rows.var(axis=1) + 1e-3)
    compare(lambda x, w, b: F.layer_norm(x, tuple(norm), w, b, eps=1e-3),
            lambda x, w, b: TF.layer_norm(x, tuple(norm), w, b, eps=1e-3),
            [x, w, b], dtype, terms=n, grad_terms=x.size, grad_scale=rstd.max())


@requires_torch
@given(n=st.integers(1, 3), c=st.integers(1, 3), spatial=st.lists(st.integers(1, 3), max_size=2),
       affine=st.booleans(), dtype=st.sampled_from(DTYPES), transposed=st.booleans())
def test_batch_norm_training_matches_torch(n, c, spatial, affine, dtype, transposed):
    shape = (n, c) + tuple(spatial)
    if n * int(np.prod(spatial)) < 2:
        return  # PyTorch refuses one value per channel (tested with the errors)
    rng = np.random.default_rng(n * 9 + c)
    x = arrays(rng, shape, dtype, transposed)
    w = rng.standard_normal(c).astype(dtype) if affine else None
    b = rng.standard_normal(c).astype(dtype) if affine else None
    rm, rv = rng.standard_normal(c).astype(dtype), rng.random(c).astype(dtype) + 0.5
    tf_stats = [tinyfw.tensor(rm.copy()), tinyfw.tensor(rv.copy())]
    th_stats = [torch.tensor(rm.copy()), torch.tensor(rv.copy())]
    rstd = 1 / np.sqrt(x.astype(np.float64).var(axis=(0,) + tuple(range(2, x.ndim))) + 1e-5)
    compare(lambda x, w, b: F.batch_norm(x, *tf_stats, w, b, training=True, momentum=0.3),
            lambda x, w, b: TF.batch_norm(x, *th_stats, w, b, training=True, momentum=0.3),
            [x, w, b], dtype, terms=x.size // c, grad_terms=x.size, grad_scale=rstd.max())
    for a, e in zip(tf_stats, th_stats):
        assert_close(a, e, dtype, msg="running statistics")


@requires_torch
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_eval_matches_torch(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4)).astype(dtype)
    rm, rv = rng.standard_normal(3).astype(dtype), rng.random(3).astype(dtype) + 0.5
    w, b = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
    compare(lambda x, w, b: F.batch_norm(x, tinyfw.tensor(rm), tinyfw.tensor(rv), w, b),
            lambda x, w, b: TF.batch_norm(x, torch.tensor(rm), torch.tensor(rv), w, b),
            [x, w, b], dtype, terms=8)


def test_batch_norm_without_running_stats_and_no_grad_stats():
    x = tinyfw.randn(4, 2, 3, requires_grad=True)
    y = F.batch_norm(x, None, None, training=True)
    np.testing.assert_allclose(npy(y).mean((0, 2)), 0, atol=1e-6)
    rm = tinyfw.zeros(2)
    F.batch_norm(x, rm, None, training=True, momentum=1.0)
    np.testing.assert_allclose(npy(rm), npy(x).mean((0, 2)), rtol=1e-5)
    assert not rm.requires_grad


@pytest.mark.parametrize("affine", ["none", "weight", "both", "bias"])
def test_layer_norm_gradgradcheck(affine):
    rng = np.random.default_rng(2)
    x, w, b = leaves(rng, (3, 2, 3), (2, 3), (2, 3))
    args = {"none": (None, None), "weight": (w, None), "both": (w, b), "bias": (None, b)}[affine]
    ins = [x] + [a for a in args if a is not None]

    def f(x, *wb):
        it = iter(wb)
        ww = next(it) if args[0] is not None else None
        bb = next(it) if args[1] is not None else None
        return F.layer_norm(x, (2, 3), ww, bb, eps=0.1)

    assert tinyfw.gradcheck(f, ins)
    assert tinyfw.gradgradcheck(f, ins)


@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_gradgradcheck(affine):
    rng = np.random.default_rng(3)
    x, w, b = leaves(rng, (3, 2, 2), (2,), (2,))
    ins = [x, w, b] if affine else [x]

    def f(x, *wb):
        return F.batch_norm(x, None, None, *wb, training=True, eps=0.1)

    assert tinyfw.gradcheck(f, ins)
    assert tinyfw.gradgradcheck(f, ins)
    assert tinyfw.gradgradcheck(lambda x: F.batch_norm(
        x, tinyfw.zeros(2, dtype=tinyfw.float64), tinyfw.ones(2, dtype=tinyfw.float64)), [x])


def _t(*shape, dtype=None):
    return tinyfw.zeros(*shape, dtype=dtype)


ERRORS = [
    (lambda: F.layer_norm(_t(2, 3), (4,)), RuntimeError,
     "layer_norm: normalized_shape (4,) does not match the trailing dims of input (2, 3)"),
    (lambda: F.layer_norm(_t(2, 3), 3, weight=_t(4)), RuntimeError,
     "weight must have shape (3,), got (4,)"),
    (lambda: F.layer_norm(_t(2, 3), 3, bias=_t(3, dtype=tinyfw.float64)), TypeError,
     "bias dtype float64 does not match the input's float32"),
    (lambda: F.layer_norm(_t(2, 3, dtype=tinyfw.int64), 3), TypeError,
     "layer_norm: input must be a floating-point tensor"),
    (lambda: F.batch_norm(_t(1, 3), None, None, training=True), ValueError,
     "expected more than 1 value per channel when training"),
    (lambda: F.batch_norm(_t(2, 3), None, None), RuntimeError,
     "running_mean and running_var are required when training=False"),
    (lambda: F.batch_norm(_t(2, 3), _t(2), _t(3)), RuntimeError,
     "running_mean must have shape (3,) for input (2, 3), got (2,)"),
    (lambda: F.batch_norm(_t(3), None, None, training=True), RuntimeError,
     "at least 2 dims (N, C, ...), got shape (3,)"),
    (lambda: F.batch_norm(_t(2, 3), None, None, weight=_t(3, dtype=tinyfw.float64),
                          training=True), TypeError, "weight dtype float64"),
]


@pytest.mark.parametrize("call,exc,msg", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors(call, exc, msg):
    with pytest.raises(exc) as info:
        call()
    assert msg in str(info.value)
