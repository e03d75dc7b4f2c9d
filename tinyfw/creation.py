"""Making tensors: from data, filled, ranges, random, and the `*_like` / `new_*` forms."""
from __future__ import annotations

import math

import numpy as np

from . import dtypes as _dt
from .device import as_device
from .random import Generator, _gen
from .tensor import Tensor, register_method

_make = Tensor._make


def _to_array(data, dtype=None) -> np.ndarray:
    """A new numpy array of a tinyfw dtype holding `data` (numbers, lists, arrays, tensors)."""
    want = None if dtype is None else _dt.as_dtype(dtype)
    if isinstance(data, Tensor):
        arr = data._data
    elif isinstance(data, np.ndarray):
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except ValueError as e:
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


def _size(size, op: str) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    try:
        size = tuple(int(s) for s in size)
    except TypeError:
        raise TypeError(f"{op}: size must be ints, got {size!r}") from None
    if any(s < 0 for s in size):
        raise RuntimeError(f"{op}: negative dimension in size {size}")
    return size


def _finish(arr: np.ndarray, requires_grad: bool, device) -> Tensor:
    if device is not None:
        as_device(device)
    t = _make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _dtype_or_default(dtype) -> _dt.DType:
    return _dt.get_default_dtype() if dtype is None else _dt.as_dtype(dtype)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (numbers, nested lists, numpy arrays)."""
    return _finish(_to_array(data, dtype), requires_grad, device)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like tensor(), but shares memory with a numpy array or tensor when no conversion is
    needed."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype is _dt.as_dtype(dtype)):
        return data
    if isinstance(data, np.ndarray) and data.dtype in _dt._by_np and (
            dtype is None or _dt.as_dtype(dtype).np == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype, device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing `array`'s memory (no copy); its dtype must be one tinyfw holds."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy array, got {type(array).__name__}")
    _dt.from_numpy_dtype(array.dtype)
    return _make(array)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros."""
    return _finish(np.zeros(_size(size, "zeros"), _dtype_or_default(dtype).np), requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _finish(np.ones(_size(size, "ones"), _dtype_or_default(dtype).np), requires_grad, device)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (here: zeros, so results never depend on stale memory)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def _fill_dtype(value):
    if isinstance(value, bool):
        return _dt.bool_
    if isinstance(value, int):
        return _dt.int64
    return _dt.get_default_dtype()


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with `fill_value` (its dtype inferred from the value by default)."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    dt = _fill_dtype(fill_value) if dtype is None else _dt.as_dtype(dtype)
    return _finish(np.full(_size((size,), "full"), fill_value, dt.np), requires_grad, device)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from start (inclusive) to end (exclusive) by step."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be non-zero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: the range [{start}, {end}) cannot be walked with step {step}")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = _dt.int64 if is_int else _dt.get_default_dtype()
    dtype = _dt.as_dtype(dtype)
    n = max(0, math.ceil((end - start) / step))
    arr = (start + np.arange(n, dtype=np.float64) * step) if dtype.is_floating_point else \
        np.arange(start, end, step)
    return _finish(arr.astype(dtype.np), requires_grad, device)


def linspace(start: float, end: float, steps: int, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """`steps` evenly spaced values from start to end, both included."""
    if steps < 0:
        raise RuntimeError(f"linspace: steps must be non-negative, got {steps}")
    arr = np.linspace(start, end, steps).astype(_dtype_or_default(dtype).np)
    return _finish(arr, requires_grad, device)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """The n × m identity matrix."""
    return _finish(np.eye(n, m, dtype=_dtype_or_default(dtype).np), requires_grad, device)


def _like(x: Tensor, dtype):
    return x.dtype if dtype is None else _dt.as_dtype(dtype)


def zeros_like(x: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Zeros with x's shape (and dtype unless given)."""
    return zeros(x.shape, dtype=_like(x, dtype), device=device, requires_grad=requires_grad)


def ones_like(x: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Ones with x's shape (and dtype unless given)."""
    return ones(x.shape, dtype=_like(x, dtype), device=device, requires_grad=requires_grad)


def empty_like(x: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor with x's shape (and dtype unless given)."""
    return zeros_like(x, dtype, device, requires_grad)


def full_like(x: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """`fill_value` everywhere, with x's shape (and dtype unless given)."""
    return full(x.shape, fill_value, dtype=_like(x, dtype), device=device, requires_grad=requires_grad)


# -- random ---------------------------------------------------------------------------------
def rand(*size, generator: Generator | None = None, dtype=None, device=None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1)."""
    arr = _gen(generator).random(_size(size, "rand"), dtype=np.float64)
    return _finish(arr.astype(_dtype_or_default(dtype).np), requires_grad, device)


def randn(*size, generator: Generator | None = None, dtype=None, device=None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples."""
    arr = _gen(generator).standard_normal(_size(size, "randn"))
    return _finish(arr.astype(_dtype_or_default(dtype).np), requires_grad, device)


def randint(low: int, high: int | None = None, size=(), generator: Generator | None = None,
            dtype=None, device=None) -> Tensor:
    """Integers uniform in [low, high)."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"randint: empty range [{low}, {high})")
    arr = _gen(generator).integers(low, high, _size((size,), "randint"))
    return _finish(arr.astype((_dt.int64 if dtype is None else _dt.as_dtype(dtype)).np), False, device)


def randperm(n: int, generator: Generator | None = None, dtype=None, device=None) -> Tensor:
    """A random permutation of 0..n-1."""
    arr = _gen(generator).permutation(n)
    return _finish(arr.astype((_dt.int64 if dtype is None else _dt.as_dtype(dtype)).np), False, device)


def rand_like(x: Tensor, generator: Generator | None = None, dtype=None) -> Tensor:
    """Uniform samples with x's shape and dtype."""
    return rand(x.shape, generator=generator, dtype=_like(x, dtype))


def randn_like(x: Tensor, generator: Generator | None = None, dtype=None) -> Tensor:
    """Standard normal samples with x's shape and dtype."""
    return randn(x.shape, generator=generator, dtype=_like(x, dtype))


def bernoulli(p: Tensor, generator: Generator | None = None) -> Tensor:
    """1 with probability p (elementwise), else 0; p's dtype."""
    arr = (_gen(generator).random(p.shape) < np.asarray(p._data, np.float64)).astype(p._data.dtype)
    return _make(arr)


def _new(method):
    def new(self, *size, dtype=None, device=None, requires_grad: bool = False):
        return method(*size, dtype=self.dtype if dtype is None else dtype, device=device,
                      requires_grad=requires_grad)
    new.__doc__ = f"{method.__name__} with this tensor's dtype by default."
    return new


def _new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
    return full(size, fill_value, dtype=self.dtype if dtype is None else dtype, device=device,
                requires_grad=requires_grad)


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    return tensor(data, dtype=self.dtype if dtype is None else dtype, device=device,
                  requires_grad=requires_grad)


register_method("new_zeros", _new(zeros))
register_method("new_ones", _new(ones))
register_method("new_empty", _new(empty))
register_method("new_full", _new_full)
register_method("new_tensor", _new_tensor)
