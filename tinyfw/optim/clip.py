"""Gradient clipping: `clip_grad_norm_` (any p-norm, inf included) and `clip_grad_value_`.

Both act in place on the `.grad` of the given parameters under no_grad, as PyTorch's
``torch.nn.utils`` functions do; they are also exported from ``tinyfw.nn.utils`` when
that package exists.  They are tinyfw ops, so they run on the gradients' device; the
clipping coefficient is read back to the host once (one sync per call).
"""
from __future__ import annotations

import math
from typing import Iterable

from .. import dtypes as _dt
from ..autograd.function import no_grad
from ..backend import backend_of
from ..creation import zeros
from ..ops.index import stack
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


def _vector_norm(x: Tensor, p: float) -> Tensor:
    """The p-norm of all elements of x as a 0-d float64 tensor on x's device."""
    x = x.detach().to(_dt.float64).abs().reshape(-1)
    if x.numel() == 0:
        return zeros((), dtype=_dt.float64, device=x.device)
    if p == math.inf:
        return x.amax()
    if p == -math.inf:
        return x.amin()
    if p == 0:
        return (x != 0).sum().to(_dt.float64)
    if p == 1:
        return x.sum()
    if p == 2:
        return (x * x).sum().sqrt()
    return (x ** p).sum() ** (1.0 / p)


def _writable(g: Tensor) -> Tensor:
    B = backend_of(g._data)
    if not B.is_writeable(g._data):  # e.g. an expanded gradient: give it its own memory
        g._data = B.contiguous(g._data)
    return g


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale the gradients so that their joint `norm_type`-norm (the norm of the vector of
    per-tensor norms) is at most `max_norm`; returns the norm before clipping, a 0-d
    tensor of the gradients' dtype on their device.

    As in PyTorch the scale is ``min(1, max_norm / (total_norm + 1e-6))`` and is applied
    even when it is 1.  With `error_if_nonfinite` a NaN/inf total norm raises instead of
    filling the gradients with NaN.  `foreach` is accepted for API compatibility.
    """
    norm_type = float(norm_type)
    grads = _grads(parameters, "clip_grad_norm_")
    if not grads:
        return zeros(())
    with no_grad():
        dev = grads[0].device  # the per-tensor norms meet on the first gradient's device
        norms = stack([_vector_norm(g, norm_type).to(dev) for g in grads])
        total64 = _vector_norm(norms, norm_type)
        total_t = total64.to(grads[0].dtype)
        total = total64.item()
        if error_if_nonfinite and not math.isfinite(total):
            raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                               f"gradients of {len(grads)} tensors is non-finite ({total}), so "
                               "it cannot be clipped; pass error_if_nonfinite=False to clip "
                               "anyway")
        # from the norm rounded to the gradients' dtype, as PyTorch computes it
        coef = min(float(max_norm) / (float(total_t.to(_dt.float64).item()) + 1e-6), 1.0)
        for g in grads:
            _writable(g).mul_(coef)
    return total_t


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value] in place."""
    c = float(clip_value)
    with no_grad():
        for g in _grads(parameters, "clip_grad_value_"):
            _writable(g).clamp_(-c, c)
