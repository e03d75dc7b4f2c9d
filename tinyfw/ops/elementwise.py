"""Elementwise ops: arithmetic, comparisons, math functions and activations.

Each op is a Function whose forward calls one backend primitive and whose backward is
written with tinyfw ops.  Binary ops broadcast and promote dtypes as PyTorch does.
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..autograd.function import Function
from ..tensor import register_method
from ._util import (Tensor, _NOATTRS, apply, binary_operands, broadcast_shapes, ensure_tensor,
                    promote, unbroadcast)


def _float_operand(x: Tensor) -> Tensor:
    # math functions of integer tensors give the default float dtype, as in PyTorch
    return x if x.dtype.is_floating_point else x.to(_dt.get_default_dtype())


def _binary(fn, a, b, op: str, floats: bool = False):
    a, b = binary_operands(a, b, op)
    if floats and not a.dtype.is_floating_point:
        a, b = a.to(_dt.get_default_dtype()), b.to(_dt.get_default_dtype())
    if a._data.shape != b._data.shape:
        broadcast_shapes(a._data.shape, b._data.shape, op=op)
    return apply(fn, (a, b), _NOATTRS)


def _unary(fn, x, op: str, floats: bool = True, **attrs):
    x = ensure_tensor(x, op)
    if floats and not x.dtype.is_floating_point:
        x = _float_operand(x)
    return apply(fn, (x,), attrs or _NOATTRS)


# -- arithmetic ---------------------------------------------------------------------------
class Add(Function):
    @staticmethod
    def forward(ctx, B, a, b):
        ctx.shapes = (a.shape, b.shape)
        return B.add(a, b)

    def backward(self, g):
        sa, sb = self.shapes
        return unbroadcast(g, sa), unbroadcast(g, sb)


class Sub(Function):
    @staticmethod
    def forward(ctx, B, a, b):
        ctx.shapes = (a.shape, b.shape)
        return B.sub(a, b)

    def backward(self, g):
        sa, sb = self.shapes
        return unbroadcast(g, sa), (unbroadcast(-g, sb) if self.next[1] is not None else None)


class Mul(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, a, b):
        return B.mul(a, b)

    def backward(self, g):
        a, b = self.saved_inputs
        na, nb = self.next
        return (unbroadcast(g * b, a.shape) if na is not None else None,
                unbroadcast(g * a, b.shape) if nb is not None else None)


class Div(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, a, b):
        return B.div(a, b)

    def backward(self, g):
        a, b = self.saved_inputs
        na, nb = self.next
        ga = unbroadcast(g / b, a.shape) if na is not None else None
        gb = unbroadcast(-g * a / (b * b), b.shape) if nb is not None else None
        return ga, gb


class Pow(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, a, b):
        return B.pow(a, b)

    def backward(self, g):
        a, b = self.saved_inputs
        na, nb = self.next
        ga = gb = None
        if na is not None:
            # d/da a**b = b * a**(b-1); written so that b == 0 gives 0, not 0 * inf
            ga = unbroadcast(where(b == 0, 0.0, g * b * a ** (b - 1)), a.shape)
        if nb is not None:
            safe = where(a == 0, 1.0, a)
            gb = unbroadcast(where((a == 0) & (b >= 0), 0.0, g * a ** b * safe.log()), b.shape)
        return ga, gb


class Maximum(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, a, b):
        return B.maximum(a, b)

    def backward(self, g):
        a, b = self.saved_inputs
        # ties split the gradient in half, as PyTorch
        wa = (a > b).to(g.dtype) + (a == b).to(g.dtype) * 0.5
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)


class Minimum(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, a, b):
        return B.minimum(a, b)

    def backward(self, g):
        a, b = self.saved_inputs
        wa = (a < b).to(g.dtype) + (a == b).to(g.dtype) * 0.5
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)


class Atan2(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, a, b):
        return B.atan2(a, b)

    def backward(self, g):
        a, b = self.saved_inputs
        na, nb = self.next
        # d/da atan2(a, b) = b / (a^2 + b^2), d/db = -a / (a^2 + b^2)
        scale = g / (a * a + b * b)
        return (unbroadcast(scale * b, a.shape) if na is not None else None,
                unbroadcast(-scale * a, b.shape) if nb is not None else None)


class FloorDivide(Function):
    differentiable = False

    @staticmethod
    def forward(ctx, B, a, b):
        return B.floor_divide(a, b)


class Remainder(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, a, b):
        return B.remainder(a, b)

    def backward(self, g):
        a, b = self.saved_inputs
        gb = None
        if self.next[1] is not None:
            gb = unbroadcast(-g * (a / b).floor(), b.shape)
        return unbroadcast(g, a.shape), gb


def add(a, b, alpha=1) -> Tensor:
    """a + alpha * b, broadcasting."""
    if alpha != 1:
        b = mul(b, alpha)
    return _binary(Add, a, b, "add")


def sub(a, b, alpha=1) -> Tensor:
    """a - alpha * b, broadcasting."""
    if alpha != 1:
        b = mul(b, alpha)
    return _binary(Sub, a, b, "sub")


def mul(a, b) -> Tensor:
    """a * b, broadcasting."""
    return _binary(Mul, a, b, "mul")


def div(a, b, rounding_mode: str | None = None) -> Tensor:
    """a / b (true division; integers give floats); rounding_mode 'floor' or 'trunc'."""
    if rounding_mode == "floor":
        return floor_divide(a, b)
    if rounding_mode == "trunc":
        q = _binary(Div, a, b, "div", floats=True).trunc()
        a_t = ensure_tensor(a, "div")
        return q if a_t.dtype.is_floating_point else q.to(promote("div", a, b)[0].dtype)
    if rounding_mode is not None:
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")
    return _binary(Div, a, b, "div", floats=True)


def pow(a, b) -> Tensor:
    """a ** b, broadcasting."""
    return _binary(Pow, a, b, "pow")


def maximum(a, b) -> Tensor:
    """Elementwise maximum (NaN propagates)."""
    return _binary(Maximum, a, b, "maximum")


def minimum(a, b) -> Tensor:
    """Elementwise minimum (NaN propagates)."""
    return _binary(Minimum, a, b, "minimum")


def atan2(input, other) -> Tensor:
    """The angle of the point (other, input), elementwise, in [-pi, pi] (integers give
    floats)."""
    return _binary(Atan2, input, other, "atan2", floats=True)


def floor_divide(a, b) -> Tensor:
    """floor(a / b)."""
    return _binary(FloorDivide, a, b, "floor_divide")


def remainder(a, b) -> Tensor:
    """a - floor(a / b) * b, with the sign of b."""
    return _binary(Remainder, a, b, "remainder")


# -- comparisons and logic (no gradient) -------------------------------------------------------
def _no_grad_binary(name: str, doc: str):
    cls = type(name.capitalize(), (Function,), {
        "differentiable": False,
        "forward": staticmethod(lambda ctx, B, a, b, _n=name: getattr(B, _n)(a, b)),
        "__doc__": doc,
    })

    def op(a, b) -> Tensor:
        return _binary(cls, a, b, name)

    op.__name__, op.__doc__ = name, doc
    return cls, op


Eq, eq = _no_grad_binary("eq", "a == b, elementwise, as bool.")
Ne, ne = _no_grad_binary("ne", "a != b, elementwise, as bool.")
Lt, lt = _no_grad_binary("lt", "a < b, elementwise, as bool.")
Le, le = _no_grad_binary("le", "a <= b, elementwise, as bool.")
Gt, gt = _no_grad_binary("gt", "a > b, elementwise, as bool.")
Ge, ge = _no_grad_binary("ge", "a >= b, elementwise, as bool.")
LogicalAnd, logical_and = _no_grad_binary("logical_and", "a and b, elementwise, as bool.")
LogicalOr, logical_or = _no_grad_binary("logical_or", "a or b, elementwise, as bool.")
LogicalXor, logical_xor = _no_grad_binary("logical_xor", "a xor b, elementwise, as bool.")


class LogicalNot(Function):
    differentiable = False

    @staticmethod
    def forward(ctx, B, x):
        return B.logical_not(x)


def logical_not(x) -> Tensor:
    """not x, elementwise, as bool."""
    return _unary(LogicalNot, x, "logical_not", floats=False)


def _bitwise(a, b, logical, op: str) -> Tensor:
    a, b = binary_operands(a, b, op)
    if a.dtype is not _dt.bool_ or b.dtype is not _dt.bool_:
        raise TypeError(f"{op}: only bool tensors are supported, got {a.dtype.name} and "
                        f"{b.dtype.name}")
    return logical(a, b)


class IsNan(Function):
    differentiable = False

    @staticmethod
    def forward(ctx, B, x):
        return B.isnan(x)


class IsInf(Function):
    differentiable = False

    @staticmethod
    def forward(ctx, B, x):
        return B.isinf(x)


def isnan(x) -> Tensor:
    """True where x is NaN."""
    return _unary(IsNan, x, "isnan", floats=False)


def isinf(x) -> Tensor:
    """True where x is +-inf."""
    return _unary(IsInf, x, "isinf", floats=False)


def isfinite(x) -> Tensor:
    """True where x is neither NaN nor infinite."""
    return logical_not(logical_or(isnan(x), isinf(x)))


class Where(Function):
    @staticmethod
    def forward(ctx, B, cond, a, b):
        ctx.cond = cond
        ctx.shapes = (a.shape, b.shape)
        return B.where(cond, a, b)

    def backward(self, g):
        cond = Tensor._make(self.cond)
        zero = g.new_zeros(())
        sa, sb = self.shapes
        _, na, nb = self.next
        return (None,
                unbroadcast(where(cond, g, zero), sa) if na is not None else None,
                unbroadcast(where(cond, zero, g), sb) if nb is not None else None)


def where(condition, input, other) -> Tensor:
    """Elements of `input` where `condition`, else of `other`, all three broadcast."""
    cond = ensure_tensor(condition, "where")
    if cond.dtype is not _dt.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {cond.dtype.name}")
    a, b = binary_operands(input, other, "where")
    if not (cond.shape == a.shape == b.shape):
        broadcast_shapes(cond.shape, a.shape, b.shape, op="where")
    return apply(Where, (cond, a, b), _NOATTRS)


# -- unary math -------------------------------------------------------------------------------
class Neg(Function):
    @staticmethod
    def forward(ctx, B, x):
        return B.neg(x)

    def backward(self, g):
        return -g


class Abs(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.abs(x)

    def backward(self, g):
        return g * self.saved_inputs[0].sign()


class Exp(Function):
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.exp(x)

    def backward(self, g):
        return g * self.output


class Log(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.log(x)

    def backward(self, g):
        return g / self.saved_inputs[0]


class Log1p(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.log1p(x)

    def backward(self, g):
        return g / (self.saved_inputs[0] + 1)


class Expm1(Function):
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.expm1(x)

    def backward(self, g):
        return g * (self.output + 1)


class Sqrt(Function):
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.sqrt(x)

    def backward(self, g):
        return g / (self.output * 2)


class Rsqrt(Function):
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.rsqrt(x)

    def backward(self, g):
        out = self.output
        return g * out * out * out * -0.5


class Reciprocal(Function):
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.reciprocal(x)

    def backward(self, g):
        out = self.output
        return -g * out * out


class Sin(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.sin(x)

    def backward(self, g):
        return g * self.saved_inputs[0].cos()


class Cos(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.cos(x)

    def backward(self, g):
        return -g * self.saved_inputs[0].sin()


class Tanh(Function):
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.tanh(x)

    def backward(self, g):
        out = self.output
        return g * (1 - out * out)


class Sigmoid(Function):
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.sigmoid(x)

    def backward(self, g):
        out = self.output
        return g * out * (1 - out)


class Erf(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.erf(x)

    def backward(self, g):
        x = self.saved_inputs[0]
        return g * (-(x * x)).exp() * (2 / math.sqrt(math.pi))


class Relu(Function):
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.relu(x)

    def backward(self, g):
        # a select, as PyTorch's threshold_backward: a NaN gradient stays out of the
        # zeros, and a NaN input (NaN output) passes its gradient, as in PyTorch
        return where(self.output <= 0, g.new_zeros(()), g)


class LeakyRelu(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x, negative_slope):
        ctx.slope = negative_slope
        return B.leaky_relu(x, negative_slope)

    def backward(self, g):
        x = self.saved_inputs[0]
        # the slope is applied to g, not put into a where() of two Python scalars, which
        # would round it to the default float dtype
        return where(x > 0, g, g * self.slope)


class Gelu(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x, approximate):
        ctx.approximate = approximate
        return B.gelu(x, approximate)

    def backward(self, g):
        x = self.saved_inputs[0]
        if self.approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            inner = (x + x * x * x * 0.044715) * k
            t = inner.tanh()
            dinner = (x * x * (3 * 0.044715) + 1) * k
            return g * ((t + 1) * 0.5 + x * 0.5 * (1 - t * t) * dinner)
        cdf = ((x * (1 / math.sqrt(2))).erf() + 1) * 0.5
        pdf = (x * x * -0.5).exp() * (1 / math.sqrt(2 * math.pi))
        return g * (cdf + x * pdf)


class Silu(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.silu(x)

    def backward(self, g):
        x = self.saved_inputs[0]
        s = x.sigmoid()
        return g * (s * (1 + x * (1 - s)))


class Softplus(Function):
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x, beta, threshold):
        ctx.beta, ctx.threshold = beta, threshold
        return B.softplus(x, beta, threshold)

    def backward(self, g):
        x = self.saved_inputs[0]
        bx = x * self.beta
        return g * where(bx > self.threshold, 1.0, bx.sigmoid()).to(g.dtype)


class Clamp(Function):
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


def _zero_grad_unary(name: str, doc: str):
    # piecewise-constant functions: PyTorch gives them a zero gradient, not an error
    def backward(self, g):
        return g.new_zeros(g.shape)

    cls = type(name.capitalize(), (Function,), {
        "forward": staticmethod(lambda ctx, B, x, _n=name: getattr(B, _n)(x)),
        "backward": backward, "__doc__": doc})

    def op(x) -> Tensor:
        return _unary(cls, x, name, floats=False)

    op.__name__, op.__doc__ = name, doc
    return cls, op


Sign, sign = _zero_grad_unary("sign", "-1, 0 or 1 by the sign of x (zero gradient).")
Floor, floor = _zero_grad_unary("floor", "Round towards -inf (zero gradient).")
Ceil, ceil = _zero_grad_unary("ceil", "Round towards +inf (zero gradient).")
Round, round = _zero_grad_unary("round", "Round half to even (zero gradient).")


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


def relu(x) -> Tensor:
    """max(x, 0)."""
    return _unary(Relu, x, "relu", floats=False)


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return _unary(LeakyRelu, x, "leaky_relu", negative_slope=float(negative_slope))


def gelu(x, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF; approximate='tanh' for the tanh form."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _unary(Gelu, x, "gelu", approximate=approximate)


def silu(x) -> Tensor:
    """x * sigmoid(x) (a.k.a. swish)."""
    return _unary(Silu, x, "silu")


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e ** (beta x)) / beta, linear where beta x > threshold."""
    return _unary(Softplus, x, "softplus", beta=float(beta), threshold=float(threshold))


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


# -- methods and operators ------------------------------------------------------------------
def _rsub(a, b):
    return sub(b, a)


def _rdiv(a, b):
    return div(b, a)


def _rpow(a, b):
    return pow(b, a)


def _rfloordiv(a, b):
    return floor_divide(b, a)


def _rmod(a, b):
    return remainder(b, a)


_METHODS = {
    "__add__": add, "__radd__": add, "__sub__": sub, "__rsub__": _rsub,
    "__mul__": mul, "__rmul__": mul, "__truediv__": div, "__rtruediv__": _rdiv,
    "__pow__": pow, "__rpow__": _rpow, "__floordiv__": floor_divide,
    "__rfloordiv__": _rfloordiv, "__mod__": remainder, "__rmod__": _rmod,
    "__neg__": neg, "__abs__": abs,
    "__eq__": eq, "__ne__": ne, "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge,
    "__and__": lambda a, b: _bitwise(a, b, logical_and, "and"),
    "__or__": lambda a, b: _bitwise(a, b, logical_or, "or"),
    "__xor__": lambda a, b: _bitwise(a, b, logical_xor, "xor"),
    "__invert__": lambda x: _bitwise(x, x, lambda a, _: logical_not(a), "~"),
    "add": add, "sub": sub, "mul": mul, "div": div, "pow": pow, "maximum": maximum,
    "minimum": minimum, "atan2": atan2, "floor_divide": floor_divide, "remainder": remainder,
    "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge,
    "logical_and": logical_and, "logical_or": logical_or, "logical_xor": logical_xor,
    "logical_not": logical_not, "isnan": isnan, "isinf": isinf, "isfinite": isfinite,
    "where": lambda self, cond, other: where(cond, self, other),
    "neg": neg, "abs": abs, "exp": exp, "log": log, "log1p": log1p, "expm1": expm1,
    "sqrt": sqrt, "rsqrt": rsqrt, "reciprocal": reciprocal, "sin": sin, "cos": cos,
    "tanh": tanh, "sigmoid": sigmoid, "erf": erf, "relu": relu, "sign": sign, "floor": floor,
    "ceil": ceil, "round": round, "trunc": trunc, "clamp": clamp, "clip": clamp,
    "square": square,
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)
