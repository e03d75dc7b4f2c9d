"""Linear-algebra primitives of the reference backend: factorizations and solvers.

Contract (shared by every backend; the ops layer, tinyfw/ops/linalg_*.py, has already
checked shapes and dtypes):

- inputs are float32/float64 arrays with leading batch dims ``(..., m, n)``; two-operand
  primitives get operands whose batch dims are equal (the ops layer broadcasts them);
- results have the input's dtype, except pivots and ``info`` (int32, as LAPACK/PyTorch);
- ``info`` is per batch element: 0 on success, k > 0 when the k-th pivot (LU) or the
  leading minor of order k (Cholesky) failed, the LAPACK convention PyTorch reports.

numpy.linalg is the specification where it computes the factorization; LU with partial
pivoting, Cholesky (numpy reports neither pivots nor the failing order), triangular
solves (numpy has none, and PyTorch returns inf/NaN for a zero diagonal instead of
raising) and Bunch-Kaufman LDL^T are the textbook algorithms, vectorised over the batch.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["linalg_lu_factor", "linalg_cholesky", "linalg_inv", "linalg_solve", "linalg_det",
           "linalg_slogdet", "linalg_eigh", "linalg_svd", "linalg_qr",
           "linalg_solve_triangular", "linalg_geqrf", "linalg_ldl_factor", "linalg_ldl_solve",
           "linalg_lu_permutation"]

_I32 = np.int32


def _stack(a: np.ndarray) -> np.ndarray:
    """(..., m, n) -> a (B, m, n) view or copy (B = 0 for an empty batch: no -1 reshape)."""
    return a.reshape((math.prod(a.shape[:-2]),) + a.shape[-2:])


def _flat(a: np.ndarray) -> np.ndarray:
    """(..., m, n) -> a new (B, m, n) array (the algorithms below write into it)."""
    return np.array(_stack(a), copy=True)


@np.errstate(divide="ignore", invalid="ignore", over="ignore")
def linalg_lu_factor(a):
    """LU with partial pivoting, LAPACK getrf's result: (LU, pivots, info) where LU holds
    L (unit diagonal, below) and U (on and above the diagonal), pivots (..., min(m, n)) are
    1-based row swaps applied in order, info the first exactly-zero pivot (1-based) or 0.
    The pivot is the first entry of largest magnitude in the column (idamax)."""
    batch, (m, n) = a.shape[:-2], a.shape[-2:]
    A = _flat(a)
    nb, k = A.shape[0], min(m, n)
    piv = np.zeros((nb, k), _I32)
    info = np.zeros(nb, _I32)
    rows = np.arange(nb)
    for j in range(k):
        p = j + np.argmax(np.abs(A[:, j:, j]), axis=1)
        piv[:, j] = p + 1
        top = A[rows, j].copy()
        A[rows, j] = A[rows, p]
        A[rows, p] = top
        d = A[:, j, j]
        zero = d == 0
        info[(info == 0) & zero] = j + 1
        A[:, j + 1:, j] /= np.where(zero, 1, d)[:, None]  # a zero pivot's column is all 0
        A[:, j + 1:, j + 1:] -= A[:, j + 1:, j, None] * A[:, j, None, j + 1:]
    return A.reshape(a.shape), piv.reshape(batch + (k,)), info.reshape(batch)


@np.errstate(divide="ignore", invalid="ignore", over="ignore")
def linalg_cholesky(a, upper: bool):
    """Cholesky factor of the symmetric positive-definite matrices whose lower triangle
    `a` holds: (L, info) with L lower (its transpose when `upper`); info is the order of
    the first leading minor that is not positive definite (its rows of L are NaN)."""
    batch, n = a.shape[:-2], a.shape[-1]
    A = _flat(a)
    L = np.zeros_like(A)
    info = np.zeros(A.shape[0], _I32)
    for j in range(n):
        d = A[:, j, j] - np.einsum("bk,bk->b", L[:, j, :j], L[:, j, :j])
        bad = ~(d > 0)
        info[(info == 0) & bad] = j + 1
        L[:, j, j] = np.sqrt(np.where(bad, np.nan, d))
        col = A[:, j + 1:, j] - np.einsum("bik,bk->bi", L[:, j + 1:, :j], L[:, j, :j])
        L[:, j + 1:, j] = col / L[:, j, j, None]
    L = L.reshape(a.shape)
    return (np.swapaxes(L, -1, -2).copy() if upper else L), info.reshape(batch)


def _per_ok(f, a: np.ndarray, info: np.ndarray, out_shape: tuple, *more):
    """f on the batch elements whose info is 0 (numpy raises on a singular one), zeros
    elsewhere (their values are unspecified, as LAPACK's)."""
    out = np.zeros((info.size,) + out_shape, a.dtype)
    ok = info.reshape(-1) == 0
    if ok.any():
        fa = _stack(a)[ok]
        rest = [_stack(m)[ok] for m in more]
        out[ok] = f(fa, *rest)
    return out


def linalg_lu_permutation(pivots, m: int, dtype):
    """The (..., m, m) permutation matrix P of LAPACK's 1-based row swaps `pivots`
    (..., k), applied in order, such that A = P @ L @ U."""
    batch, k = pivots.shape[:-1], pivots.shape[-1]
    piv = pivots.reshape(math.prod(batch), k).astype(np.int64) - 1
    perm = np.tile(np.arange(m), (piv.shape[0], 1))
    rows = np.arange(piv.shape[0])
    for j in range(k):  # perm[i]: the row of A that row i of L @ U came from
        p = piv[:, j]
        top = perm[rows, j].copy()
        perm[rows, j] = perm[rows, p]
        perm[rows, p] = top
    P = np.zeros((piv.shape[0], m, m), np.dtype(dtype))
    P[rows[:, None], perm, np.arange(m)[None, :]] = 1
    return P.reshape(batch + (m, m))


def _lapack_or_lu(f, a, out_shape: tuple, *more):
    """(f(a, *more), info): LAPACK through numpy for the whole batch when every matrix is
    invertible (its getrf found no zero pivot: info 0); otherwise info from
    linalg_lu_factor and f on the invertible elements only."""
    try:
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            out = np.asarray(f(a, *more), a.dtype)
        return out, np.zeros(a.shape[:-2], _I32)
    except np.linalg.LinAlgError:
        info = linalg_lu_factor(a)[2]
        return _per_ok(f, a, info, out_shape, *more), info


def linalg_inv(a):
    """(inverse, info): info as linalg_lu_factor's (0: invertible)."""
    inv, info = _lapack_or_lu(np.linalg.inv, a, a.shape[-2:])
    return inv.reshape(a.shape), info


def linalg_solve(a, b):
    """(X, info) with a @ X = b; a (..., n, n), b (..., n, k) with the same batch dims."""
    x, info = _lapack_or_lu(np.linalg.solve, a, b.shape[-2:], b)
    return x.reshape(b.shape), info


@np.errstate(invalid="ignore", over="ignore")
def linalg_det(a):
    """Determinant of each (..., n, n) matrix (1 for n = 0; NaN in, NaN out)."""
    return np.asarray(np.linalg.det(a), a.dtype)


def linalg_slogdet(a):
    """(sign, log|det|) of each matrix; a singular one gives (0, -inf)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sign, logabs = np.linalg.slogdet(a)
    return np.asarray(sign, a.dtype), np.asarray(logabs, a.dtype)


def linalg_eigh(a, upper: bool):
    """(eigenvalues ascending, eigenvectors as columns) of the symmetric matrices held in
    the lower (upper) triangle of `a`."""
    w, v = np.linalg.eigh(a, UPLO="U" if upper else "L")
    return np.asarray(w, a.dtype), np.asarray(v, a.dtype)


def linalg_svd(a, full_matrices: bool):
    """(U, S, Vh): S descending; U (..., m, k or m), Vh (..., k or n, n), k = min(m, n)."""
    m, n = a.shape[-2:]
    if a.size == 0:  # LAPACK is not called on empty matrices: identity factors
        k = min(m, n)
        mu, nv = (m, n) if full_matrices else (k, k)
        eye_u = np.broadcast_to(np.eye(m, mu, dtype=a.dtype), a.shape[:-2] + (m, mu))
        eye_v = np.broadcast_to(np.eye(nv, n, dtype=a.dtype), a.shape[:-2] + (nv, n))
        return eye_u.copy(), np.zeros(a.shape[:-2] + (k,), a.dtype), eye_v.copy()
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return np.asarray(u, a.dtype), np.asarray(s, a.dtype), np.asarray(vh, a.dtype)


def linalg_qr(a, mode: str):
    """(Q, R) by Householder QR; mode 'reduced' (Q m x k) or 'complete' (Q m x m)."""
    q, r = np.linalg.qr(a, mode=mode)
    return np.asarray(q, a.dtype), np.asarray(r, a.dtype)


@np.errstate(divide="ignore", invalid="ignore", over="ignore")
def linalg_solve_triangular(a, b, upper: bool, unitriangular: bool):
    """X with triangle(a) @ X = b by substitution; only the upper (lower) triangle of `a`
    is read, its diagonal taken as ones when `unitriangular`; a zero on the diagonal
    gives inf/NaN, not an error (PyTorch's trsm)."""
    A, X = _flat(a), _flat(b)
    n = A.shape[-1]
    order = range(n - 1, -1, -1) if upper else range(n)
    for i in order:
        part = slice(i + 1, n) if upper else slice(0, i)
        if part.start != part.stop:
            X[:, i] -= np.einsum("bk,bkj->bj", A[:, i, part], X[:, part])
        if not unitriangular:
            X[:, i] /= A[:, i, i, None]
    return X.reshape(b.shape)


def linalg_geqrf(a):
    """LAPACK geqrf: (a with R on and above the diagonal and the Householder vectors
    below it, tau (..., min(m, n)))."""
    if a.size == 0:
        return a.copy(), np.zeros(a.shape[:-2] + (min(a.shape[-2:]),), a.dtype)
    h, tau = np.linalg.qr(a, mode="raw")
    return np.ascontiguousarray(np.swapaxes(h, -1, -2), a.dtype), np.asarray(tau, a.dtype)


_BK_ALPHA = (1 + np.sqrt(17.0)) / 8  # Bunch-Kaufman's growth-balancing threshold


@np.errstate(divide="ignore", invalid="ignore", over="ignore")
def linalg_ldl_factor(a, hermitian: bool):
    """LAPACK sytrf (lower, unblocked: sytf2): (LD, pivots, info) with A = P L D L^T P^T,
    D of 1x1 and 2x2 blocks by Bunch-Kaufman's rule; LD holds L below the diagonal and D
    on it (a 2x2 block's off-diagonal at [k+1, k]); pivots 1-based, negative for both
    rows of a 2x2 block, as LAPACK's ipiv.  `hermitian` only matters for complex input."""
    batch, n = a.shape[:-2], a.shape[-1]
    A = _flat(np.tril(a))
    A = A + np.swapaxes(np.tril(A, -1), -1, -2)  # the symmetric matrix of the lower triangle
    piv = np.zeros((A.shape[0], n), _I32)
    info = np.zeros(A.shape[0], _I32)
    for b in range(A.shape[0]):
        info[b] = _sytf2(A[b], piv[b])
    LD = np.tril(A).reshape(a.shape).astype(a.dtype)
    return LD, piv.reshape(batch + (n,)), info.reshape(batch)


def _swap_sym(A: np.ndarray, i: int, j: int, k: int) -> None:
    """Symmetric interchange of rows and columns i and j of the trailing matrix
    A[k:, k:] (full storage); the finished columns of L keep their rows, since LAPACK's
    L is the product P(1) L(1) P(2) L(2) ... of the steps' own permutations."""
    T = A[k:, k:]
    i, j = i - k, j - k
    T[[i, j], :] = T[[j, i], :]
    T[:, [i, j]] = T[:, [j, i]]


def _sytf2(A: np.ndarray, piv: np.ndarray) -> int:
    """One matrix, in place, full symmetric storage of the trailing part; returns info."""
    n, k, info = A.shape[0], 0, 0
    while k < n:
        akk = abs(A[k, k])
        col = np.abs(A[k + 1:, k])
        imax = k + 1 + int(np.argmax(col)) if col.size else k
        colmax = col.max() if col.size else 0.0
        if max(akk, colmax) == 0 or np.isnan(akk):
            info = info or k + 1
            piv[k] = k + 1
            k += 1
            continue
        if akk >= _BK_ALPHA * colmax:
            kp, size = k, 1
        else:
            row = np.abs(A[imax, k:imax])  # row imax left of the diagonal ...
            below = np.abs(A[imax + 1:, imax])  # ... and column imax below it
            rowmax = max(row.max(), below.max() if below.size else 0.0)
            if akk >= _BK_ALPHA * colmax * (colmax / rowmax):
                kp, size = k, 1
            elif abs(A[imax, imax]) >= _BK_ALPHA * rowmax:
                kp, size = imax, 1
            else:
                kp, size = imax, 2
        kk = k + size - 1
        if kp != kk:
            _swap_sym(A, kk, kp, k)
        if size == 1:
            d = A[k, k]
            l = A[k + 1:, k] / d
            A[k + 1:, k + 1:] -= np.outer(l, A[k + 1:, k])
            A[k + 1:, k] = l
            A[k, k + 1:] = l
            piv[k] = kp + 1
        else:
            D = A[k:k + 2, k:k + 2].copy()
            W = A[k + 2:, k:k + 2].copy()
            L = np.linalg.solve(D, W.T).T if W.size else W
            A[k + 2:, k + 2:] -= L @ W.T
            A[k + 2:, k:k + 2] = L
            A[k:k + 2, k + 2:] = L.T
            piv[k] = piv[k + 1] = -(kp + 1)
        k += size
    return info


@np.errstate(divide="ignore", invalid="ignore", over="ignore")
def linalg_ldl_solve(LD, pivots, b):
    """X with A @ X = b from linalg_ldl_factor's (LD, pivots) (LAPACK sytrs, lower)."""
    L, piv, X = _flat(LD), _stack(pivots[..., None])[..., 0], _flat(b)
    for A, ip, B in zip(L, piv, X):
        _sytrs(A, ip, B)
    return X.reshape(b.shape)


def _sytrs(A: np.ndarray, ip: np.ndarray, B: np.ndarray) -> None:
    n, k = A.shape[0], 0
    while k < n:  # L D Y = B, forwards
        if ip[k] > 0:
            kp = ip[k] - 1
            B[[k, kp]] = B[[kp, k]]
            B[k + 1:] -= np.outer(A[k + 1:, k], B[k])
            B[k] /= A[k, k]
            k += 1
        else:
            kp = -ip[k] - 1
            B[[k + 1, kp]] = B[[kp, k + 1]]
            B[k + 2:] -= np.outer(A[k + 2:, k], B[k]) + np.outer(A[k + 2:, k + 1], B[k + 1])
            off = A[k + 1, k]
            a0, a1 = A[k, k] / off, A[k + 1, k + 1] / off
            denom = a0 * a1 - 1
            b0, b1 = B[k] / off, B[k + 1] / off
            B[k], B[k + 1] = (a1 * b0 - b1) / denom, (a0 * b1 - b0) / denom
            k += 2
    k = n - 1
    while k >= 0:  # L^T X = Y, backwards
        if ip[k] > 0:
            B[k] -= A[k + 1:, k] @ B[k + 1:]
            kp = ip[k] - 1
            B[[k, kp]] = B[[kp, k]]
            k -= 1
        else:
            B[k] -= A[k + 1:, k] @ B[k + 1:]
            B[k - 1] -= A[k + 1:, k - 1] @ B[k + 1:]
            kp = -ip[k] - 1
            B[[k, kp]] = B[[kp, k]]
            k -= 2
