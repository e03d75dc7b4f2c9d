"""Multi-head attention as one function: `multi_head_attention_forward` (PyTorch's
functional form, sequence-first) and `mha_batch_first`, the body both it and
`nn.MultiheadAttention` run.

Order of the steps, as in PyTorch: project q, k, v (one packed weight, or three separate
ones when key/value have other widths); append bias_k / bias_v as one more key position;
split the heads (static_k / static_v replace the projected keys / values); append a zero
key position (add_zero_attn); attend.  Each appended position widens attn_mask and
key_padding_mask by a column that masks nothing."""
from __future__ import annotations

import math

from .. import creation
from .. import dtypes as _dt
from ..ops.index import cat
from ..ops.linalg import linear
from ..tensor import Tensor
from . import functional as F


def square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
    """A (sz, sz) float mask, -inf above the diagonal and 0 elsewhere: position i may
    attend to positions <= i (causal attention)."""
    return creation.full((sz, sz), float("-inf"), dtype=dtype or _dt.get_default_dtype(),
                         device=device).triu(1)


def mask_to_additive(mask: Tensor, dtype, name: str) -> Tensor:
    """A boolean mask (True = may not attend) as 0/-inf; float masks pass through."""
    if mask.dtype is _dt.bool_:
        zeros = creation.zeros(mask.shape, dtype=dtype, device=mask.device)
        return zeros.masked_fill(mask, float("-inf"))
    if not mask.dtype.is_floating_point:
        raise TypeError(f"MultiheadAttention: {name} must be bool or floating point, got "
                        f"{mask.dtype.name}")
    return mask.to(dtype)


def _widen(mask: Tensor | None) -> Tensor | None:
    """mask (..., S) -> (..., S + 1), the new last column masking nothing."""
    if mask is None:
        return None
    col = creation.zeros(*mask.shape[:-1], 1, dtype=mask.dtype, device=mask.device)
    return cat([mask, col], dim=-1)


def _project(query, key, value, in_w, in_b, qkv_w):
    if qkv_w is None:
        if query is key and key is value:  # self-attention: one matmul for q, k and v
            return linear(query, in_w, in_b).chunk(3, dim=-1)
        qkv_w = in_w.chunk(3, dim=0)
    bs = in_b.chunk(3, dim=0) if in_b is not None else (None, None, None)
    return tuple(linear(x, w, b) for x, w, b in zip((query, key, value), qkv_w, bs))


def _attn_mask(attn_mask: Tensor | None, n: int, h: int, lq: int, s: int) -> Tensor | None:
    """attn_mask checked and seen as (L, S) or (N, H, L, S)."""
    if attn_mask is None:
        return None
    if attn_mask.ndim == 2 and tuple(attn_mask.shape) == (lq, s):
        return attn_mask
    if attn_mask.ndim == 3 and tuple(attn_mask.shape) == (n * h, lq, s):
        return attn_mask.reshape(n, h, lq, s)
    want = f"{(lq, s)}" if attn_mask.ndim == 2 else f"{(lq, s)} or {(n * h, lq, s)}"
    raise ValueError(f"MultiheadAttention: attn_mask of shape {tuple(attn_mask.shape)} "
                     f"should be {want}")


def _heads(t: Tensor, static: Tensor | None, n: int, h: int, hd: int, name: str) -> Tensor:
    """(N, S, H*hd) -> (N, H, S, hd); a static_k/v of shape (N*H, S, hd) replaces it."""
    if static is None:
        return t.reshape(n, t.shape[1], h, hd).transpose(1, 2)
    if static.ndim != 3 or static.shape[0] != n * h or static.shape[2] != hd:
        raise ValueError(f"multi_head_attention_forward: {name} of shape "
                         f"{tuple(static.shape)} should be ({n * h}, S, {hd})")
    return static.reshape(n, h, static.shape[1], hd)


def mha_batch_first(query: Tensor, key: Tensor, value: Tensor, num_heads: int,
                    in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, *,
                    bias_k=None, bias_v=None, add_zero_attn: bool = False,
                    dropout_p: float = 0.0, training: bool = True, key_padding_mask=None,
                    need_weights: bool = True, attn_mask=None, qkv_proj_weights=None,
                    static_k=None, static_v=None, average_attn_weights: bool = True,
                    is_causal: bool = False) -> tuple:
    """Attention over batch-first inputs: query (N, L, E), key (N, S, Ek), value
    (N, S, Ev) -> ((N, L, E), weights (N, L, S') or (N, H, L, S') or None), S' counting
    the appended positions.  `qkv_proj_weights` = (W_q, W_k, W_v) replaces the packed
    in_proj_weight."""
    n, lq, e = query.shape
    h = num_heads
    hd = e // h
    q, k, v = _project(query, key, value, in_proj_weight, in_proj_bias, qkv_proj_weights)
    am = _attn_mask(attn_mask, n, h, lq, key.shape[1])
    kpm = key_padding_mask
    if kpm is not None and tuple(kpm.shape) != (n, key.shape[1]):
        raise ValueError(f"MultiheadAttention: key_padding_mask of shape "
                         f"{tuple(kpm.shape)} should be {(n, key.shape[1])}")
    if bias_k is not None or bias_v is not None:
        if bias_k is None or bias_v is None:
            raise ValueError("multi_head_attention_forward: bias_k and bias_v come together")
        k = cat([k, bias_k.reshape(1, 1, e).expand(n, 1, e)], dim=1)
        v = cat([v, bias_v.reshape(1, 1, e).expand(n, 1, e)], dim=1)
        am, kpm = _widen(am), _widen(kpm)
    q = q.reshape(n, lq, h, hd).transpose(1, 2)  # (N, H, L, hd)
    k = _heads(k, static_k, n, h, hd, "static_k")
    v = _heads(v, static_v, n, h, hd, "static_v")
    if add_zero_attn:
        k = cat([k, creation.zeros(n, h, 1, hd, dtype=k.dtype, device=k.device)], dim=2)
        v = cat([v, creation.zeros(n, h, 1, hd, dtype=v.dtype, device=v.device)], dim=2)
        am, kpm = _widen(am), _widen(kpm)
    if kpm is not None:
        kpm = mask_to_additive(kpm, q.dtype, "key_padding_mask").reshape(n, 1, 1, kpm.shape[1])
    p = dropout_p if training else 0.0
    if not need_weights:
        # the fused op (F.scaled_dot_product_attention): the (L, S) scores are never
        # stored; a query whose keys are all masked out gives 0 there, not NaN
        causal = is_causal and attn_mask is None
        if causal and kpm is not None:  # the op takes a mask or is_causal, not both
            am, causal = square_subsequent_mask(lq, q.device, q.dtype), False
        if am is not None and am.dtype is _dt.bool_ and kpm is None:
            mask = am.logical_not()  # True = may not attend here; the op keeps where True
        else:
            mask = None if am is None else mask_to_additive(am, q.dtype, "attn_mask")
            if kpm is not None:
                mask = kpm if mask is None else mask + kpm
        attn_v = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                                dropout_p=p, scale=1.0 / math.sqrt(hd))
        weights = None
    else:
        scores = (q * (1.0 / math.sqrt(hd))) @ k.transpose(-2, -1)  # (N, H, L, S)
        if attn_mask is None and is_causal:
            am = square_subsequent_mask(lq, scores.device, scores.dtype)
        if am is not None:
            scores = scores + mask_to_additive(am, scores.dtype, "attn_mask")
        if kpm is not None:
            scores = scores + kpm
        attn = F.softmax(scores, dim=-1)
        if p > 0.0:
            attn = F.dropout(attn, p, True)
        weights = attn.mean(dim=1) if average_attn_weights else attn
        attn_v = attn @ v
    out = linear(attn_v.transpose(1, 2).reshape(n, lq, e), out_proj_weight, out_proj_bias)
    return out, weights


def multi_head_attention_forward(query, key, value, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v,
                                 add_zero_attn: bool, dropout_p: float, out_proj_weight,
                                 out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None,
                                 use_separate_proj_weight: bool = False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True,
                                 is_causal: bool = False) -> tuple:
    """PyTorch's functional multi-head attention: query (L, N, E), key (S, N, Ek), value
    (S, N, Ev), or unbatched (L, E) ...; returns (output like query, weights or None).
    is_causal without attn_mask builds the causal mask (PyTorch requires the mask)."""
    if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(f"multi_head_attention_forward: query/key/value must all be 3-d "
                         f"(batched) or 2-d (unbatched), got {tuple(query.shape)}, "
                         f"{tuple(key.shape)}, {tuple(value.shape)}")
    e = query.shape[-1]
    if e != embed_dim_to_check:
        raise ValueError(f"multi_head_attention_forward: query's embedding dim {e} is not "
                         f"embed_dim_to_check={embed_dim_to_check}")
    if num_heads <= 0 or e % num_heads:
        raise ValueError(f"multi_head_attention_forward: embed_dim {e} must be divisible by "
                         f"num_heads {num_heads}")
    if key.shape[:-1] != value.shape[:-1]:
        raise ValueError(f"multi_head_attention_forward: key {tuple(key.shape)} and value "
                         f"{tuple(value.shape)} must share their leading dims")
    qkv = None
    if use_separate_proj_weight:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise ValueError("multi_head_attention_forward: use_separate_proj_weight needs "
                             "q_proj_weight, k_proj_weight and v_proj_weight")
        qkv = (q_proj_weight, k_proj_weight, v_proj_weight)
    elif key.shape[-1] != e or value.shape[-1] != e:
        raise ValueError(f"multi_head_attention_forward: key/value widths "
                         f"{key.shape[-1]}/{value.shape[-1]} differ from embed_dim {e}; pass "
                         "use_separate_proj_weight=True with q/k/v_proj_weight")
    unbatched = query.ndim == 2
    if unbatched:
        q, k, v = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    else:
        q = query.transpose(0, 1)
        k = q if key is query else key.transpose(0, 1)
        v = k if value is key else value.transpose(0, 1)
    out, w = mha_batch_first(q, k, v, num_heads, in_proj_weight, in_proj_bias,
                             out_proj_weight, out_proj_bias, bias_k=bias_k, bias_v=bias_v,
                             add_zero_attn=add_zero_attn, dropout_p=dropout_p,
                             training=training, key_padding_mask=key_padding_mask,
                             need_weights=need_weights, attn_mask=attn_mask,
                             qkv_proj_weights=qkv, static_k=static_k, static_v=static_v,
                             average_attn_weights=average_attn_weights, is_causal=is_causal)
    if unbatched:
        return out.squeeze(0), (None if w is None else w.squeeze(0))
    return out.transpose(0, 1), w
