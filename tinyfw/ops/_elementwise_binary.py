"""Binary elementwise ops: arithmetic, comparisons, logic, `where`, and the operand
helpers the other elementwise files share.

Part of `tinyfw.ops.elementwise` (import from there).  Each op is a Function whose
forward calls one backend primitive and whose backward is written with tinyfw ops.
Binary ops broadcast and promote dtypes as PyTorch does.
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function
from ._opmeta import COST_DIVISION, TRANSCENDENTAL_FLOPS, c_template, per_output
from ._util import (Tensor, _NOATTRS, apply, binary_operands, broadcast_shapes, ensure_tensor,
                    promote, unbroadcast)

__all__ = ["Add", "Sub", "Mul", "Div", "Pow", "Maximum", "Minimum", "Atan2", "FloorDivide",
           "Remainder", "add", "sub", "mul", "div", "pow", "maximum", "minimum", "atan2",
           "floor_divide", "remainder", "Eq", "eq", "Ne", "ne", "Lt", "lt", "Le", "le", "Gt",
           "gt", "Ge", "ge", "LogicalAnd", "logical_and", "LogicalOr", "logical_or",
           "LogicalXor", "logical_xor", "LogicalNot", "logical_not", "IsNan", "IsInf", "isnan",
           "isinf", "isfinite", "Where", "where"]


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
    autocast = "promote"
    c_expr = c_template("({a} + {b})")
    fresh_output = True
    unit, commutative = 0.0, True
    onnx = "Add"

    @staticmethod
    def forward(ctx, B, a, b):
        ctx.shapes = (a.shape, b.shape)
        return B.add(a, b)

    def backward(self, g):
        sa, sb = self.shapes
        return unbroadcast(g, sa), unbroadcast(g, sb)


class Sub(Function):
    autocast = "promote"
    c_expr = c_template("({a} - {b})")
    fresh_output = True
    unit = 0.0
    onnx = "Sub"

    @staticmethod
    def forward(ctx, B, a, b):
        ctx.shapes = (a.shape, b.shape)
        return B.sub(a, b)

    def backward(self, g):
        sa, sb = self.shapes
        return unbroadcast(g, sa), (unbroadcast(-g, sb) if self.next[1] is not None else None)


class Mul(Function):
    autocast = "promote"
    c_expr = c_template("({a} * {b})")
    fresh_output = True
    unit, commutative = 1.0, True
    onnx = "Mul"
    save_inputs = True

    @staticmethod
    def forward(ctx, B, a, b):
        return B.mul(a, b)

    def backward(self, g):
        # each gradient reads the other input only: a write into an input whose partner
        # needs no gradient (x * 2, then x.add_(1)) is no error, as in PyTorch
        na, nb = self.next
        ga = gb = None
        if na is not None:
            b = self.saved_input(1)
            ga = unbroadcast(g * b, self._saved[0].shape)
        if nb is not None:
            a = self.saved_input(0)
            gb = unbroadcast(g * a, self._saved[1].shape)
        return ga, gb


class Div(Function):
    autocast = "promote"
    c_expr = c_template("({a} / {b})")
    cost = COST_DIVISION
    fresh_output = True
    unit = 1.0
    onnx = "Div"
    save_inputs = True

    @staticmethod
    def forward(ctx, B, a, b):
        return B.div(a, b)

    def backward(self, g):
        na, nb = self.next
        if nb is None:  # a is not needed (as in Mul)
            b = self.saved_input(1)
            a = self._saved[0]
        else:
            a, b = self.saved_inputs
        ga = unbroadcast(g / b, a.shape) if na is not None else None
        gb = unbroadcast(-g * a / (b * b), b.shape) if nb is not None else None
        return ga, gb


class Pow(Function):
    autocast = "float32"
    c_expr = None  # no C template yet: runs as its own op in traced graphs
    onnx = "Pow"
    flops = per_output(TRANSCENDENTAL_FLOPS)
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
            # d/db a**b = a**b * log(a), 0 where a == 0 and b >= 0 (PyTorch's formula): at
            # a = +-0 with b < 0 it is inf * -inf = -inf (+inf at -0.0, whose a**b is -inf
            # for odd b), not NaN.  The log reads 1 where the result is masked to 0 only,
            # so that second derivatives stay finite there
            zero = (a == 0) & (b >= 0)
            gb = unbroadcast(where(zero, 0.0, g * a ** b * where(zero, 1.0, a).log()), b.shape)
        return ga, gb


class Maximum(Function):
    # NaN wins, as numpy's maximum
    autocast = "promote"
    c_expr = c_template("(({a} > {b} || {a} != {a}) ? {a} : {b})")
    fresh_output = True
    onnx = "Max"
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
    autocast = "promote"
    c_expr = c_template("(({a} < {b} || {a} != {a}) ? {a} : {b})")
    fresh_output = True
    onnx = "Min"
    save_inputs = True

    @staticmethod
    def forward(ctx, B, a, b):
        return B.minimum(a, b)

    def backward(self, g):
        a, b = self.saved_inputs
        wa = (a < b).to(g.dtype) + (a == b).to(g.dtype) * 0.5
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)


class Atan2(Function):
    autocast = "promote"
    c_expr = None  # no C template yet
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
    autocast = "promote"
    c_expr = None  # no C template yet
    differentiable = False

    @staticmethod
    def forward(ctx, B, a, b):
        return B.floor_divide(a, b)


class Remainder(Function):
    autocast = "promote"
    c_expr = None  # no C template yet
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
    """a ** b, broadcasting (bool ** bool is refused, as in PyTorch)."""
    a, b = binary_operands(a, b, "pow")
    if a.dtype is _dt.bool_:
        raise TypeError("pow: not implemented for bool tensors")
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
def _no_grad_binary(name: str, doc: str, c: str | None, onnx: str | None):
    # c: the C template of the jit's kernels; onnx: the ONNX operator (see Function)
    cls = type(name.capitalize(), (Function,), {
        "differentiable": False,
        "forward": staticmethod(lambda ctx, B, a, b, _n=name: getattr(B, _n)(a, b)),
        "__doc__": doc,
        "c_expr": c_template(c) if c is not None else None,
        "onnx": onnx,
        "autocast": "promote",  # mixed float dtypes compare in the wider one
    })

    def op(a, b) -> Tensor:
        return _binary(cls, a, b, name)

    op.__name__, op.__doc__ = name, doc
    return cls, op


Eq, eq = _no_grad_binary("eq", "a == b, elementwise, as bool.", "({a} == {b})", "Equal")
# ONNX has no NotEqual (Not of Equal would do; not written yet)
Ne, ne = _no_grad_binary("ne", "a != b, elementwise, as bool.", "({a} != {b})", None)
Lt, lt = _no_grad_binary("lt", "a < b, elementwise, as bool.", "({a} < {b})", "Less")
Le, le = _no_grad_binary("le", "a <= b, elementwise, as bool.", "({a} <= {b})", "LessOrEqual")
Gt, gt = _no_grad_binary("gt", "a > b, elementwise, as bool.", "({a} > {b})", "Greater")
Ge, ge = _no_grad_binary("ge", "a >= b, elementwise, as bool.", "({a} >= {b})",
                         "GreaterOrEqual")
LogicalAnd, logical_and = _no_grad_binary("logical_and", "a and b, elementwise, as bool.",
                                          "({a} && {b})", "And")
LogicalOr, logical_or = _no_grad_binary("logical_or", "a or b, elementwise, as bool.",
                                        "({a} || {b})", "Or")
LogicalXor, logical_xor = _no_grad_binary("logical_xor", "a xor b, elementwise, as bool.",
                                          None, "Xor")


class LogicalNot(Function):
    autocast = None
    c_expr = c_template("(!{a})")
    onnx = "Not"
    differentiable = False

    @staticmethod
    def forward(ctx, B, x):
        return B.logical_not(x)


def logical_not(x) -> Tensor:
    """not x, elementwise, as bool."""
    return _unary(LogicalNot, x, "logical_not", floats=False)


class IsNan(Function):
    autocast = None
    c_expr = None  # no C template yet
    differentiable = False

    @staticmethod
    def forward(ctx, B, x):
        return B.isnan(x)


class IsInf(Function):
    autocast = None
    c_expr = None  # no C template yet
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
    autocast = "promote"
    save_inputs = slice(0, 1)  # the condition (version-checked), not the values
    c_expr = c_template("({a} ? {b} : {c})")
    c_type_input = 1  # computes in the values' type, not the condition's
    fresh_output = True
    onnx = "Where"

    @staticmethod
    def forward(ctx, B, cond, a, b):
        ctx.shapes = (a.shape, b.shape)
        return B.where(cond, a, b)

    def backward(self, g):
        cond, = self.saved_inputs
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

