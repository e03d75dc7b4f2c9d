"""Scaled dot-product attention primitives of the reference backend, in plain numpy.

The specification the fused C++ kernel (csrc/attention.cpp) is held to.  Arrays are 4-d
with any strides: q (B, H, L, E), k (B, H, S, E), v (B, H, S, Ev); the optional mask is
(B, H, L, S) (often a broadcast view with zero strides), bool (True = may attend) or of
q's dtype (added to the scores).  With s = scale * q @ kᵀ + mask, masked out where
is_causal and j > i (PyTorch's top-left alignment when L != S):

    lse = log(sum_j exp(s_ij)),  out = exp(s - lse) @ v.

A row whose keys are all masked out (lse = -inf, also S == 0) gives out = 0 and zero
gradients, as PyTorch 2.13 does, rather than softmax's 0/0 = NaN.  float16/bfloat16 are
computed in float32 and rounded once (``ref.py``'s rule); lse is in the compute dtype.
"""
from __future__ import annotations

import numpy as np

from .ref_cast import up as _up

__all__ = ["sdpa_forward", "sdpa_backward"]


def _scores(q, k, mask, scale: float, is_causal: bool) -> np.ndarray:
    """s = scale * q @ kᵀ, plus the float mask, -inf where the bool mask or causality
    forbids; in the compute dtype."""
    s = (_up(q) @ np.swapaxes(_up(k), -1, -2)) * _compute_type(q)(scale)
    if mask is not None:
        if mask.dtype == np.bool_:
            s = np.where(mask, s, -np.inf)
        else:
            s = s + _up(mask)
    if is_causal:
        L, S = s.shape[-2:]
        s = np.where(np.tri(L, S, dtype=bool), s, -np.inf)
    return s


def _compute_type(q):
    """The numpy scalar type q is computed in (float32 for half types)."""
    return _up(q[..., :0]).dtype.type


def _probabilities(s: np.ndarray, lse: np.ndarray) -> np.ndarray:
    """exp(s - lse) per row; rows with lse = -inf (all keys masked) give 0, not NaN."""
    shift = np.where(np.isneginf(lse), 0, lse)[..., None]
    with np.errstate(invalid="ignore"):  # +inf in a float mask: NaN, as softmax
        return np.exp(s - shift)


def sdpa_forward(q, k, v, mask, scale: float, is_causal: bool):
    """-> (out (B, H, L, Ev) in q's dtype, lse (B, H, L) in the compute dtype)."""
    s = _scores(q, k, mask, scale, is_causal)
    m = np.max(s, axis=-1, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf: all masked
        lse = np.log(np.sum(np.exp(s - m[..., None]), axis=-1)) + m
    out = _probabilities(s, lse) @ _up(v)
    return out.astype(q.dtype, copy=False), lse


def sdpa_backward(g, q, k, v, out, lse, mask, scale: float, is_causal: bool):
    """Gradients (gq, gk, gv) of sdpa_forward given g = dL/dout and the forward's out and
    lse (out is unused here: kernels may take rowsum(P * dP) as rowsum(g * out)).  With P = exp(s - lse) recomputed from the scores:

        gv = Pᵀ g,  dP = g vᵀ,  dS = P * (dP - rowsum(P * dP)),
        gq = scale * dS k,  gk = scale * dSᵀ q.
    """
    p = _probabilities(_scores(q, k, mask, scale, is_causal), lse)
    g32 = _up(g)
    gv = np.swapaxes(p, -1, -2) @ g32
    dp = g32 @ np.swapaxes(_up(v), -1, -2)
    ds = p * (dp - np.sum(p * dp, axis=-1, keepdims=True))
    c = _compute_type(q)(scale)
    gq = (ds @ _up(k)) * c
    gk = (np.swapaxes(ds, -1, -2) @ _up(q)) * c
    return (gq.astype(q.dtype, copy=False), gk.astype(k.dtype, copy=False),
            gv.astype(v.dtype, copy=False))
