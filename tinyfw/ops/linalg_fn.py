"""The linear-algebra ops that need a kernel of their own: solvers and the determinant.

Each Function's forward calls one ``linalg_*`` primitive (tinyfw/backend/ref_linalg.py)
and its backward is written in tinyfw ops, so second derivatives work.  Integer side
outputs (LAPACK's ``info``, pivots) are aux outputs.  The public names, with PyTorch's
validation and errors, are in tinyfw/linalg/.  The factorizations with several
differentiable outputs (eigh, svd, qr) are in linalg_decomp.py.
"""
from __future__ import annotations

import math

from ..autograd.function import Function
from ._opmeta import no_flops
from ._util import Tensor, apply


class LinAlgError(RuntimeError):
    """A matrix the operation cannot handle: singular, not positive-definite (as
    torch.linalg.LinAlgError, also a RuntimeError)."""


def _cubic(k: float) -> staticmethod:
    """k * n^3 FLOPs per matrix of the first input (a factorization's order of work)."""
    def flops(in_shapes: list, out_shapes: list, attrs: dict) -> int:
        s = in_shapes[0]
        return int(k * math.prod(s[:-2]) * s[-2] * s[-1] * min(s[-2:])) if len(s) >= 2 else 0
    return staticmethod(flops)


def eye_like(x: Tensor, n: int, m: int | None = None) -> Tensor:
    """The n x m identity in x's dtype on x's device."""
    from ..creation import eye

    return eye(n, m, dtype=x.dtype, device=x.device)


def diag(x: Tensor) -> Tensor:
    """The main diagonal of the last two dims (..., min(m, n)), in tinyfw ops."""
    m, n = x.shape[-2:]
    k = min(m, n)
    return (x.narrow(-2, 0, k).narrow(-1, 0, k) * eye_like(x, k)).sum(-1)


def diag_embed(v: Tensor) -> Tensor:
    """(..., k) -> (..., k, k) with v on the diagonal."""
    return v.unsqueeze(-1) * eye_like(v, v.shape[-1])


class Inv(Function):
    """Matrix inverse; aux: info.  d(A^-1) = -A^-1 dA A^-1, so gA = -Y^T g Y^T."""
    autocast = "float32"
    fresh_output = True
    save_output = True
    flops = _cubic(2)

    @staticmethod
    def forward(ctx, B, a):
        return B.linalg_inv(a)

    def backward(self, g):
        y = self.output
        return (-(y.mT @ g @ y.mT),)


class Solve(Function):
    """X with A X = B (same batch dims); aux: info.  gB = A^-T g, gA = -gB X^T."""
    autocast = "float32"
    fresh_output = True
    save_inputs = slice(0, 1)
    save_output = True
    flops = _cubic(2 / 3)

    @staticmethod
    def forward(ctx, B, a, b):
        return B.linalg_solve(a, b)

    def backward(self, g):
        (a,) = self.saved_inputs
        gb = apply(Solve, (a.mT, g), {})[0]
        ga = -(gb @ self.output.mT) if self.next[0] is not None else None
        return ga, gb


class SolveTriangular(Function):
    """X with triangle(A) X = B (left side; the right side is the transpose problem)."""
    autocast = "float32"
    fresh_output = True
    save_inputs = slice(0, 1)
    save_output = True
    flops = _cubic(1)

    @staticmethod
    def forward(ctx, B, a, b, upper, unitriangular):
        ctx.upper, ctx.unit = upper, unitriangular
        return B.linalg_solve_triangular(a, b, upper, unitriangular)

    def backward(self, g):
        (a,) = self.saved_inputs
        gb = apply(SolveTriangular, (a.mT, g), {"upper": not self.upper,
                                                 "unitriangular": self.unit})
        ga = None
        if self.next[0] is not None:
            full = -(gb @ self.output.mT)
            k = int(self.unit)
            ga = full.triu(k) if self.upper else full.tril(-k)
        return ga, gb


class Det(Function):
    """Determinant; gA = g det(A) A^-T (A invertible)."""
    autocast = "float32"
    fresh_output = True
    save_inputs = True
    save_output = True
    flops = _cubic(2 / 3)

    @staticmethod
    def forward(ctx, B, a):
        return B.linalg_det(a)

    def backward(self, g):
        (a,) = self.saved_inputs
        inv = apply(Inv, (a,), {})[0]
        return ((g * self.output).unsqueeze(-1).unsqueeze(-1) * inv.mT,)


class Slogdet(Function):
    """log|det A| (first output) and its sign (aux); g_A = g A^-T."""
    autocast = "float32"
    fresh_output = True
    save_inputs = True
    flops = _cubic(2 / 3)

    @staticmethod
    def forward(ctx, B, a):
        sign, logabs = B.linalg_slogdet(a)
        return logabs, sign

    def backward(self, g):
        (a,) = self.saved_inputs
        inv = apply(Inv, (a,), {})[0]
        return (g.unsqueeze(-1).unsqueeze(-1) * inv.mT,)


class Cholesky(Function):
    """Lower Cholesky factor L (aux: info).  With Phi(X) = tril(X) with its diagonal
    halved and S = L^-T Phi(L^T g) L^-1, gA = (S + S^T) / 2 (PyTorch's symmetric
    gradient)."""
    autocast = "float32"
    fresh_output = True
    save_output = True
    flops = _cubic(1 / 3)

    @staticmethod
    def forward(ctx, B, a):
        return B.linalg_cholesky(a, False)

    def backward(self, g):
        L = self.output
        phi = (L.mT @ g).tril()
        phi = phi - 0.5 * diag_embed(diag(phi))
        lt = {"upper": True, "unitriangular": False}
        tmp = apply(SolveTriangular, (L.mT, phi), lt)  # L^-T Phi
        s = apply(SolveTriangular, (L.mT, tmp.mT), lt).mT  # ... L^-1
        return (0.5 * (s + s.mT),)


class LuFactor(Function):
    """LU = L and U of P A in one matrix (aux: pivots, info).  For square A,
    gA = P L^-T (tril(L^T gL, -1) + triu(gU U^T)) U^-T, gL/gU the strictly lower and
    upper parts of g (PyTorch's formula); rectangular A: see lu_backward_pa."""
    autocast = "float32"
    fresh_output = True
    save_output = True
    save_aux = True
    flops = _cubic(2 / 3)

    @staticmethod
    def forward(ctx, B, a):
        return B.linalg_lu_factor(a)

    def backward(self, g):
        lu = self.output
        pivots = self.saved_aux[0]
        m, n = lu.shape[-2:]
        perm = apply(LuPermutation, (pivots,), {"m": m, "dtype": lu.dtype.name})
        return (perm @ lu_backward_pa(lu, g),)


class LuPermutation(Function):
    """The permutation matrix of LAPACK pivots (no gradient)."""
    autocast = None
    differentiable = False
    flops = no_flops

    @staticmethod
    def forward(ctx, B, pivots, m, dtype):
        return B.linalg_lu_permutation(pivots, m, dtype)


def _tri(a: Tensor, b: Tensor, upper: bool, unit: bool = False, left: bool = True) -> Tensor:
    """Solve with a triangular matrix on either side, through SolveTriangular."""
    if left:
        return apply(SolveTriangular, (a, b), {"upper": upper, "unitriangular": unit})
    return apply(SolveTriangular, (a.mT, b.mT), {"upper": not upper, "unitriangular": unit}).mT


def lu_backward_pa(lu: Tensor, g: Tensor) -> Tensor:
    """The gradient with respect to P^T A of the packed LU (square, tall or wide)."""
    m, n = lu.shape[-2:]
    k = min(m, n)
    if m == n:
        L, U = lu.tril(-1) + eye_like(lu, n), lu.triu()
        phi = (L.mT @ g.tril(-1)).tril(-1) + (g.triu() @ U.mT).triu()
        return _tri(U.mT, _tri(L.mT, phi, True, True), False, left=False)
    if m < n:  # wide: A = P L [U1 U2]: the square case on A1 plus A2's share
        L = lu.narrow(-1, 0, k).tril(-1) + eye_like(lu, k)
        U1, U2 = lu.narrow(-1, 0, k).triu(), lu.narrow(-1, k, n - k)
        gL, gU1, gU2 = g.narrow(-1, 0, k).tril(-1), g.narrow(-1, 0, k).triu(), g.narrow(-1, k, n - k)
        # dU2 = L^-1 (dA2 - dL U2) moves gU2 U2^T into the lower part
        phi = (L.mT @ gL - gU2 @ U2.mT).tril(-1) + (gU1 @ U1.mT).triu()
        ga1 = _tri(U1.mT, _tri(L.mT, phi, True, True), False, left=False)
        from .index import cat
        return cat([ga1, _tri(L.mT, gU2, True, True)], -1)
    # tall: A = P [L1; L2] U
    L1 = lu.narrow(-2, 0, k).tril(-1) + eye_like(lu, k)
    L2, U = lu.narrow(-2, k, m - k), lu.narrow(-2, 0, k).triu()
    gL1, gL2, gU = g.narrow(-2, 0, k).tril(-1), g.narrow(-2, k, m - k), g.narrow(-2, 0, k).triu()
    # dL2 = (dA2 - L2 dU) U^-1 moves -L2^T gL2 into the upper part
    phi = (L1.mT @ gL1).tril(-1) + (gU @ U.mT - L2.mT @ gL2).triu()
    ga1 = _tri(U.mT, _tri(L1.mT, phi, True, True), False, left=False)
    from .index import cat
    return cat([ga1, _tri(U.mT, gL2, False, left=False)], -2)


class LdlFactor(Function):
    """Bunch-Kaufman LDL^T (LAPACK sytrf); no gradient, as in PyTorch."""
    autocast = "float32"
    differentiable = False
    flops = _cubic(1 / 3)

    @staticmethod
    def forward(ctx, B, a, hermitian):
        return B.linalg_ldl_factor(a, hermitian)


class LdlSolve(Function):
    """Solve from LdlFactor's result; no gradient, as in PyTorch."""
    autocast = "float32"
    differentiable = False
    flops = _cubic(2)

    @staticmethod
    def forward(ctx, B, ld, pivots, b):
        return B.linalg_ldl_solve(ld, pivots, b)


class Geqrf(Function):
    """LAPACK geqrf (Householder vectors and tau); no gradient, as in PyTorch."""
    autocast = "float32"
    differentiable = False
    flops = _cubic(4 / 3)

    @staticmethod
    def forward(ctx, B, a):
        return B.linalg_geqrf(a)
