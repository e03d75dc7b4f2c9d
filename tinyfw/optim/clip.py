"""Gradient clipping: `clip_grad_norm_` (any p-norm, inf included) and `clip_grad_value_`.

Both act in place on the `.grad` of the given parameters under no_grad, as PyTorch's
``torch.nn.utils`` functions do; they are also exported from ``tinyfw.nn.utils`` when
that package exists.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..tensor import Tensor


def _grads(parameters, op: str) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    out = []
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: parameter {i} is a {type(p).__name__}, expected a Tensor")
        if p._grad is not None:
            out.append(p._grad)
    return out


def _vector_norm(a: np.ndarray, p: float) -> np.float64:
    """The p-norm of all elements of `a`, accumulated in float64."""
    x = np.abs(a.astype(np.float64, copy=False)).ravel()
    if x.size == 0:
        return np.float64(0.0)
    if p == math.inf:
        return x.max()
    if p == -math.inf:
        return x.min()
    if p == 0:
        return np.float64(np.count_nonzero(x))
    if p == 1:
        return x.sum()
    if p == 2:
        return np.sqrt(np.dot(x, x))
    return np.sum(x ** p) ** (1.0 / p)


def _writable(g: Tensor) -> np.ndarray:
    if not g._data.flags.writeable:  # e.g. an expanded gradient: give it its own memory
        g._data = np.array(g._data)
    return g._data


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale the gradients so that their joint `norm_type`-norm (the norm of the vector of
    per-tensor norms) is at most `max_norm`; returns the norm before clipping.

    As in PyTorch the scale is ``min(1, max_norm / (total_norm + 1e-6))`` and is applied
    even when it is 1.  With `error_if_nonfinite` a NaN/inf total norm raises instead of
    filling the gradients with NaN.  `foreach` is accepted for API compatibility.
    """
    norm_type = float(norm_type)
    grads = _grads(parameters, "clip_grad_norm_")
    if not grads:
        return Tensor._make(np.array(0.0, np.float32))
    dt = grads[0]._data.dtype
    norms = np.array([_vector_norm(g._data, norm_type) for g in grads])
    total = _vector_norm(norms, norm_type)
    total_t = Tensor._make(np.array(total).astype(dt))
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients of {len(grads)} tensors is non-finite ({total}), so it "
                           "cannot be clipped; pass error_if_nonfinite=False to clip anyway")
    coef = min(float(max_norm) / (float(total_t._data.astype(np.float64)) + 1e-6), 1.0)
    for g in grads:
        a = _writable(g)
        np.multiply(a, a.dtype.type(coef), out=a, casting="unsafe")
        g._version[0] += 1
    return total_t


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value] in place."""
    c = float(clip_value)
    for g in _grads(parameters, "clip_grad_value_"):
        a = _writable(g)
        np.clip(a, a.dtype.type(-c), a.dtype.type(c), out=a)
        g._version[0] += 1
