"""Shapes and dtypes of the linear-algebra primitives on the meta device (values:
``ref_linalg``)."""
from __future__ import annotations

import numpy as np

from .ref_linalg import __all__  # noqa: F401  (the same primitive names)

_I32 = np.dtype(np.int32)


def _new(shape, dtype):
    from .meta import MetaArray

    return MetaArray(shape, dtype)


def linalg_lu_factor(a):
    """(a's shape, pivots (..., min(m, n)) int32, info (...) int32)."""
    *batch, m, n = a.shape
    return _new(a.shape, a.dtype), _new((*batch, min(m, n)), _I32), _new(batch, _I32)


def linalg_cholesky(a, upper: bool):
    """(a's shape, info int32)."""
    return _new(a.shape, a.dtype), _new(a.shape[:-2], _I32)


def linalg_inv(a):
    """(a's shape, info int32)."""
    return _new(a.shape, a.dtype), _new(a.shape[:-2], _I32)


def linalg_solve(a, b):
    """(b's shape, info int32)."""
    return _new(b.shape, b.dtype), _new(a.shape[:-2], _I32)


def linalg_det(a):
    """The batch shape."""
    return _new(a.shape[:-2], a.dtype)


def linalg_slogdet(a):
    """(sign, log|det|): the batch shape."""
    return _new(a.shape[:-2], a.dtype), _new(a.shape[:-2], a.dtype)


def linalg_eigh(a, upper: bool):
    """(values (..., n), vectors (..., n, n))."""
    return _new(a.shape[:-1], a.dtype), _new(a.shape, a.dtype)


def linalg_svd(a, full_matrices: bool):
    """(U (..., m, k|m), S (..., k), Vh (..., k|n, n))."""
    *batch, m, n = a.shape
    k = min(m, n)
    mu, nv = (m, n) if full_matrices else (k, k)
    return (_new((*batch, m, mu), a.dtype), _new((*batch, k), a.dtype),
            _new((*batch, nv, n), a.dtype))


def linalg_qr(a, mode: str):
    """(Q (..., m, k|m), R (..., k|m, n))."""
    *batch, m, n = a.shape
    k = m if mode == "complete" else min(m, n)
    return _new((*batch, m, k), a.dtype), _new((*batch, k, n), a.dtype)


def linalg_solve_triangular(a, b, upper: bool, unitriangular: bool):
    """b's shape."""
    return _new(b.shape, b.dtype)


def linalg_geqrf(a):
    """(a's shape, tau (..., min(m, n)))."""
    *batch, m, n = a.shape
    return _new(a.shape, a.dtype), _new((*batch, min(m, n)), a.dtype)


def linalg_ldl_factor(a, hermitian: bool):
    """(a's shape, pivots (..., n) int32, info int32)."""
    return _new(a.shape, a.dtype), _new(a.shape[:-1], _I32), _new(a.shape[:-2], _I32)


def linalg_ldl_solve(LD, pivots, b):
    """b's shape."""
    return _new(b.shape, b.dtype)


def linalg_lu_permutation(pivots, m: int, dtype):
    """(..., m, m) in `dtype`."""
    return _new(pivots.shape[:-1] + (m, m), np.dtype(dtype))
