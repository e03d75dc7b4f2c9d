"""Loss functions of ``tinyfw.nn.functional`` (PyTorch's names, arguments, semantics).

cross_entropy with class indices runs the fused kernel (``ops/nn.py``); the other losses
are compositions of tinyfw ops, whose gradients of every order come for free.

Input values are validated (probabilities in [0, 1], class indices in range) with tinyfw
ops and one read of the result, so the checks run on any device; on the meta device
there are no values and they are skipped.  The reads go through `_host`, not `item()`:
checking an input is not a branch of the computation, so under `jit.trace` the example
inputs are checked and the check stays out of the graph (as a plain numpy read did).
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..ops._util import Tensor, ensure_tensor
from ..ops.elementwise import where
from ..ops.nn import (CrossEntropy, check_float, check_same_dtype, cross_entropy_rows,
                      log_softmax)

_REDUCTIONS = ("none", "mean", "sum")


def read(t: Tensor):
    """The value of a 0-d tensor for a validity check (see the module doc)."""
    return t._host().reshape(()).item()


def int_bounds(t: Tensor) -> tuple[int, int] | None:
    """(min, max) of an integer tensor as Python ints; None when it is empty or on the meta
    device (no values to check)."""
    if t.numel() == 0 or t.is_meta:
        return None
    t = t.detach()
    return int(read(t.amin())), int(read(t.amax()))


def _reduction(size_average, reduce, reduction: str, op: str) -> str:
    """The reduction, honouring PyTorch's deprecated size_average / reduce flags."""
    if size_average is not None or reduce is not None:
        if reduce is False:
            return "none"
        return "sum" if size_average is False else "mean"
    if reduction not in _REDUCTIONS and not (op == "kl_div" and reduction == "batchmean"):
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction "
                         f"(choose {', '.join(_REDUCTIONS)})")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _float_pair(input, target, op: str) -> tuple:
    x, t = ensure_tensor(input, op), ensure_tensor(target, op)
    check_float(x, op)
    if not t.dtype.is_floating_point:
        t = t.to(x.dtype)
    return x, t


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """(input - target)**2, reduced; shapes broadcast."""
    x, t = _float_pair(input, target, "mse_loss")
    d = x - t
    return _reduce(d * d, _reduction(size_average, reduce, reduction, "mse_loss"))


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """|input - target|, reduced; shapes broadcast."""
    x, t = _float_pair(input, target, "l1_loss")
    return _reduce((x - t).abs(), _reduction(size_average, reduce, reduction, "l1_loss"))


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """0.5 d**2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target)."""
    x, t = _float_pair(input, target, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    d = (x - t).abs()
    loss = d if beta == 0 else where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce(loss, _reduction(size_average, reduce, reduction, "smooth_l1_loss"))


def _same_shape(x: Tensor, t: Tensor, op: str) -> None:
    if x.shape != t.shape:
        raise ValueError(f"{op}: target shape {tuple(t.shape)} differs from input shape "
                         f"{tuple(x.shape)}; they must match")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """-(t log(x) + (1 - t) log(1 - x)) * weight, logs clamped at -100 as PyTorch."""
    op = "binary_cross_entropy"
    x, t = _float_pair(input, target, op)
    _same_shape(x, t, op)
    for name, v in (("input", x.detach()), ("target", t.detach())):
        # PyTorch refuses both (NaN included): a target outside [0, 1] gives a finite,
        # meaningless loss and gradient
        if v.numel() and not v.is_meta and read(((v < 0) | (v > 1) | v.isnan()).any()):
            raise ValueError(f"{op}: all elements of {name} (shape {tuple(v.shape)}) must lie "
                             "in [0, 1]")
    loss = -(t * x.log().clamp(min=-100) + (1 - t) * (1 - x).log().clamp(min=-100))
    if weight is not None:
        loss = loss * ensure_tensor(weight, op)
    return _reduce(loss, _reduction(size_average, reduce, reduction, op))


def softplus_neg(x: Tensor) -> Tensor:
    """log(1 + exp(-x)), stable for any x and with the exact gradient -sigmoid(-x) at 0."""
    pos = x >= 0
    xp, xn = where(pos, x, 0.0), where(pos, 0.0, x)
    return where(pos, (-xp).exp().log1p(), xn.exp().log1p() - x)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """binary_cross_entropy(sigmoid(input), target) computed stably from the logits:
    (1 - t) x + (1 + (pos_weight - 1) t) log(1 + e**-x), times weight."""
    op = "binary_cross_entropy_with_logits"
    x, t = _float_pair(input, target, op)
    _same_shape(x, t, op)
    sp = softplus_neg(x)
    if pos_weight is not None:
        pw = ensure_tensor(pos_weight, op)
        loss = (1 - t) * x + ((pw - 1) * t + 1) * sp
    else:
        loss = (1 - t) * x + sp
    if weight is not None:
        loss = loss * ensure_tensor(weight, op)
    return _reduce(loss, _reduction(size_average, reduce, reduction, op))


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """Pointwise KL divergence target * (log(target) - input), input being log-probabilities
    (target too when log_target); reduction 'batchmean' divides the sum by the batch size."""
    op = "kl_div"
    x, t = _float_pair(input, target, op)
    if log_target:
        loss = t.exp() * (t - x)
    else:
        # xlogy: 0 * log(0) counts as 0
        zero = t == 0
        loss = where(zero, 0.0, t * where(zero, 1.0, t).log()) - t * x
    red = _reduction(size_average, reduce, reduction, op)
    if red == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, red)


# -- class-index losses --------------------------------------------------------------------
def _class_problem(input, target, weight, ignore_index: int, op: str) -> tuple:
    """Validate (C,) / (N, C) / (N, C, d1, ...) input against class-index targets and
    return (rows (M, C), targets (M,) int64, weight or None, target shape)."""
    x, t = ensure_tensor(input, op), ensure_tensor(target, op)
    check_float(x, op)
    xs = x.shape
    if not xs:
        raise RuntimeError(f"{op}: input must have at least 1 dim (C,), got a 0-d tensor")
    if t.dtype.is_floating_point or t.dtype is _dt.bool_:  # not indices
        raise TypeError(f"{op}: class-index target must be an integer tensor, got "
                        f"{t.dtype.name} (shape {tuple(t.shape)})")
    expected = xs[:1] + xs[2:] if len(xs) > 1 else ()
    if t.shape != expected:
        raise RuntimeError(f"{op}: input {tuple(xs)} needs a target of shape {expected}, "
                           f"got {tuple(t.shape)}")
    c = xs[1] if len(xs) > 1 else xs[0]
    t = t.detach().to(_dt.int64)
    # the usual all-valid batch costs two reductions; the culprit is looked for only then
    bounds = int_bounds(t)
    if bounds is not None and (bounds[0] < 0 or bounds[1] >= c):
        bad = (t != ignore_index) & ((t < 0) | (t >= c))
        if read(bad.any()):
            raise IndexError(f"{op}: target {read(t[bad].reshape(-1)[0])} is out of range "
                             f"for {c} classes")
    w = None
    if weight is not None:
        w = ensure_tensor(weight, op)
        if w.shape != (c,):
            raise RuntimeError(f"{op}: weight must have shape ({c},) for {c} classes, got "
                               f"{tuple(w.shape)}")
        check_same_dtype(x, w, op, "weight", CrossEntropy)
    if x.ndim == 1:
        rows = x.unsqueeze(0)
    elif x.ndim == 2:
        rows = x
    else:
        rows = x.movedim(1, -1).reshape(-1, c)
    return rows, t if t.ndim == 1 else t.reshape(-1), w, t.shape


def _weighted_mean(total: Tensor, targets: Tensor, w, ignore_index: int) -> Tensor:
    """PyTorch's 'mean' for class targets: the sum over the summed weights of the
    non-ignored targets (NaN when there are none, with a zero gradient as PyTorch's).
    The divisor is a tensor (summed in float64, rounded once to the loss dtype), so a
    trace follows the targets of each call and nothing is read back."""
    valid = targets != ignore_index
    if w is None:
        denom = valid.sum()
    else:
        denom = where(valid, w.detach().to(_dt.float64)[where(valid, targets, 0)], 0.0).sum()
    denom = denom.to(total.dtype)
    none = denom == 0
    return where(none, float("nan"), total / where(none, 1.0, denom))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits `input` (C,), (N, C) or (N, C, d1, ...) against class indices
    (fused log-softmax + NLL) or class probabilities of the input's shape."""
    op = "cross_entropy"
    red = _reduction(size_average, reduce, reduction, op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    x, t = ensure_tensor(input, op), ensure_tensor(target, op)
    if t.dtype.is_floating_point:
        return _cross_entropy_probs(x, t, weight, red, label_smoothing)
    rows, targets, w, tshape = _class_problem(x, t, weight, ignore_index, op)
    # the reduction happens inside the fused op: one node forward, one backward
    loss = cross_entropy_rows(rows, targets, w, ignore_index, label_smoothing, red)
    return loss.reshape(tshape) if red == "none" else loss


def _cross_entropy_probs(x: Tensor, t: Tensor, weight, red: str, label_smoothing: float):
    op = "cross_entropy"
    check_float(x, op)
    if x.ndim == 0 or t.shape != x.shape:
        raise RuntimeError(f"{op}: class-probability target must have the input's shape "
                           f"{tuple(x.shape)}, got {tuple(t.shape)}")
    cdim = 1 if x.ndim > 1 else 0
    c = x.shape[cdim]
    t = t.to(x.dtype)
    if label_smoothing:
        t = t * (1 - label_smoothing) + label_smoothing / c
    prod = log_softmax(x, cdim) * t
    if weight is not None:
        w = ensure_tensor(weight, op)
        if w.shape != (c,):
            raise RuntimeError(f"{op}: weight must have shape ({c},) for {c} classes, got "
                               f"{tuple(w.shape)}")
        check_same_dtype(x, w, op, "weight", CrossEntropy)
        prod = prod * w.reshape((c,) + (1,) * (x.ndim - cdim - 1))
    loss = -prod.sum(cdim)
    return _reduce(loss, red)


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: -weight[t] * input[n, t] for log-probabilities `input`
    (C,), (N, C) or (N, C, d1, ...); ignored targets count 0 and leave the mean's weight."""
    op = "nll_loss"
    red = _reduction(size_average, reduce, reduction, op)
    rows, targets, w, tshape = _class_problem(input, target, weight, ignore_index, op)
    valid = targets != ignore_index
    safe = where(valid, targets, 0)
    coef = valid.to(_dt.float64)
    if w is not None:
        coef = coef * w.detach().to(_dt.float64)[safe]
    picked = rows.gather(1, safe.unsqueeze(1)).squeeze(1)
    loss = -picked * coef.to(rows.dtype)
    if red == "none":
        return loss.reshape(tshape)
    if red == "sum":
        return loss.sum()
    return _weighted_mean(loss.sum(), targets, w, ignore_index)
