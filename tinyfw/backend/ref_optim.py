"""Optimizer update primitives of the reference backend (numpy, in place).

Each primitive performs one optimizer step for ONE parameter: it reads the gradient and
updates the parameter and its state buffers in place.  The formulas follow
``torch.optim``'s single-tensor implementations operation by operation, with every
scalar rounded to the array's dtype first, so float32 results agree with PyTorch's to
the rounding of each step.  The C++ kernels in ``csrc/optim.cpp`` implement the same
contract and must agree with these functions bit for bit.

Contract for all of them: `param`, `grad` and the state buffers are C-contiguous arrays
of one dtype (float32 or float64) and the same shape; buffers that an option does not
use are passed as None.
"""
from __future__ import annotations

import numpy as np

__all__ = ["sgd_step", "adam_step", "rmsprop_step", "adagrad_step"]


def _lerp_(a: np.ndarray, b: np.ndarray, w) -> None:
    """a = lerp(a, b, w) with PyTorch's two-branch formula (exact at w == 1)."""
    w = a.dtype.type(w)
    if abs(w) < 0.5:
        a += w * (b - a)
    else:
        np.subtract(b, (b - a) * (a.dtype.type(1) - w), out=a)


def sgd_step(param, grad, momentum_buf, lr: float, momentum: float, dampening: float,
             weight_decay: float, nesterov: bool, maximize: bool, first_step: bool) -> None:
    """SGD with optional momentum/dampening/Nesterov/weight decay; `first_step` means the
    momentum buffer is initialised with the (decayed) gradient instead of updated."""
    t = param.dtype.type
    d = -grad if maximize else grad
    if weight_decay != 0:
        d = d + t(weight_decay) * param
    if momentum != 0:
        if first_step:
            momentum_buf[...] = d
        else:
            momentum_buf *= t(momentum)
            momentum_buf += t(1 - dampening) * d
        d = d + t(momentum) * momentum_buf if nesterov else momentum_buf
    param += t(-lr) * d


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step: int, lr: float,
              beta1: float, beta2: float, eps: float, weight_decay: float, amsgrad: bool,
              maximize: bool, decoupled: bool) -> None:
    """Adam (decoupled=False) or AdamW (decoupled=True); `step` is the 1-based count
    including this step; `max_exp_avg_sq` is used only with amsgrad."""
    t = param.dtype.type
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled:
            param *= t(1 - lr * weight_decay)
        else:
            g = g + t(weight_decay) * param
    _lerp_(exp_avg, g, 1 - beta1)
    exp_avg_sq *= t(beta2)
    exp_avg_sq += t(1 - beta2) * g * g
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    step_size = lr / bias_correction1
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    else:
        second = exp_avg_sq
    denom = np.sqrt(second) / t(bias_correction2_sqrt) + t(eps)
    param += t(-step_size) * exp_avg / denom


def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buf, lr: float, alpha: float,
                 eps: float, weight_decay: float, momentum: float, centered: bool,
                 maximize: bool) -> None:
    """RMSprop; `grad_avg` is used when centered, `momentum_buf` when momentum > 0."""
    t = param.dtype.type
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + t(weight_decay) * param
    square_avg *= t(alpha)
    square_avg += t(1 - alpha) * g * g
    if centered:
        _lerp_(grad_avg, g, 1 - alpha)
        avg = np.sqrt(square_avg + t(-1) * grad_avg * grad_avg)
    else:
        avg = np.sqrt(square_avg)
    avg += t(eps)
    if momentum > 0:
        momentum_buf *= t(momentum)
        momentum_buf += t(1) * g / avg
        param += t(-lr) * momentum_buf
    else:
        param += t(-lr) * g / avg


def adagrad_step(param, grad, state_sum, step: int, lr: float, lr_decay: float,
                 weight_decay: float, eps: float, maximize: bool) -> None:
    """Adagrad; `step` is the 1-based count including this step."""
    t = param.dtype.type
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + t(weight_decay) * param
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += t(1) * g * g
    std = np.sqrt(state_sum) + t(eps)
    param += t(-clr) * g / std
