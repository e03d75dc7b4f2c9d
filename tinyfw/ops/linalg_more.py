"""The torch.* and Tensor spellings of the linear-algebra ops: fused products (addmm,
baddbmm, addmv, addr ...), vector products (mv, ger, inner, vdot, cross) and the legacy
factorization API (torch.svd's some= and V, torch.qr, torch.lu, triangular_solve,
cholesky_solve, geqrf/orgqr/ormqr ...), on top of tinyfw.linalg."""
from __future__ import annotations

from collections import namedtuple

from ..dispatch import apply
from ..tensor import register_method
from . import linalg_fn as F
from .inplace import _inplace
from .linalg import matmul, outer
from ._util import Tensor, broadcast_shapes, ensure_tensor

__all__ = ["addmm", "addbmm", "baddbmm", "addmv", "addmv_", "addr", "mv", "ger", "inner",
           "vdot", "cross", "det", "logdet", "slogdet", "inverse", "cholesky",
           "cholesky_inverse", "cholesky_solve", "lu", "lu_solve", "qr", "svd", "pinverse",
           "matrix_power", "matrix_exp", "triangular_solve", "geqrf", "orgqr", "ormqr"]

SvdLegacy = namedtuple("SvdLegacy", "U S V")
TriangularSolve = namedtuple("TriangularSolve", "solution cloned_coefficient")
Geqrf = namedtuple("Geqrf", "a tau")


def _LA():
    from .. import linalg
    return linalg


def _scaled_sum(input, prod: Tensor, beta, alpha, op: str) -> Tensor:
    """beta * input + alpha * prod; input is ignored when beta == 0 (NaN in it does not
    propagate, as in PyTorch), though it still broadcasts the result's shape."""
    input = ensure_tensor(input, op)
    out = prod if alpha == 1 else prod * alpha
    if beta == 0:  # input's values are not read, but it gets its (zero) gradient
        from .elementwise import where
        from ..creation import ones
        keep = ones(*broadcast_shapes(tuple(input.shape), tuple(out.shape), op=op),
                    dtype="bool", device=out.device)
        return where(keep, out, input)
    return out + (input if beta == 1 else input * beta)


def _dims(t: Tensor, nd: int, op: str, what: str) -> None:
    if t.ndim != nd:
        raise RuntimeError(f"{op}: {what} must be a {nd}-D tensor, got {t.ndim}-D "
                           f"(shape {tuple(t.shape)})")


def addmm(input, mat1, mat2, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (mat1 @ mat2), input broadcast to the product's shape."""
    _dims(mat1, 2, "addmm", "mat1")
    _dims(mat2, 2, "addmm", "mat2")
    return _scaled_sum(input, mat1 @ mat2, beta, alpha, "addmm")


def addbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * sum_b batch1[b] @ batch2[b]."""
    _dims(batch1, 3, "addbmm", "batch1")
    _dims(batch2, 3, "addbmm", "batch2")
    return _scaled_sum(input, matmul(batch1, batch2).sum(0), beta, alpha, "addbmm")


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (batch1 @ batch2), batched."""
    _dims(batch1, 3, "baddbmm", "batch1")
    _dims(batch2, 3, "baddbmm", "batch2")
    return _scaled_sum(input, matmul(batch1, batch2), beta, alpha, "baddbmm")


def addmv(input, mat, vec, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (mat @ vec)."""
    return _scaled_sum(input, mv(mat, vec), beta, alpha, "addmv")


def addr(input, vec1, vec2, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * outer(vec1, vec2)."""
    return _scaled_sum(input, ger(vec1, vec2), beta, alpha, "addr")


def mv(input, vec) -> Tensor:
    """Matrix (n x m) times vector (m)."""
    _dims(input, 2, "mv", "input")
    _dims(vec, 1, "mv", "vec")
    return matmul(input, vec)


def ger(input, vec2) -> Tensor:
    """The outer product of two vectors."""
    _dims(input, 1, "ger", "input")
    _dims(vec2, 1, "ger", "vec2")
    return outer(input, vec2)


def inner(input, other) -> Tensor:
    """Sum over the last dims: (..., k) and (..., k) -> input.shape[:-1] + other.shape[:-1];
    a 0-d operand multiplies."""
    a, b = ensure_tensor(input, "inner"), ensure_tensor(other, "inner")
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    k = a.shape[-1]
    if b.shape[-1] != k:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but "
                           f"got shapes {list(a.shape)} and {list(b.shape)}")
    out = matmul(a.reshape(-1, k), b.reshape(-1, k).mT)
    return out.reshape(*a.shape[:-1], *b.shape[:-1])


def vdot(input, other) -> Tensor:
    """The dot product of two 1-d tensors (conjugating the first: nothing for reals)."""
    _dims(input, 1, "vdot", "input")
    _dims(other, 1, "vdot", "other")
    if input.shape[0] != other.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{input.shape[0]}] and "
                           f"src [{other.shape[0]}] to have the same number of elements, but "
                           "got different sizes")
    return matmul(input, other)


def cross(input, other, dim=None) -> Tensor:
    """torch.cross: the cross product along `dim`, by default the first dim of size 3."""
    if dim is None:
        a = ensure_tensor(input, "cross")
        dim = next((d for d, s in enumerate(a.shape) if s == 3), None)
        if dim is None:
            raise RuntimeError(f"no dimension of size 3 in input (shape {tuple(a.shape)})")
    return _LA().cross(input, other, dim=dim)


def det(input) -> Tensor:
    """linalg.det."""
    return _LA().det(input)


def logdet(input) -> Tensor:
    """log(det): NaN for a negative determinant, -inf for a singular matrix."""
    sign, logabs = _LA().slogdet(input)
    return logabs + (sign < 0).to(logabs.dtype).masked_fill(sign < 0, float("nan"))


def slogdet(input):
    """linalg.slogdet."""
    return _LA().slogdet(input)


def inverse(input) -> Tensor:
    """linalg.inv."""
    return _LA().inv(input)


def cholesky(input, upper: bool = False) -> Tensor:
    """linalg.cholesky with torch.cholesky's positional `upper`."""
    return _LA().cholesky(input, upper=upper)


def cholesky_inverse(L, upper: bool = False) -> Tensor:
    """(L L^T)^-1 (or (U^T U)^-1 when `upper`) from a Cholesky factor."""
    from ..linalg import _check as C
    L = C.matrix(L, "cholesky_inverse", name="A")
    eye = F.eye_like(L, L.shape[-1]).expand(*L.shape)
    return cholesky_solve(eye, L, upper)


def cholesky_solve(B, L, upper: bool = False) -> Tensor:
    """X with (L L^T) X = B (U^T U when `upper`), batches broadcast."""
    from ..linalg import _check as C
    L = C.matrix(L, "cholesky_solve", name="A")
    B = C.floating(B, "cholesky_solve", "B")
    C.same_dtype(L, B, "cholesky_solve")
    if B.ndim < 2 or B.shape[-2] != L.shape[-1]:
        raise RuntimeError(f"cholesky_solve: Incompatible matrix sizes for "
                           f"{tuple(B.shape)} and {tuple(L.shape)}")
    L, B = C.batch_broadcast(L, B, "cholesky_solve")
    low = L.mT if upper else L
    y = apply(F.SolveTriangular, (low, B), {"upper": False, "unitriangular": False})
    return apply(F.SolveTriangular, (low.mT, y), {"upper": True, "unitriangular": False})


def lu(A, pivot: bool = True, get_infos: bool = False):
    """torch.lu: (LU, pivots) or (LU, pivots, infos)."""
    LU, piv, info = _LA().lu_factor_ex(A, pivot=pivot)
    return (LU, piv, info) if get_infos else (LU, piv)


def lu_solve(b, LU_data, LU_pivots) -> Tensor:
    """torch.lu_solve: linalg.lu_solve(LU_data, LU_pivots, b)."""
    return _LA().lu_solve(LU_data, LU_pivots, b)


def qr(input, some: bool = True):
    """torch.qr: reduced (some) or complete QR."""
    return _LA().qr(input, mode="reduced" if some else "complete")


def svd(input, some: bool = True, compute_uv: bool = True) -> SvdLegacy:
    """torch.svd: (U, S, V) with V (not Vh); reduced when `some`; without `compute_uv`,
    zero U (m x m) and V (n x n)."""
    LA = _LA()
    if not compute_uv:
        S = LA.svdvals(input)
        m, n = input.shape[-2:]
        from ..creation import zeros
        z = lambda k: zeros(*input.shape[:-2], k, k, dtype=input.dtype, device=input.device)
        return SvdLegacy(z(m), S, z(n))
    U, S, Vh = LA.svd(input, full_matrices=not some)
    return SvdLegacy(U, S, Vh.mT)


def pinverse(input, rcond: float = 1e-15) -> Tensor:
    """linalg.pinv with relative cut-off `rcond`."""
    return _LA().pinv(input, rtol=rcond)


def matrix_power(input, n: int) -> Tensor:
    """linalg.matrix_power."""
    return _LA().matrix_power(input, n)


def matrix_exp(input) -> Tensor:
    """linalg.matrix_exp."""
    return _LA().matrix_exp(input)


def triangular_solve(b, A, upper: bool = True, transpose: bool = False,
                     unitriangular: bool = False) -> TriangularSolve:
    """(X, A) with op(T) X = b, T A's upper (lower) triangle, op the transpose when
    `transpose`."""
    from ..linalg import _check as C
    A = C.matrix(A, "triangular_solve")
    b = C.floating(b, "triangular_solve", "b")
    if b.ndim < 2 or b.shape[-2] != A.shape[-1]:
        raise RuntimeError(f"triangular_solve: Incompatible matrix sizes for A "
                           f"{tuple(A.shape)} and b {tuple(b.shape)}")
    T = A.mT if transpose else A
    X = _LA().solve_triangular(T, b, upper=upper != transpose, unitriangular=unitriangular)
    return TriangularSolve(X, A.expand(*X.shape[:-2], *A.shape[-2:]).clone())


def geqrf(input) -> Geqrf:
    """LAPACK geqrf: R and the Householder vectors in one matrix, and tau (no gradient)."""
    from ..linalg import _check as C
    A = C.matrix(input, "geqrf", square=False)
    a, tau = apply(F.Geqrf, (A,), {})
    return Geqrf(a, tau)


def orgqr(input, tau) -> Tensor:
    """linalg.householder_product."""
    return _LA().householder_product(input, tau)


def ormqr(input, tau, other, left: bool = True, transpose: bool = False) -> Tensor:
    """Q @ other (other @ Q when not `left`; Q^T when `transpose`), Q the m x m product of
    geqrf's reflectors in (input, tau)."""
    from ..linalg import _check as C
    from ..linalg._decomp import householder_q
    A = C.matrix(input, "ormqr", square=False)
    other = C.floating(other, "ormqr", "other")
    m = other.shape[-2] if left else other.shape[-1]
    if A.shape[-2] != m:
        raise RuntimeError(f"ormqr: input.shape[-2] must equal other.shape[{-2 if left else -1}]"
                           f" ({A.shape[-2]} vs {m})")
    Q = householder_q(A, tau)
    if transpose:
        Q = Q.mT
    return matmul(Q, other) if left else matmul(other, Q)


addmv_ = _inplace(addmv, "addmv_")

_METHODS = {n: globals()[n] for n in __all__}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)
