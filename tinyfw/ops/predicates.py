"""Comparisons and predicates (issue 16): isclose, allclose, equal, nan_to_num, isposinf,
isneginf, isreal, and the questions a tensor answers about itself (is_floating_point,
is_signed, is_nonzero, get_device, ...).

Each is composed of existing ops (so every backend, the tracer and autograd serve them);
nan_to_num is the one with a gradient: 1 where the input is finite, 0 where it was
replaced, as PyTorch's.
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..backend.host_intops import finite_range
from ..tensor import register_method
from . import elementwise as E
from ._util import Tensor

__all__ = ["isclose", "allclose", "equal", "nan_to_num", "nan_to_num_", "isposinf",
           "isneginf", "isreal", "is_complex", "is_floating_point", "is_signed",
           "is_nonzero", "is_same_size", "is_inference", "is_distributed", "is_neg",
           "resolve_neg", "get_device"]


def _tensor(x, op: str, arg: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {arg} must be a Tensor, got {type(x).__name__}")
    return x


def isclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """|input - other| <= atol + |rtol * other| elementwise (bool), PyTorch's order of
    operations: equal values (infinities included) are close, NaN only with equal_nan;
    integer and bool inputs compare in the default float dtype."""
    a, b = _tensor(input, "isclose"), _tensor(other, "isclose", "other")
    if a.dtype is not b.dtype:
        raise RuntimeError(f"isclose: input and other must have the same dtype, got "
                           f"{a.dtype.name} and {b.dtype.name}")
    if rtol < 0 or atol < 0:
        raise RuntimeError(f"isclose: rtol and atol must be non-negative, got rtol={rtol}, "
                           f"atol={atol}")
    close = E.eq(a, b)
    if equal_nan and a.dtype.is_floating_point:
        close = E.logical_or(close, E.logical_and(E.isnan(a), E.isnan(b)))
    if rtol == 0 and atol == 0:
        return close
    if not a.dtype.is_floating_point:
        a, b = a.to(_dt.get_default_dtype()), b.to(_dt.get_default_dtype())
    a, b = a.detach(), b.detach()
    allowed = E.add(E.abs(E.mul(b, rtol)), atol)
    actual = E.abs(E.sub(a, b))
    return E.logical_or(close, E.logical_and(E.isfinite(actual), E.le(actual, allowed)))


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """True when every element of input is close to other's (isclose, broadcast)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).all().item())


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both have the same shape and equal elements (NaN equals nothing; the
    dtypes may differ: values compare after promotion, as in PyTorch)."""
    a, b = _tensor(input, "equal"), _tensor(other, "equal", "other")
    if a.shape != b.shape:
        return False
    return bool(E.eq(a.detach(), b.detach()).all().item())


def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    """NaN -> nan, +inf -> posinf, -inf -> neginf (default: the dtype's largest and
    smallest finite values); integer and bool tensors come back as a copy."""
    x = _tensor(input, "nan_to_num")
    if not x.dtype.is_floating_point:
        return x.clone()
    lowest, largest = finite_range(x.dtype)
    hi = largest if posinf is None else posinf
    lo = lowest if neginf is None else neginf
    inf = float("inf")
    out = E.where(E.eq(x, inf).detach(), x.new_full((), hi), x)
    out = E.where(E.eq(x, -inf).detach(), x.new_full((), lo), out)
    return E.where(E.isnan(x).detach(), x.new_full((), nan), out)


def nan_to_num_(input: Tensor, nan: float = 0.0, posinf: float | None = None,
                neginf: float | None = None) -> Tensor:
    """In-place nan_to_num: writes into input and returns it."""
    from .inplace import _inplace

    return _inplace(nan_to_num, "nan_to_num_")(input, nan, posinf, neginf)


def isposinf(input: Tensor) -> Tensor:
    """input == +inf elementwise (bool; all False for integer and bool tensors)."""
    x = _tensor(input, "isposinf")
    if not x.dtype.is_floating_point:
        return x.new_zeros(x.shape, dtype=_dt.bool_)
    return E.eq(x.detach(), float("inf"))


def isneginf(input: Tensor) -> Tensor:
    """input == -inf elementwise (bool; all False for integer and bool tensors)."""
    x = _tensor(input, "isneginf")
    if not x.dtype.is_floating_point:
        return x.new_zeros(x.shape, dtype=_dt.bool_)
    return E.eq(x.detach(), float("-inf"))


def isreal(input: Tensor) -> Tensor:
    """Whether each element has a zero imaginary part: all True (tinyfw has no complex)."""
    x = _tensor(input, "isreal")
    return x.new_ones(x.shape, dtype=_dt.bool_)


def is_complex(input: Tensor) -> bool:
    """False: tinyfw has no complex dtypes."""
    _tensor(input, "is_complex")
    return False


def is_floating_point(input: Tensor) -> bool:
    """True for float16, bfloat16, float32 and float64 tensors."""
    return _tensor(input, "is_floating_point").dtype.is_floating_point


def is_signed(input: Tensor) -> bool:
    """True unless the dtype is bool or uint8 (which hold no negative values)."""
    return _tensor(input, "is_signed").dtype not in (_dt.bool_, _dt.uint8)


def is_nonzero(input: Tensor) -> bool:
    """The truth of a one-element tensor (NaN is True); other sizes are an error."""
    x = _tensor(input, "is_nonzero")
    n = x.numel()
    if n != 1:
        raise RuntimeError("is_nonzero: Boolean value of Tensor with "
                           + ("no values" if n == 0 else "more than one value") + " is ambiguous")
    return bool(E.ne(x.detach().reshape(()), 0).item())


def is_same_size(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape."""
    return _tensor(input, "is_same_size").shape == _tensor(other, "is_same_size", "other").shape


def is_inference(input: Tensor) -> bool:
    """False: tinyfw has no inference mode, so no tensor is an inference tensor."""
    _tensor(input, "is_inference")
    return False


def is_distributed(input: Tensor) -> bool:
    """False: tinyfw tensors are never sharded (PyTorch's answer for every dense tensor)."""
    _tensor(input, "is_distributed")
    return False


def is_neg(input: Tensor) -> bool:
    """False: tinyfw has no lazy negation bit (PyTorch's is set for conj views only)."""
    _tensor(input, "is_neg")
    return False


def resolve_neg(input: Tensor) -> Tensor:
    """input itself: with no negation bit there is nothing to materialise."""
    return _tensor(input, "resolve_neg")


def get_device(input: Tensor) -> int:
    """The CUDA device index of a CUDA tensor, -1 for every other device."""
    d = _tensor(input, "get_device").device
    return (d.index or 0) if d.type == "cuda" else -1


def _register() -> None:
    from .inplace import _inplace

    for name in __all__:
        if name != "nan_to_num_":
            register_method(name, globals()[name])
    register_method("nan_to_num_", _inplace(nan_to_num, "nan_to_num_"))


_register()
