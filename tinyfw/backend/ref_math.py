"""Elementwise math primitives of the reference backend (issue 16): the trigonometric and
hyperbolic functions PyTorch has beyond sin/cos/tanh, base-2 and base-10 logarithms and
powers, the special functions (log-gamma, digamma, polygamma, erfinv, Bessel I0/I1, the
regularised incomplete gamma functions), and the binary IEEE functions (fmod, copysign,
hypot, nextafter, fmax/fmin, logaddexp, xlogy, heaviside) and frexp.

Common rules (see ``ref.py``): inputs are numpy arrays the ops layer has already promoted
to one dtype; outputs are new arrays.  Unlike the half-type rule of ``ref.py``, every
float type narrower than float64 is computed here in float64 and rounded once, so these
references are within half an ulp of the true value plus float64's own error (a few
float64 ulps): float32 results are then correctly rounded but in rare ties, which is
what the tests bound in ulps.  The special functions come from scipy.special (imported
when first called), whose float64 accuracy is documented per function; inf/NaN results
are values, never warnings.
"""
from __future__ import annotations

import numpy as np

__all__ = ["tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2",
           "log10", "exp2", "lgamma", "digamma", "polygamma", "erfinv", "i0", "i1", "logit",
           "signbit", "frexp", "fmod", "copysign", "hypot", "nextafter", "fmax", "fmin",
           "logaddexp", "logaddexp2", "xlogy", "heaviside", "igamma", "igammac"]

_F64 = np.dtype(np.float64)
# domain errors, poles and overflow give NaN/inf, as in PyTorch: they are the results
_QUIET = dict(divide="ignore", over="ignore", invalid="ignore")


def _in_f64(f):
    """Make `f` (float64 in, float64 out) a primitive of any float dtype: narrower floats
    are widened exactly, computed in float64 and rounded once to their own dtype."""
    def prim(*args, **kw):
        dt = args[0].dtype
        with np.errstate(**_QUIET):
            r = np.asarray(f(*[a.astype(_F64, copy=False) for a in args], **kw))
            return r if dt == _F64 else r.astype(dt)
    prim.__name__, prim.__doc__ = f.__name__, f.__doc__
    return prim


def _scipy():
    from scipy import special

    return special


# -- trigonometric and hyperbolic ---------------------------------------------------------------
@_in_f64
def tan(x):
    """tangent"""
    return np.tan(x)


@_in_f64
def asin(x):
    """arcsine in [-pi/2, pi/2]; NaN outside [-1, 1]"""
    return np.arcsin(x)


@_in_f64
def acos(x):
    """arccosine in [0, pi]; NaN outside [-1, 1]"""
    return np.arccos(x)


@_in_f64
def atan(x):
    """arctangent in [-pi/2, pi/2]"""
    return np.arctan(x)


@_in_f64
def sinh(x):
    """hyperbolic sine"""
    return np.sinh(x)


@_in_f64
def cosh(x):
    """hyperbolic cosine"""
    return np.cosh(x)


@_in_f64
def asinh(x):
    """inverse hyperbolic sine"""
    return np.arcsinh(x)


@_in_f64
def acosh(x):
    """inverse hyperbolic cosine; NaN below 1"""
    return np.arccosh(x)


@_in_f64
def atanh(x):
    """inverse hyperbolic tangent; +-inf at +-1, NaN outside [-1, 1]"""
    return np.arctanh(x)


# -- logarithms and powers ----------------------------------------------------------------------
@_in_f64
def log2(x):
    """base-2 logarithm"""
    return np.log2(x)


@_in_f64
def log10(x):
    """base-10 logarithm"""
    return np.log10(x)


@_in_f64
def exp2(x):
    """2 ** x"""
    return np.exp2(x)


@_in_f64
def logit(x, eps=None):
    """log(z / (1 - z)) with z = x clamped to [eps, 1 - eps] when eps is not None
    (PyTorch's formula: the quotient, then the log)"""
    if eps is not None:
        x = np.clip(x, eps, 1 - eps)
    return np.log(x / (1 - x))


# -- special functions --------------------------------------------------------------------------
@_in_f64
def lgamma(x):
    """log |Gamma(x)|; +inf at the poles 0, -1, -2, ... and at -inf (PyTorch's value;
    scipy's gammaln gives -inf there)"""
    return np.where(x == -np.inf, np.inf, _scipy().gammaln(x))


@_in_f64
def digamma(x):
    """Gamma'(x) / Gamma(x): -inf at +0 and +inf at -0.0 (the one-sided limits, as
    PyTorch), NaN at the negative integers"""
    return _scipy().psi(x)


@_in_f64
def polygamma(x, n: int):
    """the n-th derivative of digamma (n >= 0); for n >= 1: +-inf at the poles
    0, -1, -2, ... (the limit: (-1)**(n+1) n! / (x - pole)**(n+1) from the right) and
    NaN at -inf, where it oscillates without a limit"""
    if n == 0:
        return digamma(x)
    return np.where(x == -np.inf, np.nan, _scipy().polygamma(n, x))


@_in_f64
def erfinv(x):
    """inverse of erf on [-1, 1] (+-inf at +-1, NaN outside; -0.0 stays -0.0)"""
    return np.where(x == 0, x, _scipy().erfinv(x))


@_in_f64
def i0(x):
    """modified Bessel function of the first kind, order 0"""
    return _scipy().i0(x)


@_in_f64
def i1(x):
    """modified Bessel function of the first kind, order 1 (i0's derivative)"""
    return _scipy().i1(x)


def _igamma_edges(a, x, r, lower: bool):
    # PyTorch's special cases, checked in this order (NaN where a or x < 0, then a == 0,
    # x == 0, an infinite a, an infinite x), so that e.g. P(NaN, 0) = 0 as in PyTorch
    one, zero = (1.0, 0.0) if lower else (0.0, 1.0)
    conds = [(x < 0) | (a < 0), a == 0, x == 0, np.isinf(a), np.isinf(x)]
    vals = [np.nan, np.where(x > 0, one, np.nan), zero, np.where(np.isinf(x), np.nan, zero),
            one]
    return np.select(conds, vals, r)


@_in_f64
def igamma(a, x):
    """regularised lower incomplete gamma function P(a, x)"""
    return _igamma_edges(a, x, _scipy().gammainc(a, x), True)


@_in_f64
def igammac(a, x):
    """regularised upper incomplete gamma function Q(a, x) = 1 - P(a, x)"""
    return _igamma_edges(a, x, _scipy().gammaincc(a, x), False)


# -- IEEE functions (exact: no rounding, any float dtype as it is) ---------------------------------
def _exact(f):
    # these results are exact in the input dtype (or bool), so they are computed in it
    def prim(*args):
        with np.errstate(**_QUIET):
            return np.asarray(f(*args))
    prim.__name__, prim.__doc__ = f.__name__, f.__doc__
    return prim


@_exact
def signbit(x):
    """True where the sign bit is set (-0.0 and -NaN included), as bool"""
    return np.signbit(x)


def frexp(x):
    """(mantissa, exponent): x = mantissa * 2**exponent, |mantissa| in [0.5, 1); exponent
    int32 (0 for 0, inf and NaN, whose mantissa is x itself)"""
    m, e = np.frexp(x)
    return np.asarray(m), np.asarray(e).astype(np.int32)


@_exact
def fmod(a, b):
    """C's fmod: a - trunc(a / b) * b, with the sign of a"""
    if a.dtype.kind in "iu" and np.any(b == 0):
        raise ZeroDivisionError("fmod: integer division by zero")
    return np.fmod(a, b)


@_exact
def copysign(a, b):
    """|a| with the sign bit of b"""
    return np.copysign(a, b)


@_exact
def nextafter(a, b):
    """the next float after a in the direction of b"""
    return np.nextafter(a, b)


@_exact
def fmax(a, b):
    """elementwise max; NaN loses (the other operand is returned); on a tie (0.0 and
    -0.0) a, as PyTorch"""
    return np.where((a >= b) | np.isnan(b), a, b)


@_exact
def fmin(a, b):
    """elementwise min; NaN loses; on a tie a"""
    return np.where((a <= b) | np.isnan(b), a, b)


@_exact
def heaviside(x, values):
    """values where x == 0, else 1 where x > 0 and 0 elsewhere (NaN included: PyTorch's
    formula, where numpy's heaviside gives NaN)"""
    return np.where(x == 0, values, (x > 0).astype(x.dtype))


# -- rounded binary functions ---------------------------------------------------------------------
@_in_f64
def hypot(a, b):
    """sqrt(a**2 + b**2) without overflow"""
    return np.hypot(a, b)


@_in_f64
def logaddexp(a, b):
    """log(e**a + e**b) without overflow"""
    return np.logaddexp(a, b)


@_in_f64
def logaddexp2(a, b):
    """log2(2**a + 2**b) without overflow"""
    return np.logaddexp2(a, b)


@_in_f64
def xlogy(x, y):
    """x * log(y), 0 where x == 0 (unless y is NaN)"""
    r = x * np.log(y)
    return np.where((x == 0) & ~np.isnan(y), 0.0, r)
