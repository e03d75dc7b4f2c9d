"""More losses of ``tinyfw.nn.functional`` (issue 16): Huber, the margin and embedding
losses, Poisson and Gaussian NLL, with PyTorch's names, arguments and semantics.

All are compositions of tinyfw ops (gradients of every order for free).  The hinges are
selects (``where(z > 0, z, 0)``) or ``clamp(min=0)`` exactly where PyTorch's kernels use
one or the other, so the gradient at a kink and a NaN input follow PyTorch.
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..creation import arange
from ..ops._util import Tensor, ensure_tensor
from ..ops.elementwise import minimum, where
from ..ops.nn import check_float
from ._losses import _float_pair, _reduce, _reduction, read, softplus_neg
from ._losses import l1_loss as _l1_loss
from ._losses import mse_loss as _mse_loss
from .functional_distance import pairwise_distance

_COS_EPS = 1e-12  # PyTorch's EPSILON in cosine_embedding_loss
_CHUNK = 1 << 22  # elements of one (N, j, C) slice in multilabel_margin_loss


def _plain_reduction(reduction: str, op: str) -> str:
    return _reduction(None, None, reduction, op)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0,
               weight=None) -> Tensor:
    """0.5 d**2 where |d| < delta, else delta (|d| - delta / 2), d = input - target (shapes
    broadcast); times `weight` (input's shape) when given."""
    op = "huber_loss"
    red = _plain_reduction(reduction, op)
    if delta <= 0:
        raise RuntimeError(f"{op}: delta must be positive, got {delta}")
    x, t = _float_pair(input, target, op)
    d = x - t
    a = d.abs()
    loss = where(a < delta, d * d * 0.5, (a - 0.5 * delta) * delta)
    if weight is not None:
        w = ensure_tensor(weight, op)
        if w.shape != x.shape:
            raise ValueError(f"{op}: weight shape {tuple(w.shape)} differs from input shape "
                             f"{tuple(x.shape)}")
        loss = loss * w
    return _reduce(loss, red)


def _weighted_pointwise(fn, input, target, size_average, reduce, reduction: str, weight,
                        op: str) -> Tensor:
    """PyTorch's weighted form of mse_loss / l1_loss: the pointwise loss times weight (the
    input's shape); 'mean' divides the sum by the sum of the weights."""
    red = _reduction(size_average, reduce, reduction, op)
    if weight is None:
        return fn(input, target, reduction=red)
    x, w = ensure_tensor(input, op), ensure_tensor(weight, op)
    if w.shape != x.shape:
        raise ValueError(f"{op}: weight shape {tuple(w.shape)} differs from input shape "
                         f"{tuple(x.shape)}")
    loss = fn(x, target, reduction="none") * w
    if red == "mean":
        return loss.sum() / w.sum()
    return _reduce(loss, red)


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
             weight=None) -> Tensor:
    """(input - target)**2 (times weight), reduced; shapes broadcast."""
    return _weighted_pointwise(_mse_loss, input, target, size_average, reduce, reduction,
                               weight, "mse_loss")


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
            weight=None) -> Tensor:
    """|input - target| (times weight), reduced; shapes broadcast."""
    return _weighted_pointwise(_l1_loss, input, target, size_average, reduce, reduction,
                               weight, "l1_loss")


def soft_margin_loss(input, target, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """log(1 + exp(-target * input)), computed without overflow."""
    op = "soft_margin_loss"
    x, t = _float_pair(input, target, op)
    return _reduce(softplus_neg(x * t), _reduction(size_average, reduce, reduction, op))


def _same_ndim(op: str, **tensors) -> None:
    dims = {k: v.ndim for k, v in tensors.items()}
    if len(set(dims.values())) != 1:
        shapes = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in tensors.items())
        raise RuntimeError(f"{op}: all input tensors must have the same number of dims, got "
                           f"{shapes}")


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, -target * (input1 - input2) + margin)."""
    op = "margin_ranking_loss"
    red = _reduction(size_average, reduce, reduction, op)
    x1, x2, t = (ensure_tensor(v, op) for v in (input1, input2, target))
    _same_ndim(op, input1=x1, input2=x2, target=t)
    check_float(x1, op)
    return _reduce(((x1 - x2) * -t + margin).clamp(min=0), red)


def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """input where target == 1, max(0, margin - input) where target == -1 (PyTorch's
    sum of both selects for any other target value)."""
    op = "hinge_embedding_loss"
    red = _reduction(size_average, reduce, reduction, op)
    x, t = ensure_tensor(input, op), ensure_tensor(target, op)
    check_float(x, op)
    zero = x.new_zeros(())
    loss = where(t != 1, (margin - x).clamp(min=0), zero) + where(t != -1, x, zero)
    return _reduce(loss, red)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                          reduce=None, reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where target == 1, max(0, cos(x1, x2) - margin) where target == -1;
    rows (N, D) with target (N,), or vectors (D,) with a 0-d target."""
    op = "cosine_embedding_loss"
    red = _reduction(size_average, reduce, reduction, op)
    x1, x2, t = (ensure_tensor(v, op) for v in (input1, input2, target))
    check_float(x1, op)
    if t.ndim not in (0, 1):
        raise RuntimeError(f"{op}: expected a 0-d or 1-d target, got shape {tuple(t.shape)}")
    want = t.ndim + 1
    if x1.ndim != want or x2.ndim != want:
        raise RuntimeError(f"{op}: a {t.ndim}-d target needs {want}-d inputs, got "
                           f"{tuple(x1.shape)} and {tuple(x2.shape)}")
    dim = t.ndim
    prod = (x1 * x2).sum(dim)
    m1 = (x1 * x1).sum(dim) + _COS_EPS
    m2 = (x2 * x2).sum(dim) + _COS_EPS
    cos = prod / (m1 * m2).sqrt()
    zero = cos.new_zeros(())
    loss = where(t == 1, 1 - cos, zero) + where(t == -1, (cos - margin).clamp(min=0), zero)
    return _reduce(loss, red)


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """exp(input) - target * input (log_input), else input - target * log(input + eps);
    full adds Stirling's target log(target) - target + log(2 pi target) / 2 where
    target > 1."""
    op = "poisson_nll_loss"
    red = _reduction(size_average, reduce, reduction, op)
    x, t = _float_pair(input, target, op)
    loss = x.exp() - t * x if log_input else x - t * (x + eps).log()
    if full:
        big = t > 1
        ts = where(big, t, 1.0)  # the masked branch keeps finite values and gradients
        stirling = ts * ts.log() - ts + (ts * (2 * math.pi)).log() * 0.5
        loss = loss + where(big, stirling, 0.0)
    return _reduce(loss, red)


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """(log(var) + (input - target)**2 / var) / 2 (+ log(2 pi) / 2 when full); var is the
    input's shape, one dim short of it, or broadcastable with one dim of size 1.  var is
    clamped at eps for the value only: its gradient passes as if unclamped (PyTorch's)."""
    op = "gaussian_nll_loss"
    x, t = _float_pair(input, target, op)
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        if var < 0:
            raise ValueError(f"{op}: var has negative entry/entries ({var})")
        v = x.new_full(x.shape, float(var))
    else:
        v = ensure_tensor(var, op)
        if v.numel() and not v.is_meta and read((v.detach() < 0).any()):
            raise ValueError(f"{op}: var has negative entry/entries")
    if v.shape != x.shape:
        if tuple(x.shape[:-1]) == tuple(v.shape):
            v = v.unsqueeze(-1)
        elif not (x.ndim == v.ndim and
                  sum(b for a, b in zip(x.shape, v.shape) if a != b) == 1):
            raise ValueError(f"{op}: var of shape {tuple(v.shape)} is of incorrect size for "
                             f"input {tuple(x.shape)}")
    red = _plain_reduction(reduction, op)
    # below eps the value is eps and the gradient still 1: v - v.detach() is an exact 0
    v = where(v >= eps, v, v - v.detach() + eps)
    d = x - t
    loss = (v.log() + d * d / v) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, red)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    """-(t log sigmoid(x) + (1 - t) log sigmoid(-x)) * weight, averaged over the classes
    (the last dim)."""
    op = "multilabel_soft_margin_loss"
    red = _reduction(size_average, reduce, reduction, op)
    x, t = _float_pair(input, target, op)
    if x.ndim == 0:
        raise RuntimeError(f"{op}: input must have a class dim, got a 0-d tensor")
    loss = t * softplus_neg(x) + (1 - t) * softplus_neg(-x)
    if weight is not None:
        loss = loss * ensure_tensor(weight, op)
    c = x.shape[-1]
    return _reduce(loss.sum(-1) / c, red)


def _class_rows(x: Tensor, op: str) -> tuple:
    """(N, C) rows of a (C,) or (N, C) input (N may be 0, C may not)."""
    check_float(x, op)
    if x.ndim > 2 or (x.ndim >= 1 and x.shape[-1] == 0):
        raise RuntimeError(f"{op}: expected a non-empty vector or matrix (N may be 0), got "
                           f"shape {tuple(x.shape)}")
    return x.reshape(1, -1) if x.ndim < 2 else x


def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None,
                      size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """sum over i != y of max(0, margin - x[y] + x[i])**p * weight[y], over C, for each row
    x and its class y."""
    op = "multi_margin_loss"
    red = _reduction(size_average, reduce, reduction, op)
    if p not in (1, 2):
        raise ValueError(f"{op}: only p == 1 and p == 2 are supported, got {p}")
    x = ensure_tensor(input, op)
    rows = _class_rows(x, op)
    n, c = rows.shape
    t = ensure_tensor(target, op)
    if t.dtype.is_floating_point or t.dtype is _dt.bool_:
        raise TypeError(f"{op}: target must be an integer tensor, got {t.dtype.name}")
    if t.ndim > 1 or t.numel() != n:
        raise RuntimeError(f"{op}: inconsistent target size, expected {n} targets, got shape "
                           f"{tuple(t.shape)}")
    t = t.detach().reshape(n).to(_dt.int64)
    if n and not t.is_meta and read(((t < 0) | (t >= c)).any()):
        raise IndexError(f"{op}: a target is out of range for {c} classes")
    xt = rows.gather(1, t.unsqueeze(1))
    z = rows - xt + margin
    hit = (z > 0) & (arange(c, device=x.device) != t.unsqueeze(1))
    h = where(hit, z if p == 1 else z * z, 0.0)
    if weight is not None:
        w = ensure_tensor(weight, op)
        if w.ndim > 1 or w.numel() != c:
            raise RuntimeError(f"{op}: inconsistent weight size, expected {c} values, got "
                               f"shape {tuple(w.shape)}")
        # no gradient for the weight, as PyTorch (which refuses one)
        h = h * w.detach().reshape(c)[t].unsqueeze(1).to(h.dtype)
    loss = h.sum(1) / c
    if red == "none":
        return loss.reshape(ensure_tensor(target, op).shape)
    return _reduce(loss, red)


def multilabel_margin_loss(input, target, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """sum over targets j and non-targets i of max(0, 1 - (x[y_j] - x[i])), over C; each
    row's targets are the class indices of `target` before its first -1."""
    op = "multilabel_margin_loss"
    red = _reduction(size_average, reduce, reduction, op)
    x = ensure_tensor(input, op)
    rows = _class_rows(x, op)
    n, c = rows.shape
    t = ensure_tensor(target, op)
    if t.dtype.is_floating_point or t.dtype is _dt.bool_:
        raise TypeError(f"{op}: target must be an integer tensor, got {t.dtype.name}")
    if t.shape != x.shape:
        raise RuntimeError(f"{op}: inconsistent target size: target {tuple(t.shape)} for "
                           f"input {tuple(x.shape)}")
    t = t.detach().reshape(n, c).to(_dt.int64)
    # a target counts while no -1 came before it in its row
    valid = (t == -1).to(_dt.int64).cumsum(1) == 0
    if t.numel() and not t.is_meta and read((valid & ((t < 0) | (t >= c))).any()):
        raise IndexError(f"{op}: a target is out of range for {c} classes")
    safe = where(valid, t, 0)
    classes = arange(c, device=x.device)
    # the (N, J, C) intermediates (J = C target slots) are made for slices of J holding
    # at most _CHUNK elements: a 1000-class problem needs no N * 1e6 array at once
    step = max(1, _CHUNK // max(1, n * c))
    slices = [slice(j, j + step) for j in range(0, c, step)]
    is_target = None  # (N, C): class i is one of the row's targets
    for sl in slices:
        part = (valid[:, sl].unsqueeze(2) & (safe[:, sl].unsqueeze(2) == classes)).any(1)
        is_target = part if is_target is None else is_target | part
    total = None
    for sl in slices:
        xt = rows.gather(1, safe[:, sl])  # (N, j)
        z = rows.unsqueeze(1) - xt.unsqueeze(2) + 1  # (N, j, C)
        hit = valid[:, sl].unsqueeze(2) & (~is_target).unsqueeze(1) & (z > 0)
        part = where(hit, z, 0.0).sum((1, 2))
        total = part if total is None else total + part
    loss = total / c
    if red == "none":
        return loss if x.ndim == 2 else loss.reshape(())
    return _reduce(loss, red)


def _triplet(anchor, positive, negative, dist, margin: float, swap: bool, red: str,
             op: str) -> Tensor:
    a, p, n = (ensure_tensor(v, op) for v in (anchor, positive, negative))
    if not a.ndim == p.ndim == n.ndim:
        raise RuntimeError(f"{op}: the anchor, positive, and negative tensors must have the "
                           f"same number of dims, got anchor {a.ndim}-d, positive {p.ndim}-d "
                           f"and negative {n.ndim}-d inputs")
    d_pos, d_neg = dist(a, p), dist(a, n)
    if swap:
        d_neg = minimum(d_neg, dist(p, n))
    return _reduce((d_pos - d_neg + margin).clamp(min=0), red)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, margin + d(a, p) - d(a, n)) with d the pairwise p-norm distance (swap: d(a, n)
    becomes min(d(a, n), d(p, n)))."""
    op = "triplet_margin_loss"
    red = _reduction(size_average, reduce, reduction, op)

    def dist(u, v):
        return pairwise_distance(u, v, p, eps)
    return _triplet(anchor, positive, negative, dist, margin, swap, red, op)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin: float = 1.0, swap: bool = False,
                                      reduction: str = "mean") -> Tensor:
    """triplet_margin_loss with any distance_function(x1, x2) (pairwise_distance when
    None); margin must be positive."""
    op = "triplet_margin_with_distance_loss"
    red = _plain_reduction(reduction, op)
    if margin <= 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")
    dist = distance_function if distance_function is not None else pairwise_distance
    return _triplet(anchor, positive, negative, dist, margin, swap, red, op)

