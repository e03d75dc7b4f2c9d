"""Shapes and dtypes of the integer primitives (ref_intops.py) on the meta device.
bincount's length is an argument (the op reads it from the values first, which a meta
tensor does not have: the op refuses meta input before it gets here)."""
from __future__ import annotations

import numpy as np

from .meta import MetaArray, _bshape, _reduced

__all__ = ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift",
           "bitwise_right_shift", "gcd", "lcm", "hash_tensor", "bincount", "histc", "histogram"]
_I64 = np.dtype(np.int64)


def _binary(a, b) -> MetaArray:
    return MetaArray(_bshape(a.shape, b.shape), a.dtype)


bitwise_and = bitwise_or = bitwise_xor = _binary
bitwise_left_shift = bitwise_right_shift = gcd = lcm = _binary


def bitwise_not(x) -> MetaArray:
    """x's shape and dtype."""
    return MetaArray(x.shape, x.dtype)


def hash_tensor(x, dims: tuple, keepdim: bool) -> MetaArray:
    """The reduced shape, int64."""
    return MetaArray(_reduced(x.shape, dims, keepdim), _I64)


def bincount(x, weights, length: int) -> MetaArray:
    """(length,): int64, or float32/float64 by the weights."""
    dt = _I64 if weights is None else np.dtype(np.float32 if weights.dtype == np.float32 else np.float64)
    return MetaArray((length,), dt)


def histc(x, bins: int, lo: float, hi: float) -> MetaArray:
    """(bins,) in x's dtype."""
    return MetaArray((bins,), x.dtype)


def histogram(x, edges, weight, density: bool) -> MetaArray:
    """(len(edges) - 1,) in x's dtype."""
    return MetaArray((edges.shape[0] - 1,), x.dtype)
