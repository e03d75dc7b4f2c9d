"""Issue 16, reductions/scans/order statistics: the three-way table (tests/op_table.py):
PyTorch forward+backward in float64 and float32, float64 gradcheck (gradgrad where the
backward is a formula of ours), and the active backend against ref."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from op_table import KINDS, OpCase, case_id, check, normal, unary


def _distinct(*shape: int):
    """Values without ties (a permutation of spread-out numbers), so the element an order
    statistic selects is unique and its index well defined."""
    def make(rng, dtype):
        n = int(np.prod(shape))
        return [(rng.permutation(n) * 0.37 - n * 0.15 + rng.uniform(0, 0.1, n))
                .reshape(shape).astype(dtype)]
    return make


def _with_zeros(*shape: int):
    """Normal values with exact zeros placed in some slices (one or two per row)."""
    def make(rng, dtype):
        a = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
        a[0, 1] = 0.0
        a[1, 0] = a[1, 3] = 0.0
        return [a.astype(dtype)]
    return make


def _with_nans(*shape: int, all_nan_row: bool = True):
    """Distinct values with NaNs in some slices (one slice all NaN unless told)."""
    def make(rng, dtype):
        a = _distinct(*shape)(rng, dtype)[0]
        a[0, 1] = a[1, 0] = a[1, 2] = np.nan
        if all_nan_row:
            a[2, :] = np.nan
        return [a]
    return make


# finite differences through NaN give NaN, and through ties pick a side: these inputs are
# checked against PyTorch's gradient and ref, not by gradcheck
NO_GC = ("torch64", "torch32", "ref")


def _small_ints(*shape: int):
    """Float values from a few integers: repeated values for mode/unique."""
    return lambda rng, dtype: [rng.integers(0, 4, shape).astype(dtype)]


def _q(values):
    return lambda rng, dtype: [_distinct(4, 7)(rng, dtype)[0], np.array(values, dtype)]


def _cov_inputs(rng, dtype):
    return [rng.standard_normal((3, 6)).astype(dtype), rng.integers(1, 4, 6),
            rng.uniform(0.2, 1.0, 6).astype(dtype)]


SCANS = [
    OpCase("cumsum_0d", lambda x: x.cumsum(0), lambda x: x.cumsum(0),
           lambda rng, dtype: [np.array(1.5, dtype)]),
    OpCase("cumsum_len1", lambda x: x.cumsum(-1), lambda x: x.cumsum(-1), unary(1)),
    OpCase("cumprod", lambda x: x.cumprod(1), lambda x: x.cumprod(1), unary(3, 5), gradgrad=True,
           terms=5),
    OpCase("cumprod_zeros", lambda x: tinyfw.cumprod(x, -1), lambda x: x.cumprod(-1),
           _with_zeros(3, 5), gradgrad=True, terms=5),
    OpCase("cumprod_dim0_zeros", lambda x: x.cumprod(0), lambda x: x.cumprod(0),
           lambda rng, dtype: [a.T.copy() for a in _with_zeros(3, 5)(rng, dtype)],
           gradgrad=True, terms=5),
    OpCase("cumprod_0d", lambda x: x.cumprod(0), lambda x: x.cumprod(0),
           lambda rng, dtype: [np.array(-1.5, dtype)], gradgrad=True),
    OpCase("cummax", lambda x: x.cummax(1), lambda x: x.cummax(1), _distinct(3, 6),
           gradgrad=True),
    OpCase("cummin", lambda x: tinyfw.cummin(x, -2), lambda x: x.cummin(-2), _distinct(5, 3),
           gradgrad=True),
    OpCase("logcumsumexp", lambda x: x.logcumsumexp(1), lambda x: x.logcumsumexp(1),
           normal((3, 6)), gradgrad=True, terms=6),
    OpCase("logcumsumexp_spread", lambda x: tinyfw.logcumsumexp(x, 0),
           lambda x: x.logcumsumexp(0), unary(7, 2, low=-30, high=30), gradgrad=True, terms=7),
]

ORDER = [
    OpCase("median_dim", lambda x: x.median(1), lambda x: x.median(1), _distinct(4, 7)),
    OpCase("median_even_keepdim", lambda x: tinyfw.median(x, -2, keepdim=True),
           lambda x: x.median(-2, keepdim=True), _distinct(6, 3)),
    OpCase("median_all", lambda x: x.median(), lambda x: x.median(), _distinct(4, 5)),
    OpCase("median_nan", lambda x: x.median(1), lambda x: x.median(1), _with_nans(4, 5), kinds=NO_GC),
    OpCase("nanmedian", lambda x: x.nanmedian(1), lambda x: x.nanmedian(1),
           _with_nans(4, 5, all_nan_row=False), kinds=NO_GC),
    OpCase("nanmedian_all", lambda x: tinyfw.nanmedian(x), lambda x: x.nanmedian(),
           _with_nans(4, 5), kinds=NO_GC),
    OpCase("kthvalue", lambda x: x.kthvalue(3, 1), lambda x: x.kthvalue(3, 1), _distinct(4, 6)),
    OpCase("kthvalue_keepdim", lambda x: tinyfw.kthvalue(x, 1, 0, keepdim=True),
           lambda x: x.kthvalue(1, 0, keepdim=True), _distinct(4, 6)),
    OpCase("mode", lambda x: x.mode(1), lambda x: x.mode(1), _small_ints(5, 9), kinds=NO_GC),
    OpCase("mode_dim0_keepdim", lambda x: tinyfw.mode(x, 0, True), lambda x: x.mode(0, True),
           _small_ints(9, 4), kinds=NO_GC),
    OpCase("msort", lambda x: x.msort(), lambda x: x.msort(), _distinct(5, 3)),
    OpCase("sort_stable", lambda x: x.sort(stable=True, dim=0), lambda x: x.sort(stable=True, dim=0),
           _small_ints(8, 3), kinds=NO_GC),
    OpCase("argsort_stable_desc", lambda x: tinyfw.argsort(x, 1, True, stable=True),
           lambda x: x.argsort(dim=1, descending=True, stable=True), _small_ints(3, 8), grad=False),
]
for _mode in ("linear", "lower", "higher", "midpoint", "nearest"):
    ORDER.append(OpCase(f"quantile_{_mode}",
                        lambda x, q, m=_mode: x.quantile(q, 1, interpolation=m),
                        lambda x, q, m=_mode: x.quantile(q, 1, interpolation=m),
                        _q([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]), frozen=(1,)))
ORDER += [
    OpCase("quantile_float_all", lambda x: x.quantile(0.3), lambda x: x.quantile(0.3),
           _distinct(4, 5)),
    OpCase("quantile_keepdim", lambda x: tinyfw.quantile(x, 0.7, 0, keepdim=True),
           lambda x: x.quantile(0.7, 0, keepdim=True), _distinct(5, 4)),
    OpCase("quantile_none_keepdim", lambda x, q: x.quantile(q, None, True),
           lambda x, q: x.quantile(q, None, True), _q([0.2, 0.6]), frozen=(1,)),
    OpCase("quantile_nan", lambda x: x.quantile(0.4, 1), lambda x: x.quantile(0.4, 1),
           _with_nans(4, 5), kinds=NO_GC),
    OpCase("nanquantile", lambda x: x.nanquantile(0.4, 1), lambda x: x.nanquantile(0.4, 1),
           _with_nans(4, 5), kinds=NO_GC),
    OpCase("nanquantile_midpoint", lambda x: tinyfw.nanquantile(x, 0.5, -1, interpolation="midpoint"),
           lambda x: x.nanquantile(0.5, -1, interpolation="midpoint"), _with_nans(4, 6), kinds=NO_GC),
]

STATS = [
    OpCase("nansum", lambda x: x.nansum(1), lambda x: x.nansum(1), _with_nans(4, 5), terms=5, kinds=NO_GC),
    OpCase("nansum_all", lambda x: tinyfw.nansum(x), lambda x: x.nansum(), _with_nans(4, 5),
           terms=20, kinds=NO_GC),
    OpCase("nanmean", lambda x: x.nanmean(0, keepdim=True), lambda x: x.nanmean(0, keepdim=True),
           _with_nans(4, 5), terms=4, kinds=NO_GC),
    OpCase("aminmax", lambda x: x.aminmax(dim=1), lambda x: x.aminmax(dim=1), _distinct(3, 4)),
    OpCase("aminmax_all", lambda x: tinyfw.aminmax(x), lambda x: x.aminmax(), _distinct(3, 4)),
    OpCase("trace", lambda x: x.trace(), lambda x: x.trace(), normal((4, 4)), terms=4),
    OpCase("trace_wide", lambda x: tinyfw.trace(x), lambda x: x.trace(), normal((3, 5)), terms=3),
    OpCase("trace_tall", lambda x: x.trace(), lambda x: x.trace(), normal((5, 1))),
    OpCase("diff", lambda x: x.diff(), lambda x: x.diff(), normal((3, 5))),
    OpCase("diff_n2_dim0", lambda x: tinyfw.diff(x, 2, 0), lambda x: x.diff(2, 0), normal((5, 3))),
    OpCase("diff_prepend_append", lambda x, p, a: x.diff(1, 1, p, a),
           lambda x, p, a: x.diff(1, 1, p, a), normal((3, 4), (3, 2), (3, 1))),
    OpCase("dist", lambda a, b: a.dist(b), lambda a, b: a.dist(b), normal((3, 4), (4,)), terms=12),
    OpCase("dist_p1", lambda a, b: tinyfw.dist(a, b, 1), lambda a, b: a.dist(b, 1),
           normal((3, 4), (3, 4)), terms=12),
    OpCase("dist_p3", lambda a, b: a.dist(b, 3.0), lambda a, b: a.dist(b, 3.0),
           normal((3, 4), (3, 4)), terms=12),
    OpCase("dist_inf", lambda a, b: a.dist(b, float("inf")), lambda a, b: a.dist(b, float("inf")),
           normal((3, 4), (3, 4))),
    # a count: piecewise constant (PyTorch's own backward of dist(p=0) raises)
    OpCase("dist_p0", lambda a, b: a.dist(b, 0), lambda a, b: a.dist(b, 0),
           normal((3, 4), (3, 4)), grad=False),
    OpCase("renorm", lambda x: x.renorm(2, 0, 1.5), lambda x: x.renorm(2, 0, 1.5),
           normal((4, 3)), terms=3),
    OpCase("renorm_p1_dim1", lambda x: tinyfw.renorm(x, 1, -1, 2.0), lambda x: x.renorm(1, -1, 2.0),
           normal((3, 4, 2)), terms=6),
    OpCase("cov", lambda x: x.cov(), lambda x: x.cov(), normal((3, 6)), terms=6),
    OpCase("cov_1d_corr0", lambda x: tinyfw.cov(x, correction=0), lambda x: x.cov(correction=0),
           normal((7,)), terms=7),
    OpCase("cov_weights", lambda x, f, a: x.cov(fweights=f, aweights=a),
           lambda x, f, a: x.cov(fweights=f, aweights=a), _cov_inputs, terms=6),
    OpCase("corrcoef", lambda x: x.corrcoef(), lambda x: x.corrcoef(), normal((3, 6)), terms=6),
]

SETS = [
    OpCase("unique", lambda x: x.unique(return_inverse=True, return_counts=True),
           lambda x: x.unique(return_inverse=True, return_counts=True), _small_ints(4, 5),
           grad=False),
    OpCase("unique_dim", lambda x: tinyfw.unique(x, dim=1, return_inverse=True, return_counts=True),
           lambda x: x.unique(dim=1, return_inverse=True, return_counts=True),
           lambda rng, dtype: [rng.integers(0, 2, (2, 9)).astype(dtype)], grad=False),
    OpCase("unique_consecutive", lambda x: x.unique_consecutive(return_inverse=True, return_counts=True),
           lambda x: x.unique_consecutive(return_inverse=True, return_counts=True),
           lambda rng, dtype: [np.repeat(rng.integers(0, 3, 8), rng.integers(1, 3, 8)).astype(dtype)],
           grad=False),
    OpCase("unique_consecutive_dim0",
           lambda x: tinyfw.unique_consecutive(x, return_counts=True, dim=0),
           lambda x: x.unique_consecutive(return_counts=True, dim=0),
           lambda rng, dtype: [np.repeat(rng.integers(0, 2, (5, 2)), 2, axis=0).astype(dtype)],
           grad=False),
    OpCase("nonzero", lambda x: x.nonzero(), lambda x: x.nonzero(), _small_ints(3, 4), grad=False),
    OpCase("nonzero_tuple", lambda x: tinyfw.nonzero(x, as_tuple=True),
           lambda x: x.nonzero(as_tuple=True), _small_ints(2, 3, 4), grad=False),
    OpCase("argwhere", lambda x: x.argwhere(), lambda x: x.argwhere(), _small_ints(3, 4), grad=False),
    OpCase("nonzero_static_pad", lambda x: x.nonzero_static(size=14, fill_value=-7),
           lambda x: x.nonzero_static(size=14, fill_value=-7), _small_ints(3, 4), grad=False),
    OpCase("nonzero_static_cut", lambda x: tinyfw.nonzero_static(x, size=2),
           lambda x: x.nonzero_static(size=2), _small_ints(3, 4), grad=False),
]

# the NaN-aware ops on finite inputs, for gradcheck (the NaN cases above skip it)
GC = ("gradcheck",)
FINITE = [
    OpCase("median_gc", lambda x: x.median(0), None, _distinct(5, 3), kinds=GC),
    OpCase("nanmedian_gc", lambda x: x.nanmedian(), None, _distinct(3, 4), kinds=GC),
    OpCase("nanquantile_gc", lambda x: x.nanquantile(0.3, 1), None, _distinct(3, 4), kinds=GC),
    OpCase("nansum_gc", lambda x: x.nansum(1), None, normal((3, 4)), kinds=GC),
    OpCase("nanmean_gc", lambda x: x.nanmean(), None, normal((3, 4)), kinds=GC),
    OpCase("mode_gc", lambda x: x.mode(1), None, _distinct(3, 4), kinds=GC),
]

CASES = SCANS + ORDER + STATS + SETS + FINITE


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)
