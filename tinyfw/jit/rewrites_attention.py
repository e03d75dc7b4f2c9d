"""Attention written out -- ``softmax(q @ kᵀ * s + mask) @ v`` -- into the fused
``scaled_dot_product_attention`` op (nn/_attention.py), which never stores the L x S
scores, forward or backward.

Registered forms, for 3-d (B, L, E) and 4-d (B, H, L, E) operands, the scale written
as ``* s`` or ``/ d`` (any constant: ``/ math.sqrt(E)`` included):

- no mask;
- a float mask added to the scores: ``attn_mask=mask``;
- a bool mask through ``where(keep, scores, -inf)`` or ``scores.masked_fill(drop, -inf)``:
  ``attn_mask=keep`` (``~drop``), and ``is_causal=True`` when the mask is the constant
  lower triangle (the causal mask built with ``ones(L, S).tril()``).

The filter wants q, k, v (and a float mask) of one floating dtype, a mask that does not
widen the scores, a finite non-zero scale and -inf as the masked value.

Semantics: equal to the written-out form up to rounding (the scale multiplies inside
the fused kernel; ``/ d`` becomes ``* (1 / d)``), except for a query row whose keys are
*all* masked: softmax gives NaN there, the fused op gives 0 (PyTorch's SDPA does too).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..backend import backend_of
from ..nn import functional as F
from .rewrite import Match, Rewrite, register_rewrite

_NEG_INF = float("-inf")


def _scores(q, k, c, div: bool):
    s = q @ k.transpose(-2, -1)
    return s / c if div else s * c


def _pattern(div: bool, mask: str):
    if mask == "none":
        def pat(q, k, v):
            return F.softmax(_scores(q, k, 2.0, div), dim=-1) @ v
    elif mask == "add":
        def pat(q, k, v, mask):
            return F.softmax(_scores(q, k, 2.0, div) + mask, dim=-1) @ v
    elif mask == "keep":
        def pat(q, k, v, mask):
            return F.softmax(ops.where(mask, _scores(q, k, 2.0, div), _NEG_INF), dim=-1) @ v
    else:  # "fill": masked_fill(drop, -inf) is where(drop, -inf, scores)
        def pat(q, k, v, mask):
            return F.softmax(ops.where(mask, _NEG_INF, _scores(q, k, 2.0, div)), dim=-1) @ v
    return pat


def _host(a) -> np.ndarray:
    """A constant's array on the host (a device constant read once, at trace time)."""
    return a if isinstance(a, np.ndarray) else np.asarray(backend_of(a).to_host(a))


def _const_bool(v) -> np.ndarray | None:
    """The value of a bool mask known at trace time: a constant or its logical not."""
    if v.kind == "const":
        return _host(v.data)
    p = v.producer
    if p is not None and p.op == "LogicalNot" and p.inputs[0].kind == "const":
        return ~_host(p.inputs[0].data)
    return None


def _is_causal_keep(keep_value, fill: bool, L: int, S: int) -> bool:
    a = _const_bool(keep_value)
    if a is None or a.dtype != np.bool_ or a.shape != (L, S):
        return False
    keep = ~a if fill else a
    return bool(np.array_equal(keep, np.tril(np.ones((L, S), dtype=bool))))


def _replacement(div: bool, mask: str):
    def scale(match: Match) -> float:
        c = match.const(0)
        return 1.0 / c if div else c

    if mask == "none":
        def rep(q, k, v, *, match):
            return F.scaled_dot_product_attention(q, k, v, scale=scale(match))
    elif mask == "add":
        def rep(q, k, v, mask, *, match):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale(match))
    else:
        fill = mask == "fill"

        def rep(q, k, v, mask, *, match):
            L, S = q.shape[-2], k.shape[-2]
            if _is_causal_keep(match.values["mask"], fill, L, S):
                return F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                      scale=scale(match))
            keep = ops.logical_not(mask) if fill else mask
            return F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=scale(match))
    return rep


def _filter(mask: str):
    def ok(m: Match) -> bool:
        q, k, v = (m.values[n] for n in ("q", "k", "v"))
        dts = {np.dtype(x.dtype) for x in (q, k, v)}
        if len(dts) != 1 or next(iter(dts)).kind != "f":
            return False
        c = m.const(0)
        if not np.isfinite(c) or c == 0:
            return False
        if mask in ("keep", "fill"):
            if m.const(1) != _NEG_INF or np.dtype(m.values["mask"].dtype) != np.bool_:
                return False
        if mask == "add" and np.dtype(m.values["mask"].dtype) not in dts:
            return False
        # the mask must not widen the scores (the op broadcasts the mask to them)
        scores = m.node("Matmul", 0).outputs[0].shape
        return tuple(m.node("Softmax").outputs[0].shape) == tuple(scores)
    return ok


def _examples(rank: int, mask: str) -> list:
    q = (2, 3, 5) if rank == 3 else (2, 2, 3, 5)
    kv = q[:-2] + (4, 5)
    ex = [q, kv, kv]
    if mask == "none":
        return ex
    import tinyfw

    s = q[:-1] + (4,)
    if mask == "add":
        return ex + [s]
    return ex + [tinyfw.ones(*s[-2:], dtype=tinyfw.bool)]


ATTENTION = []
for _rank in (4, 3):
    for _mask in ("none", "add", "keep", "fill"):
        for _div in (False, True):
            ATTENTION.append(Rewrite(
                _pattern(_div, _mask), _replacement(_div, _mask), _filter(_mask),
                name=f"sdpa_{_rank}d_{'div' if _div else 'mul'}_{_mask}",
                example_inputs=_examples(_rank, _mask), free_consts=True))

for _r in ATTENTION:
    register_rewrite(_r, builtin=True)
