"""torch.linalg's spectral and orthogonal factorizations and what is built on them: eigh,
svd, qr, pinv, matrix_rank, cond, householder_product, matrix_exp, matrix_power."""
from __future__ import annotations

import math
from collections import namedtuple

from ..dispatch import apply
from ..ops import linalg_fn as F
from ..ops.linalg_decomp import Eigh, Qr, Svd, unpack
from ..ops._util import Tensor, ensure_tensor
from . import _check as C

EighResult = namedtuple("EighResult", "eigenvalues eigenvectors")
SvdResult = namedtuple("SvdResult", "U S Vh")
QrResult = namedtuple("QrResult", "Q R")


def _uplo(UPLO: str) -> bool:
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return UPLO == "U"


def eigh(A, UPLO: str = "L") -> EighResult:
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of the symmetric
    matrices held in A's lower (UPLO='L') or upper triangle."""
    A = C.matrix(A, "linalg.eigh")
    n = A.shape[-1]
    packed = apply(Eigh, (A,), {"upper": _uplo(UPLO)})
    w, V = unpack(packed, A.ndim - 2, [(n,), (n, n)])
    return EighResult(w, V)


def eigvalsh(A, UPLO: str = "L") -> Tensor:
    """The eigenvalues of eigh, ascending."""
    A = C.matrix(A, "linalg.eigvalsh")
    return eigh(A, UPLO).eigenvalues


def svd(A, full_matrices: bool = True, *, driver=None) -> SvdResult:
    """A = U diag(S) Vh, S descending; U m x m and Vh n x n when `full_matrices`, else
    m x k and k x n (k = min(m, n))."""
    A = C.matrix(A, "linalg.svd", square=False)
    m, n = A.shape[-2:]
    k = min(m, n)
    mu, nv = (m, n) if full_matrices else (k, k)
    packed = apply(Svd, (A,), {"full_matrices": bool(full_matrices)})
    U, S, Vh = unpack(packed, A.ndim - 2, [(m, mu), (k,), (nv, n)])
    return SvdResult(U, S, Vh)


def svdvals(A, *, driver=None) -> Tensor:
    """The singular values, descending."""
    A = C.matrix(A, "linalg.svdvals", square=False)
    return svd(A, full_matrices=False).S


def qr(A, mode: str = "reduced") -> QrResult:
    """A = Q R (Householder): mode 'reduced' (Q m x k), 'complete' (Q m x m) or 'r'
    (R only, Q empty)."""
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of "
                           "'reduced' (default), 'r', or 'complete'")
    A = C.matrix(A, "linalg.qr", square=False)
    m, n = A.shape[-2:]
    k = m if mode == "complete" else min(m, n)
    packed = apply(Qr, (A,), {"mode": "complete" if mode == "complete" else "reduced"})
    Q, R = unpack(packed, A.ndim - 2, [(m, k), (k, n)])
    if mode == "r":
        Q = A.reshape(-1)[:0]
    return QrResult(Q, R)


def _tolerance(S_max: Tensor, atol, rtol, m: int, n: int, dtype) -> Tensor:
    """PyTorch's cut-off max(atol, rtol * sigma_max); rtol defaults to eps * max(m, n)
    when neither is given, to 0 when only atol is."""
    import numpy as np

    if rtol is None:
        rtol = 0.0 if atol is not None else float(np.finfo(str(dtype).split(".")[-1]).eps) * max(m, n)
    tol = S_max * rtol if not isinstance(rtol, Tensor) else S_max * rtol
    if atol is not None:
        from ..ops.elementwise import maximum
        tol = maximum(tol, atol if isinstance(atol, Tensor) else tol * 0 + atol)
    return tol


def pinv(A, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    """The Moore-Penrose pseudo-inverse, dropping singular values below
    max(atol, rtol * sigma_max); through eigh when `hermitian`."""
    A = C.matrix(A, "linalg.pinv", square=hermitian)
    m, n = A.shape[-2:]
    if hermitian:
        w, V = eigh(A)
        aw = w.abs()
        tol = _tolerance(aw.amax(-1, keepdim=True), atol, rtol, m, n, A.dtype)
        keep = aw > tol
        winv = (1 / w.masked_fill(~keep, 1.0)).masked_fill(~keep, 0.0)
        return (V * winv.unsqueeze(-2)) @ V.mT
    U, S, Vh = svd(A, full_matrices=False)
    if min(m, n) == 0:
        return A.mT * 0
    tol = _tolerance(S.narrow(-1, 0, 1), atol, rtol, m, n, A.dtype)
    keep = S > tol
    sinv = (1 / S.masked_fill(~keep, 1.0)).masked_fill(~keep, 0.0)
    return (Vh.mT * sinv.unsqueeze(-2)) @ U.mT


def matrix_rank(A, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    """The number of singular values (|eigenvalues| when `hermitian`) above
    max(atol, rtol * sigma_max), int64."""
    A = C.matrix(A, "linalg.matrix_rank", square=hermitian)
    m, n = A.shape[-2:]
    if min(m, n) == 0:
        return A.sum((-2, -1)).long() * 0
    S = eigvalsh(A.detach()).abs() if hermitian else svdvals(A.detach())
    tol = _tolerance(S.amax(-1, keepdim=True), atol, rtol, m, n, A.dtype)
    return (S > tol).long().sum(-1)


def cond(A, p=None) -> Tensor:
    """The condition number in norm p (None or 2: sigma_max / sigma_min)."""
    A = C.matrix(A, "linalg.cond", square=p not in (None, 2, -2))
    if p in (None, 2, -2):
        S = svdvals(A)
        big, small = S.narrow(-1, 0, 1).squeeze(-1), S.narrow(-1, S.shape[-1] - 1, 1).squeeze(-1)
        return big / small if p != -2 else small / big
    from ._products import matrix_norm
    from ._solvers import inv
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


def householder_product(A, tau) -> Tensor:
    """The first n columns of H_1 ... H_k, H_i = I - tau_i v_i v_i^T with v_i the i-th
    column of A below the diagonal and 1 on it (LAPACK orgqr); differentiable in both."""
    op = "linalg.householder_product"
    A = C.matrix(A, op, square=False)
    tau = C.floating(tau, op, "tau")
    m, n = A.shape[-2:]
    k = tau.shape[-1]
    if m < n:
        raise RuntimeError(f"{op}: input.shape[-2] must be greater than or equal to "
                           "input.shape[-1]")
    if k > n:
        raise RuntimeError(f"{op}: input.shape[-1] must be greater than or equal to "
                           "tau.shape[-1]")
    if tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise RuntimeError(f"{op}: Expected batch dimensions of tau to be equal to "
                           f"input.shape[:-2], but got {tuple(tau.shape[:-1])}")
    return householder_q(A, tau).narrow(-1, 0, n)


def householder_q(A: Tensor, tau: Tensor) -> Tensor:
    """The full m x m product H_1 ... H_k of the reflectors stored in A's columns."""
    m, n = A.shape[-2:]
    V = A.tril(-1) + F.eye_like(A, m, n)
    Q = F.eye_like(A, m).expand(*A.shape[:-2], m, m)
    for i in range(tau.shape[-1]):
        v = V.narrow(-1, i, 1)
        t = tau.narrow(-1, i, 1).unsqueeze(-1)
        Q = Q - ((Q @ v) * t) @ v.mT
    return Q


def matrix_power(A, n: int) -> Tensor:
    """A^n by repeated squaring (any dtype); n < 0 inverts first (LinAlgError if
    singular), n = 0 gives identities."""
    op = "linalg.matrix_power"
    A = ensure_tensor(A, op)
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{op}: n must be an int, got {type(n).__name__}")
    if n == 0:
        return F.eye_like(A, A.shape[-1]).expand(*A.shape).contiguous()
    if n < 0:
        from ._solvers import inv
        A, n = inv(A), -n
    result, base = None, A
    while True:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if not n:
            return result
        base = base @ base


def matrix_exp(A) -> Tensor:
    """e^A by scaling and squaring: the Taylor series of A / 2^s (||A / 2^s||_1 <= 1/2,
    degree 18 in float64 and 10 in float32: truncation below half an ulp) squared s times.
    Built of matmuls, so its gradients of any order come from theirs."""
    A = C.matrix(A, "linalg.matrix_exp")
    n = A.shape[-1]
    if A.numel() == 0:
        return A * 1
    # the scaling reads the values (none on meta: shapes only)
    norm1 = 0.0 if A.device.type == "meta" else float(A.detach().abs().sum(-2).amax().item())
    s = max(0, math.ceil(math.log2(norm1 / 0.5))) if norm1 > 0.5 and math.isfinite(norm1) else 0
    X = A / (2.0 ** s) if s else A
    degree = 18 if A.dtype is C._dt.float64 else 10
    eye = F.eye_like(A, n)
    E = eye + X / degree
    for q in range(degree - 1, 0, -1):
        E = eye + (X @ E) / q
    for _ in range(s):
        E = E @ E
    return E
