"""Factorizations with several differentiable outputs: eigh, svd, qr.

A Function has one differentiable output, so these pack their factors, each flattened
over the matrix dims, into one array (..., total) that `unpack` cuts back into views; the
backward gets the packed gradient (zeros for a factor the loss does not use) and cuts it
the same way.  The backward formulas are PyTorch's (derived in its
FunctionsManual.cpp), written in tinyfw ops so second derivatives work.
"""
from __future__ import annotations

import math

from ..autograd.function import Function
from .linalg_fn import SolveTriangular, _cubic, diag_embed, eye_like
from ._util import Tensor, apply


def pack(B, nb: int, arrays) -> object:
    """Backend arrays with equal leading `nb` dims -> one (..., total) array."""
    parts = []
    for a in arrays:
        c = B.contiguous(a)
        parts.append(B.view(c, tuple(a.shape[:nb]) + (math.prod(a.shape[nb:]),)))
    return B.cat(parts, nb)


def unpack(t: Tensor, nb: int, shapes) -> list:
    """Cut a packed tensor (or its gradient) into tensors of the given trailing shapes."""
    out, off = [], 0
    batch = tuple(t.shape[:nb])
    for s in shapes:
        size = math.prod(s)
        out.append(t.narrow(nb, off, size).reshape(batch + tuple(s)))
        off += size
    return out


def _safe_gap(e: Tensor) -> Tensor:
    """e_ij = x_j - x_i with 1 on the diagonal and where two values are equal (the
    numerator is 0 there when only the values are used: 0, not NaN)."""
    n = e.shape[-1]
    return (e + eye_like(e, n)).masked_fill(e == 0, 1.0) if n else e


def _packed(Fn):
    """Let a Function be packed: forward packs, `parts` unpacks output and gradient."""
    def parts(self, g):
        return unpack(self.output, self.nb, self.shapes), unpack(g, self.nb, self.shapes)
    Fn.parts = parts
    return Fn


@_packed
class Eigh(Function):
    """Packed (eigenvalues (..., n), eigenvectors (..., n, n)).
    gA = V (diag(gw) + (V^T gV) / E) V^T, E_ij = w_j - w_i (PyTorch's, unsymmetrised)."""
    autocast = "float32"
    fresh_output = True
    save_output = True
    flops = _cubic(9)

    @staticmethod
    def forward(ctx, B, a, upper):
        w, v = B.linalg_eigh(a, upper)
        n = a.shape[-1]
        ctx.nb, ctx.shapes = a.ndim - 2, [(n,), (n, n)]
        return pack(B, ctx.nb, (w, v))

    def backward(self, g):
        (w, V), (gw, gV) = self.parts(g)
        E = w.unsqueeze(-2) - w.unsqueeze(-1)
        inner = (V.mT @ gV) / _safe_gap(E)
        inner = inner * (1 - eye_like(inner, inner.shape[-1])) + diag_embed(gw)
        return V @ inner @ V.mT


@_packed
class Svd(Function):
    """Packed (U, S, Vh), reduced (full_matrices handled by the caller: only the first
    k columns of U and rows of Vh get a gradient, as in PyTorch)."""
    autocast = "float32"
    fresh_output = True
    save_output = True
    flops = _cubic(12)

    @staticmethod
    def forward(ctx, B, a, full_matrices):
        u, s, vh = B.linalg_svd(a, full_matrices)
        ctx.nb, ctx.shapes = a.ndim - 2, [u.shape[-2:], s.shape[-1:], vh.shape[-2:]]
        ctx.m, ctx.n = a.shape[-2:]
        return pack(B, ctx.nb, (u, s, vh))

    def backward(self, g):
        (U, S, Vh), (gU, gS, gVh) = self.parts(g)
        m, n = self.m, self.n
        k = min(m, n)
        U, gU = U.narrow(-1, 0, k), gU.narrow(-1, 0, k)
        Vh, gVh = Vh.narrow(-2, 0, k), gVh.narrow(-2, 0, k)
        V, gV = Vh.mT, gVh.mT
        if k == 0:
            return U @ Vh if m and n else (U @ Vh)
        S2 = S * S
        E = _safe_gap(S2.unsqueeze(-2) - S2.unsqueeze(-1))
        UhgU, VhgV = U.mT @ gU, V.mT @ gV
        inner = ((UhgU - UhgU.mT) / E) * S.unsqueeze(-2) \
            + S.unsqueeze(-1) * ((VhgV - VhgV.mT) / E) + diag_embed(gS)
        if m > k:  # (I - U U^T) gU S^-1 V^T
            gUS = gU / S.unsqueeze(-2)
            return (U @ inner + gUS - U @ (U.mT @ gUS)) @ Vh
        if n > k:  # U S^-1 gV^T (I - V V^T)
            SgV = gV.mT / S.unsqueeze(-1)
            return U @ (inner @ Vh + SgV - (SgV @ V) @ Vh)
        return U @ inner @ Vh


def _qr_square(Q: Tensor, R: Tensor, gQ: Tensor, gR: Tensor) -> Tensor:
    """gA for A = QR with m >= n: (gQ + Q copyltu(M)) R^-T, M = R gR^T - gQ^T Q,
    copyltu(M) = the symmetric matrix of M's lower triangle."""
    M = R @ gR.mT - gQ.mT @ Q
    low = M.tril(-1)
    sym = low + low.mT + diag_embed((M * eye_like(M, M.shape[-1])).sum(-1))
    b = gQ + Q @ sym
    # X R^T = b  <=>  R X^T = b^T
    return apply(SolveTriangular, (R, b.mT), {"upper": True, "unitriangular": False}).mT


@_packed
class Qr(Function):
    """Packed (Q, R); mode 'reduced' or 'complete' (complete with m > n has no gradient,
    as in PyTorch: the caller refuses it)."""
    autocast = "float32"
    fresh_output = True
    save_output = True
    flops = _cubic(4 / 3)

    @staticmethod
    def forward(ctx, B, a, mode):
        q, r = B.linalg_qr(a, mode)
        ctx.nb, ctx.shapes = a.ndim - 2, [q.shape[-2:], r.shape[-2:]]
        ctx.m, ctx.n = a.shape[-2:]
        return pack(B, ctx.nb, (q, r))

    def backward(self, g):
        (Q, R), (gQ, gR) = self.parts(g)
        m, n = self.m, self.n
        if m > n and Q.shape[-1] != n:
            raise RuntimeError("linalg.qr: the derivative is not defined for mode='complete' "
                               "when nrows > ncols")
        if m >= n:
            return _qr_square(Q, R, gQ, gR)
        # wide: A = Q [R1 R2] with X = A[:, :m] = Q R1, Y = A[:, m:]; gY = Q gR2
        from ..ops.index import cat
        Y = self._a_rest(Q, R)
        gR1, gR2 = gR.narrow(-1, 0, m), gR.narrow(-1, m, n - m)
        gX = _qr_square(Q, R.narrow(-1, 0, m), gQ + Y @ gR2.mT, gR1)
        return cat([gX, Q @ gR2], -1)

    @staticmethod
    def _a_rest(Q: Tensor, R: Tensor) -> Tensor:
        m = Q.shape[-1]
        return Q @ R.narrow(-1, m, R.shape[-1] - m)
