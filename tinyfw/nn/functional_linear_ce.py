"""`linear_cross_entropy`: cross-entropy of logits that a linear layer makes from the
input, PyTorch's reference definition (its `options=None` path)."""
from __future__ import annotations

import math

from ..ops._util import Tensor, ensure_tensor
from ..ops.linalg import linear
from ._losses import cross_entropy


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None,
                         reduction: str = "mean", ignore_index: int | None = None,
                         label_smoothing: float = 0.0, options=None) -> Tensor:
    """cross_entropy(linear(input, linear_weight, linear_bias), target, ...).

    linear_weight is (C, in_features), or (C, d1, ..., dK, in_features) for a K-dim loss
    (then input is (N, in_features) and the logits (N, C, d1, ..., dK)); ignore_index None
    means -100, as in PyTorch.  `options` selects PyTorch's chunked low-memory kernel,
    which tinyfw does not have: it must be None."""
    op = "linear_cross_entropy"
    if options is not None:
        raise ValueError(f"{op}: tinyfw has no chunked path; pass options=None (the same "
                         "values, computed by the reference definition)")
    x, w = ensure_tensor(input, op), ensure_tensor(linear_weight, op)
    if w.ndim < 2:
        raise ValueError(f"{op}: linear_weight must be (C, in_features) or (C, d1, ..., "
                         f"in_features), got shape {tuple(w.shape)}")
    if x.ndim == 0 or x.shape[-1] != w.shape[-1]:
        raise ValueError(f"{op}: input {tuple(x.shape)} does not end in linear_weight's "
                         f"in_features {w.shape[-1]}")
    extra = tuple(w.shape[1:-1])
    if extra and x.ndim != 2:
        raise ValueError(f"{op}: a multi-dimensional linear_weight {tuple(w.shape)} needs a "
                         f"batched (N, in_features) input, got {tuple(x.shape)}")
    b = None
    if linear_bias is not None:
        b = ensure_tensor(linear_bias, op)
        if tuple(b.shape) != tuple(w.shape[:-1]):
            raise ValueError(f"{op}: linear_bias of shape {tuple(b.shape)} should be "
                             f"{tuple(w.shape[:-1])}")
        b = b.reshape(-1)
    logits = linear(x, w.reshape(w.shape[0] * math.prod(extra), w.shape[-1]), b)
    if extra:
        logits = logits.reshape(x.shape[0], w.shape[0], *extra)
    return cross_entropy(logits, target, weight, ignore_index=-100 if ignore_index is None
                         else ignore_index, reduction=reduction, label_smoothing=label_smoothing)
