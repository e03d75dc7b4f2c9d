"""The device contract of the numpy backends (``ref``, and ``cpu`` on top of it).

Besides primitives, a backend allocates, moves data to and from the host, makes views,
and synchronises (see docs/devices.md).  For CPU tensors the array *is* a numpy array,
so host transfer is the identity: `from_numpy` and `.numpy()` share memory.
"""
from __future__ import annotations

import builtins

import numpy as np

from .host import stores_quietly, wrap_int as _wrap_int

__all__ = ["unavailable", "from_host", "to_host", "empty", "full", "view", "permute", "expand",
           "slice_view", "is_contiguous", "is_writeable", "memory_owner", "is_dense", "synchronize",
           "memory_allocated", "max_memory_allocated", "memory_reserved", "empty_cache",
           "reset_peak_memory_stats", "as_strided", "storage_offset"]


def unavailable(device) -> str:
    """Why `device` cannot run here ('' when it can)."""
    return ""


def from_host(a: np.ndarray) -> np.ndarray:
    """The backend array for host array `a` (the CPU shares it: no copy)."""
    return a


def to_host(a: np.ndarray) -> np.ndarray:
    """A host (numpy) array of `a`'s values (the CPU returns the array itself)."""
    return a


def empty(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """A new row-major array; its values are unspecified."""
    return np.empty(shape, dtype)


def full(shape: tuple, value, dtype: np.dtype) -> np.ndarray:
    """A new row-major array with every element `value` (cast to dtype)."""
    return _fill_new(np.empty(shape, dtype), value)


def _fill_new(out: np.ndarray, value) -> np.ndarray:
    """`full`'s filling of a new array `out` (the cpu backend allocates its own)."""
    if stores_quietly(value, out.dtype):
        out[...] = value
    else:
        with np.errstate(all="ignore"):
            out[...] = _wrap_int(value, out.dtype)
    return out


# -- views: change shape, strides and offset, never the data ---------------------------------
def view(x: np.ndarray, shape: tuple):
    """x seen with a new shape, or None when its strides do not allow it without a copy."""
    v = x.view()
    try:
        v.shape = shape
    except AttributeError:
        return None
    return v


def permute(x: np.ndarray, dims: tuple) -> np.ndarray:
    """x with its dims reordered."""
    return x.transpose(dims)


def expand(x: np.ndarray, shape: tuple) -> np.ndarray:
    """A read-only view of x broadcast to `shape` (stride 0 in the grown dims)."""
    if not x.flags.c_contiguous or x.size == 0:
        return np.broadcast_to(x, shape)
    # np.broadcast_to costs ~9 us of argument handling; writing the strides is ~1 us and
    # sits on every backward of sum/mean
    lead = len(shape) - x.ndim
    strides = [0] * lead
    for s, n, st in zip(shape[lead:], x.shape, x.strides):
        strides.append(0 if n == 1 and s != 1 else st)
    out = np.ndarray(shape, x.dtype, x, 0, tuple(strides))
    out.flags.writeable = False
    return out


def slice_view(x: np.ndarray, index: tuple) -> np.ndarray:
    """Basic indexing (ints, slices, None, Ellipsis): a view, 0-d results included."""
    # a trailing Ellipsis keeps numpy from turning a 0-d result into a scalar copy
    return x[index if Ellipsis in index else index + (Ellipsis,)]


def _storage(x: np.ndarray) -> np.ndarray:
    # the array that owns x's whole allocation: the last ndarray of the base chain (its
    # own base, if any, is the allocator's buffer object); numpy's stride tricks put a
    # non-array holder between a view and its base, whose `.base` is followed too
    while True:
        b = x.base
        if not isinstance(b, np.ndarray):
            b = getattr(b, "base", None)
        if not isinstance(b, np.ndarray):
            return x
        x = b


def storage_offset(x: np.ndarray) -> int:
    """Elements from the start of x's allocation to x's first element."""
    return (x.__array_interface__["data"][0]
            - _storage(x).__array_interface__["data"][0]) // x.itemsize


def as_strided(x: np.ndarray, shape: tuple, strides: tuple, offset: int) -> np.ndarray:
    """A view of x's allocation with `shape` and element `strides` (>= 0), starting
    `offset` elements after x's first element (negative: before it); ValueError when
    an addressed element falls outside the allocation (numpy would read past it)."""
    st = _storage(x)
    if not st.flags.c_contiguous:
        raise ValueError("the tensor's memory is not one row-major allocation")
    start = storage_offset(x) + offset
    empty = 0 in shape
    last = start + builtins.sum((n - 1) * s for n, s in zip(shape, strides))
    size = st.size
    if start < 0 or (not empty and last >= size):
        raise ValueError(f"sizes {list(shape)}, strides {list(strides)} and storage offset "
                         f"{start} need a storage of {last + 1} elements, out of bounds for "
                         f"a storage of {size} elements")
    flat = st.reshape(-1)
    if empty:
        return np.ndarray(tuple(shape), x.dtype, flat, 0, tuple(s * x.itemsize for s in strides))
    out = np.ndarray(tuple(shape), x.dtype, flat, start * x.itemsize,
                     tuple(s * x.itemsize for s in strides))
    if not x.flags.writeable:
        out.flags.writeable = False
    return out


def is_contiguous(x: np.ndarray) -> bool:
    """True when x is row-major without gaps."""
    return x.flags.c_contiguous


def is_writeable(x: np.ndarray) -> bool:
    """False for read-only views (expanded, broadcast, or foreign read-only memory)."""
    return x.flags.writeable


def memory_owner(x: np.ndarray):
    """An object that identifies the memory x views (equal for views of one buffer)."""
    b = x.base
    while isinstance(b, np.ndarray) and b.base is not None:
        b = b.base
    return x if b is None else b


def is_dense(x: np.ndarray) -> bool:
    """True when x covers one gap-free block of memory (row- or column-major)."""
    return x.flags.c_contiguous or x.flags.f_contiguous


# -- streams and memory statistics (no-ops for numpy's own allocations) ----------------------
def synchronize() -> None:
    """Wait for queued kernels (CPU kernels run synchronously: nothing to wait for)."""


def memory_allocated() -> int:
    """Bytes held by live tensors through this backend's allocator (0: numpy allocates)."""
    return 0


def max_memory_allocated() -> int:
    """Peak of memory_allocated since start or the last reset."""
    return 0


def memory_reserved() -> int:
    """Bytes the allocator holds, in use or cached."""
    return 0


def empty_cache() -> None:
    """Return cached blocks to the system."""


def reset_peak_memory_stats() -> None:
    """Restart max_memory_allocated from the current figure."""
