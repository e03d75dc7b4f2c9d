"""The CUDA backend: arrays in GPU memory and the kernels of ``tinyfw._cuda`` (cuda/).

A ``cuda`` tensor's array is a ``tinyfw._cuda.Array``: a reference to a block of the
caching allocator (shared by its views), a byte offset, a shape, byte strides and a
dtype.  This module is the device contract of docs/devices.md (allocation, host
transfer, views, synchronisation, memory statistics); the primitives are in
`cuda_ops.py` and `cuda_data.py`.  Kernels are queued on the current stream
(`tinyfw.cuda.Stream`) and return at once; `to_host` and `synchronize` wait.

Until ``tinyfw._cuda`` is built (nvcc found at build time) and a GPU with its driver is
present, every ``cuda`` device reports why it is unavailable (`unavailable`).  Arrays
live on the current device (`tinyfw.cuda.set_device`); naming another index is an error.
"""
from __future__ import annotations

import builtins
import math
import sys

import numpy as np

from ..device import Device
from .ref_cast import BF16, convert as _host_convert


def _load():
    import importlib

    try:
        _cuda = importlib.import_module("tinyfw._cuda")
    except ModuleNotFoundError:
        return None, ("the CUDA backend is not available in this build (tinyfw._cuda was not "
                      "compiled: rebuild with nvcc on the PATH, TINYFW_CUDA=1); use device='cpu'")
    except ImportError as e:  # built but broken: say so
        return None, f"the CUDA backend failed to load: tinyfw._cuda: {e}"
    if _cuda.device_count() == 0:
        return _cuda, ("the CUDA backend is not available: no usable CUDA device "
                       f"({_cuda.unavailable_reason()})")
    return _cuda, ""


_cuda, _why = _load()

#: numpy dtypes by the kernels' dtype code (cuda/api.h)
DTYPES = [np.dtype(np.bool_), np.dtype(np.int8), np.dtype(np.int32), np.dtype(np.int64),
          np.dtype(np.float16), BF16, np.dtype(np.float32), np.dtype(np.float64)]
CODE = {d: i for i, d in enumerate(DTYPES)}
_this = sys.modules[__name__]

if not _why:
    from . import DEVICE_ARRAY_TYPES

    _cuda.register(DTYPES, [Device("cuda", i) for i in range(_cuda.device_count())], _this)
    Array = _cuda.Array
    DEVICE_ARRAY_TYPES.add(Array)
else:
    Array = None


def code(dtype) -> int:
    """The kernels' code of a numpy dtype; raises for dtypes tinyfw has no kernels for."""
    c = CODE.get(np.dtype(dtype))
    if c is None:
        raise TypeError(f"cuda: dtype {dtype} is not supported")
    return c


#: devices in this process (counted once: every op asks `unavailable`, and the driver's
#: count does not change while a process runs)
_COUNT = 0 if _why else _cuda.device_count()


def unavailable(device) -> str:
    """Why `device` cannot run here ('' when it can)."""
    if _why:
        return _why
    index = device.index
    if index is None or (index == 0 and _COUNT == 1):  # the common case, without a driver call
        return ""
    count = _COUNT
    if index >= count:
        return f"CUDA device index {index} is out of range ({count} device(s))"
    if index != _cuda.current_device():
        return (f"cuda:{index} is not the current device (cuda:{_cuda.current_device()}); "
                f"call tinyfw.cuda.set_device({index}) first: arrays are made on the current device")
    return ""


# -- allocation and host transfer ----------------------------------------------------------
def empty(shape: tuple, dtype) -> "Array":
    """A new row-major array on the current device; its values are unspecified."""
    return _cuda.empty(list(shape), code(dtype), _cuda.current_device())


def host_value(value, dtype: np.dtype):
    """`value` stored into `dtype` as numpy stores it (ref's semantics), as a Python int or
    float that the dtype holds exactly (what the fill kernel takes)."""
    with np.errstate(all="ignore"):
        v = np.empty((), dtype)
        v[...] = value
    if dtype.kind in "biu":
        return int(v)
    return float(v.astype(np.float64)) if dtype == BF16 else float(v)


def fill_(x, value) -> None:
    """In place: every element of x becomes value (converted as numpy stores it)."""
    _writeable(x, "fill_")
    v = host_value(value, x.dtype)
    if isinstance(v, int):
        _cuda.fill(x, 0.0, v, True)
    else:
        _cuda.fill(x, v, 0, False)


def full(shape: tuple, value, dtype) -> "Array":
    """A new row-major array with every element `value` (cast to dtype)."""
    out = empty(shape, dtype)
    fill_(out, value)
    return out


def from_host(a: np.ndarray) -> "Array":
    """A device array holding a copy of host array `a` (asynchronous from pinned memory,
    see tinyfw.cuda.pin_memory)."""
    if type(a) is not np.ndarray:
        raise TypeError(f"from_host: expected a host (numpy) array, got {type(a).__name__}")
    c = code(a.dtype)
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return _cuda.from_host(a, c, _cuda.current_device(), True)


def to_host(a) -> np.ndarray:
    """A host copy of `a`'s values (waits for the kernels queued before it)."""
    if Array is None or type(a) is not Array:
        raise TypeError(f"to_host: expected a cuda array, got {type(a).__name__}")
    if not a.contiguous:
        a = contiguous(a)
    out = np.empty(a.shape, a.dtype)
    _cuda.to_host(a, out)
    return out


# -- views ------------------------------------------------------------------------------------
def _strided(x, shape, strides, offset, writeable=True):
    return _cuda.as_strided(x, list(shape), list(strides), offset, writeable)


def _view_strides(shape: tuple, strides: tuple, new: tuple, item: int):
    """Strides that show memory laid out as (shape, strides) with shape `new`, or None
    when no strides can (numpy's no-copy reshape rule)."""
    if math.prod(new) == 0 or not shape:
        return _row_major(new, item)
    old = [(n, s) for n, s in zip(shape, strides) if n != 1]
    out = [item] * len(new)
    oi = ni = 0
    while oi < len(old) and ni < len(new):
        np_, op = new[ni], old[oi][0]
        nj, oj = ni + 1, oi + 1
        while np_ != op:
            if np_ < op:
                np_ *= new[nj]
                nj += 1
            else:
                op *= old[oj][0]
                oj += 1
        for k in range(oi, oj - 1):  # the old dims of this group must be one block
            if old[k][1] != old[k + 1][0] * old[k + 1][1]:
                return None
        out[nj - 1] = old[oj - 1][1]
        for k in range(nj - 1, ni, -1):
            out[k - 1] = out[k] * new[k]
        ni, oi = nj, oj
    return out


def _row_major(shape, item: int) -> list:
    out, s = [0] * len(shape), item
    for i in range(len(shape) - 1, -1, -1):
        out[i] = s
        s *= max(shape[i], 1)
    return out


def view(x, shape: tuple):
    """x seen with a new shape, or None when its strides do not allow it without a copy."""
    st = _view_strides(x.shape, x.strides, tuple(shape), x.itemsize)
    return None if st is None else _strided(x, shape, st, x.offset)


def permute(x, dims: tuple):
    """x with its dims reordered."""
    sh, st = x.shape, x.strides
    return _strided(x, [sh[d] for d in dims], [st[d] for d in dims], x.offset)


def expand(x, shape: tuple):
    """A read-only view of x broadcast to `shape` (stride 0 in the grown dims)."""
    lead = len(shape) - x.ndim
    strides = [0] * lead
    for s, n, st in zip(shape[lead:], x.shape, x.strides):
        if n != 1 and n != s:
            raise ValueError(f"expand: cannot broadcast {x.shape} to {tuple(shape)}")
        strides.append(0 if n == 1 and s != 1 else st)
    return _strided(x, shape, strides, x.offset, False)


def slice_view(x, index: tuple):
    """Basic indexing (ints, slices, None, Ellipsis): a view, 0-d results included."""
    index = tuple(index)
    if Ellipsis in index:
        k = index.index(Ellipsis)
        # builtins.sum: this module's `sum` is the reduction primitive (cuda_ops)
        used = builtins.sum(1 for i in index if i is not None and i is not Ellipsis)
        index = index[:k] + (slice(None),) * (x.ndim - used) + index[k + 1:]
    shape, strides, offset, d = [], [], x.offset, 0
    for i in index:
        if i is None:
            shape.append(1)
            strides.append(0)
            continue
        n, st = x.shape[d], x.strides[d]
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            length = len(range(start, stop, step))
            if length:
                offset += start * st
            shape.append(length)
            strides.append(st * step)
        else:
            j = int(i)
            if not -n <= j < n:
                raise IndexError(f"index {j} is out of bounds for dimension {d} with size {n}")
            offset += (j % n) * st
        d += 1
    shape += x.shape[d:]
    strides += x.strides[d:]
    return _strided(x, shape, strides, offset)


def storage_offset(x) -> int:
    """Elements from the start of x's allocation to x's first element."""
    return x.offset // x.itemsize


def as_strided(x, shape: tuple, strides: tuple, offset: int):
    """A view of x's allocation with `shape` and element `strides` (>= 0), `offset`
    elements after x's first element; ValueError when it would leave the allocation."""
    item = x.itemsize
    start = x.offset // item + offset
    size = x.storage.nbytes // item
    last = start + builtins.sum((n - 1) * s for n, s in zip(shape, strides))
    if start < 0 or (0 not in shape and last >= size):
        raise ValueError(f"sizes {list(shape)}, strides {list(strides)} and storage offset "
                         f"{start} need a storage of {last + 1} elements, out of bounds for "
                         f"a storage of {size} elements")
    return _strided(x, shape, [s * item for s in strides], start * item, x.writeable)


def is_contiguous(x) -> bool:
    """True when x is row-major without gaps."""
    return x.contiguous


def is_writeable(x) -> bool:
    """False for read-only views (expanded, broadcast)."""
    return x.writeable


def memory_owner(x):
    """The storage x views (equal for views of one block)."""
    return x.storage


def is_dense(x) -> bool:
    """True when x covers one gap-free block of memory (row- or column-major)."""
    if x.contiguous:  # empty arrays included
        return True
    s = x.itemsize
    for n, st in zip(x.shape, x.strides):
        if n != 1 and st != s:
            return False
        s *= n
    return True


def _writeable(x, name: str) -> None:
    if not x.writeable:
        raise ValueError(f"{name}: the destination is a read-only (expanded) view")


# -- streams and memory ---------------------------------------------------------------------------
def synchronize() -> None:
    """Wait for every kernel queued on the current device."""
    _cuda.synchronize()


def memory_stats() -> dict:
    """The caching allocator's counters on the current device (docs/cuda.md)."""
    return dict(_cuda.memory_stats(_cuda.current_device()))


def memory_allocated() -> int:
    """Bytes of blocks held by live arrays (rounded sizes, as PyTorch counts)."""
    return _cuda.memory_stats(_cuda.current_device())["allocated"]


def max_memory_allocated() -> int:
    """Peak of memory_allocated since start or the last reset."""
    return _cuda.memory_stats(_cuda.current_device())["max_allocated"]


def memory_reserved() -> int:
    """Bytes the allocator holds from cudaMalloc, in use or cached."""
    return _cuda.memory_stats(_cuda.current_device())["reserved"]


def empty_cache() -> None:
    """Return the cached, wholly free segments to the driver."""
    _cuda.empty_cache(_cuda.current_device())


def reset_peak_memory_stats() -> None:
    """Restart max_memory_allocated from the live bytes."""
    _cuda.reset_peak(_cuda.current_device())


if not _why:
    from .cuda_ops import *  # noqa: E402,F401,F403  (elementwise, reductions)
    from .cuda_data import *  # noqa: E402,F401,F403  (copies, indexing, sorting, random)
    from .cuda_ops import install_missing as _install_missing  # noqa: E402

    _install_missing(globals())


def __getattr__(name: str):
    if _why:
        raise AttributeError(f"the CUDA backend is not available: {_why}")
    raise AttributeError(name)
