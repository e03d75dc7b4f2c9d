"""Issue 16, reductions/scans/order statistics: NaN, inf, empty, 0-d, negative-dim and
integer-dtype edge cases against PyTorch, hypothesis shapes, and the error messages."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
from helpers import from_np, npy, requires_torch, torch

pytestmark = requires_torch

NAN, INF = float("nan"), float("inf")


def _flat(out) -> list:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


def same(fn, *arrays, rtol: float = 1e-12, atol: float = 1e-12) -> None:
    """fn(tinyfw, *tensors) and fn(torch, *tensors) give the same shapes, dtypes and values
    (NaN equal to NaN; float64 inputs, so the bound is float64 rounding)."""
    a = _flat(fn(tinyfw, *[from_np(np.array(x)) for x in arrays]))
    b = _flat(fn(torch, *[torch.from_numpy(np.array(x)) for x in arrays]))
    assert len(a) == len(b)
    for i, (u, v) in enumerate(zip(a, b)):
        u, v = npy(u), v.detach().numpy()
        assert u.shape == v.shape, f"output {i}: shape {u.shape} vs PyTorch's {v.shape}"
        assert u.dtype == v.dtype, f"output {i}: dtype {u.dtype} vs PyTorch's {v.dtype}"
        np.testing.assert_allclose(u, v, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"output {i}")


F = np.array([[3.0, NAN, -1.0, 2.0], [INF, 0.5, -INF, 0.5], [1.0, 2.0, 3.0, 4.0]])
INTS = {"int32": np.array([[3, -1, 2], [0, 5, 5]], np.int32),
        "int64": np.array([[3, -1, 2], [0, 5, 5]], np.int64),
        "int8": np.array([[3, -1, 2], [0, 5, 5]], np.int8),
        "bool": np.array([[True, False, True], [False, False, True]])}
EMPTY = [np.zeros((0, 3)), np.zeros((2, 0)), np.zeros((0,))]


# -- scans ---------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@pytest.mark.parametrize("x", [np.array(2.5), np.array([-3.0]), np.array([[1.5]])],
                         ids=["0d", "len1", "1x1"])
@pytest.mark.parametrize("dim", [0, -1])
def test_sum_prod_scans_of_one_element(op, x, dim):
    """The issue's cumsum on shape (1,) (and 0-d: shape (1,) before this family)."""
    same(lambda m, t: getattr(m, op)(t, dim), x)


@pytest.mark.parametrize("op", ["cumsum", "cumprod", "cummax", "cummin"])
@pytest.mark.parametrize("dt", list(INTS))
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scans_of_ints_and_bools(op, dt, dim):
    """cumsum/cumprod give int64; cummax/cummin keep the dtype (bool included)."""
    same(lambda m, t: getattr(m, op)(t, dim), INTS[dt])


@pytest.mark.parametrize("op", ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scans_with_nan_and_inf(op, dim):
    same(lambda m, t: getattr(m, op)(t, dim), F)


@pytest.mark.parametrize("op", ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"])
@pytest.mark.parametrize("x", EMPTY, ids=["0x3", "2x0", "0"])
def test_scans_of_empty_tensors(op, x):
    for dim in range(-x.ndim, x.ndim):
        same(lambda m, t: getattr(m, op)(t, dim), x)


@pytest.mark.parametrize("op", ["cummax", "cummin", "logcumsumexp"])
def test_scans_of_0d(op):
    same(lambda m, t: getattr(m, op)(t, 0), np.array(-0.75))


def test_logcumsumexp_of_infinities():
    x = np.array([-INF, -INF, 1.0, INF, 2.0, INF, -INF, NAN, 0.0])
    same(lambda m, t: m.logcumsumexp(t, 0), x)


def test_cumsum_cumprod_dtype_argument():
    same(lambda m, t: m.cumsum(t, 1, dtype=m.float64), INTS["int32"])
    same(lambda m, t: m.cumprod(t, 0, dtype=m.float32), INTS["int8"])


@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data())
def test_scans_vs_torch_on_hypothesis_shapes(shape, data):
    """Forward and backward of every scan on random shapes, dims and (transposed) layouts."""
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    seed = data.draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if data.draw(st.booleans()):
        x[rng.random(shape) < 0.3] = 0.0  # zeros for cumprod's gradient
    if x.ndim >= 2:
        x = np.ascontiguousarray(x.swapaxes(-1, -2)).swapaxes(-1, -2)
    g = rng.standard_normal(shape)
    for op in ("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"):
        a = from_np(x.copy()).requires_grad_()
        b = torch.from_numpy(x.copy()).requires_grad_()
        ya, yb = _flat(getattr(a, op)(dim))[0], _flat(getattr(b, op)(dim))[0]
        np.testing.assert_allclose(npy(ya), yb.detach().numpy(), rtol=1e-12, atol=1e-12)
        (ya * tinyfw.tensor(g)).sum().backward()
        (yb * torch.from_numpy(g)).sum().backward()
        np.testing.assert_allclose(npy(a.grad), b.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=op)


# -- order statistics ----------------------------------------------------------------------
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3), st.data())
def test_order_statistics_vs_torch_on_hypothesis_shapes(shape, data):
    """median/nanmedian/kthvalue/quantile/nanquantile/mode forward and backward on random
    shapes, dims and keepdim, tie-free values (some NaN for the nan-variants' values)."""
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keep = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    n = int(np.prod(shape))
    x = (rng.permutation(n) + rng.uniform(0, 0.5, n)).reshape(shape)
    k = data.draw(st.integers(1, shape[dim]))
    q = data.draw(st.sampled_from([0.0, 0.3, 0.5, 1.0]))
    ops = {"median": lambda t: t.median(dim, keep), "nanmedian": lambda t: t.nanmedian(dim, keep),
           "kthvalue": lambda t: t.kthvalue(k, dim, keep),
           "quantile": lambda t: t.quantile(q, dim, keep),
           "nanquantile": lambda t: t.nanquantile(q, dim, keep),
           "mode": lambda t: t.mode(dim, keep), "median_all": lambda t: t.median()}
    g = None
    for name, fn in ops.items():
        a, b = from_np(x.copy()).requires_grad_(), torch.from_numpy(x.copy()).requires_grad_()
        ya, yb = _flat(fn(a)), _flat(fn(b))
        for u, v in zip(ya, yb):
            assert npy(u).shape == tuple(v.shape), name
            np.testing.assert_allclose(npy(u), v.detach().numpy(), rtol=1e-12, err_msg=name)
        g = rng.standard_normal(tuple(yb[0].shape))
        (ya[0] * tinyfw.tensor(g)).sum().backward()
        (yb[0] * torch.from_numpy(g)).sum().backward()
        np.testing.assert_allclose(npy(a.grad), b.grad.numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=name)


@pytest.mark.parametrize("op", ["median", "nanmedian"])
def test_median_nan_and_dims(op):
    for dim in (0, 1, -1, -2):
        same(lambda m, t: getattr(m, op)(t, dim), F)
        same(lambda m, t: getattr(m, op)(t, dim, keepdim=True), F)
    same(lambda m, t: getattr(m, op)(t), F)


def test_nanmedian_all_nan_value():
    """An all-NaN slice's nanmedian is NaN (its index is PyTorch's selection order: not
    compared, docs/semantics.md)."""
    x = np.full((2, 5), NAN)
    v, _ = tinyfw.nanmedian(tinyfw.tensor(x), 1)
    assert np.isnan(npy(v)).all()
    assert np.isnan(tinyfw.nanmedian(tinyfw.tensor(x)).item())


@pytest.mark.parametrize("dt", ["int32", "int64", "int8"])
def test_order_statistics_of_ints(dt):
    x = np.array([[3, -1, 2, 7], [0, 5, 4, 1]], dt)
    same(lambda m, t: m.median(t, 1), x)
    same(lambda m, t: m.nanmedian(t, 0), x)
    same(lambda m, t: m.median(t), x)
    same(lambda m, t: m.kthvalue(t, 2, -1), x)
    same(lambda m, t: m.msort(t), x)
    same(lambda m, t: m.mode(t, -1), np.array([[1, 2, 2, 0], [4, 4, 1, 1]], dt))


def test_order_statistics_of_0d():
    x = np.array(1.25)
    same(lambda m, t: m.median(t, 0), x)
    same(lambda m, t: m.median(t), x)
    same(lambda m, t: m.kthvalue(t, 1, 0), x)
    same(lambda m, t: m.mode(t, -1), x)
    same(lambda m, t: m.quantile(t, 0.3), x)
    same(lambda m, t: m.quantile(t, 0.3, 0, keepdim=True), x)


def test_order_statistics_of_empty():
    same(lambda m, t: m.median(t), np.zeros((0, 3)))
    same(lambda m, t: m.median(t, 1), np.zeros((0, 3)))
    for fn in (lambda m, t: m.median(t, 0), lambda m, t: m.mode(t, 0)):
        with pytest.raises(IndexError):
            fn(tinyfw, tinyfw.zeros(0, 3))
        with pytest.raises(IndexError):
            fn(torch, torch.zeros(0, 3))
    for fn in (lambda m, t: m.quantile(t, 0.5), lambda m, t: m.nanquantile(t, 0.5, 0)):
        with pytest.raises(RuntimeError, match="quantile.*non-empty"):
            fn(tinyfw, tinyfw.zeros(0, 3))
        with pytest.raises(RuntimeError, match="quantile.*non-empty"):
            fn(torch, torch.zeros(0, 3))


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
@pytest.mark.parametrize("op", ["quantile", "nanquantile"])
def test_quantile_nan_and_q_shapes(interpolation, op):
    q = np.array([0.0, 0.125, 0.5, 0.75, 1.0])
    for dim in (None, 0, -1):
        for keep in (False, True):
            same(lambda m, t, qq: getattr(m, op)(t, qq, dim, keep, interpolation=interpolation),
                 F, q)
            same(lambda m, t: getattr(m, op)(t, 0.4, dim, keep, interpolation=interpolation), F)
    same(lambda m, t, qq: getattr(m, op)(t, qq, 1), F, np.array(0.3))


def test_quantile_nearest_rounds_half_to_even():
    """rank 1.5 and 2.5 (q = 0.5 of 4 and 6 values) round to 2, as PyTorch's round."""
    for n in (4, 6):
        same(lambda m, t: m.quantile(t, 0.5, interpolation="nearest"), np.arange(n) * 1.5)


def test_sort_stable_ties_and_nan_order():
    x = np.array([2.0, NAN, 1.0, 2.0, -INF, NAN, 1.0, INF, 2.0])
    for desc in (False, True):
        same(lambda m, t: m.sort(t, descending=desc, stable=True), x)
        same(lambda m, t: m.argsort(t, dim=0, descending=desc, stable=True), x)
        same(lambda m, t: m.sort(t, stable=True, dim=-1, descending=desc), INTS["int32"])


def test_mode_picks_smallest_value_and_last_index():
    x = np.array([[5.0, 1.0, 1.0, 5.0, 3.0], [2.0, 2.0, 2.0, 0.0, 2.0]])
    same(lambda m, t: m.mode(t, 1), x)
    same(lambda m, t: m.mode(t, 0), x)


# -- stats ---------------------------------------------------------------------------------
def test_nansum_nanmean_edges():
    for dim in (None, 0, -1):
        same(lambda m, t: m.nansum(t, dim), F)
        same(lambda m, t: m.nanmean(t, dim), np.array([[NAN, NAN], [1.0, NAN]]))
    same(lambda m, t: m.nansum(t), INTS["int32"])
    same(lambda m, t: m.nansum(t, 1), INTS["bool"])
    same(lambda m, t: m.nansum(t, 0), np.zeros((0, 3)))
    same(lambda m, t: m.nanmean(t, 0), np.zeros((0, 3)))


def test_aminmax_edges():
    same(lambda m, t: m.aminmax(t), F)
    same(lambda m, t: m.aminmax(t, dim=-1, keepdim=True), F)
    same(lambda m, t: m.aminmax(t, keepdim=True), F)
    same(lambda m, t: m.aminmax(t, dim=0), INTS["int8"])
    same(lambda m, t: m.aminmax(t, dim=0), np.array(2.0))


def test_trace_diff_dist_edges():
    same(lambda m, t: m.trace(t), INTS["int32"])
    same(lambda m, t: m.trace(t), np.zeros((0, 3)))
    same(lambda m, t: m.diff(t, 1, 0), INTS["bool"])
    same(lambda m, t: m.diff(t, 3, -1), INTS["int8"])
    same(lambda m, t: m.diff(t, 0), F)
    same(lambda m, t: m.diff(t, 5, 1), F)
    same(lambda m, t: m.diff(t, 1, 0), np.zeros((0, 3)))
    same(lambda m, t, p: m.diff(t, 1, 0, prepend=p), F, np.array([[1.0, 2.0, 3.0, 4.0]]))
    for p in (0, 1, 2, 3.5, INF, -INF):
        same(lambda m, a, b: m.dist(a, b, p), F, np.array([1.0, -2.0, 0.5, 2.0]))


def test_cov_corrcoef_edges():
    same(lambda m, t: m.cov(t), np.array([[1.0, 2.0, 4.0]]))
    with pytest.warns(UserWarning, match="degrees of freedom"):  # one observation: N - 1 = 0
        same(lambda m, t: m.cov(t), np.array([[1.0], [2.0]]))
    same(lambda m, t: m.cov(t, correction=2), np.array([[1.0, 2.0, 4.0], [0.5, 0.0, 1.0]]))
    # ints are computed in the default float32 (PyTorch too): float32 rounding of a
    # 3-term sum and a division, a few ulps
    same(lambda m, t: m.cov(t), INTS["int64"], rtol=1e-6)
    same(lambda m, t: m.corrcoef(t), np.array([[1.0, 2.0, 4.0], [2.0, 4.0, 8.0]]))
    same(lambda m, t: m.corrcoef(t), np.array([1.0, 2.0, 4.0]))


def test_renorm_leaves_small_slices():
    x = np.array([[0.1, 0.2], [3.0, 4.0], [0.0, 0.0]])
    same(lambda m, t: m.renorm(t, 2, 0, 1.0), x)
    same(lambda m, t: m.renorm(t, 1, 1, 2.0), x)


# -- selections ----------------------------------------------------------------------------
def test_unique_edges():
    for x in (np.zeros((0,)), np.array(3.0), INTS["bool"], INTS["int8"], F):
        same(lambda m, t: m.unique(t, return_inverse=True, return_counts=True), x)
        same(lambda m, t: m.unique_consecutive(t, return_inverse=True, return_counts=True), x)
    same(lambda m, t: m.unique(t, dim=0, return_inverse=True, return_counts=True),
         np.zeros((0, 3)))
    x = np.array([[1, 0, 1], [2, 2, 2], [1, 0, 1], [0, 9, 9]])
    for dim in (0, 1, -1):
        same(lambda m, t: m.unique(t, dim=dim, return_inverse=True, return_counts=True), x)
        same(lambda m, t: m.unique_consecutive(t, dim=dim, return_counts=True), x)


def test_unique_unsorted_is_the_same_set():
    x = tinyfw.tensor([3, 1, 3, 2])
    assert sorted(tinyfw.unique(x, sorted=False).tolist()) == [1, 2, 3]


def test_nonzero_edges():
    for x in (np.zeros((0, 3)), np.array(0.0), np.array(2.0), INTS["bool"], F):
        same(lambda m, t: m.nonzero(t), x)
        same(lambda m, t: m.nonzero(t, as_tuple=True), x)
        same(lambda m, t: m.argwhere(t), x)
        same(lambda m, t: m.nonzero_static(t, size=0), x)
        same(lambda m, t: m.nonzero_static(t, size=3, fill_value=9), x)


# -- errors --------------------------------------------------------------------------------
ERRORS = [
    (lambda: tinyfw.logcumsumexp(tinyfw.tensor([1, 2]), 0), TypeError, "logcumsumexp: .*floating"),
    (lambda: tinyfw.cumprod(tinyfw.ones(2, 3), 2), IndexError, "cumprod"),
    (lambda: tinyfw.cummax(tinyfw.tensor(1.0), 1), IndexError, "cummax"),
    (lambda: tinyfw.kthvalue(tinyfw.ones(3), 4), RuntimeError, "kthvalue: k=4 is out of range"),
    (lambda: tinyfw.quantile(tinyfw.ones(3), 1.5), RuntimeError, "quantile: q must be in"),
    (lambda: tinyfw.quantile(tinyfw.ones(3), tinyfw.tensor([0.2, -0.1])), RuntimeError,
     "quantile: q values"),
    (lambda: tinyfw.quantile(tinyfw.tensor([1, 2]), 0.5), TypeError, "quantile: input must be"),
    (lambda: tinyfw.nanquantile(tinyfw.ones(3), 0.5, interpolation="cubic"), ValueError,
     "nanquantile: interpolation"),
    (lambda: tinyfw.quantile(tinyfw.ones(3), tinyfw.ones(2, 2) / 2), RuntimeError, "scalar or 1-D"),
    (lambda: tinyfw.median(tinyfw.zeros(0, 2), 0), IndexError, "median: cannot reduce"),
    (lambda: tinyfw.mode(tinyfw.zeros(2, 0)), IndexError, "mode: cannot reduce"),
    (lambda: tinyfw.nanmean(tinyfw.tensor([1, 2])), TypeError, "nanmean: input dtype"),
    (lambda: tinyfw.aminmax(tinyfw.zeros(0)), RuntimeError, "aminmax: cannot compute"),
    (lambda: tinyfw.trace(tinyfw.ones(3)), RuntimeError, "trace: expected a matrix"),
    (lambda: tinyfw.diff(tinyfw.tensor(1.0)), RuntimeError, "diff: expects"),
    (lambda: tinyfw.diff(tinyfw.ones(3), -1), RuntimeError, "diff: order n"),
    (lambda: tinyfw.diff(tinyfw.ones(2, 3), prepend=tinyfw.ones(3)), RuntimeError,
     "diff: prepend must have 2 dims"),
    (lambda: tinyfw.dist(tinyfw.ones(3), tinyfw.ones(3), -1), RuntimeError, "dist: p must"),
    (lambda: tinyfw.renorm(tinyfw.ones(3), 2, 0, 1.0), RuntimeError, "renorm: input needs"),
    (lambda: tinyfw.renorm(tinyfw.ones(3, 2), 0, 0, 1.0), RuntimeError, "renorm: non-positive"),
    (lambda: tinyfw.cov(tinyfw.ones(2, 2, 2)), RuntimeError, "cov: expected input"),
    (lambda: tinyfw.cov(tinyfw.ones(2, 3), fweights=tinyfw.tensor([1.0, 2.0, 1.0])), TypeError,
     "cov: expected fweights to have an integral"),
    (lambda: tinyfw.cov(tinyfw.ones(2, 3), aweights=tinyfw.ones(2)), RuntimeError,
     "cov: expected aweights to have the same numel"),
    (lambda: tinyfw.cov(tinyfw.ones(2, 3), fweights=tinyfw.tensor([1, -1, 1])), RuntimeError,
     "cov: fweights cannot be negative"),
    (lambda: tinyfw.corrcoef(tinyfw.ones(2, 2, 2)), RuntimeError, "corrcoef: expected"),
    (lambda: tinyfw.nonzero_static(tinyfw.ones(3), size=-1), RuntimeError, "nonzero_static: size"),
    (lambda: tinyfw.unique(tinyfw.ones(3), dim=1), IndexError, "unique"),
    (lambda: tinyfw.unique(tinyfw.ones(3, 0), dim=0), RuntimeError, "unique: dims of size 0"),
    (lambda: tinyfw.unique_consecutive(tinyfw.ones(0, 2, 0), dim=1), RuntimeError,
     "unique_consecutive: dims of size 0"),
]


@pytest.mark.parametrize("fn,exc,msg", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors_name_the_op(fn, exc, msg):
    with pytest.raises(exc, match=msg):
        fn()
