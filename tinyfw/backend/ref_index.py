"""Reference primitives of the scatter reductions (issue 16): scatter_reduce (and through
it index_add / index_reduce, whose index is expanded to a scatter index)."""
from __future__ import annotations

import numpy as np

from .ref_cast import up as _up

__all__ = ["scatter_reduce", "index_reduce"]

_UFUNC = {"sum": np.add, "mean": np.add, "prod": np.multiply, "amax": np.fmax,
          "amin": np.fmin}


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def scatter_reduce(x, dim: int, index, src, reduce: str, include_self: bool):
    """A copy of x where each position `index` addresses along `dim` (index may be
    smaller than src and x in every dim, x's in all but `dim`) becomes the `reduce`
    (sum, prod, mean, amax, amin) of the src values scattered to it, and of x's own value
    when `include_self`; positions nothing is scattered to keep x's value.  NaN wins in
    amax/amin (PyTorch's propagation); integer means round down (floor division)."""
    idx = list(np.indices(index.shape, sparse=True))
    idx[dim] = index
    idx = tuple(idx)
    s = src[tuple(slice(0, n) for n in index.shape)]
    acc = _up(x).copy()
    if acc.dtype.kind == "b":
        acc = acc.astype(np.int64)
    s = s.astype(acc.dtype)
    hit = np.zeros(x.shape, np.int64)
    np.add.at(hit, idx, 1)
    if not include_self:  # the positions scattered to start from the reduction's identity
        if reduce in ("amax", "amin"):
            lo = reduce == "amax"
            if acc.dtype.kind == "f":
                ident = -np.inf if lo else np.inf
            else:
                ident = np.iinfo(acc.dtype).min if lo else np.iinfo(acc.dtype).max
        else:
            ident = 1 if reduce == "prod" else 0
        acc[hit > 0] = ident
    _UFUNC[reduce].at(acc, idx, s)
    if reduce in ("amax", "amin") and acc.dtype.kind == "f":
        # fmax/fmin skip NaN; PyTorch's scatter amax/amin propagate it
        nan = np.zeros(x.shape, bool)
        np.logical_or.at(nan, idx, np.isnan(s))
        if include_self:
            nan |= np.isnan(acc) | np.isnan(_up(x))
        acc[nan] = np.nan
    if reduce == "mean":
        count = hit + (1 if include_self else 0)
        count = np.maximum(count, 1)
        if acc.dtype.kind == "f":
            acc = acc / count
        else:
            acc = np.floor_divide(acc, count)
    return acc.astype(x.dtype)


def index_reduce(x, dim: int, index, src, reduce: str, include_self: bool):
    """scatter_reduce with the 1-d `index` naming, for each slice i of src along `dim`,
    the slice of x it reduces into (src is x's shape with len(index) at `dim`):
    index_add is reduce="sum"."""
    shape = [1] * x.ndim
    shape[dim] = index.shape[0]
    idx = np.broadcast_to(index.reshape(shape), src.shape)
    return scatter_reduce(x, dim, idx, src, reduce, include_self)
