"""Activations that PyTorch offers as ``torch.*`` functions and Tensor methods (issue 16):
``softmax``, ``log_softmax``, ``prelu``, ``hardshrink`` and ``relu_``.

``softmax``/``log_softmax`` are the fused ops of ``ops/nn.py``; ``prelu`` and
``hardshrink`` are compositions of tinyfw ops (gradients of every order, every backend
and the tracer come from the ops they are made of).
"""
from __future__ import annotations

from ..tensor import register_method
from ._elementwise_binary import where
from ._util import Tensor, ensure_tensor
from .nn import log_softmax as _log_softmax
from .nn import softmax as _softmax

__all__ = ["softmax", "log_softmax", "prelu", "hardshrink", "relu_"]


def softmax(input, dim: int, dtype=None) -> Tensor:
    """exp(input) / sum(exp(input)) along `dim` (computed in `dtype` when given)."""
    if dim is None:
        raise TypeError("softmax: dim must be given (an int)")
    return _softmax(input, dim, dtype)


def log_softmax(input, dim: int, dtype=None) -> Tensor:
    """input - logsumexp(input) along `dim` (computed in `dtype` when given)."""
    if dim is None:
        raise TypeError("log_softmax: dim must be given (an int)")
    return _log_softmax(input, dim, dtype)


def prelu(input, weight) -> Tensor:
    """input where input > 0, else weight * input; `weight` is one value or one per channel
    (dim 1 of the input), as PyTorch's."""
    op = "prelu"
    x, w = ensure_tensor(input, op), ensure_tensor(weight, op)
    if not x.dtype.is_floating_point:
        raise TypeError(f"{op}: input must be a floating-point tensor, got {x.dtype.name}")
    if w.ndim > 1:
        raise RuntimeError(f"{op}: expected weight to be a scalar or 1-d tensor, got shape "
                           f"{tuple(w.shape)}")
    n = w.numel()
    if n != 1:
        if x.ndim == 0:
            raise RuntimeError(f"{op}: a 0-d input takes a single weight, got {n}")
        channels = x.shape[1] if x.ndim > 1 else 1
        if channels != n:
            raise RuntimeError(f"{op}: weight has {n} values but the input {tuple(x.shape)} "
                               f"has {channels} channels (dim 1); give 1 or {channels}")
        w = w.reshape((1, n) + (1,) * (x.ndim - 2))
    elif x.ndim < w.ndim:
        w = w.reshape(())
    if w.dtype is not x.dtype:
        w = w.to(x.dtype)
    # the select keeps a NaN input's NaN and routes the gradient as PyTorch's kernel
    return where(x > 0, x, w * x)


def hardshrink(input, lambd: float = 0.5) -> Tensor:
    """input where |input| > lambd, else 0 (NaN passes through, as PyTorch's)."""
    x = ensure_tensor(input, "hardshrink")
    if not x.dtype.is_floating_point:
        raise TypeError(f"hardshrink: input must be a floating-point tensor, got {x.dtype.name}")
    inside = (x >= -lambd) & (x <= lambd)
    return where(inside, x.new_zeros(()), x)


def relu_(input) -> Tensor:
    """relu in place: writes max(input, 0) into `input` and returns it."""
    return ensure_tensor(input, "relu_").relu_()


for _name, _fn in {"softmax": softmax, "log_softmax": log_softmax, "prelu": prelu,
                   "hardshrink": hardshrink}.items():
    register_method(_name, _fn)
