"""Distances of ``tinyfw.nn.functional`` (issue 16): ``pairwise_distance`` (the triplet
losses' default distance), ``cosine_similarity``, ``pdist``, and the bilinear form
``bilinear``; PyTorch's arguments and semantics, composed from tinyfw ops."""
from __future__ import annotations

from ..creation import arange
from ..ops._util import Tensor, broadcast_shapes, ensure_tensor
from ..ops.elementwise import where
from ..ops.nn import check_float


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """p-norm of x1 - x2 + eps over the last dim (shapes broadcast)."""
    op = "pairwise_distance"
    a, b = ensure_tensor(x1, op), ensure_tensor(x2, op)
    check_float(a, op)
    d = a - b + eps
    if d.ndim == 0:
        d = d.reshape(1)
    return d.norm(p, -1, keepdim)


def _clamped_norm(x: Tensor, dim: int, eps: float) -> Tensor:
    """||x||_2 along dim (kept), at least eps in value; the gradient passes as if
    unclamped (PyTorch clamps under no_grad)."""
    n = x.norm(2, dim, keepdim=True)
    return where(n >= eps, n, n - n.detach() + eps)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 / max(||x1||, eps) * x2 / max(||x2||, eps)) along dim (shapes broadcast)."""
    op = "cosine_similarity"
    a, b = ensure_tensor(x1, op), ensure_tensor(x2, op)
    check_float(a, op)
    if a.shape != b.shape:
        shape = broadcast_shapes(a.shape, b.shape, op=op)
        a, b = a.expand(*shape), b.expand(*shape)
    return ((a / _clamped_norm(a, dim, eps)) * (b / _clamped_norm(b, dim, eps))).sum(dim)


def pdist(input, p: float = 2.0) -> Tensor:
    """The p-norm distances between the rows of an (N, M) input, for every pair i < j in
    row-major order: N (N - 1) / 2 values."""
    x = ensure_tensor(input, "pdist")
    check_float(x, "pdist")
    if x.ndim != 2:
        raise ValueError(f"pdist: input must be 2-D (N, M), got shape {tuple(x.shape)}")
    if p < 0:
        raise ValueError(f"pdist: p must be non-negative, got {p}")
    n = x.shape[0]
    rows = arange(n, device=x.device)
    # pairs (i, j) with i < j, in the order PyTorch lists them
    i = rows.reshape(n, 1).expand(n, n)
    j = rows.reshape(1, n).expand(n, n)
    keep = i < j
    ii, jj = i.masked_select(keep), j.masked_select(keep)
    return (x.index_select(0, ii) - x.index_select(0, jj)).norm(p, 1)


def bilinear(input1, input2, weight, bias=None) -> Tensor:
    """y[..., o] = sum_ij input1[..., i] weight[o, i, j] input2[..., j] (+ bias[o]).  The
    i-contraction is one GEMM against weight laid out as (in1, out * in2)."""
    x1, x2 = ensure_tensor(input1, "bilinear"), ensure_tensor(input2, "bilinear")
    w = ensure_tensor(weight, "bilinear")
    check_float(x1, "bilinear")
    if w.ndim != 3:
        raise ValueError(f"bilinear: weight must be 3-D (out, in1, in2), got {tuple(w.shape)}")
    out, in1, in2 = w.shape
    if x1.shape[-1:] != (in1,) or x2.shape[-1:] != (in2,) or x1.shape[:-1] != x2.shape[:-1]:
        raise ValueError(f"bilinear: input1 {tuple(x1.shape)} and input2 {tuple(x2.shape)} "
                         f"do not match weight {tuple(w.shape)} (need (..., {in1}) and (..., {in2}) "
                         "with the same leading dims)")
    t = x1 @ w.permute(1, 0, 2).reshape(in1, out * in2)
    y = (t.reshape(*x1.shape[:-1], out, in2) * x2.unsqueeze(-2)).sum(-1)
    return y if bias is None else y + bias
