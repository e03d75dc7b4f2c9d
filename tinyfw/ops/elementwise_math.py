"""Elementwise math beyond the core set (issue 16): tan, the inverse trigonometric and
the hyperbolic functions, log2/log10/exp2, logit, and the binary IEEE functions (hypot,
copysign, fmod, fmax/fmin, logaddexp/logaddexp2, xlogy, nextafter, heaviside), signbit
and frexp.

Each op is one Function calling one primitive of ``backend/ref_math.py`` (so every
backend runs it); backward formulas are PyTorch's, written in tinyfw ops so that second
derivatives work.  Integer inputs of the math functions compute in the default float
dtype, as in PyTorch; the ops PyTorch refuses for integers (hypot, logaddexp, nextafter)
refuse them here too, naming the op.
"""
from __future__ import annotations

import math
from collections import namedtuple

from .. import dtypes as _dt
from ..autograd.function import Function
from .elementwise import _binary, _unary, where
from ._opmeta import TRANSCENDENTAL_FLOPS, per_output
from ._util import Tensor, apply, binary_operands, ensure_tensor, unbroadcast

__all__ = ["tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2",
           "log10", "exp2", "logit", "hypot", "copysign", "fmod", "fmax", "fmin", "logaddexp",
           "logaddexp2", "xlogy", "nextafter", "heaviside", "signbit", "frexp"]

_LN2, _LN10 = math.log(2.0), math.log(10.0)
_TRANS = per_output(TRANSCENDENTAL_FLOPS)


def _function(name: str, grad, *, saves: str = "x", onnx: str | None = None,
              autocast: str | None = "float32", differentiable: bool = True,
              flops=_TRANS) -> type:
    """A Function class `name` whose forward is primitive `name.lower()` and whose
    backward is `grad(self, g, *saved)` (saved: the inputs for saves="x", the output for
    "y", both for "xy")."""
    prim = name.lower()

    def forward(ctx, B, *arrays, **attrs):
        ctx.attrs = attrs
        return getattr(B, prim)(*arrays, **attrs)

    def backward(self, g):
        saved = []
        if "x" in saves:
            saved += list(self.saved_inputs)
        if "y" in saves:
            saved.append(self.output)
        return grad(self, g, *saved, **self.attrs)

    body = {"forward": staticmethod(forward), "autocast": autocast, "onnx": onnx,
            "c_expr": None,  # no C template: the jit runs it as its own op
            "flops": flops, "differentiable": differentiable,
            "save_inputs": "x" in saves, "save_output": "y" in saves,
            "__doc__": f"{prim}: primitive ``{prim}`` of the backend; backward in tinyfw ops.",
            "__module__": __name__}
    if differentiable:
        body["backward"] = backward
    return type(name, (Function,), body)


# -- unary: trigonometric and hyperbolic --------------------------------------------------------
Tan = _function("Tan", lambda s, g, y: g * (y * y + 1), saves="y", onnx="Tan")
Asin = _function("Asin", lambda s, g, x: g * (1 - x * x).rsqrt(), onnx="Asin")
Acos = _function("Acos", lambda s, g, x: -g * (1 - x * x).rsqrt(), onnx="Acos")
Atan = _function("Atan", lambda s, g, x: g / (x * x + 1), onnx="Atan")
Sinh = _function("Sinh", lambda s, g, x: g * cosh(x), onnx="Sinh")
Cosh = _function("Cosh", lambda s, g, x: g * sinh(x), onnx="Cosh")
Asinh = _function("Asinh", lambda s, g, x: g * (x * x + 1).rsqrt(), onnx="Asinh")
Acosh = _function("Acosh", lambda s, g, x: g * (x * x - 1).rsqrt(), onnx="Acosh")
Atanh = _function("Atanh", lambda s, g, x: g / (1 - x * x), onnx="Atanh")
# -- unary: logarithms and powers ---------------------------------------------------------------
Log2 = _function("Log2", lambda s, g, x: g / (x * _LN2))
Log10 = _function("Log10", lambda s, g, x: g / (x * _LN10))
Exp2 = _function("Exp2", lambda s, g, y: g * y * _LN2, saves="y")


def _logit_grad(self, g, x, eps=None):
    # PyTorch's logit_backward: NaN outside [0, 1] without eps, 0 outside [eps, 1 - eps]
    d = g / (x * (1 - x))
    if eps is None:
        return where((x < 0) | (x > 1), math.nan, d)
    return where((x < eps) | (x > 1 - eps), 0.0, d)


Logit = _function("Logit", _logit_grad)


def tan(input) -> Tensor:
    """Tangent (integers compute in the default float dtype)."""
    return _unary(Tan, input, "tan")


def asin(input) -> Tensor:
    """Arcsine, in [-pi/2, pi/2]; NaN outside [-1, 1]."""
    return _unary(Asin, input, "asin")


def acos(input) -> Tensor:
    """Arccosine, in [0, pi]; NaN outside [-1, 1]."""
    return _unary(Acos, input, "acos")


def atan(input) -> Tensor:
    """Arctangent, in [-pi/2, pi/2]."""
    return _unary(Atan, input, "atan")


def sinh(input) -> Tensor:
    """Hyperbolic sine."""
    return _unary(Sinh, input, "sinh")


def cosh(input) -> Tensor:
    """Hyperbolic cosine."""
    return _unary(Cosh, input, "cosh")


def asinh(input) -> Tensor:
    """Inverse hyperbolic sine."""
    return _unary(Asinh, input, "asinh")


def acosh(input) -> Tensor:
    """Inverse hyperbolic cosine; NaN below 1."""
    return _unary(Acosh, input, "acosh")


def atanh(input) -> Tensor:
    """Inverse hyperbolic tangent; +-inf at +-1, NaN outside [-1, 1]."""
    return _unary(Atanh, input, "atanh")


def log2(input) -> Tensor:
    """Base-2 logarithm."""
    return _unary(Log2, input, "log2")


def log10(input) -> Tensor:
    """Base-10 logarithm."""
    return _unary(Log10, input, "log10")


def exp2(input) -> Tensor:
    """2 ** input."""
    return _unary(Exp2, input, "exp2")


def logit(input, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)), p = input clamped to [eps, 1 - eps] when `eps` is given (then the
    gradient is 0 outside that interval; without eps it is NaN outside [0, 1])."""
    if eps is not None:
        eps = float(eps)
    return _unary(Logit, input, "logit", eps=eps)


# -- binary --------------------------------------------------------------------------------------
def _grads(self, ga, gb):
    """Unbroadcast gradients for the inputs that need one (None for the others)."""
    sa, sb = self.shapes
    na, nb = self.next
    return (unbroadcast(ga(), sa) if na is not None else None,
            unbroadcast(gb(), sb) if nb is not None else None)


def _binary_function(name: str, grad, saves: str = "x", **kw) -> type:
    cls = _function(name, grad, saves=saves, **kw)
    plain = cls.forward

    def forward(ctx, B, a, b, **attrs):
        ctx.shapes = (a.shape, b.shape)
        return plain(ctx, B, a, b, **attrs)

    cls.forward = staticmethod(forward)
    return cls


Hypot = _binary_function("Hypot", lambda s, g, a, b, y: _grads(
    s, lambda: g * a / y, lambda: g * b / y), saves="xy")
Copysign = _binary_function("Copysign", lambda s, g, a, b, y: _grads(
    s, lambda: g * where(a == 0, 0.0, y / where(a == 0, 1.0, a)), lambda: g * 0),
    saves="xy", autocast="promote", flops=per_output(1))
Fmod = _binary_function("Fmod", lambda s, g, a, b: _grads(
    s, lambda: g, lambda: -g * (a / b).trunc()), autocast="promote", flops=per_output(1))


def _fmax_grad(self, g, a, b, lower: bool):
    # PyTorch's rule: the first operand takes the whole gradient where it is chosen
    # (ties included), the second where it is chosen or the first is NaN
    first = (a <= b if lower else a >= b) | b.isnan()
    zero = g.new_zeros(())
    return _grads(self, lambda: where(first, g, zero), lambda: where(first, zero, g))


Fmax = _binary_function("Fmax", lambda s, g, a, b: _fmax_grad(s, g, a, b, False),
                        autocast="promote", flops=per_output(1))
Fmin = _binary_function("Fmin", lambda s, g, a, b: _fmax_grad(s, g, a, b, True),
                        autocast="promote", flops=per_output(1))
Logaddexp = _binary_function("Logaddexp", lambda s, g, a, b: _grads(
    s, lambda: g / ((b - a).exp() + 1), lambda: g / ((a - b).exp() + 1)))
Logaddexp2 = _binary_function("Logaddexp2", lambda s, g, a, b: _grads(
    s, lambda: g / (exp2(b - a) + 1), lambda: g / (exp2(a - b) + 1)))
Xlogy = _binary_function("Xlogy", lambda s, g, x, y: _grads(
    s, lambda: g * xlogy((x != 0).to(g.dtype), y), lambda: g * x / y))
Nextafter = _binary_function("Nextafter", None, saves="", autocast="promote",
                             differentiable=False, flops=per_output(1))
Heaviside = _binary_function("Heaviside", None, saves="", autocast="promote",
                             differentiable=False, flops=per_output(1))


def _float_binary(fn, a, b, op: str) -> Tensor:
    # ops PyTorch defines for floating dtypes only (an int and a float operand promote)
    a, b = binary_operands(a, b, op)
    if not a.dtype.is_floating_point:
        raise TypeError(f"{op}: not implemented for {a.dtype.name} tensors; use floating "
                        "point inputs")
    return _binary(fn, a, b, op)


def hypot(input, other) -> Tensor:
    """sqrt(input**2 + other**2), without overflow (floating inputs)."""
    return _float_binary(Hypot, input, other, "hypot")


def copysign(input, other) -> Tensor:
    """|input| with the sign of `other` (the sign bit: -0.0 counts as negative); integers
    compute in the default float dtype."""
    return _binary(Copysign, input, other, "copysign", floats=True)


def fmod(input, other) -> Tensor:
    """C's fmod: input - trunc(input / other) * other, with the sign of `input`."""
    a, b = binary_operands(input, other, "fmod")
    if a.dtype is _dt.bool_:
        raise TypeError("fmod: not implemented for bool tensors")
    return _binary(Fmod, a, b, "fmod")


def fmax(input, other) -> Tensor:
    """Elementwise maximum where NaN loses to a number (maximum propagates it)."""
    return _binary(Fmax, input, other, "fmax")


def fmin(input, other) -> Tensor:
    """Elementwise minimum where NaN loses to a number."""
    return _binary(Fmin, input, other, "fmin")


def logaddexp(input, other) -> Tensor:
    """log(exp(input) + exp(other)), without overflow (floating inputs)."""
    return _float_binary(Logaddexp, input, other, "logaddexp")


def logaddexp2(input, other) -> Tensor:
    """log2(2**input + 2**other), without overflow (floating inputs)."""
    return _float_binary(Logaddexp2, input, other, "logaddexp2")


def xlogy(input, other) -> Tensor:
    """input * log(other), 0 where input == 0 unless other is NaN (integers compute in
    the default float dtype)."""
    return _binary(Xlogy, input, other, "xlogy", floats=True)


def nextafter(input, other) -> Tensor:
    """The next representable float after `input` towards `other` (no gradient)."""
    return _float_binary(Nextafter, input, other, "nextafter")


def heaviside(input, values) -> Tensor:
    """0 where input < 0 (or NaN), `values` where input == 0, 1 where input > 0 (no
    gradient); input and values must have one dtype, as in PyTorch."""
    a, b = ensure_tensor(input, "heaviside"), ensure_tensor(values, "heaviside")
    if a.dtype is not b.dtype:
        raise TypeError(f"heaviside: input and values must have the same dtype, got "
                        f"{a.dtype.name} and {b.dtype.name}")
    return _binary(Heaviside, a, b, "heaviside")


# -- sign bit and frexp --------------------------------------------------------------------------
Signbit = _function("Signbit", None, saves="", autocast=None, differentiable=False,
                    flops=per_output(1))


def _frexp_grad(self, g):
    # d mantissa / dx = 2**-exponent (PyTorch: grad / exponent.exp2())
    e, = self.saved_aux
    return g / exp2(e.to(g.dtype))


class Frexp(Function):
    """frexp: (mantissa, int32 exponent), primitive ``frexp``."""
    autocast = None
    c_expr = None  # two outputs: not a fusable elementwise op
    flops = per_output(1)
    save_aux = True

    @staticmethod
    def forward(ctx, B, x):
        return B.frexp(x)

    backward = _frexp_grad


def signbit(input) -> Tensor:
    """True where the sign bit is set (negative numbers, -0.0), as bool."""
    return _unary(Signbit, input, "signbit", floats=False)


_FrexpResult = namedtuple("frexp", ["mantissa", "exponent"])  # as torch.return_types.frexp


def frexp(input):
    """(mantissa, exponent) with input = mantissa * 2**exponent, |mantissa| in [0.5, 1)
    and an int32 exponent (floating inputs only)."""
    x = ensure_tensor(input, "frexp")
    if not x.dtype.is_floating_point:
        raise TypeError(f"frexp: only floating-point dtypes are supported, got {x.dtype.name}")
    return _FrexpResult(*apply(Frexp, (x,), {}))
