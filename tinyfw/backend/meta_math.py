"""Shapes and dtypes of the elementwise math primitives of ``ref_math`` on the meta device:
unary ones keep their input's shape and dtype, binary ones broadcast (in the first
operand's dtype: the ops layer promoted both), `signbit` gives bool and `frexp` a float
mantissa with an int32 exponent."""
from __future__ import annotations

import numpy as np

from . import ref_math as _ref_math

__all__ = list(_ref_math.__all__)
_BOOL, _I32 = np.dtype(np.bool_), np.dtype(np.int32)


def _new(shape, dtype):
    from .meta import MetaArray

    return MetaArray(shape, dtype)


def _bshape(a, b) -> tuple:
    from .meta import _bshape

    return _bshape(a.shape, b.shape)


def _same(x, *args, **kwargs):
    """x's shape and dtype."""
    return _new(x.shape, x.dtype)


def _binary(a, b):
    """The broadcast shape, a's dtype."""
    return _new(_bshape(a, b), a.dtype)


def signbit(x):
    """x's shape, bool."""
    return _new(x.shape, _BOOL)


def frexp(x):
    """(mantissa in x's dtype, int32 exponent), x's shape."""
    return _new(x.shape, x.dtype), _new(x.shape, _I32)


for _n in ("tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2",
           "log10", "exp2", "lgamma", "digamma", "polygamma", "erfinv", "i0", "i1", "logit"):
    globals()[_n] = _same
for _n in ("fmod", "copysign", "hypot", "nextafter", "fmax", "fmin", "logaddexp", "logaddexp2",
           "xlogy", "heaviside", "igamma", "igammac"):
    globals()[_n] = _binary
del _n
