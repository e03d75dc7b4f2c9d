"""The reference backend, part 2: reductions, copies and casts, matmul, indexing, sorting.

Same conventions as `ref.py` (which re-exports everything here): numpy arrays of one
dtype in, new arrays out unless a primitive says otherwise; half types computed in
float32 and rounded once.
"""
from __future__ import annotations

import numpy as np

from .host import wrap_int as _wrap_int
from .ref_cast import HALF_COMPUTE as _HALF, convert as _convert, up as _up


# -- reductions -------------------------------------------------------------------------------
def _acc(x):
    # sums of small ints accumulate in int64 and of half floats in float32, as PyTorch
    if x.dtype.kind == "b" or x.dtype.kind in "iu":
        return np.int64
    return _HALF.get(x.dtype, x.dtype)


@np.errstate(over="ignore", invalid="ignore")
def sum(x, dims: tuple, keepdim: bool):
    """Sum over `dims`; bool/int inputs give int64, half floats accumulate in float32."""
    acc = _acc(x)
    r = np.sum(x, axis=dims, dtype=acc, keepdims=keepdim)
    out = np.int64 if x.dtype.kind in "biu" else x.dtype
    return np.asarray(r).astype(out, copy=False)


@np.errstate(over="ignore", invalid="ignore")
def prod(x, dims: tuple, keepdim: bool):
    """Product over `dims`, with sum's accumulation and result dtypes."""
    acc = _acc(x)
    r = np.prod(x, axis=dims, dtype=acc, keepdims=keepdim)
    out = np.int64 if x.dtype.kind in "biu" else x.dtype
    return np.asarray(r).astype(out, copy=False)


def amax(x, dims: tuple, keepdim: bool):
    """Maximum over `dims` (NaN propagates); dims must be non-empty."""
    return np.asarray(np.max(_up(x), axis=dims, keepdims=keepdim)).astype(x.dtype, copy=False)


def amin(x, dims: tuple, keepdim: bool):
    """Minimum over `dims` (NaN propagates); dims must be non-empty."""
    return np.asarray(np.min(_up(x), axis=dims, keepdims=keepdim)).astype(x.dtype, copy=False)


def argmax(x, dim: int, keepdim: bool):
    """Index of the first maximum along `dim`, int64 (NaN counts as the maximum)."""
    return np.asarray(np.argmax(_up(x), axis=dim, keepdims=keepdim)).astype(np.int64)


def argmin(x, dim: int, keepdim: bool):
    """Index of the first minimum along `dim`, int64 (NaN counts as the minimum)."""
    return np.asarray(np.argmin(_up(x), axis=dim, keepdims=keepdim)).astype(np.int64)


def any(x, dims: tuple, keepdim: bool):
    """True where any element along `dims` is non-zero."""
    return np.asarray(np.any(x, axis=dims, keepdims=keepdim))


def all(x, dims: tuple, keepdim: bool):
    """True where every element along `dims` is non-zero."""
    return np.asarray(np.all(x, axis=dims, keepdims=keepdim))


# -- copies, casts, matmul ---------------------------------------------------------------
def cast(x, dtype: np.dtype):
    """x converted to `dtype` by tinyfw's conversion rules (ref_cast.py,
    docs/semantics.md: floats round once; float -> int truncates, NaN and out-of-range
    values give the 32/64-bit minimum)."""
    return _convert(x, dtype)


def _same_dtype(v, dtype: np.dtype):
    """An array argument converted to `dtype` by the cast rules (scalars as they are)."""
    return _convert(v, dtype) if isinstance(v, np.ndarray) and v.dtype != dtype else v


def contiguous(x):
    """x itself when row-major, else a row-major copy (0-d arrays stay 0-d, unlike
    np.ascontiguousarray)."""
    return np.asarray(x, order="C")


@np.errstate(over="ignore")
def matmul(a, b):
    """Batched matrix product with broadcast batch dims (a: ...×m×k, b: ...×k×n);
    half inputs are accumulated in float32."""
    c = _HALF.get(a.dtype)
    if c is None:
        return np.matmul(a, b)
    return np.matmul(a.astype(c), b.astype(c)).astype(a.dtype)


def cat(arrays: list, dim: int):
    """Concatenate along `dim`."""
    return np.concatenate(arrays, axis=dim)


@np.errstate(over="ignore")
def pad(x, pads: tuple, value):
    """Constant padding; `pads` is ((before, after), ...) per dim, all >= 0."""
    if x.ndim == 0:
        return x.copy()
    return np.pad(x, pads, mode="constant", constant_values=value)


def flip(x, dims: tuple):
    """A copy with `dims` reversed."""
    return np.array(np.flip(x, axis=dims))  # a copy; 0-d array, not a numpy scalar


def tile(x, reps: tuple):
    """x repeated `reps` times along each dim (PyTorch's Tensor.repeat)."""
    return np.tile(x, reps)


def index(x, idx: tuple):
    """Advanced indexing x[idx] (integer arrays, bool masks, slices): a copy."""
    return np.asarray(x[idx])


def index_put(x, idx: tuple, values, accumulate: bool):
    """A copy of x with x[idx] = values (or += with `accumulate`, summing duplicates)."""
    out = x.copy()
    index_put_(out, idx, values, accumulate)
    return out


def index_put_(x, idx: tuple, values, accumulate: bool) -> None:
    """In place: x[idx] = values (or += with `accumulate`, summing duplicates), values
    broadcast to the indexed shape and cast to x's dtype; x must be writeable.  (Tensor
    assignment ``x[mask] = v`` without autograd: only the addressed elements are touched.)"""
    if accumulate:
        # values broadcast explicitly: numpy 2.4's ufunc.at reads garbage when it has to
        # broadcast them against a multi-dimensional index (seen: -5e23 from 4 small adds)
        np.add.at(x, idx, np.broadcast_to(values, x[idx].shape))
    else:
        x[idx] = _same_dtype(values, x.dtype)


def _corner(x, index, dim: int):
    """The part of x that `index` addresses: index may be smaller than x in every dim
    but `dim` (PyTorch's rule), while numpy's *_along_axis want equal sizes there."""
    return x[tuple(slice(None) if k == dim else slice(0, s) for k, s in enumerate(index.shape))]


def gather(x, dim: int, index):
    """out[i][j][k] = x[i][index[i][j][k]][k] for dim=1, and so on; index.shape[k] <=
    x.shape[k] for k != dim."""
    return np.take_along_axis(_corner(x, index, dim), index, axis=dim)


def scatter_add(x, dim: int, index, src):
    """A copy of x with src added at `index` along `dim` (duplicates summed)."""
    out = x.copy()
    idx = list(np.indices(index.shape, sparse=True))
    idx[dim] = index
    np.add.at(out, tuple(idx), src[tuple(slice(0, s) for s in index.shape)])
    return out


def scatter(x, dim: int, index, src):
    """A copy of x with src written at `index` along `dim` (last write wins)."""
    out, src = x.copy(), _same_dtype(src, x.dtype)
    np.put_along_axis(_corner(out, index, dim), index, src[tuple(slice(0, s) for s in index.shape)],
                      axis=dim)
    return out


@np.errstate(over="ignore")
def masked_fill(x, mask, value):
    """x with `value` where mask is True."""
    return np.where(mask, x.dtype.type(value), x)


@np.errstate(over="ignore")
def fill_(x, value) -> None:
    """In place: every element of x becomes value (an integer out of x's range wraps)."""
    x[...] = _wrap_int(value, x.dtype)


@np.errstate(over="ignore")
def copy_(dst, src) -> None:
    """In place: dst[...] = src, broadcasting src and casting to dst's dtype (the cast
    rules; a Python scalar as numpy converts it)."""
    np.copyto(dst, _same_dtype(src, dst.dtype), casting="unsafe")


def triu(x, k: int):
    """Upper triangle of the last two dims, from diagonal k."""
    return np.triu(x, k)


def tril(x, k: int):
    """Lower triangle of the last two dims, up to diagonal k."""
    return np.tril(x, k)


@np.errstate(over="ignore", invalid="ignore")
def cumsum(x, dim: int):
    """Running sum along `dim`."""
    out = np.int64 if x.dtype.kind in "biu" else x.dtype
    return np.cumsum(_up(x), axis=dim).astype(out)


def sort(x, dim: int, descending: bool):
    """(values, int64 indices) sorted along `dim`, stable."""
    if descending:  # ~x reverses integers exactly; -x wraps (-(-128) == -128, uint8 -1 == 255)
        key = ~x if x.dtype.kind in "iu" else -_up(x)
    else:
        key = _up(x)
    idx = np.argsort(key, axis=dim, kind="stable")
    return np.take_along_axis(x, idx, axis=dim), idx.astype(np.int64)
