"""Input recipes for the linear-algebra tests (tests/test_api_linalg*.py): matrices built
from random orthogonal factors and chosen spectra, so every solve, inverse and
factorization is well-conditioned (condition number <= 3) and the spectral gradients,
which divide by gaps between eigen/singular values, stay bounded (gaps >= 0.2)."""
from __future__ import annotations

import numpy as np


def orthogonal(rng, batch: tuple, n: int) -> np.ndarray:
    """Random orthogonal (n x n) matrices (QR of a Gaussian matrix)."""
    q, _ = np.linalg.qr(rng.standard_normal(batch + (n, n)))
    return q


def spread(rng, batch: tuple, k: int, lo: float, hi: float) -> np.ndarray:
    """k values per batch element in [lo, hi], descending, at least (hi - lo) / (2k) apart."""
    step = (hi - lo) / max(k, 1)
    base = lo + step * (np.arange(k)[::-1] + 0.25 + 0.5 * rng.random(batch + (k,)))
    return base


def wellcond_arr(rng, shape: tuple, lo: float = 1.0, hi: float = 3.0) -> np.ndarray:
    """(..., m, n) = U diag(s) V^T with distinct singular values s in [lo, hi]."""
    *batch, m, n = shape
    batch = tuple(batch)
    k = min(m, n)
    s = spread(rng, batch, k, lo, hi)
    u = orthogonal(rng, batch, m)[..., :, :k]
    v = orthogonal(rng, batch, n)[..., :, :k]
    return (u * s[..., None, :]) @ np.swapaxes(v, -1, -2)


def sym_arr(rng, shape: tuple, lo: float = -3.0, hi: float = 3.0) -> np.ndarray:
    """Symmetric Q diag(w) Q^T with distinct eigenvalues in [lo, hi] (SPD when lo > 0)."""
    *batch, n, _ = shape
    batch = tuple(batch)
    q = orthogonal(rng, batch, n)
    w = spread(rng, batch, n, lo, hi)
    return (q * w[..., None, :]) @ np.swapaxes(q, -1, -2)


def wellcond(*shape):
    return lambda rng, dtype: [wellcond_arr(rng, shape).astype(dtype)]


def spd(*shape):
    return lambda rng, dtype: [sym_arr(rng, shape, 1.0, 3.0).astype(dtype)]


def sym(*shape):
    return lambda rng, dtype: [sym_arr(rng, shape).astype(dtype)]


def system(a_shape: tuple, b_shape: tuple):
    """A well-conditioned A and a Gaussian right-hand side B."""
    return lambda rng, dtype: [wellcond_arr(rng, a_shape).astype(dtype),
                               rng.standard_normal(b_shape).astype(dtype)]


def sign_fix(V, dim: int = -2):
    """V with each column (dim=-2) or row (dim=-1) multiplied by the sign of its sum, so
    that factors defined up to a sign compare equal (tinyfw and torch tensors alike)."""
    return V * V.detach().sum(dim, keepdim=True).sign()
