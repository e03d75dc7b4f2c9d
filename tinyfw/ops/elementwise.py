"""Elementwise ops: arithmetic, comparisons, math functions and activations.

Each op is a Function whose forward calls one backend primitive and whose backward is
written with tinyfw ops.  Binary ops broadcast and promote dtypes as PyTorch does.

This module is the public face: the ops are defined by idea in `_elementwise_binary`
(arithmetic, comparisons, logic, where), `_elementwise_unary` (math functions, rounding,
clamp) and `_elementwise_activation` (relu, gelu, ...), and re-exported here, where the
Tensor methods and operators are attached.
"""
from __future__ import annotations

from ..tensor import register_method
from . import _elementwise_activation, _elementwise_binary, _elementwise_unary
from ._elementwise_activation import (Gelu, gelu, GeluBackward, leaky_relu, LeakyRelu, Relu,
                                      relu, SigmoidBackward, Silu, silu, SiluBackward, Softplus,
                                      softplus, TanhBackward)
from ._elementwise_binary import (_binary, _float_operand, _unary, Add, add, Atan2,
                                  atan2, Div, div, Eq, eq, floor_divide, FloorDivide, Ge, ge,
                                  Gt, gt, isfinite, IsInf, isinf, IsNan, isnan, Le, le,
                                  logical_and, logical_not, logical_or, logical_xor,
                                  LogicalAnd, LogicalNot, LogicalOr, LogicalXor, Lt, lt,
                                  Maximum, maximum, Minimum, minimum, Mul, mul, Ne, ne, Pow,
                                  pow, Remainder, remainder, Sub, sub, Where, where)
from ._elementwise_unary import (Abs, abs, Ceil, ceil, Clamp, clamp, Cos, cos, Erf, erf, Erfc,
                                 erfc, Exp, exp, Expm1, expm1, Floor, floor, Log, log, Log1p,
                                 log1p, Neg, neg, Reciprocal, reciprocal, Round, round, Rsqrt,
                                 rsqrt, Sigmoid, sigmoid, Sign, sign, Sin, sin, Sqrt, sqrt,
                                 square, Tanh, tanh, trunc)

# the ops live in three files by idea but are one public module: they keep its name, so
# reprs and pickles still say tinyfw.ops.elementwise.X
for _part in (_elementwise_binary, _elementwise_unary, _elementwise_activation):
    for _name in _part.__all__:
        getattr(_part, _name).__module__ = __name__
del _part, _name


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
    "add": add, "sub": sub, "mul": mul, "div": div, "pow": pow, "maximum": maximum,
    "minimum": minimum, "atan2": atan2, "floor_divide": floor_divide, "remainder": remainder,
    "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge,
    "logical_and": logical_and, "logical_or": logical_or, "logical_xor": logical_xor,
    "logical_not": logical_not, "isnan": isnan, "isinf": isinf, "isfinite": isfinite,
    "where": lambda self, cond, other: where(cond, self, other),
    "neg": neg, "abs": abs, "exp": exp, "log": log, "log1p": log1p, "expm1": expm1,
    "sqrt": sqrt, "rsqrt": rsqrt, "reciprocal": reciprocal, "sin": sin, "cos": cos,
    "tanh": tanh, "sigmoid": sigmoid, "erf": erf, "erfc": erfc, "relu": relu, "sign": sign,
    "floor": floor, "ceil": ceil, "round": round, "trunc": trunc, "clamp": clamp, "clip": clamp,
    "square": square,
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)
