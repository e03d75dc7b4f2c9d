"""The scan kernels of csrc/scan.cpp (cumprod, cummax, cummin, logcumsumexp) against the
reference backend (tinyfw/backend/ref_scan.py): every dtype, generated shapes, dims and
memory layouts, the threaded sizes, and one thread against two.

cumprod and cummax/cummin fold in ref's sequential order in the same arithmetic, so they
are compared bit for bit (indices included).  logcumsumexp calls exp and log1p, whose
last bits differ between libm and numpy; see `_lse_bound`."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
from tinyfw.backend import cpu, ref
from helpers import in_layout
from test_conformance import ALL, FLOATS, _eps, _values, assert_conform, layouts, shapes

KERNELS = ["cumprod", "cummax", "cummin", "logcumsumexp"]
pytestmark = pytest.mark.skipif(not all(k in cpu.KERNELS for k in KERNELS),
                                reason="tinyfw._C is not built with csrc/scan.cpp "
                                       "(python setup.py build_ext --inplace)")


def _lse_bound(x: np.ndarray, exp: np.ndarray, dim: int) -> np.ndarray:
    """|kernel - ref| bound for logcumsumexp.  One step is hi + log1p(exp(lo - hi)): each
    side rounds exp, log1p and the add, a few ulps (4 each, of the accumulator's compute
    type) of max(|acc|, 1) since log1p(...) lies in [0, log 2]; a step's derivative by the
    previous accumulator lies in [0, 1], so differences add up at most linearly along the
    dim: n * 2 * 3 * 4 ulps of (max |acc| + 1).  Half types then round both float32
    results once: one ulp of the half type more."""
    n = max(x.shape[dim], 1)
    c = np.float32 if x.dtype.itemsize <= 4 else np.float64
    e = np.abs(exp.astype(np.float64))
    big = np.nanmax(np.where(np.isfinite(e), e, 0), initial=0.0) + 1.0
    tol = np.full(exp.shape, n * 24 * np.finfo(c).eps * big)
    if str(exp.dtype) in ("float16", "bfloat16"):
        tol = tol + e * _eps(exp.dtype) * 1.01
    return tol


def _compare(name: str, x: np.ndarray, dim: int, label: str) -> None:
    out, exp = getattr(cpu, name)(x, dim), getattr(ref, name)(x, dim)
    if name in ("cummax", "cummin"):
        assert_conform(out[0], exp[0], "exact", label + " values")
        assert_conform(out[1], exp[1], "exact", label + " indices")
    elif name == "cumprod":
        assert_conform(out, exp, "exact", label)
    else:
        assert out.dtype == exp.dtype and out.shape == exp.shape, label
        o, e = out.astype(np.float64), exp.astype(np.float64)
        assert np.array_equal(np.isnan(o), np.isnan(e)), f"{label}: NaN positions differ"
        inf = np.isinf(e)
        assert np.array_equal(o[inf], e[inf]), f"{label}: infinities differ"
        fin = ~np.isnan(e) & ~inf
        tol = _lse_bound(x, exp, dim)
        o, e = o[fin], e[fin]
        bad = np.abs(o - e) > tol[fin]
        assert not bad.any(), f"{label}: {o[bad][:5]} vs ref {e[bad][:5]}"


@pytest.mark.parametrize("name", KERNELS)
@given(shape=shapes, layout=layouts, seed=st.integers(0, 2 ** 16), di=st.integers(0, 7),
       dim=st.integers(0, 3))
def test_scan_kernels_match_ref(name, shape, layout, seed, di, dim):
    """Generated shapes (empty dims too), dims, layouts and dtypes; special values (ties,
    -0.0, NaN, inf) for the extrema and logcumsumexp, values near 1 for products."""
    dtypes = FLOATS if name == "logcumsumexp" else ALL
    dtype = dtypes[di % len(dtypes)]
    if not shape:
        shape = (3,)
    rng = np.random.default_rng(seed)
    kind = "near1" if name == "cumprod" else "special"
    x = in_layout(_values(rng, shape, dtype, kind), layout)
    dim = dim % x.ndim
    _compare(name, x, dim, f"{name}[{dtype}, {layout}, shape={shape}, dim={dim}]")


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("dim", [0, 1])
def test_scan_kernels_threaded_sizes(name, dim):
    """700 x 900: threads take slices of the kept positions; both memory orders."""
    rng = np.random.default_rng(5)
    x = rng.uniform(0.9, 1.1, (700, 900)).astype(np.float32)
    if name != "cumprod":
        x = rng.standard_normal((700, 900)).astype(np.float32) * 3
    x[5, 7] = np.nan
    x[9, 11] = np.inf
    for v in (x, x.T):
        _compare(name, v, dim, f"{name} {v.shape} dim={dim}")


@pytest.mark.parametrize("name", KERNELS)
def test_scan_kernels_do_not_depend_on_the_thread_count(name):
    x = np.random.default_rng(6).standard_normal((300, 257)).astype(np.float32)
    n0 = tinyfw.get_num_threads()
    try:
        tinyfw.set_num_threads(1)
        one = getattr(cpu, name)(x, 1)
        tinyfw.set_num_threads(2)
        two = getattr(cpu, name)(x, 1)
    finally:
        tinyfw.set_num_threads(n0)
    for a, b in zip(one if isinstance(one, tuple) else (one,), two if isinstance(two, tuple) else (two,)):
        np.testing.assert_array_equal(a, b)


def test_scan_kernels_special_values():
    """logcumsumexp's equal infinities and NaN; the extrema's NaN takeover; int64 wrap."""
    x = np.array([-np.inf, -np.inf, 1.0, np.inf, 2.0, np.inf, np.nan, 0.0, -0.0])
    for name in KERNELS:
        _compare(name, x, 0, name)
    big = np.array([2 ** 40, 2 ** 40, 3], np.int64)
    np.testing.assert_array_equal(cpu.cumprod(big, 0), ref.cumprod(big, 0))


@pytest.mark.parametrize("name", KERNELS)
def test_scan_kernels_reject_bad_input(name):
    with pytest.raises(ValueError, match=f"{name}.*out of range"):
        getattr(cpu, name)(np.ones((2, 3), np.float32), 2)
    with pytest.raises(ValueError, match=f"{name}.*at least one dim"):
        getattr(cpu, name)(np.array(1.0, np.float32), 0)
    if name == "logcumsumexp":
        with pytest.raises(ValueError, match="logcumsumexp.*floating"):
            cpu.logcumsumexp(np.ones(3, np.int32), 0)
