"""Reductions over one or several dims against PyTorch: values, indices, dtypes, gradients;
gradcheck in float64."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import tinyfw
from core_util import FLOAT_DTYPES, HALF_DTYPES, layouts, make, make_int, nonempty_shapes, seeds, shapes
from helpers import assert_close, npy, requires_torch, torch

BACKWARD_TOL = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-11)}


@st.composite
def shape_and_dims(draw, nonempty: bool = False):
    """A shape and a dim argument: None, one int (maybe negative) or a tuple of dims."""
    shape = draw(nonempty_shapes if nonempty else shapes)
    n = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"] if n else ["none"]))
    if kind == "none":
        return shape, None
    if kind == "int":
        return shape, draw(st.integers(-n, n - 1))
    dims = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    return shape, tuple(d - n if draw(st.booleans()) else d for d in dims)


def _th_dim(dim):
    return dim if dim is not None else None


def _check(out_tf, out_th, leafs, dtype, seed):
    assert tuple(out_tf.shape) == tuple(out_th.shape)
    assert_close(out_tf, out_th, dtype)
    if out_th.requires_grad and leafs:
        g = np.random.default_rng(seed).standard_normal(tuple(out_th.shape))
        out_tf.backward(tinyfw.tensor(g, dtype=out_tf.dtype))
        out_th.backward(torch.tensor(g, dtype=out_th.dtype))
        r, a = BACKWARD_TOL[dtype]
        for tf_leaf, th_leaf in leafs:
            assert_close(tf_leaf.grad, th_leaf.grad, dtype, rtol=r, atol=a)


REDUCTIONS = {
    # name: (tinyfw, torch, needs non-empty reduced dims, accepts dim=None)
    "sum": (lambda x, d, k: x.sum(d, keepdim=k), lambda x, d, k: x.sum(d, keepdim=k) if d is not None else (x.sum().reshape([1] * x.ndim) if k else x.sum())),
    "mean": (lambda x, d, k: x.mean(d, keepdim=k), lambda x, d, k: x.mean(d, keepdim=k) if d is not None else (x.mean().reshape([1] * x.ndim) if k else x.mean())),
    "amax": (lambda x, d, k: x.amax(d, keepdim=k), lambda x, d, k: x.amax(d if d is not None else (), keepdim=k)),
    "amin": (lambda x, d, k: x.amin(d, keepdim=k), lambda x, d, k: x.amin(d if d is not None else (), keepdim=k)),
    "logsumexp": (lambda x, d, k: x.logsumexp(d if d is not None else tuple(range(x.ndim)), keepdim=k),
                  lambda x, d, k: x.logsumexp(d if d is not None else tuple(range(x.ndim)), keepdim=k)),
    "norm": (lambda x, d, k: x.norm(dim=d, keepdim=k), lambda x, d, k: torch.linalg.vector_norm(x, dim=d, keepdim=k)),
    "norm1": (lambda x, d, k: x.norm(1, dim=d, keepdim=k), lambda x, d, k: torch.linalg.vector_norm(x, 1, dim=d, keepdim=k)),
    "norm3": (lambda x, d, k: x.norm(3, dim=d, keepdim=k), lambda x, d, k: torch.linalg.vector_norm(x, 3, dim=d, keepdim=k)),
    "norm_inf": (lambda x, d, k: x.norm(math.inf, dim=d, keepdim=k), lambda x, d, k: torch.linalg.vector_norm(x, math.inf, dim=d, keepdim=k)),
    "var": (lambda x, d, k: x.var(d, keepdim=k), lambda x, d, k: x.var(d, keepdim=k)),
    "var_biased": (lambda x, d, k: x.var(d, unbiased=False, keepdim=k), lambda x, d, k: x.var(d, unbiased=False, keepdim=k)),
    "var_corr2": (lambda x, d, k: x.var(d, keepdim=k, correction=2), lambda x, d, k: x.var(d, keepdim=k, correction=2)),
    "std": (lambda x, d, k: x.std(d, keepdim=k), lambda x, d, k: x.std(d, keepdim=k)),
    "std_corr0": (lambda x, d, k: x.std(d, keepdim=k, correction=0), lambda x, d, k: x.std(d, keepdim=k, correction=0)),
}
NEEDS_ELEMENTS = {"amax", "amin", "norm_inf"}


@requires_torch
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(sd=shape_and_dims(), layout=layouts, dtype=st.sampled_from(FLOAT_DTYPES),
       keepdim=st.booleans(), seed=seeds)
def test_reduction_vs_torch(name, sd, layout, dtype, keepdim, seed):
    shape, dim = sd
    tf_fn, th_fn = REDUCTIONS[name]
    if name in NEEDS_ELEMENTS or name.startswith(("var", "std", "norm")):
        # zero-size reductions: amax raises (tested in test_errors); var of nothing is NaN
        # with a 0/0 gradient in PyTorch, which is not something to match
        assume(math.prod(shape) > 0)
    p = make(shape, layout, dtype, seed, requires_grad=True)
    leafs = [(p.tf_leaf, p.th_leaf)]
    if name.startswith(("var", "std")):
        dims = range(len(shape)) if dim is None else ([dim] if isinstance(dim, int) else dim)
        n = math.prod(shape[d] for d in dims)
        correction = {"var_biased": 0, "std_corr0": 0, "var_corr2": 2}.get(name, 1)
        if n <= correction:
            leafs = []  # inf/NaN values are compared; their 0/0 gradients are not
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's degrees-of-freedom warning
        out_th = th_fn(p.th, dim, keepdim)
    _check(tf_fn(p.tf, dim, keepdim), out_th, leafs, dtype, seed)


@requires_torch
@pytest.mark.parametrize("name", ["sum", "mean", "amax", "var", "logsumexp", "norm"])
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_reduction_half_vs_torch(name, dtype):
    tf_fn, th_fn = REDUCTIONS[name]
    p = make((6, 5), "T", dtype, 3)
    out = tf_fn(p.tf, 0, False)
    assert out.dtype.name == dtype
    assert_close(out, th_fn(p.th, 0, False), dtype)


@requires_torch
@pytest.mark.parametrize("dtype", ["bool", "int8", "int32", "int64"])
def test_sum_prod_of_integers_give_int64(dtype):
    p = make_int((3, 4), dtype, 5)
    for dim in (None, 1, (0, 1)):
        for f in ("sum", "prod"):
            if f == "prod" and isinstance(dim, tuple):
                continue  # torch.prod takes one dim
            a = getattr(p.tf, f)(dim) if dim is not None else getattr(p.tf, f)()
            b = getattr(p.th, f)(dim) if dim is not None else getattr(p.th, f)()
            assert a.dtype.name == str(b.dtype).split(".")[1]
            np.testing.assert_array_equal(npy(a), b.numpy())


@requires_torch
@given(shape=nonempty_shapes, layout=layouts, dtype=st.sampled_from(FLOAT_DTYPES),
       keepdim=st.booleans(), seed=seeds, data=st.data())
def test_prod_vs_torch(shape, layout, dtype, keepdim, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    p = make(shape, layout, dtype, seed, requires_grad=True)
    _check(p.tf.prod(dim, keepdim=keepdim), p.th.prod(dim, keepdim=keepdim),
           [(p.tf_leaf, p.th_leaf)], dtype, seed)


@requires_torch
def test_prod_gradient_with_zeros_vs_torch():
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.0, 2.0, 3.0]])
    a, b = tinyfw.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    a.prod(1).sum().backward()
    b.prod(1).sum().backward()
    assert_close(a.grad, b.grad, "float64")


@requires_torch
@pytest.mark.parametrize("fn", ["max", "min"])
@given(shape=nonempty_shapes, layout=layouts, dtype=st.sampled_from(FLOAT_DTYPES),
       keepdim=st.booleans(), seed=seeds, data=st.data())
def test_max_min_dim_values_and_indices_vs_torch(fn, shape, layout, dtype, keepdim, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    p = make(shape, layout, dtype, seed, requires_grad=True)
    v, i = getattr(p.tf, fn)(dim, keepdim=keepdim)
    tv, ti = getattr(p.th, fn)(dim, keepdim=keepdim)
    assert i.dtype is tinyfw.int64
    np.testing.assert_array_equal(npy(i), ti.numpy())
    res = getattr(p.tf, fn)(dim, keepdim)
    assert res.values is not None and res.indices is not None
    _check(v, tv, [(p.tf_leaf, p.th_leaf)], dtype, seed)


@requires_torch
@pytest.mark.parametrize("fn", ["argmax", "argmin"])
@given(shape=nonempty_shapes, dtype=st.sampled_from(FLOAT_DTYPES + ("int32",)),
       keepdim=st.booleans(), seed=seeds, data=st.data())
def test_argmax_argmin_vs_torch(fn, shape, dtype, keepdim, seed, data):
    # small integer values make ties, whose first index both must return
    p = make_int(shape, dtype, seed) if dtype == "int32" else make(shape, "T", dtype, seed, "int")
    dim = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    a = getattr(p.tf, fn)(dim, keepdim=keepdim) if dim is not None else getattr(p.tf, fn)()
    b = getattr(p.th, fn)(dim, keepdim=keepdim) if dim is not None else getattr(p.th, fn)()
    assert a.dtype is tinyfw.int64 and a.shape == tuple(b.shape)
    np.testing.assert_array_equal(npy(a), b.numpy())


@requires_torch
def test_full_max_min_and_ties_share_gradient_vs_torch():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 3.0, 0.0]])
    for fn in ("max", "min", "amax", "amin"):
        a, b = tinyfw.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        getattr(a, fn)().backward()
        getattr(b, fn)().backward()
        assert_close(a.grad, b.grad, "float64", msg=fn)
    # elementwise form
    y = np.array([[0.0, 3.0, 4.0], [2.0, 3.0, -1.0]])
    assert_close(tinyfw.tensor(x).max(tinyfw.tensor(y)), torch.tensor(x).max(torch.tensor(y)))


@requires_torch
def test_any_all_cumsum_count_nonzero_vs_torch():
    p = make_int((3, 4), "int32", 2)
    for dim in (None, 0, 1):
        for f in ("any", "all"):
            a = getattr(p.tf, f)(dim) if dim is not None else getattr(p.tf, f)()
            b = getattr(p.th, f)(dim) if dim is not None else getattr(p.th, f)()
            np.testing.assert_array_equal(npy(a), b.numpy())
        np.testing.assert_array_equal(npy(tinyfw.count_nonzero(p.tf, dim)),
                                      torch.count_nonzero(p.th, dim).numpy())
    q = make((3, 4), "T", "float64", 1, requires_grad=True)
    _check(q.tf.cumsum(1), q.th.cumsum(1), [(q.tf_leaf, q.th_leaf)], "float64", 0)


@requires_torch
def test_logsumexp_is_stable_vs_torch():
    x = np.array([[1000.0, 1000.0], [-1000.0, -1001.0], [-np.inf, -np.inf]], np.float32)
    assert_close(tinyfw.tensor(x).logsumexp(1), torch.tensor(x).logsumexp(1))


@requires_torch
def test_var_with_correction_larger_than_n_is_inf_or_nan_like_torch():
    for x in (np.arange(3.0), np.ones(3)):
        for c in (3, 4):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                b = torch.tensor(x).var(correction=c)
            assert_close(tinyfw.tensor(x).var(correction=c), b, "float64")


# -- gradcheck ------------------------------------------------------------------------------
GRADCHECK = {
    "sum": lambda x: x.sum((0, 2)),
    "sum_keep": lambda x: x.sum(1, keepdim=True),
    "mean": lambda x: x.mean(-1),
    "prod": lambda x: x.prod(1),
    "amax": lambda x: x.amax((0, 1)),
    "amin": lambda x: x.amin(2, keepdim=True),
    "max_dim": lambda x: x.max(1).values,
    "min_dim": lambda x: x.min(0, keepdim=True).values,
    "max_all": lambda x: x.max(),
    "var": lambda x: x.var(1),
    "var_corr0": lambda x: x.var((0, 2), correction=0),
    "std": lambda x: x.std(2, keepdim=True),
    "logsumexp": lambda x: x.logsumexp((1, 2)),
    "norm2": lambda x: x.norm(dim=1),
    "norm1": lambda x: x.norm(1),
    "norm3": lambda x: x.norm(3, dim=(0, 2)),
    "norm_inf": lambda x: x.norm(float("inf"), dim=2),
    "cumsum": lambda x: x.cumsum(1),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK))
def test_reduction_gradcheck(name):
    x = make((2, 3, 2), "T", "float64", 5, requires_grad=True).tf_leaf
    assert tinyfw.gradcheck(GRADCHECK[name], (x,))
