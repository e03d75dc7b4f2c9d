"""Tensor methods of the issue-16 elementwise ops, and every in-place ``x_`` variant
PyTorch has for an elementwise op (new ones and the older ops that lacked one).

In-place variants are not written one by one: `_inplace` (tinyfw/ops/inplace.py) turns
an out-of-place op into its in-place form (the result written into the tensor's memory,
its version bumped, its history rebased), and the tables below only name the pairs.
Where PyTorch also has the function form (``torch.sin_(x)``), it is exported as
``tinyfw.sin_`` too (`__all__`).
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..tensor import register_method
from . import elementwise as E, elementwise_compose as C, elementwise_math as M
from . import elementwise_special as S
from .inplace import _inplace
from ._util import Tensor

# -- methods of the out-of-place ops ----------------------------------------------------------------
_METHODS = {n: getattr(m, n) for m in (M, C, S) for n in m.__all__ if n != "polygamma"}
# the method's self is the second argument of the function: x.polygamma(n) = polygamma(n, x)
_METHODS["polygamma"] = lambda self, n: S.polygamma(n, self)
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)


def _float_power_(self: Tensor, exponent) -> Tensor:
    # the result is float64: PyTorch refuses to round it into a narrower tensor in place
    if self.dtype is not _dt.float64:
        raise RuntimeError(f"float_power_: the base has dtype {self.dtype.name} but the "
                           "result is float64; use float_power or a float64 tensor")
    return _inplace(C.float_power, "float_power_")(self, exponent)


# -- in-place variants: name -> out-of-place op (x_ = op(x, ...) written into x) ---------------------
# those PyTorch also has as torch.<name>_ functions
_FUNCTIONS = {
    "tan_": M.tan, "asin_": M.asin, "acos_": M.acos, "atan_": M.atan, "sinh_": M.sinh,
    "cosh_": M.cosh, "asinh_": M.asinh, "acosh_": M.acosh, "atanh_": M.atanh,
    "arcsin_": C.arcsin, "arccos_": C.arccos, "arctan_": C.arctan, "arcsinh_": C.arcsinh,
    "arccosh_": C.arccosh, "arctanh_": C.arctanh, "log2_": M.log2, "log10_": M.log10,
    "exp2_": M.exp2, "logit_": M.logit, "xlogy_": M.xlogy, "deg2rad_": C.deg2rad,
    "rad2deg_": C.rad2deg, "frac_": C.frac, "fix_": C.fix, "sinc_": C.sinc, "ldexp_": C.ldexp,
    "negative_": C.negative, "clamp_min_": C.clamp_min, "clamp_max_": C.clamp_max,
    "clip_": C.clip, "i0_": S.i0,
    # the older ops
    "abs_": E.abs, "ceil_": E.ceil, "clamp_": E.clamp, "cos_": E.cos, "erf_": E.erf,
    "erfc_": E.erfc, "exp_": E.exp, "expm1_": E.expm1, "floor_": E.floor, "log1p_": E.log1p,
    "log_": E.log, "neg_": E.neg, "reciprocal_": E.reciprocal, "relu_": E.relu,
    "round_": E.round, "rsqrt_": E.rsqrt, "sigmoid_": E.sigmoid, "sin_": E.sin,
    "sqrt_": E.sqrt, "square_": E.square, "tanh_": E.tanh, "trunc_": E.trunc,
}
# those PyTorch has as Tensor methods only
_METHODS_ONLY = {
    "atan2_": E.atan2, "arctan2_": C.arctan2, "hypot_": M.hypot, "copysign_": M.copysign,
    "fmod_": M.fmod, "heaviside_": M.heaviside, "lerp_": C.lerp, "nextafter_": M.nextafter,
    "sgn_": C.sgn, "absolute_": C.absolute, "multiply_": C.multiply,
    "subtract_": C.subtract, "divide_": C.divide, "true_divide_": C.true_divide,
    "greater_": C.greater, "greater_equal_": C.greater_equal, "less_": C.less,
    "less_equal_": C.less_equal, "not_equal_": C.not_equal, "addcmul_": C.addcmul,
    "addcdiv_": C.addcdiv, "lgamma_": S.lgamma, "digamma_": S.digamma,
    "polygamma_": lambda x, n: S.polygamma(n, x), "mvlgamma_": S.mvlgamma,
    "erfinv_": S.erfinv, "igamma_": S.igamma, "igammac_": S.igammac,
    # the older ops
    "remainder_": E.remainder, "floor_divide_": E.floor_divide, "sign_": E.sign,
    "eq_": E.eq, "ne_": E.ne, "lt_": E.lt, "le_": E.le, "gt_": E.gt, "ge_": E.ge,
    "logical_and_": E.logical_and, "logical_or_": E.logical_or, "logical_xor_": E.logical_xor,
    "logical_not_": E.logical_not,
}

__all__ = sorted(_FUNCTIONS)
for _name, _fn in {**_FUNCTIONS, **_METHODS_ONLY}.items():
    _op = _inplace(_fn, _name)
    register_method(_name, _op)
    if _name in _FUNCTIONS:
        globals()[_name] = _op
register_method("float_power_", _float_power_)
del _name, _fn, _op
