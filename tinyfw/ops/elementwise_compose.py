"""PyTorch's elementwise names that are compositions of other ops or aliases (issue 16):
deg2rad, rad2deg, frac, fix, sinc, sgn, angle, positive, clamp_min/clamp_max/clip,
addcmul, addcdiv, lerp, ldexp, float_power, and the spelled-out aliases (arcsin,
multiply, greater_equal, ...).

Composed from tinyfw ops, so gradients of any order, every backend and the tracer come
with them; each follows PyTorch's formula where the order of rounding shows (lerp's two
branches, deg2rad's one product by a rounded constant).
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from .elementwise import (_float_operand, abs, atan2, clamp, div, ge, gt, isnan, le, lt, mul,
                          ne, neg, pow, sign, sub, trunc, where)
from .elementwise_math import (acos, acosh, asin, asinh, atan, atanh, exp2)
from ._util import Tensor, ensure_tensor, promote, scalar_tensor

__all__ = ["deg2rad", "rad2deg", "frac", "fix", "sinc", "sgn", "angle", "positive",
           "negative", "absolute", "multiply", "subtract", "divide", "true_divide", "greater",
           "greater_equal", "less", "less_equal", "not_equal", "clamp_min", "clamp_max", "clip",
           "addcmul", "addcdiv", "lerp", "ldexp", "float_power", "arcsin", "arccos", "arctan",
           "arcsinh", "arccosh", "arctanh", "arctan2"]


def _floating(x, op: str) -> Tensor:
    return _float_operand(ensure_tensor(x, op))


def deg2rad(input) -> Tensor:
    """Degrees to radians: input * (pi / 180), the constant rounded to input's dtype."""
    return mul(_floating(input, "deg2rad"), math.pi / 180)


def rad2deg(input) -> Tensor:
    """Radians to degrees: input * (180 / pi)."""
    return mul(_floating(input, "rad2deg"), 180 / math.pi)


def frac(input) -> Tensor:
    """The fractional part input - trunc(input), with input's sign (floating inputs; its
    gradient is 1, trunc's being 0)."""
    x = ensure_tensor(input, "frac")
    if not x.dtype.is_floating_point:
        raise TypeError(f"frac: only floating-point dtypes are supported, got {x.dtype.name}")
    return x - trunc(x)


def fix(input) -> Tensor:
    """Round towards zero (alias of trunc)."""
    x = ensure_tensor(input, "fix")
    if x.dtype is _dt.bool_:
        raise TypeError("fix: not implemented for bool tensors")
    return trunc(x)


def sinc(input) -> Tensor:
    """The normalised sinc sin(pi x) / (pi x), 1 at x = 0.

    At x = 0 the value comes from the Taylor polynomial 1 - (pi x)**2 / 6, which is 1
    there with sinc's first and second derivatives (0 and -pi**2 / 3; PyTorch's double
    backward gives 0); elsewhere x is kept away from 0 so that no branch divides by it."""
    x = _floating(input, "sinc")
    zero = x == 0
    px = where(zero, 1.0, x) * math.pi
    pz = x * math.pi
    return where(zero, 1 - pz * pz / 6, px.sin() / px)


def sgn(input) -> Tensor:
    """sign(input) for real tensors (PyTorch's sgn also takes complex ones)."""
    return sign(input)


def angle(input) -> Tensor:
    """The argument of a real number: pi for negative input, 0 otherwise, NaN for NaN
    (integers give the default float dtype; the gradient is 0)."""
    x = _floating(input, "angle")
    arg = where(x < 0, x.new_full((), math.pi), x.new_zeros(()))
    return where(isnan(x), x * 0, arg)  # x * 0: NaN there, and a zero gradient


def positive(input) -> Tensor:
    """input itself (bool tensors are refused, as in PyTorch)."""
    x = ensure_tensor(input, "positive")
    if x.dtype is _dt.bool_:
        raise TypeError("positive: the + operator on a bool tensor is not supported")
    return x


def negative(input) -> Tensor:
    """-input (alias of neg)."""
    x = ensure_tensor(input, "negative")
    if x.dtype is _dt.bool_:
        raise TypeError("negative: the - operator on a bool tensor is not supported; use "
                        "logical_not")
    return neg(x)


def absolute(input) -> Tensor:
    """|input| (alias of abs)."""
    x = ensure_tensor(input, "absolute")
    if x.dtype is _dt.bool_:
        raise TypeError("absolute: not implemented for bool tensors")
    return abs(x)


def multiply(input, other) -> Tensor:
    """input * other (alias of mul)."""
    return mul(input, other)


def subtract(input, other, alpha=1) -> Tensor:
    """input - alpha * other (alias of sub)."""
    return sub(input, other, alpha=alpha)


def divide(input, other, rounding_mode: str | None = None) -> Tensor:
    """input / other (alias of div, with its rounding_mode None, 'trunc' or 'floor')."""
    return div(input, other, rounding_mode=rounding_mode)


def true_divide(input, other) -> Tensor:
    """input / other, true division (alias of div without rounding)."""
    return div(input, other)


def greater(input, other) -> Tensor:
    """input > other (alias of gt)."""
    return gt(input, other)


def greater_equal(input, other) -> Tensor:
    """input >= other (alias of ge)."""
    return ge(input, other)


def less(input, other) -> Tensor:
    """input < other (alias of lt)."""
    return lt(input, other)


def less_equal(input, other) -> Tensor:
    """input <= other (alias of le)."""
    return le(input, other)


def not_equal(input, other) -> Tensor:
    """input != other (alias of ne)."""
    return ne(input, other)


def clamp_min(input, min) -> Tensor:
    """max(input, min) (clamp with a lower bound only)."""
    return clamp(input, min=min)


def clamp_max(input, max) -> Tensor:
    """min(input, max) (clamp with an upper bound only)."""
    return clamp(input, max=max)


clip = clamp  # the same function (Tensor.clip is clamp too)


def addcmul(input, tensor1, tensor2, *, value=1) -> Tensor:
    """input + value * tensor1 * tensor2, the three broadcast and promoted together."""
    a, t1, t2 = promote("addcmul", input, tensor1, tensor2)
    if not a.dtype.is_floating_point and isinstance(value, float):
        raise TypeError("addcmul: for integer tensors, value must not be a floating point "
                        f"number (got {value!r})")
    # PyTorch's order of rounding: (value * tensor1) * tensor2
    return a + (t1 * value if value != 1 else t1) * t2


def addcdiv(input, tensor1, tensor2, *, value=1) -> Tensor:
    """input + value * tensor1 / tensor2 (tensor1 and tensor2 must not both be integer:
    PyTorch no longer does integer division here)."""
    t1, t2 = ensure_tensor(tensor1, "addcdiv"), ensure_tensor(tensor2, "addcdiv")
    if not t1.dtype.is_floating_point and not t2.dtype.is_floating_point:
        raise TypeError("addcdiv: integer division of tensor1 by tensor2 is not supported; "
                        "use floating tensors or addcmul with a reciprocal")
    a, t1, t2 = promote("addcdiv", input, t1, t2)
    # PyTorch's order of rounding: (value * tensor1) / tensor2
    return a + div(t1 * value if value != 1 else t1, t2)


def lerp(input, end, weight) -> Tensor:
    """input + weight * (end - input), by PyTorch's two-branch formula: for weight >= 0.5
    it is end - (end - input) * (1 - weight), exact at weight = 1.  input and end must
    have one floating dtype."""
    a, b = ensure_tensor(input, "lerp"), ensure_tensor(end, "lerp")
    if a.dtype is not b.dtype:
        raise TypeError(f"lerp: expected end of dtype {a.dtype.name}, got {b.dtype.name}")
    if not a.dtype.is_floating_point:
        raise TypeError(f"lerp: only floating-point dtypes are supported, got {a.dtype.name}")
    w = weight if isinstance(weight, Tensor) else a.new_full((), float(weight))
    d = b - a
    return where(w.abs() < 0.5, a + w * d, b - d * (1 - w))


def ldexp(input, other) -> Tensor:
    """input * 2 ** other (integers give the default float dtype)."""
    x, e = ensure_tensor(input, "ldexp"), _floating(other, "ldexp")
    return mul(x, exp2(e))


def float_power(input, exponent) -> Tensor:
    """input ** exponent computed in float64 (the result is float64 whatever the inputs)."""
    def f64(v):
        if isinstance(v, Tensor):
            return v.to(_dt.float64)
        if isinstance(v, (bool, int, float)):  # straight to float64: 0.1 is not rounded twice
            return scalar_tensor(float(v), _dt.float64)
        return ensure_tensor(v, "float_power").to(_dt.float64)

    return pow(f64(input), f64(exponent))


# -- numpy-style spellings of the inverse functions ------------------------------------------------
def arcsin(input) -> Tensor:
    """Alias of asin."""
    return asin(input)


def arccos(input) -> Tensor:
    """Alias of acos."""
    return acos(input)


def arctan(input) -> Tensor:
    """Alias of atan."""
    return atan(input)


def arcsinh(input) -> Tensor:
    """Alias of asinh."""
    return asinh(input)


def arccosh(input) -> Tensor:
    """Alias of acosh."""
    return acosh(input)


def arctanh(input) -> Tensor:
    """Alias of atanh."""
    return atanh(input)


def arctan2(input, other) -> Tensor:
    """Alias of atan2."""
    return atan2(input, other)
