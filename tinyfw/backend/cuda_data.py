"""CUDA primitives, part 2: copies, shape kernels, indexing, sorting and dropout.

Most data movement is one strided copy (`tinyfw._cuda.copy`, with tinyfw's cast rules)
into or out of a view: cat writes each part into a slice of the output, pad into the
middle of a filled output, flip reads through negative strides, tile through a view
that repeats x with stride-0 dims.  Index kernels check the index range first (one
wait for the device), so a bad index is an IndexError from the call that passed it.
"""
from __future__ import annotations

import builtins

import numpy as np

from . import ref as _ref
from .cuda import _cuda, empty, fill_, full, permute, slice_view, view, _strided, _writeable
from .cuda_ops import _operands, contiguous, cast_if

__all__ = ["copy_", "cat", "pad", "flip", "tile", "triu", "tril", "cumsum", "sort", "gather",
           "scatter", "scatter_add", "dropout", "index", "index_put", "index_put_",
           "random_uniform", "random_normal"]

_I64 = np.dtype(np.int64)
_BOOL = np.dtype(np.bool_)


def copy_(dst, src) -> None:
    """In place: dst[...] = src, broadcasting src and casting to dst's dtype."""
    _writeable(dst, "copy_")
    if not hasattr(src, "storage"):  # a Python or numpy scalar
        fill_(dst, src)
        return
    if src.storage == dst.storage:  # may overlap: read everything before writing
        src = contiguous(_copy(src))
    (src,) = _operands([src], dst.shape)
    _cuda.copy(dst, src)


def _copy(x):
    out = empty(x.shape, x.dtype)
    _cuda.copy(out, x)
    return out


def cat(arrays: list, dim: int):
    """Concatenate along `dim` (the parts' dtypes promoted as numpy does)."""
    dt = np.result_type(*[a.dtype for a in arrays])
    shape = list(arrays[0].shape)
    shape[dim] = sum(a.shape[dim] for a in arrays)
    out = empty(tuple(shape), dt)
    at = 0
    for a in arrays:
        n = a.shape[dim]
        if n:
            part = slice_view(out, (slice(None),) * dim + (slice(at, at + n),))
            _cuda.copy(part, a)
        at += n
    return out


def pad(x, pads: tuple, value):
    """Constant padding; `pads` is ((before, after), ...) per dim, all >= 0."""
    if x.ndim == 0:
        return _copy(x)
    shape = tuple(n + b + a for n, (b, a) in zip(x.shape, pads))
    out = full(shape, value, x.dtype)
    if x.size:
        inner = slice_view(out, tuple(slice(b, b + n) for n, (b, _) in zip(x.shape, pads)))
        _cuda.copy(inner, x)
    return out


def flip(x, dims: tuple):
    """A copy with `dims` reversed."""
    strides, offset = list(x.strides), x.offset
    for d in set(d % x.ndim for d in dims) if x.ndim else ():
        if x.shape[d] > 1:
            offset += (x.shape[d] - 1) * strides[d]
            strides[d] = -strides[d]
    return _copy(_strided(x, x.shape, strides, offset, False))


def tile(x, reps: tuple):
    """x repeated `reps` times along each dim (numpy's tile / PyTorch's repeat)."""
    reps = tuple(reps)
    nd = max(len(reps), x.ndim)
    reps = (1,) * (nd - len(reps)) + reps
    shape = (1,) * (nd - x.ndim) + tuple(x.shape)
    strides = (0,) * (nd - x.ndim) + tuple(x.strides)
    # (r0, s0, r1, s1, ...): each dim of x repeated through a stride-0 dim before it
    big_shape, big_strides = [], []
    for r, n, st in zip(reps, shape, strides):
        big_shape += [r, n]
        big_strides += [0, st]
    out = empty(tuple(big_shape), x.dtype)
    if out.size:
        _cuda.copy(out, _strided(x, big_shape, big_strides, x.offset, False))
    return view(out, tuple(r * n for r, n in zip(reps, shape)))


def _tri(x, k: int, upper: bool):
    x = contiguous(x)
    out = empty(x.shape, x.dtype)
    if x.size:
        _cuda.tri(out, x, int(k), upper)
    return out


def triu(x, k: int):
    """Upper triangle of the last two dims, from diagonal k."""
    return _tri(x, k, True)


def tril(x, k: int):
    """Lower triangle of the last two dims, up to diagonal k."""
    return _tri(x, k, False)


def _dim_last(x, dim: int):
    """x with `dim` moved last, and the permutation that moves it back."""
    if x.ndim == 0:
        return x, None
    dim %= x.ndim
    order = [d for d in range(x.ndim) if d != dim] + [dim]
    back = [0] * x.ndim
    for i, d in enumerate(order):
        back[d] = i
    return permute(x, tuple(order)), None if dim == x.ndim - 1 else tuple(back)


def _restore(out, back):
    return out if back is None else contiguous(permute(out, back))


def cumsum(x, dim: int):
    """Running sum along `dim` (bool/int give int64; half floats accumulate in float32)."""
    xv, back = _dim_last(x, dim)
    out = empty(xv.shape, _I64 if x.dtype.kind in "biu" else x.dtype)
    if x.size:
        _cuda.cumsum(out, xv)
    return _restore(out, back)


def sort(x, dim: int, descending: bool):
    """(values, int64 indices) sorted along `dim`, stable (NaN last)."""
    xv, back = _dim_last(x, dim)
    values, indices = empty(xv.shape, x.dtype), empty(xv.shape, _I64)
    if x.size:
        _cuda.sort(values, indices, xv, bool(descending))
    return _restore(values, back), _restore(indices, back)


def _check_range(index, size: int, name: str) -> None:
    if index.size:
        lo, hi = _cuda.index_min_max(index)
        if lo < -size or hi >= size:
            bad = lo if lo < -size else hi
            raise IndexError(f"{name}: index {bad} is out of bounds for size {size}")


def _along(a, shape, dim: int, zero_dim: bool = True):
    """a seen with `shape` (a corner of it), stride 0 along dim when zero_dim."""
    strides = list(a.strides[:len(shape)])
    if zero_dim:
        strides[dim] = 0
    return _strided(a, shape, strides, a.offset)


def gather(x, dim: int, index):
    """out[i][j][k] = x[i][index[i][j][k]][k] for dim=1, and so on."""
    index = cast_if(index, _I64)
    dim %= max(x.ndim, 1)
    out = empty(index.shape, x.dtype)
    if index.size == 0:
        return out
    _check_range(index, x.shape[dim], "gather")
    _cuda.gather(out, _along(x, index.shape, dim), index, dim, x.shape[dim], x.strides[dim] // x.itemsize)
    return out


def _scatter(x, dim: int, index, src, add: bool):
    index = cast_if(index, _I64)
    dim %= max(x.ndim, 1)
    out = _copy(x)
    if index.size == 0:
        return out
    _check_range(index, x.shape[dim], "scatter_add" if add else "scatter")
    src = cast_if(src, x.dtype)
    _cuda.scatter(_along(out, index.shape, dim), index, _along(src, index.shape, dim, False), dim,
                  x.shape[dim], out.strides[dim] // out.itemsize, add)
    return out


def scatter_add(x, dim: int, index, src):
    """A copy of x with src added at `index` along `dim` (duplicates summed, in no fixed
    order for floats, as PyTorch's CUDA scatter_add)."""
    return _scatter(x, dim, index, src, True)


def scatter(x, dim: int, index, src):
    """A copy of x with src written at `index` along `dim` (with duplicate indices one of
    the writes wins, as in PyTorch's CUDA scatter)."""
    return _scatter(x, dim, index, src, False)


def dropout(x, p: float, seed: int):
    """(y, mask): keep each element where a Philox uniform draw u >= p, scaled by 1/(1-p).

    The draws are Philox4x32-10 of (seed, element index) (cuda/random.cu), not ref's
    PCG64 stream: the mask differs from the CPU's for the same seed, is the same on every
    run and launch, and keeps each element with probability 1 - p."""
    1 / (1 - p)  # ref's ZeroDivisionError for p == 1
    xc = contiguous(x)
    y, mask = empty(x.shape, x.dtype), empty(x.shape, _BOOL)
    _cuda.dropout(y, mask, xc, float(p), int(seed) & ((1 << 64) - 1))
    return y, mask


def random_uniform(shape: tuple, dtype, seed: int):
    """Uniform [0, 1) draws of Philox4x32-10 (cuda/random.cu) from `seed`: what
    tinyfw.rand makes on this device (tinyfw/creation.py takes the seed from the generator)."""
    out = empty(tuple(shape), np.dtype(dtype))
    _cuda.uniform(out, int(seed) & ((1 << 64) - 1), 0)
    return out


def random_normal(shape: tuple, dtype, seed: int):
    """Standard normal draws (Box-Muller on Philox4x32-10 pairs) from `seed` (tinyfw.randn)."""
    out = empty(tuple(shape), np.dtype(dtype))
    _cuda.normal(out, int(seed) & ((1 << 64) - 1), 0)
    return out


def _is_dev(v) -> bool:
    return hasattr(v, "storage")


def _advanced(x, idx):
    """numpy's advanced indexing x[idx] reduced to the kernels' one form.

    Slices are applied as a view; bool masks become integer arrays (their nonzero
    positions: this waits for the device and copies the mask to the host, as the result's
    shape depends on it); Python ints among index arrays count as 0-d index arrays.  The
    view is permuted so the indexed dims come first, and their index arrays become one
    array of flat element offsets.  Returns (x view permuted, offsets broadcast to the
    index shape, the index shape, where numpy puts the index dims in the result: 0 or
    the position of the first indexed dim when they are adjacent, the number of indexed
    dims)."""
    from .cuda import expand, from_host, to_host
    from .cuda_ops import add, mul

    idx = idx if isinstance(idx, tuple) else (idx,)
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        used = builtins.sum(v.ndim if _is_dev(v) and v.dtype == _BOOL else 1 for v in idx if v is not Ellipsis)
        idx = idx[:k] + (slice(None),) * (x.ndim - used) + idx[k + 1:]
    if any(v is None for v in idx):
        raise NotImplementedError("index on cuda: None (new axes) among advanced indices is not "
                                  "implemented; index in two steps")
    items = []  # per dim of x: a slice, or an int64 device array
    for v in idx:
        if _is_dev(v) and v.dtype == _BOOL:
            if v.ndim == 0:
                raise NotImplementedError("index on cuda: a 0-d bool mask is not implemented")
            nz = np.nonzero(to_host(v))
            items += [from_host(np.ascontiguousarray(n.astype(np.int64))) for n in nz]
        elif _is_dev(v):
            items.append(cast_if(v, _I64))
        elif isinstance(v, slice):
            items.append(v)
        else:
            items.append(full((), int(v), _I64))
    items += [slice(None)] * (x.ndim - len(items))
    xv = slice_view(x, tuple(i if isinstance(i, slice) else slice(None) for i in items))
    adv = [d for d, i in enumerate(items) if not isinstance(i, slice)]
    if not adv:  # slices only: the view is the selection
        return xv, None, (), 0, 0
    order = adv + [d for d in range(xv.ndim) if d not in adv]
    xp = permute(xv, tuple(order))
    arrays = [items[d] for d in adv]
    shape = tuple(np.broadcast_shapes(*[a.shape for a in arrays]))
    offsets = None
    for a, d in zip(arrays, adv):
        _check_range(a, xv.shape[d], "index")
        term = mul(_wrap(a, xv.shape[d]), full((), xv.strides[d] // xv.itemsize, _I64))
        offsets = term if offsets is None else add(offsets, term)
    adjacent = adv == list(range(adv[0], adv[0] + len(adv)))
    return xp, expand(offsets, shape), shape, adv[0] if adjacent else 0, len(adv)


def _wrap(a, size: int):
    """Negative indices counted from the end."""
    from .cuda_ops import add, lt, where

    return where(lt(a, full((), 0, _I64)), add(a, full((), size, _I64)), a)


def index(x, idx: tuple):
    """Advanced indexing x[idx] (integer arrays, bool masks, slices, ints): a copy."""
    xp, offsets, shape, at, k = _advanced(x, idx)
    if offsets is None:
        return _copy(xp)
    rest = tuple(xp.shape[k:])
    full_shape = tuple(shape) + rest
    out = empty(full_shape, xp.dtype)
    if out.size:
        xv = _strided(xp, full_shape, [0] * len(shape) + list(xp.strides[k:]), xp.offset)
        off = _strided(offsets, full_shape, list(offsets.strides) + [0] * len(rest), offsets.offset)
        _cuda.gather(out, xv, off, 0, 1 << 62, 1)
    return _move_index_dims(out, len(shape), at)


def _move_index_dims(out, n: int, at: int):
    """numpy puts adjacent index dims where the first indexed dim was."""
    if at == 0 or n == 0:
        return out
    rest = list(range(n, out.ndim))
    order = rest[:at] + list(range(n)) + rest[at:]
    return contiguous(permute(out, tuple(order)))


def index_put_(x, idx: tuple, values, accumulate: bool) -> None:
    """In place: x[idx] = values (or += with `accumulate`, duplicates summed)."""
    _writeable(x, "index_put_")
    xp, offsets, shape, at, k = _advanced(x, idx)
    if not _is_dev(values):
        values = full((), values, x.dtype)
    values = cast_if(values, x.dtype)
    if offsets is None:  # slices only: write through the view
        from .cuda_ops import add

        copy_(xp, add(xp, values) if accumulate else values)
        return
    rest = tuple(xp.shape[k:])
    full_shape = tuple(shape) + rest
    if 0 in full_shape:
        return
    n = len(shape)
    # values broadcast to numpy's result shape, then seen in the kernels' order
    res_shape = full_shape if at == 0 else rest[:at] + tuple(shape) + rest[at:]
    (values,) = _operands([values], res_shape)
    if at:
        back = list(range(at, at + n)) + list(range(at)) + list(range(at + n, len(res_shape)))
        values = permute(values, tuple(back))
    xv = _strided(xp, full_shape, [0] * n + list(xp.strides[k:]), xp.offset)
    off = _strided(offsets, full_shape, list(offsets.strides) + [0] * len(rest), offsets.offset)
    _cuda.scatter(xv, off, values, 0, 1 << 62, 1, bool(accumulate))


def index_put(x, idx: tuple, values, accumulate: bool):
    """A copy of x with x[idx] = values (or += with `accumulate`)."""
    out = _copy(x)
    index_put_(out, idx, values, accumulate)
    return out


for _n in __all__:  # ref's docstrings where ours are shorter
    if globals()[_n].__doc__ is None:
        globals()[_n].__doc__ = getattr(_ref, _n).__doc__
