"""The reference backend, part 3: cumulative scans other than cumsum (ref_data.py):
cumprod, cummax, cummin, logcumsumexp.

Same conventions as `ref.py` (which re-exports them): every output element is the running
result of one sequential fold along `dim` in index order (the C++ kernels in
csrc/scan.cpp keep that order, so cumprod and cummax/cummin agree bit for bit); half
types accumulate in float32 and each output is rounded once.
"""
from __future__ import annotations

import numpy as np

from .ref_cast import up as _up

__all__ = ["cumprod", "cummax", "cummin", "logcumsumexp"]


@np.errstate(over="ignore", invalid="ignore")
def cumprod(x, dim: int):
    """Running product along `dim`; bool and int inputs give int64 (wrapping)."""
    if x.dtype.kind in "biu":
        return np.cumprod(x.astype(np.int64), axis=dim)
    return np.cumprod(_up(x), axis=dim).astype(x.dtype)


def _cumext(x, dim: int, largest: bool):
    """(running max/min, int64 index of it) along dim.  The latest of equal values wins
    (>= / <=), a NaN beats every number and stays until a later NaN takes its place
    (PyTorch's rule)."""
    a = np.moveaxis(_up(x), dim, 0)
    vals = np.empty_like(a)
    idx = np.zeros(a.shape, np.int64)
    if a.shape[0]:
        best, at = a[0].copy(), np.zeros(a.shape[1:], np.int64)
        vals[0], idx[0] = best, at
        for i in range(1, a.shape[0]):
            v = a[i]
            with np.errstate(invalid="ignore"):
                better = (v >= best) if largest else (v <= best)
            if a.dtype.kind == "f":
                better = np.isnan(v) | (~np.isnan(best) & better)
            best = np.where(better, v, best)
            at = np.where(better, i, at)
            vals[i], idx[i] = best, at
    return (np.ascontiguousarray(np.moveaxis(vals, 0, dim).astype(x.dtype, copy=False)),
            np.ascontiguousarray(np.moveaxis(idx, 0, dim)))


def cummax(x, dim: int):
    """(values, int64 indices) of the running maximum along `dim`."""
    return _cumext(x, dim, True)


def cummin(x, dim: int):
    """(values, int64 indices) of the running minimum along `dim`."""
    return _cumext(x, dim, False)


@np.errstate(over="ignore", invalid="ignore")
def _log_add_exp(a, b):
    # PyTorch's helper: max + log1p(exp(min - max)); equal infinities give themselves and
    # NaN in either operand propagates
    nan_b = np.isnan(b)
    lo = np.where(nan_b, b, np.minimum(a, b))
    hi = np.where(nan_b, b, np.maximum(a, b))
    return np.where((lo != hi) | np.isfinite(lo), hi + np.log1p(np.exp(lo - hi)), a)


def logcumsumexp(x, dim: int):
    """Running log(sum(exp(x))) along `dim` (floating point only)."""
    a = np.moveaxis(_up(x), dim, 0)
    out = np.empty_like(a)
    if a.shape[0]:
        acc = a[0].copy()
        out[0] = acc
        for i in range(1, a.shape[0]):
            acc = _log_add_exp(acc, a[i]).astype(a.dtype, copy=False)
            out[i] = acc
    return np.ascontiguousarray(np.moveaxis(out, 0, dim).astype(x.dtype, copy=False))
