"""torch.linalg's solvers: inv, solve, triangular solves, determinants, Cholesky, LU and
LDL^T factorizations and solves, least squares, tensor inverses."""
from __future__ import annotations

import math
from collections import namedtuple

from ..dispatch import apply
from ..ops import linalg_fn as F
from ..ops._util import Tensor
from . import _check as C

InvEx = namedtuple("InvEx", "inverse info")
SolveEx = namedtuple("SolveEx", "result info")
Slogdet = namedtuple("Slogdet", "sign logabsdet")
CholeskyEx = namedtuple("CholeskyEx", "L info")
LuFactorEx = namedtuple("LuFactorEx", "LU pivots info")
LuFactor = namedtuple("LuFactor", "LU pivots")
LU = namedtuple("LU", "P L U")
LdlFactorEx = namedtuple("LdlFactorEx", "LD pivots info")
LdlFactor = namedtuple("LdlFactor", "LD pivots")
Lstsq = namedtuple("Lstsq", "solution residuals rank singular_values")


def inv_ex(A, *, check_errors: bool = False) -> InvEx:
    """(A^-1, info) per matrix of the batch; info k > 0: U[k, k] of its LU is zero."""
    A = C.matrix(A, "linalg.inv_ex")
    inv, info = apply(F.Inv, (A,), {})
    if check_errors:
        C.raise_info(info, "linalg.inv_ex", C.singular_inv)
    return InvEx(inv, info)


def inv(A) -> Tensor:
    """The inverse of each square matrix; a singular one raises LinAlgError naming its
    batch element."""
    A = C.matrix(A, "linalg.inv")
    out, info = apply(F.Inv, (A,), {})
    C.raise_info(info, "linalg.inv", C.singular_inv)
    return out


def _solve_operands(A, B, left: bool, op: str):
    A = C.matrix(A, op)
    B = C.floating(B, op, "B")
    C.same_dtype(A, B, op)
    n = A.shape[-1]
    # B is a batch of vectors when 1-d or when it has A's batch shape and one dim less
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    if vector:
        B = B.unsqueeze(-1 if left else -2)
    if (B.shape[-2] if left else B.shape[-1]) != n:
        shp = f"{B.shape[-2]}x{B.shape[-1]}"
        eq = "AX = B" if left else "XA = B"
        raise RuntimeError(f"{op}: Incompatible shapes of A and B for the equation {eq} "
                           f"({n}x{n} and {shp})")
    A, B = C.batch_broadcast(A, B, op)
    return A, B, vector


def solve_ex(A, B, *, left: bool = True, check_errors: bool = False) -> SolveEx:
    """(X, info) with A X = B (X A = B when not `left`); B a matrix or a vector
    (batches broadcast)."""
    return _solve(A, B, left, check_errors, "linalg.solve_ex")


def solve(A, B, *, left: bool = True) -> Tensor:
    """X with A X = B (X A = B when not `left`); raises LinAlgError for singular A."""
    return _solve(A, B, left, True, "linalg.solve").result


def _solve(A, B, left: bool, check_errors: bool, op: str) -> SolveEx:
    A, B, vector = _solve_operands(A, B, left, op)
    if left:
        X, info = apply(F.Solve, (A, B), {})
    else:
        Xt, info = apply(F.Solve, (A.mT, B.mT), {})
        X = Xt.mT
    if check_errors:  # PyTorch names the op "torch.linalg.solve" in this one message
        C.raise_info(info, "torch." + op if op == "linalg.solve" else op,
                     lambda k: "The solver failed because the input matrix is singular.")
    return SolveEx(X.squeeze(-1 if left else -2) if vector else X, info)


def solve_triangular(A, B, *, upper: bool, left: bool = True,
                     unitriangular: bool = False) -> Tensor:
    """X with T X = B (X T = B when not `left`), T the upper (lower) triangle of A, with
    ones on its diagonal when `unitriangular`; a zero diagonal gives inf/NaN."""
    op = "linalg.solve_triangular"
    A = C.matrix(A, op)
    B = C.floating(B, op, "B")
    C.same_dtype(A, B, op)
    if B.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor B must have at least 2 dimensions.")
    n = A.shape[-1]
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise RuntimeError(f"{op}: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({n}x{n} and "
                           f"{B.shape[-2]}x{B.shape[-1]})")
    A, B = C.batch_broadcast(A, B, op)
    attrs = {"upper": upper if left else not upper, "unitriangular": unitriangular}
    if left:
        return apply(F.SolveTriangular, (A, B), attrs)
    return apply(F.SolveTriangular, (A.mT, B.mT), attrs).mT


def det(A) -> Tensor:
    """Determinant of each square matrix."""
    return apply(F.Det, (C.matrix(A, "linalg.det"),), {})


def slogdet(A) -> Slogdet:
    """(sign, log|det|); (0, -inf) for a singular matrix."""
    logabs, sign = apply(F.Slogdet, (C.matrix(A, "linalg.slogdet"),), {})
    return Slogdet(sign, logabs)


def cholesky_ex(A, *, upper: bool = False, check_errors: bool = False) -> CholeskyEx:
    """(L, info): L lower with A = L L^T (U = L^T when `upper`); info k > 0: the leading
    minor of order k is not positive-definite.  Reads A's lower triangle."""
    A = C.matrix(A, "linalg.cholesky_ex")
    L, info = apply(F.Cholesky, (A,), {})
    if check_errors:
        C.raise_info(info, "linalg.cholesky_ex", C.not_pd)
    return CholeskyEx(L.mT if upper else L, info)


def cholesky(A, *, upper: bool = False) -> Tensor:
    """The Cholesky factor; raises LinAlgError when a matrix is not positive-definite."""
    A = C.matrix(A, "linalg.cholesky")
    L, info = apply(F.Cholesky, (A,), {})
    C.raise_info(info, "linalg.cholesky", C.not_pd)
    return L.mT if upper else L


def lu_factor_ex(A, *, pivot: bool = True, check_errors: bool = False) -> LuFactorEx:
    """(LU, pivots, info): LAPACK getrf's compact LU with partial pivoting."""
    op = "linalg.lu_factor_ex"
    A = C.matrix(A, op, square=False)
    if not pivot:
        raise RuntimeError(f"{op}: LU without pivoting is not implemented on the CPU")
    LU_, piv, info = apply(F.LuFactor, (A,), {})
    if check_errors:
        C.raise_info(info, op, lambda k: f"U[{k},{k}] is zero")
    return LuFactorEx(LU_, piv, info)


def lu_factor(A, *, pivot: bool = True) -> LuFactor:
    """(LU, pivots); raises when a U has a zero on its diagonal."""
    LU_, piv, info = lu_factor_ex(A, pivot=pivot)
    C.raise_info(info, "torch.linalg.lu_factor", lambda k: (
        f"U[{k},{k}] is zero and using it on lu_solve would result in a division by zero. "
        "If you still want to perform the factorization, consider calling linalg.lu(A, pivot) "
        "or linalg.lu_factor_ex(A, pivot)"))
    return LuFactor(LU_, piv)


def _unpack_lu(LU_: Tensor, piv: Tensor) -> LU:
    m, n = LU_.shape[-2:]
    k = min(m, n)
    P = apply(F.LuPermutation, (piv,), {"m": m, "dtype": LU_.dtype.name})
    L = LU_.narrow(-1, 0, k).tril(-1) + F.eye_like(LU_, m, k)
    U = LU_.narrow(-2, 0, k).triu()
    return LU(P, L, U)


def lu(A, *, pivot: bool = True) -> LU:
    """(P, L, U) with A = P L U (L unit lower m x k, U upper k x n)."""
    LU_, piv, _ = lu_factor_ex(A, pivot=pivot)
    return _unpack_lu(LU_, piv)


def lu_solve(LU, pivots, B, *, left: bool = True, adjoint: bool = False) -> Tensor:
    """X with A X = B (or A^T X = B when `adjoint`, X A = B when not `left`) from
    lu_factor's (LU, pivots); differentiable in LU and B."""
    op = "linalg.lu_solve"
    LU = C.matrix(LU, op, name="LU")
    B = C.floating(B, op, "B")
    C.same_dtype(LU, B, op)
    if B.ndim < 2 or (B.shape[-2] if left else B.shape[-1]) != LU.shape[-1]:
        raise RuntimeError(f"{op}: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({LU.shape[-1]}x{LU.shape[-1]} "
                           f"and {tuple(B.shape)})")
    P, L, U = _unpack_lu(LU, pivots)
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return lu_solve(LU, pivots, B.mT, left=True, adjoint=not adjoint).mT
    LU_b, B = C.batch_broadcast(LU, B, op)
    P, L, U = (t.expand(*B.shape[:-2], *t.shape[-2:]) for t in (P, L, U))
    tri = F._tri
    if adjoint:  # A^T = U^T L^T P^T
        return P @ tri(L.mT, tri(U.mT, B, False), True, True)
    return tri(U, tri(L, P.mT @ B, False, True), True)


def ldl_factor_ex(A, *, hermitian: bool = False, check_errors: bool = False) -> LdlFactorEx:
    """(LD, pivots, info): LAPACK sytrf's Bunch-Kaufman LDL^T of the lower triangle."""
    A = C.matrix(A, "linalg.ldl_factor_ex")
    LD, piv, info = apply(F.LdlFactor, (A,), {"hermitian": hermitian})
    if check_errors:
        C.raise_info(info, "linalg.ldl_factor_ex", lambda k: f"D[{k},{k}] is zero")
    return LdlFactorEx(LD, piv, info)


def ldl_factor(A, *, hermitian: bool = False) -> LdlFactor:
    """(LD, pivots); raises LinAlgError when D is singular."""
    LD, piv, info = ldl_factor_ex(A, hermitian=hermitian)
    C.raise_info(info, "torch.linalg.ldl_factor", lambda k: (
        f"The factorization could not be completed because the input is singular: "
        f"D[{k},{k}] is zero"))
    return LdlFactor(LD, piv)


def ldl_solve(LD, pivots, B, *, hermitian: bool = False) -> Tensor:
    """X with A X = B from ldl_factor's (LD, pivots) (no gradient, as in PyTorch)."""
    op = "linalg.ldl_solve"
    LD = C.matrix(LD, op, name="LD")
    B = C.floating(B, op, "B")
    C.same_dtype(LD, B, op)
    if B.ndim < 2 or B.shape[-2] != LD.shape[-1]:
        raise RuntimeError(f"{op}: Incompatible shapes of LD and B ({tuple(LD.shape)} and "
                           f"{tuple(B.shape)})")
    LD_b, B_b = C.batch_broadcast(LD, B, op)
    piv = pivots.expand(*B_b.shape[:-2], pivots.shape[-1])
    return apply(F.LdlSolve, (LD_b.contiguous(), piv.contiguous(), B_b.contiguous()), {})


def lstsq(A, B, rcond=None, *, driver: str | None = None) -> Lstsq:
    """Least-squares solution of A X = B through QR (full-rank A: min ||AX - B|| for tall
    A, the minimum-norm solution for wide A), as PyTorch's default CPU driver 'gelsy'
    returns it: (solution, residuals (empty), rank, singular_values (empty))."""
    op = "torch.linalg.lstsq"
    if driver not in (None, "gels", "gelsy", "gelsd", "gelss"):
        raise RuntimeError(f"{op}: parameter `driver` should be one of (gels, gelsy, gelsd, "
                           "gelss)")
    A = C.matrix(A, "linalg.lstsq", square=False)
    B = C.floating(B, "linalg.lstsq", "B")
    C.same_dtype(A, B, "linalg.lstsq")
    vector = B.ndim == A.ndim - 1
    if vector:
        B = B.unsqueeze(-1)
    if B.shape[-2] != A.shape[-2]:
        raise RuntimeError(f"{op}: input.size(-2) should match other.size(-2). Got "
                           f"{A.shape[-2]} and {B.shape[-2]}")
    A, B = C.batch_broadcast(A, B, op)
    from ._decomp import qr, matrix_rank, svdvals
    m, n = A.shape[-2:]
    if m >= n:
        Q, R = qr(A)
        X = F._tri(R, Q.mT @ B, True)
    else:
        Q, R = qr(A.mT)
        X = Q @ F._tri(R.mT, B, False)
    drv = driver or "gelsy"
    empty = A.detach().reshape(-1)[:0]
    rank = matrix_rank(A.detach()) if drv != "gels" else empty.long()
    sv = svdvals(A.detach()) if drv in ("gelsd", "gelss") else empty
    if drv != "gelsy" and m > n and bool((rank == n).all()):
        residuals = ((A @ X - B) ** 2).sum(-2)
    else:
        residuals = empty
    return Lstsq(X.squeeze(-1) if vector else X, residuals, rank, sv)


def tensorinv(A, ind: int = 2) -> Tensor:
    """The tensor inverse with respect to tensordot over the first `ind` dims."""
    A = C.floating(A, "linalg.tensorinv")
    if ind <= 0:
        raise RuntimeError(f"linalg.tensorinv: Expected a strictly positive integer for "
                           f"'ind', but got {ind}")
    out_shape, in_shape = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    rows, cols = math.prod(out_shape), math.prod(in_shape)
    if rows != cols:
        raise RuntimeError("linalg.tensorinv: Expected self to satisfy the requirement "
                           "prod(self.shape[ind:]) == prod(self.shape[:ind]), but got "
                           f"{cols} != {rows}")
    return inv(A.reshape(rows, cols)).reshape(*in_shape, *out_shape)


def tensorsolve(A, B, dims=None) -> Tensor:
    """X with tensordot(A, X, X.ndim) = B; `dims` of A move to the end first."""
    A = C.floating(A, "linalg.tensorsolve")
    B = C.floating(B, "linalg.tensorsolve", "B")
    if dims is not None:
        dims = [d % A.ndim for d in dims]
        keep = [d for d in range(A.ndim) if d not in dims]
        A = A.permute(*keep, *dims)
    x_shape = tuple(A.shape[B.ndim:])
    rows, cols = B.numel(), math.prod(x_shape)
    if rows != cols:
        raise RuntimeError("linalg.tensorsolve: Expected self to satisfy the requirement "
                           "prod(self.shape[other.ndim:]) == prod(self.shape[:other.ndim]), "
                           f"but got {cols} != {rows}")
    return solve(A.reshape(rows, cols), B.reshape(rows)).reshape(*x_shape)
