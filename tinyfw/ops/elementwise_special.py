"""Special functions (issue 16): lgamma, digamma, polygamma, mvlgamma, erfinv, i0 and the
regularised incomplete gamma functions igamma/igammac.

Forwards are primitives of ``backend/ref_math.py`` (scipy.special in float64 on the
reference backend); backwards are tinyfw ops, each the next function of the family, so
derivatives of any order work: lgamma' = digamma, digamma' = polygamma(1),
polygamma(n)' = polygamma(n + 1), erfinv'(x) = sqrt(pi)/2 exp(erfinv(x)**2), i0' = i1
and i1' = i0 - i1/x (i1 is an internal op; PyTorch's torch.special.i1).  igamma and
igammac have a gradient in their second argument only, as in PyTorch.
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..backend import host
from .elementwise import _unary, where
from .elementwise_math import _binary_function, _float_binary, _function
from ._util import Tensor, ensure_tensor, unbroadcast

__all__ = ["lgamma", "digamma", "polygamma", "mvlgamma", "erfinv", "i0", "igamma", "igammac"]

_SQRT_PI_2 = math.sqrt(math.pi) / 2

Lgamma = _function("Lgamma", lambda s, g, x: g * digamma(x))
Digamma = _function("Digamma", lambda s, g, x: g * polygamma(1, x))
Polygamma = _function("Polygamma", lambda s, g, x, n: g * polygamma(n + 1, x))
Erfinv = _function("Erfinv", lambda s, g, y: g * (y * y).exp() * _SQRT_PI_2, saves="y")
I0 = _function("I0", lambda s, g, x: g * _i1(x))


def _i1_grad(self, g, x, y):
    # i1'(x) = i0(x) - i1(x) / x, whose limit at 0 is 1/2 (x kept away from 0 in the
    # division so that the unused branch's gradient is finite too)
    safe = where(x == 0, 1.0, x)
    return g * where(x == 0, 0.5, i0(x) - y / safe)


I1 = _function("I1", _i1_grad, saves="xy")


def _igamma_grad(sign: float):
    # d/dx P(a, x) = x**(a-1) e**-x / Gamma(a); no gradient in a (PyTorch: not implemented)
    def grad(self, g, a, x):
        if self.next[1] is None:
            return None, None
        d = ((a - 1) * x.log() - x - lgamma(a)).exp()
        return None, unbroadcast(g * d * sign, self.shapes[1])
    return grad


Igamma = _binary_function("Igamma", _igamma_grad(1.0))
Igammac = _binary_function("Igammac", _igamma_grad(-1.0))


def lgamma(input) -> Tensor:
    """log |Gamma(input)|; +inf at 0 and the negative integers."""
    return _unary(Lgamma, input, "lgamma")


def digamma(input) -> Tensor:
    """The logarithmic derivative of Gamma; -inf at 0 (as PyTorch), NaN at the negative
    integers."""
    return _unary(Digamma, input, "digamma")


def polygamma(n: int, input) -> Tensor:
    """The n-th derivative of digamma (n = 0 is digamma itself)."""
    if isinstance(n, bool) or not host.is_integer(n) or n < 0:
        raise ValueError(f"polygamma: n must be a non-negative integer, got {n!r}")
    return _unary(Polygamma, input, "polygamma", n=int(n))


def mvlgamma(input, p: int) -> Tensor:
    """The log of the multivariate gamma function of dimension p:
    p (p - 1) / 4 log(pi) + sum_{j < p} lgamma(input - j / 2); every element must exceed
    (p - 1) / 2, as in PyTorch (checked, which reads the values)."""
    if isinstance(p, bool) or not host.is_integer(p) or p < 1:
        raise ValueError(f"mvlgamma: p must be an integer >= 1, got {p!r}")
    x = ensure_tensor(input, "mvlgamma")
    if not x.dtype.is_floating_point:
        x = x.to(_dt.get_default_dtype())
    if x.device.type != "meta" and x.numel() and bool((x <= (p - 1) / 2).any()):
        raise ValueError(f"mvlgamma: all elements must be greater than (p-1)/2 = {(p - 1) / 2}")
    out = lgamma(x)
    for j in range(1, p):
        out = out + lgamma(x - j / 2)
    return out + p * (p - 1) / 4 * math.log(math.pi)


def erfinv(input) -> Tensor:
    """The inverse error function on [-1, 1]: +-inf at +-1, NaN outside."""
    return _unary(Erfinv, input, "erfinv")


def i0(input) -> Tensor:
    """The modified Bessel function of the first kind of order 0."""
    return _unary(I0, input, "i0")


def _i1(input) -> Tensor:
    # the modified Bessel function of order 1: i0's derivative (internal)
    return _unary(I1, input, "i1")


def igamma(input, other) -> Tensor:
    """The regularised lower incomplete gamma function P(input, other) (floating inputs;
    gradient with respect to `other` only, as in PyTorch)."""
    return _float_binary(Igamma, input, other, "igamma")


def igammac(input, other) -> Tensor:
    """The regularised upper incomplete gamma function Q(input, other) = 1 - P."""
    return _float_binary(Igammac, input, other, "igammac")
