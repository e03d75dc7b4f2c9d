"""Helpers shared by the op families: operand conversion, dims, broadcasting."""
from __future__ import annotations

from .. import dtypes as _dt
from ..backend import host
from ..dispatch import apply
from ..tensor import Tensor, _wrap_dim

_make = Tensor._make
_NOATTRS: dict = {}
_SCALARS = (bool, int, float)


def scalar_tensor(v, dtype: _dt.DType) -> Tensor:
    """A 0-dim CPU tensor holding Python number `v` in `dtype` (it joins any device's
    tensors in an op, as in PyTorch)."""
    return _make(host.scalar(v, dtype))


def ensure_tensor(x, op: str) -> Tensor:
    """x itself if a Tensor; numbers and numpy arrays become tensors; else a TypeError."""
    if type(x) is Tensor or isinstance(x, Tensor):
        return x
    if isinstance(x, _SCALARS):
        return _make(host.scalar(x, _dt.result_type(x)))
    if host.is_host_array(x):
        from ..creation import tensor

        return tensor(x)
    raise TypeError(f"{op}: expected a Tensor or a number, got {type(x).__name__}")


def promote(op: str, *xs) -> list:
    """Convert the operands of `op` to Tensors of their common dtype (PyTorch promotion)."""
    for x in xs:
        if not isinstance(x, (Tensor, _SCALARS)):
            if host.is_host_array(x):
                return promote(op, *[ensure_tensor(v, op) for v in xs])
            raise TypeError(f"{op}: expected Tensors or numbers, got {type(x).__name__}")
    dt = _dt.result_type(*xs)
    out = []
    for x in xs:
        if isinstance(x, Tensor):
            out.append(x if x._data.dtype == dt.np else x.to(dt))
        else:
            out.append(_make(host.scalar(x, dt)))
    return out


def binary_operands(a, b, op: str):
    """Fast path of `promote` for two operands: same-dtype tensors pass untouched."""
    if type(a) is Tensor and type(b) is Tensor and a._data.dtype == b._data.dtype:
        return a, b
    return promote(op, a, b)


def dims_of(dim, ndim: int, op: str) -> tuple:
    """Normalise `dim` (None, an int, or a sequence of ints) to a sorted tuple."""
    if dim is None:
        return tuple(range(ndim))
    if host.is_integer(dim):
        return (_wrap_dim(int(dim), ndim, op),)
    dims = tuple(_wrap_dim(int(d), ndim, op) for d in dim)
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"{op}: dim {tuple(dim)} names a dimension more than once")
    return tuple(sorted(dims))


def broadcast_shapes(*shapes, op: str = "broadcast") -> tuple:
    """The shape the given shapes broadcast to, or a RuntimeError naming them."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        size = 1
        for s in shapes:
            j = i - (ndim - len(s))
            if j < 0:
                continue
            d = s[j]
            if d != 1:
                if size != 1 and size != d:
                    raise RuntimeError(
                        f"{op}: shapes {' and '.join(str(tuple(x)) for x in shapes)} cannot be "
                        f"broadcast: dimension {i - ndim} is {size} vs {d}")
                size = d
        out.append(size)
    return tuple(out)


def unbroadcast(g: Tensor, shape: tuple) -> Tensor:
    """Sum `g` down to `shape`: the gradient of broadcasting a `shape` tensor to g's."""
    if g._data.shape == shape:
        return g
    lead = g.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and g.shape[i + lead] != 1)
    if dims and len(dims) == lead:  # only leading dims: the sum has the shape already (no view)
        return g.sum(dims)
    if dims:
        g = g.sum(dims, keepdim=True)
    return g.reshape(shape)


def reshape_array(B, a, shape: tuple):
    """Backend array `a` seen with `shape` (a copy only when its strides do not allow a
    view); for forwards that reshape an intermediate array."""
    v = B.view(a, shape)
    return v if v is not None else B.view(B.contiguous(a), shape)


__all__ = ["reshape_array", "apply", "Tensor", "scalar_tensor", "ensure_tensor", "promote", "binary_operands",
           "dims_of", "broadcast_shapes", "unbroadcast", "_wrap_dim", "_make", "_NOATTRS"]
