"""``linear_cross_entropy`` (PyTorch 2.13): the cross-entropy of ``linear(input, W) + b``,
with PyTorch's K-dimensional weights (num_classes, *out_features, in_features).

PyTorch's ``options`` select a chunked kernel that never holds all logits; tinyfw
accepts and ignores them: the result is the reference composition PyTorch documents
(linear, then cross_entropy), which is what the chunked kernel computes too."""
from __future__ import annotations

import math

from ..ops._util import Tensor, ensure_tensor
from ..ops.linalg import linear
from ..ops.nn import check_float
from ._losses import cross_entropy


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None,
                         reduction: str = "mean", ignore_index: int | None = None,
                         label_smoothing: float = 0.0, options=None) -> Tensor:
    """cross_entropy(linear(input, linear_weight) + linear_bias, target, ...) for input
    (in,) or (N, in) and linear_weight (C, *out_features, in): the logits are
    (N, C, *out_features).  ignore_index None means -100 (refused with probability
    targets)."""
    op = "linear_cross_entropy"
    x, w = ensure_tensor(input, op), ensure_tensor(linear_weight, op)
    check_float(x, op)
    if x.ndim not in (1, 2):
        raise RuntimeError(f"{op}: expected an input of 1 or 2 dims, got shape "
                           f"{tuple(x.shape)}")
    if w.ndim < 2:
        raise RuntimeError(f"{op}: expected linear_weight of at least 2 dims, got shape "
                           f"{tuple(w.shape)}")
    batch, n_in = tuple(x.shape[:-1]), x.shape[-1]
    if n_in != w.shape[-1]:
        raise RuntimeError(f"{op}: input {tuple(x.shape)} and linear_weight "
                           f"{tuple(w.shape)} differ in their last dim (in_features)")
    c, out = w.shape[0], tuple(w.shape[1:-1])
    if linear_bias is not None:
        b = ensure_tensor(linear_bias, op)
        if tuple(b.shape) != (c, *out):
            raise RuntimeError(f"{op}: expected linear_bias of shape {(c, *out)}, got "
                               f"{tuple(b.shape)}")
    if out and not batch:
        raise RuntimeError(f"{op}: a K-dimensional loss (linear_weight {tuple(w.shape)}) "
                           f"needs a batched (N, {n_in}) input, got shape {tuple(x.shape)}")
    logits_shape = (*batch, c, *out)
    t = ensure_tensor(target, op)
    if tuple(t.shape) == logits_shape and ignore_index is not None:
        raise RuntimeError(f"{op}: ignore_index cannot be given when target holds "
                           "probabilities")
    flat_w = w.reshape(c * math.prod(out), n_in)
    logits = linear(x, flat_w).reshape(logits_shape)
    if linear_bias is not None:
        logits = logits + ensure_tensor(linear_bias, op)
    return cross_entropy(logits, t, weight=weight,
                         ignore_index=-100 if ignore_index is None else ignore_index,
                         reduction=reduction, label_smoothing=label_smoothing)
