"""Distances of ``tinyfw.nn.functional`` (issue 16): ``pairwise_distance`` (the triplet
losses' default distance) and ``cosine_similarity``, PyTorch's arguments and semantics,
composed from tinyfw ops."""
from __future__ import annotations

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
