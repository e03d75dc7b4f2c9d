"""The checking device: the reference kernels behind arrays that are not numpy arrays.

A ``check`` tensor's array is a `CheckArray`, a thin wrapper over a private numpy buffer
that offers only the array protocol every device array has (shape, dtype, ndim, size,
itemsize, strides, device, backend).  It has no arithmetic, no indexing and refuses to
become a numpy array, so any code path that reaches numpy around the backend, or mixes
devices, fails loudly on it.  The test suite runs on it (``TINYFW_DEVICE=check``): that is
how the plumbing a CUDA backend needs is proven on machines without a GPU.

Every primitive and contract function is ref's, with CheckArray arguments unwrapped and
results wrapped; a plain numpy array among the arguments is a device mix and an error.
"""
from __future__ import annotations

import numpy as np

from ..device import Device
from . import ref as _ref
from . import CONTRACT, primitives

DEVICE = Device("check")


class CheckArray:
    """An array of the check device (see the module doc)."""

    __slots__ = ("_a", "__weakref__")
    __array_ufunc__ = None  # numpy ufuncs refuse it instead of making object arrays
    device = DEVICE

    def __init__(self, a: np.ndarray):
        self._a = a

    @property
    def backend(self):
        return _this

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)

    def __array__(self, *args, **kwargs):
        raise TypeError("a 'check' device array reached numpy directly; device arrays go "
                        "through their backend (tinyfw.backend) only")

    def __len__(self):
        raise TypeError("a 'check' device array was used as a sequence; use the backend")

    def __bool__(self):
        raise TypeError("a 'check' device array was used as a truth value; use the backend")

    def __repr__(self) -> str:
        return f"CheckArray(shape={self.shape}, dtype={self.dtype})"


def _unwrap(x, name: str):
    t = type(x)
    if t is CheckArray:
        return x._a
    if t is np.ndarray:
        raise RuntimeError(f"check backend: {name} got a numpy (CPU) array among its arguments; "
                           "a CPU array reached a device kernel (devices mixed, or an op passed "
                           "an array outside its inputs)")
    if t is tuple or t is list:
        return t(_unwrap(v, name) for v in x)
    return x


def _wrap(x):
    t = type(x)
    if t is np.ndarray:
        return CheckArray(x)
    if t is tuple:
        return tuple(_wrap(v) for v in x)
    if isinstance(x, np.generic):
        raise TypeError(f"check backend: a primitive returned a numpy scalar ({x!r}); "
                        "primitives return arrays")
    return x


def _wrapped(name: str, f):
    def prim(*args, **kwargs):
        args = [_unwrap(a, name) for a in args]
        kwargs = {k: _unwrap(v, name) for k, v in kwargs.items()}
        return _wrap(f(*args, **kwargs))
    prim.__name__ = name
    prim.__qualname__ = name
    prim.__doc__ = f.__doc__
    prim.__module__ = __name__
    return prim


for _name, _f in primitives(_ref).items():
    globals()[_name] = _wrapped(_name, _f)
for _name in CONTRACT:
    if _name not in ("unavailable", "from_host", "to_host", "memory_owner"):
        globals()[_name] = _wrapped(_name, getattr(_ref, _name))


def unavailable(device) -> str:
    """Why `device` cannot run here ('' when it can)."""
    return "" if device.index in (None, 0) else "the check device has one instance, index 0"


def from_host(a: np.ndarray) -> CheckArray:
    """A check array holding a copy of host array `a`."""
    if type(a) is not np.ndarray:
        raise TypeError(f"from_host: expected a host (numpy) array, got {type(a).__name__}")
    return CheckArray(np.array(a, copy=True))


def to_host(a: CheckArray) -> np.ndarray:
    """A host copy of `a`'s values."""
    if type(a) is not CheckArray:
        raise TypeError(f"to_host: expected a check array, got {type(a).__name__}")
    return np.array(a._a, copy=True)


def memory_owner(a: CheckArray):
    """The object identifying the memory `a` views."""
    return _ref.memory_owner(a._a)


import sys as _sys  # noqa: E402

_this = _sys.modules[__name__]
