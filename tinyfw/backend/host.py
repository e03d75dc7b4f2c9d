"""Host memory: numpy arrays as the format data enters and leaves tinyfw in.

Python numbers and lists, numpy arrays, checkpoints and random draws are host arrays; a
backend's `from_host` / `to_host` move them to and from its device.  Code outside the
backends that needs a host array (creation, serialization, printing) uses these helpers,
so numpy stays behind this package.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt

ndarray = np.ndarray


def to_array(data, dtype=None) -> np.ndarray:
    """A new row-major host array of a tinyfw dtype holding `data` (numbers, nested lists,
    numpy arrays, host arrays of tensors)."""
    want = None if dtype is None else _dt.as_dtype(dtype)
    if isinstance(data, np.ndarray):
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as e:
            raise ValueError(f"tensor: cannot make a tensor from {type(data).__name__}: {e}") from None
        if arr.dtype == np.float64 and want is None and not isinstance(data, np.generic):
            want = _dt.get_default_dtype()  # Python floats become the default dtype
        if arr.dtype == object:
            raise TypeError(f"tensor: cannot convert {type(data).__name__} of mixed or ragged "
                            "content to a tensor")
    if want is None:
        want = _dt._by_np.get(arr.dtype)
        if want is None:
            kind = arr.dtype.kind
            if kind in "iu":
                want = _dt.int64
            elif kind == "f":
                want = _dt.float64
            else:
                raise TypeError(f"tensor: numpy dtype {arr.dtype} is not supported")
    return np.array(arr, dtype=want.np, copy=True, order="C")


def is_host_array(x) -> bool:
    """True for numpy arrays and numpy scalars."""
    return isinstance(x, (np.ndarray, np.generic))


def is_integer(x) -> bool:
    """True for Python and numpy integers (not bools)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def stores_quietly(value, dtype: np.dtype) -> bool:
    """True when storing Python scalar `value` into `dtype` cannot overflow or warn, so the
    caller may skip ``np.errstate`` (~1.5 us: it sat on every backward's seed and every op
    with a Python number operand)."""
    t = type(value)
    if t is bool:
        return True
    if t is int:
        return (0 if dtype.kind == "u" else -128) <= value <= 127  # fits every such dtype
    if t is float and dtype.kind == "f" and dtype.itemsize >= 4:
        return dtype.itemsize == 8 or not 3.0e38 < abs(value) < math.inf
    return False


def wrap_int(value, dtype: np.dtype):
    """A Python integer outside an integer dtype's range wraps modulo 2**bits, as PyTorch
    converts scalars (uint8 + -1 adds 255, int8 + 300 adds 44); numpy would raise."""
    if dtype.kind in "iu" and isinstance(value, int) and not isinstance(value, bool):
        info = np.iinfo(dtype)
        if not info.min <= value <= info.max:
            value = (value - int(info.min)) % (1 << (8 * dtype.itemsize)) + int(info.min)
    return value


def scalar(value, dtype: _dt.DType) -> np.ndarray:
    """A 0-d host array holding `value` in `dtype`."""
    if stores_quietly(value, dtype.np):
        return np.array(value, dtype.np)
    with np.errstate(all="ignore"):
        return np.array(wrap_int(value, dtype.np), dtype.np)


def full(shape: tuple, value, dtype: _dt.DType) -> np.ndarray:
    """A host array of `value` everywhere."""
    if stores_quietly(value, dtype.np):
        return np.full(shape, value, dtype.np)
    with np.errstate(all="ignore"):
        return np.full(shape, wrap_int(value, dtype.np), dtype.np)


def arange(start, end, step, dtype: _dt.DType) -> np.ndarray:
    """start, start + step, ... below end (floats computed in float64, rounded once)."""
    if dtype.is_floating_point:
        n = max(0, math.ceil((end - start) / step))
        return (start + np.arange(n, dtype=np.float64) * step).astype(dtype.np)
    return np.arange(start, end, step).astype(dtype.np)


def linspace(start: float, end: float, steps: int, dtype: _dt.DType) -> np.ndarray:
    """`steps` evenly spaced values from start to end, both included."""
    return np.linspace(start, end, steps).astype(dtype.np)


def eye(n: int, m: int | None, dtype: _dt.DType) -> np.ndarray:
    """The n x m identity."""
    return np.eye(n, m, dtype=dtype.np)


def cast(a: np.ndarray, dtype: _dt.DType) -> np.ndarray:
    """a in `dtype` (a copy unless it already has it)."""
    return a if a.dtype == dtype.np else a.astype(dtype.np)


def to_list(a: np.ndarray):
    """Nested Python lists of a's values (bfloat16 as Python floats)."""
    if a.dtype == _dt.bfloat16.np:
        a = a.astype(np.float32)
    return a.tolist()


def format_array(a: np.ndarray) -> str:
    """The body of a tensor's repr, in PyTorch's style."""
    if a.dtype in (_dt.bfloat16.np, _dt.float16.np):
        a = a.astype(np.float32)
    fixed = a.dtype.kind == "f" and a.size > 0
    if fixed:
        finite = a[np.isfinite(a)]
        # PyTorch prints integral floats as "1.", anything else with 4 decimals
        fixed = bool(finite.size) and not np.array_equal(finite, np.round(finite))
    return np.array2string(a, separator=", ", prefix="tensor(", precision=4,
                           threshold=1000, edgeitems=3, suppress_small=True,
                           floatmode="fixed" if fixed else "maxprec")


def to_bytes(a: np.ndarray) -> memoryview:
    """The bytes of a's values in row-major order (no copy when a is row-major): what a
    checkpoint stores and checksums."""
    return memoryview(np.ascontiguousarray(a).reshape(-1).view(np.uint8))


def from_bytes(buffer, offset: int, dtype: _dt.DType, shape: tuple,
               stored: str | None = None) -> np.ndarray:
    """A new, writable row-major host array of `dtype` and `shape` read from `buffer`
    (little-endian values, as checkpoints store them) starting at byte `offset`.

    `stored`: the element type in the buffer when tinyfw has no dtype for it, a
    little-endian integer type code ('u1', 'i2', 'u2', 'u4', 'u8'); its values are
    converted to the integer `dtype`, and one that `dtype` cannot hold raises
    OverflowError.  Bools must be stored as bytes 0 or 1 (ValueError otherwise: numpy
    would keep any other byte as a bool that is neither True nor False bit for bit).
    """
    count = math.prod(shape)
    if stored is None:
        a = np.frombuffer(buffer, dtype=dtype.np, count=count, offset=offset)
        if dtype is _dt.bool_ and count and int(a.view(np.uint8).max()) > 1:
            raise ValueError(f"bool bytes must be 0 or 1, found {int(a.view(np.uint8).max())}")
        return a.reshape(shape).copy()
    raw = np.frombuffer(buffer, dtype=np.dtype("<" + stored), count=count, offset=offset)
    if count:
        lo, hi, info = int(raw.min()), int(raw.max()), np.iinfo(dtype.np)
        if lo < info.min or hi > info.max:
            bad = hi if hi > info.max else lo
            raise OverflowError(f"value {bad} does not fit {dtype.name}")
    return raw.reshape(shape).astype(dtype.np)
