"""Making tensors: from data, filled, ranges, random, and the `*_like` / `new_*` forms.

Every factory takes ``device=`` (the default device when None, see
`tinyfw.set_default_device`).  Values that are computed rather than filled (ranges,
random draws, data) are made on the host and moved by the device's backend, so a seed
gives the same numbers on every device; the meta device computes and draws nothing.  The
exception: a backend with a generator of its own (CUDA's Philox: ``random_uniform`` /
``random_normal``) draws `rand`/`randn` on the device, seeded from the generator, so the
seed reproduces them there but they differ from the CPU's numbers (as in PyTorch).
"""
from __future__ import annotations

import math

from . import dtypes as _dt
from .backend import backend_for, backend_of, host
from .device import Device, as_device, get_default_device
from .random import Generator, _gen
from .tensor import Tensor, register_method

_make = Tensor._make


def _to_array(data, dtype=None):
    """A new array of a tinyfw dtype holding `data` (numbers, lists, arrays, tensors), on
    the default device (a tensor's own device for a tensor)."""
    if isinstance(data, Tensor):
        if dtype is not None and _dt.as_dtype(dtype) is not data.dtype:
            data = data.detach().to(dtype)
        from .tensor import _copy_array

        return _copy_array(data._data)
    return _place(host.to_array(data, dtype), None)


def _device(device) -> Device:
    return get_default_device() if device is None else as_device(device)


def _place(arr, device):
    """Host array `arr` moved to `device` (the default device when None)."""
    dev = _device(device)
    return backend_for(dev).from_host(arr)


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


def _finish(arr, requires_grad: bool) -> Tensor:
    t = _make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _host_made(device, shape: tuple, dtype: _dt.DType, make_host) -> object:
    """The array `make_host()` computes on the host, on `device`; on the meta device nothing
    is computed (nor drawn from a generator), as in PyTorch."""
    dev = _device(device)
    B = backend_for(dev)
    if dev.type == "meta":
        return B.empty(shape, dtype.np)
    return B.from_host(make_host())


def _device_drawn(device, kind: str, shape: tuple, dtype: _dt.DType, generator):
    """Floating draws made on the device by its own counter-based generator (the CUDA
    backend's Philox: `kind` is random_uniform or random_normal), seeded from `generator`
    so that tinyfw.manual_seed reproduces them; None where the device draws on the host."""
    if not dtype.is_floating_point:
        return None
    B = backend_for(_device(device))
    draw = getattr(B, kind, None)
    if draw is None:
        return None
    from .random import default_generator

    return draw(shape, dtype.np, (generator or default_generator).next_seed())


def _dtype_or_default(dtype) -> _dt.DType:
    return _dt.get_default_dtype() if dtype is None else _dt.as_dtype(dtype)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (numbers, nested lists, numpy arrays, tensors)."""
    if isinstance(data, Tensor):
        t = data.detach().to(dtype=dtype, device=device, copy=True)
        return _finish(t._data, requires_grad)
    return _finish(_place(host.to_array(data, dtype), device), requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like tensor(), but shares memory with a numpy array or tensor when no conversion is
    needed."""
    if isinstance(data, Tensor):
        return data.to(dtype=dtype, device=device)
    if isinstance(data, host.ndarray) and data.dtype in _dt._by_np and (
            dtype is None or _dt.as_dtype(dtype).np == data.dtype) and (
            (get_default_device() if device is None else as_device(device)).type == "cpu"):
        return from_numpy(data)
    return tensor(data, dtype, device)


def from_numpy(array) -> Tensor:
    """A CPU tensor sharing `array`'s memory (no copy); its dtype must be one tinyfw holds."""
    if not isinstance(array, host.ndarray):
        raise TypeError(f"from_numpy: expected a numpy array, got {type(array).__name__}")
    _dt.from_numpy_dtype(array.dtype)
    return _make(array)


def _filled(size: tuple, value, dtype: _dt.DType, device, requires_grad: bool) -> Tensor:
    return _finish(backend_for(_device(device)).full(size, value, dtype.np), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros."""
    return _filled(_size(size, "zeros"), 0, _dtype_or_default(dtype), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _filled(_size(size, "ones"), 1, _dtype_or_default(dtype), device, requires_grad)


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
    return _filled(_size((size,), "full"), fill_value, dt, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from start (inclusive) to end (exclusive) by step."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be non-zero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: the range [{start}, {end}) cannot be walked with step {step}")
    if dtype is None:
        is_int = all(host.is_integer(v) for v in (start, end, step))
        dtype = _dt.int64 if is_int else _dt.get_default_dtype()
    dtype = _dt.as_dtype(dtype)
    n = max(0, math.ceil((end - start) / step))
    arr = _host_made(device, (n,), dtype, lambda: host.arange(start, end, step, dtype))
    return _finish(arr, requires_grad)


def linspace(start: float, end: float, steps: int, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """`steps` evenly spaced values from start to end, both included."""
    if steps < 0:
        raise RuntimeError(f"linspace: steps must be non-negative, got {steps}")
    dt = _dtype_or_default(dtype)
    arr = _host_made(device, (steps,), dt, lambda: host.linspace(start, end, steps, dt))
    return _finish(arr, requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """The n × m identity matrix."""
    dt = _dtype_or_default(dtype)
    arr = _host_made(device, (n, n if m is None else m), dt, lambda: host.eye(n, m, dt))
    return _finish(arr, requires_grad)


def _like(x: Tensor, dtype):
    return x.dtype if dtype is None else _dt.as_dtype(dtype)


def zeros_like(x: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Zeros with x's shape (and dtype and device unless given)."""
    return zeros(x.shape, dtype=_like(x, dtype), device=device or x.device,
                 requires_grad=requires_grad)


def ones_like(x: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Ones with x's shape (and dtype and device unless given)."""
    return ones(x.shape, dtype=_like(x, dtype), device=device or x.device,
                requires_grad=requires_grad)


def empty_like(x: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor with x's shape (and dtype unless given)."""
    return zeros_like(x, dtype, device, requires_grad)


def full_like(x: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """`fill_value` everywhere, with x's shape (and dtype and device unless given)."""
    return full(x.shape, fill_value, dtype=_like(x, dtype), device=device or x.device,
                requires_grad=requires_grad)


# -- random ---------------------------------------------------------------------------------
def rand(*size, generator: Generator | None = None, dtype=None, device=None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1)."""
    shape, dt = _size(size, "rand"), _dtype_or_default(dtype)
    arr = _device_drawn(device, "random_uniform", shape, dt, generator)
    if arr is None:
        arr = _host_made(device, shape, dt, lambda: host.cast(_gen(generator).random(shape), dt))
    return _finish(arr, requires_grad)


def randn(*size, generator: Generator | None = None, dtype=None, device=None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples."""
    shape, dt = _size(size, "randn"), _dtype_or_default(dtype)
    arr = _device_drawn(device, "random_normal", shape, dt, generator)
    if arr is None:
        arr = _host_made(device, shape, dt,
                         lambda: host.cast(_gen(generator).standard_normal(shape), dt))
    return _finish(arr, requires_grad)


def randint(low: int, high: int | None = None, size=(), generator: Generator | None = None,
            dtype=None, device=None) -> Tensor:
    """Integers uniform in [low, high)."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"randint: empty range [{low}, {high})")
    shape = _size((size,), "randint")
    dt = _dt.int64 if dtype is None else _dt.as_dtype(dtype)
    arr = _host_made(device, shape, dt,
                     lambda: host.cast(_gen(generator).integers(low, high, shape), dt))
    return _finish(arr, False)


def randperm(n: int, generator: Generator | None = None, dtype=None, device=None) -> Tensor:
    """A random permutation of 0..n-1."""
    dt = _dt.int64 if dtype is None else _dt.as_dtype(dtype)
    arr = _host_made(device, (n,), dt, lambda: host.cast(_gen(generator).permutation(n), dt))
    return _finish(arr, False)


def rand_like(x: Tensor, generator: Generator | None = None, dtype=None, device=None) -> Tensor:
    """Uniform samples with x's shape (and dtype and device unless given)."""
    return rand(x.shape, generator=generator, dtype=_like(x, dtype), device=device or x.device)


def randn_like(x: Tensor, generator: Generator | None = None, dtype=None, device=None) -> Tensor:
    """Standard normal samples with x's shape (and dtype and device unless given)."""
    return randn(x.shape, generator=generator, dtype=_like(x, dtype), device=device or x.device)


def bernoulli(input: Tensor, p: float | None = None, *, generator: Generator | None = None) -> Tensor:
    """1 with probability `input` (elementwise probabilities in [0, 1], a float tensor),
    else 0, in input's dtype and device; with a float `p`, every element is 1 with
    probability p instead (input gives only the shape, dtype and device).  Also the
    Tensor method ``x.bernoulli(p=None, *, generator=None)``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"bernoulli: input must be a Tensor, got {type(input).__name__}")
    if p is None:
        if not input.dtype.is_floating_point:
            raise TypeError(f"bernoulli: probabilities must be floating point, got "
                            f"{input.dtype.name}")
        prob = input.detach().to(_dt.float64)
        if input.numel() and not input.is_meta:
            lo, hi = float(prob.min().item()), float(prob.max().item())
            if not (0.0 <= lo and hi <= 1.0):  # NaN fails too
                raise RuntimeError(f"bernoulli: probabilities must be in [0, 1], got values "
                                   f"in [{lo}, {hi}]")
    else:
        if not 0.0 <= float(p) <= 1.0:
            raise RuntimeError(f"bernoulli: p must be in [0, 1], got {p}")
        prob = float(p)
    u = rand(input.shape, generator=generator, dtype=_dt.float64, device=input.device)
    return (u < prob).to(input.dtype)


def _new(method):
    def new(self, *size, dtype=None, device=None, requires_grad: bool = False):
        return method(*size, dtype=self.dtype if dtype is None else dtype,
                      device=device or self.device, requires_grad=requires_grad)
    new.__doc__ = f"{method.__name__} with this tensor's dtype and device by default."
    return new


def _new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
    return full(size, fill_value, dtype=self.dtype if dtype is None else dtype,
                device=device or self.device, requires_grad=requires_grad)


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    return tensor(data, dtype=self.dtype if dtype is None else dtype,
                  device=device or self.device, requires_grad=requires_grad)


register_method("bernoulli", bernoulli)
register_method("new_zeros", _new(zeros))
register_method("new_ones", _new(ones))
register_method("new_empty", _new(empty))
register_method("new_full", _new_full)
register_method("new_tensor", _new_tensor)
