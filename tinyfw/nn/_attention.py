"""``scaled_dot_product_attention``: argument checks and the shapes brought to the 4-d
(B, H, L, E) form of the op (``tinyfw/ops/attention.py``)."""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..ops._util import Tensor, broadcast_shapes, ensure_tensor
from ..ops.attention import (ScaledDotProductAttention, attention_probs, attention_scores,
                             sdpa_4d)
from ..ops.nn import check_float, check_same_dtype

_OP = "scaled_dot_product_attention"


def _to_4d(t: Tensor, batch: tuple) -> Tensor:
    """t (*batch, R, C) broadcast to `batch` and seen as (B, H, R, C): no batch dims give
    (1, 1), one gives (1, N), more merge into the first (a copy when strides require)."""
    t = t.expand(*batch, *t.shape[-2:])
    if len(batch) == 2:
        return t
    if len(batch) < 2:
        return t.reshape((1,) * (2 - len(batch)) + tuple(t.shape))
    return t.reshape(-1, batch[-1], *t.shape[-2:])


def _check(query, key, value, attn_mask, dropout_p: float, is_causal: bool):
    q, k, v = (ensure_tensor(t, _OP) for t in (query, key, value))
    for name, t in (("query", q), ("key", k), ("value", v)):
        if t.ndim < 2:
            raise ValueError(f"{_OP}: {name} must have at least 2 dims (..., length, "
                             f"features), got shape {tuple(t.shape)}")
        check_float(t, _OP, name)
    check_same_dtype(q, k, _OP, "key", ScaledDotProductAttention)
    check_same_dtype(q, v, _OP, "value", ScaledDotProductAttention)
    for name, t in (("key", k), ("value", v)) + ((("attn_mask", attn_mask),)
                                                  if isinstance(attn_mask, Tensor) else ()):
        if t.device != q.device:
            raise RuntimeError(f"{_OP}: {name} is on {t.device} but query is on {q.device}; "
                               "move them to one device first")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{_OP}: query {tuple(q.shape)} and key {tuple(k.shape)} must have "
                         f"the same last dim (E), got {q.shape[-1]} vs {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{_OP}: key {tuple(k.shape)} and value {tuple(v.shape)} must have "
                         f"the same length (S, dim -2), got {k.shape[-2]} vs {v.shape[-2]}")
    batch = broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2],
                             op=f"{_OP}: the batch dims of query, key and value")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{_OP}: dropout_p must be in [0, 1), got {dropout_p}")
    mask = None
    if attn_mask is not None:
        if is_causal:
            raise ValueError(f"{_OP}: attn_mask and is_causal=True were both given; pass one "
                             "(is_causal is the lower-triangular bool mask)")
        mask = ensure_tensor(attn_mask, _OP)
        if mask.dtype is not _dt.bool_:
            if not mask.dtype.is_floating_point:
                raise TypeError(f"{_OP}: attn_mask must be bool (True = may attend) or "
                                f"floating point (added to the scores), got {mask.dtype.name}")
            check_same_dtype(q, mask, _OP, "attn_mask", ScaledDotProductAttention)
        full = batch + (q.shape[-2], k.shape[-2])
        if broadcast_shapes(mask.shape, full, op=f"{_OP}: attn_mask") != full:
            raise ValueError(f"{_OP}: attn_mask of shape {tuple(mask.shape)} does not broadcast "
                             f"to the scores' shape {full}")
    return q, k, v, mask, batch


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None) -> Tensor:
    """softmax(query @ keyᵀ * scale + mask) @ value, PyTorch's semantics.

    Shapes: query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); the
    batch dims broadcast.  ``attn_mask`` broadcasts to (..., L, S): bool keeps the
    positions where it is True, floating point is added to the scores.  ``is_causal``
    lets query i attend keys j <= i (top-left aligned when L != S) and excludes a mask.
    ``scale`` defaults to 1 / sqrt(E).

    A query row whose keys are all masked out gives zeros and zero gradients (PyTorch
    2.13 does the same; a plain softmax would give NaN).  The op is fused: the L x S
    scores are never stored, forward or backward (on the CPU: csrc/attention.cpp).
    ``dropout_p > 0`` drops probabilities with tinyfw's default generator through the
    unfused composition (softmax, dropout, matmul), which stores the scores."""
    q, k, v, mask, batch = _check(query, key, value, attn_mask, float(dropout_p), is_causal)
    if scale is None:
        if q.shape[-1] == 0:
            raise ValueError(f"{_OP}: the default scale 1/sqrt(E) needs E > 0, query has "
                             f"shape {tuple(q.shape)}; pass scale explicitly")
        scale = 1.0 / math.sqrt(q.shape[-1])
    if dropout_p > 0.0:
        from .functional import dropout

        p = attention_probs(attention_scores(q, k, mask, scale, is_causal))
        return dropout(p, dropout_p, True) @ v
    L, S, ev = q.shape[-2], k.shape[-2], v.shape[-1]
    m4 = None if mask is None else _to_4d(mask.expand(*batch, L, S), batch)
    out = sdpa_4d(_to_4d(q, batch), _to_4d(k, batch), _to_4d(v, batch), m4, scale, is_causal)
    return out.reshape(*batch, L, ev)
