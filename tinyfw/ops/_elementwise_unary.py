"""Unary elementwise math: exp/log/sqrt/trig and friends, the rounding functions
(zero gradient), `clamp` and `square`.

Part of `tinyfw.ops.elementwise` (import from there).  Math functions of integer
tensors compute in the default float dtype, as in PyTorch.
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..autograd.function import Function
from ._elementwise_activation import SigmoidBackward, TanhBackward
from ._elementwise_binary import _unary, maximum, minimum, mul, where
from ._opmeta import (C_SIGMOID, COST_DIVISION, COST_TRANSCENDENTAL, TRANSCENDENTAL_FLOPS,
                      c_template, clit, per_output)
from ._util import Tensor, apply, ensure_tensor

__all__ = ["Neg", "Abs", "Exp", "Log", "Log1p", "Expm1", "Sqrt", "Rsqrt", "Reciprocal", "Sin",
           "Cos", "Tanh", "Sigmoid", "Erf", "Erfc", "Clamp", "Sign", "sign", "Floor", "floor",
           "Ceil", "ceil", "Round", "round", "trunc", "neg", "abs", "exp", "log", "log1p", "expm1",
           "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tanh", "sigmoid", "erf", "erfc",
           "clamp", "square"]


# -- metadata helpers (see Function) ----------------------------------------------------------
def _rsqrt_onnx(b, n, ins: list, out: str) -> None:
    t = b.tmp()
    b.add("Sqrt", ins, [t])
    b.add("Reciprocal", [t], [out])


def _clamp_c(args: list, t: str, attrs: dict) -> str:
    e = args[0]
    if attrs["lo"] is not None:
        e = f"({e} < {clit(attrs['lo'], t)} ? {clit(attrs['lo'], t)} : {e})"
    if attrs["hi"] is not None:
        e = f"({e} > {clit(attrs['hi'], t)} ? {clit(attrs['hi'], t)} : {e})"
    return e


def _clamp_onnx(b, n, ins: list, out: str) -> None:
    dtype = n.outputs[0].dtype
    lo, hi = n.attrs["lo"], n.attrs["hi"]
    b.add("Clip", [ins[0], b.scalar(lo, dtype) if lo is not None else "",
                   b.scalar(hi, dtype) if hi is not None else ""], [out])


# -- unary math -------------------------------------------------------------------------------
class Neg(Function):
    autocast = None
    c_expr = c_template("(-{a})")
    fresh_output = True
    onnx = "Neg"

    @staticmethod
    def forward(ctx, B, x):
        return B.neg(x)

    def backward(self, g):
        return -g


class Abs(Function):
    autocast = None
    c_expr = c_template("{fabs}({a})")
    onnx = "Abs"
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.abs(x)

    def backward(self, g):
        return g * self.saved_inputs[0].sign()


class Exp(Function):
    autocast = "float32"
    c_expr = c_template("{exp}({a})")
    vector_kernel = True  # eager: csrc vector math (see _opmeta)
    cost = COST_TRANSCENDENTAL
    fresh_output = True
    onnx = "Exp"
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.exp(x)

    def backward(self, g):
        return g * self.output


class Log(Function):
    autocast = "float32"
    c_expr = c_template("{log}({a})")
    vector_kernel = True  # eager: csrc vector math (see _opmeta)
    cost = COST_TRANSCENDENTAL
    fresh_output = True
    onnx = "Log"
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.log(x)

    def backward(self, g):
        return g / self.saved_inputs[0]


class Log1p(Function):
    autocast = "float32"
    c_expr = None  # no C template yet
    vector_kernel = True  # eager: csrc vector math (see _opmeta)
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.log1p(x)

    def backward(self, g):
        return g / (self.saved_inputs[0] + 1)


class Expm1(Function):
    autocast = "float32"
    c_expr = None  # no C template yet
    vector_kernel = True  # eager: csrc vector math (see _opmeta)
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.expm1(x)

    def backward(self, g):
        return g * (self.output + 1)


class Sqrt(Function):
    autocast = None
    c_expr = c_template("{sqrt}({a})")
    cost = COST_DIVISION
    onnx = "Sqrt"
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.sqrt(x)

    def backward(self, g):
        return g / (self.output * 2)


class Rsqrt(Function):
    autocast = "float32"
    c_expr = c_template("(1 / {sqrt}({a}))")
    cost = COST_DIVISION
    onnx = staticmethod(_rsqrt_onnx)
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.rsqrt(x)

    def backward(self, g):
        out = self.output
        return g * out * out * out * -0.5


class Reciprocal(Function):
    autocast = "float32"
    c_expr = c_template("(1 / {a})")
    cost = COST_DIVISION
    onnx = "Reciprocal"
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.reciprocal(x)

    def backward(self, g):
        out = self.output
        return -g * out * out


class Sin(Function):
    autocast = None
    c_expr = c_template("{sin}({a})")
    cost = COST_TRANSCENDENTAL
    onnx = "Sin"
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.sin(x)

    def backward(self, g):
        return g * self.saved_inputs[0].cos()


class Cos(Function):
    autocast = None
    c_expr = c_template("{cos}({a})")
    cost = COST_TRANSCENDENTAL
    onnx = "Cos"
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.cos(x)

    def backward(self, g):
        return -g * self.saved_inputs[0].sin()


class Tanh(Function):
    autocast = None
    c_expr = c_template("{tanh}({a})")
    vector_kernel = True  # eager: csrc vector math (see _opmeta)
    cost = COST_TRANSCENDENTAL
    fresh_output = True
    onnx = "Tanh"
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.tanh(x)

    def backward(self, g):
        return TanhBackward.apply(g, self.output)


class Sigmoid(Function):
    autocast = None
    c_expr = c_template(C_SIGMOID)
    vector_kernel = True  # eager: csrc vector math (see _opmeta)
    cost = COST_TRANSCENDENTAL
    fresh_output = True
    onnx = "Sigmoid"
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.sigmoid(x)

    def backward(self, g):
        return SigmoidBackward.apply(g, self.output)


class Erf(Function):
    autocast = None
    c_expr = c_template("{erf}({a})")
    vector_kernel = True  # eager: csrc vector math (csrc/vmath_erf.h)
    cost = COST_TRANSCENDENTAL
    fresh_output = True
    onnx = "Erf"
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.erf(x)

    def backward(self, g):
        x = self.saved_inputs[0]
        return g * (-(x * x)).exp() * (2 / math.sqrt(math.pi))


class Erfc(Function):
    autocast = None
    c_expr = None  # eager's kernel is the vectorised erfc (csrc/vmath_erf.h); C's is scalar
    vector_kernel = True
    cost = COST_TRANSCENDENTAL
    fresh_output = True
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.erfc(x)

    def backward(self, g):
        x = self.saved_inputs[0]
        return g * (-(x * x)).exp() * (-2 / math.sqrt(math.pi))


class Clamp(Function):
    autocast = None
    c_expr = staticmethod(_clamp_c)
    onnx = staticmethod(_clamp_onnx)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x, lo, hi):
        ctx.lo, ctx.hi = lo, hi
        return B.clamp(x, lo, hi)

    def backward(self, g):
        x = self.saved_inputs[0]
        keep = None
        if self.lo is not None:
            keep = x >= self.lo
        if self.hi is not None:
            keep = x <= self.hi if keep is None else keep & (x <= self.hi)
        return g * keep.to(g.dtype)


def _zero_grad_unary(name: str, doc: str, onnx: str | None):
    # piecewise-constant functions: PyTorch gives them a zero gradient, not an error
    def backward(self, g):
        return g.new_zeros(g.shape)

    cls = type(name.capitalize(), (Function,), {
        "forward": staticmethod(lambda ctx, B, x, _n=name: getattr(B, _n)(x)),
        "backward": backward, "__doc__": doc,
        "c_expr": None,  # no C template yet
        "onnx": onnx, "autocast": None})

    def op(x) -> Tensor:
        return _unary(cls, x, name, floats=False)

    op.__name__, op.__doc__ = name, doc
    return cls, op


Sign, sign = _zero_grad_unary("sign", "-1, 0 or 1 by the sign of x (zero gradient).", "Sign")
Floor, floor = _zero_grad_unary("floor", "Round towards -inf (zero gradient).", "Floor")
Ceil, ceil = _zero_grad_unary("ceil", "Round towards +inf (zero gradient).", "Ceil")
# ONNX's Round is half to even too, but not written and tested yet
Round, round = _zero_grad_unary("round", "Round half to even (zero gradient).", None)


def trunc(x) -> Tensor:
    """Round towards zero (zero gradient)."""
    x = ensure_tensor(x, "trunc")
    return where(x >= 0, x.floor(), x.ceil())


def neg(x) -> Tensor:
    """-x."""
    return _unary(Neg, x, "neg", floats=False)


def abs(x) -> Tensor:
    """|x|."""
    return _unary(Abs, x, "abs", floats=False)


def exp(x) -> Tensor:
    """e ** x."""
    return _unary(Exp, x, "exp")


def log(x) -> Tensor:
    """Natural logarithm."""
    return _unary(Log, x, "log")


def log1p(x) -> Tensor:
    """log(1 + x), accurate for small x."""
    return _unary(Log1p, x, "log1p")


def expm1(x) -> Tensor:
    """e ** x - 1, accurate for small x."""
    return _unary(Expm1, x, "expm1")


def sqrt(x) -> Tensor:
    """Square root."""
    return _unary(Sqrt, x, "sqrt")


def rsqrt(x) -> Tensor:
    """1 / sqrt(x)."""
    return _unary(Rsqrt, x, "rsqrt")


def reciprocal(x) -> Tensor:
    """1 / x."""
    return _unary(Reciprocal, x, "reciprocal")


def sin(x) -> Tensor:
    """Sine."""
    return _unary(Sin, x, "sin")


def cos(x) -> Tensor:
    """Cosine."""
    return _unary(Cos, x, "cos")


def tanh(x) -> Tensor:
    """Hyperbolic tangent."""
    return _unary(Tanh, x, "tanh")


def sigmoid(x) -> Tensor:
    """1 / (1 + e ** -x)."""
    return _unary(Sigmoid, x, "sigmoid")


def erf(x) -> Tensor:
    """The error function."""
    return _unary(Erf, x, "erf")


def erfc(x) -> Tensor:
    """The complementary error function 1 - erf(x), accurate where erf(x) is near 1."""
    return _unary(Erfc, x, "erfc")


def clamp(x, min=None, max=None) -> Tensor:
    """Limit x to [min, max]; either bound may be None."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    x = ensure_tensor(x, "clamp")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    if not x.dtype.is_floating_point and (isinstance(min, float) or isinstance(max, float)):
        x = x.to(_dt.get_default_dtype())
    return apply(Clamp, (x,), {"lo": min, "hi": max})


def square(x) -> Tensor:
    """x * x."""
    return mul(x, x)

