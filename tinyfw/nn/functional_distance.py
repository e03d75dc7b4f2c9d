"""Similarities and distances between vectors, and the bilinear form: `cosine_similarity`,
`pairwise_distance`, `pdist`, `bilinear`.  Composed from tinyfw ops, so gradients (and
second derivatives) come from the ops' own backward formulas."""
from __future__ import annotations

from ..creation import arange
from ..ops._util import Tensor, broadcast_shapes, ensure_tensor
from ..ops.nn import check_float


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 * x2, dim) / (max(||x1||, eps) * max(||x2||, eps)), x1 and x2 broadcast."""
    a, b = ensure_tensor(x1, "cosine_similarity"), ensure_tensor(x2, "cosine_similarity")
    check_float(a, "cosine_similarity")
    check_float(b, "cosine_similarity")
    shape = broadcast_shapes(tuple(a.shape), tuple(b.shape))
    if not shape:
        raise ValueError("cosine_similarity: inputs must have at least one dimension")
    a, b = a.expand(*shape), b.expand(*shape)
    # each side is normalised first: the product of two norms could overflow (PyTorch too)
    na = a.norm(2, dim, keepdim=True).clamp(min=eps)
    nb = b.norm(2, dim, keepdim=True).clamp(min=eps)
    return ((a / na) * (b / nb)).sum(dim)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim (x1 and x2 broadcast); eps keeps the
    gradient finite where the two vectors coincide."""
    a, b = ensure_tensor(x1, "pairwise_distance"), ensure_tensor(x2, "pairwise_distance")
    check_float(a, "pairwise_distance")
    nd = max(a.ndim, b.ndim)
    if nd == 0:
        raise ValueError("pairwise_distance: inputs must have at least one dimension")
    return (a - b + eps).norm(p, nd - 1, keepdim=keepdim)


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
