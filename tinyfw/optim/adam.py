"""Adam (with bias correction, amsgrad, L2 weight decay) and AdamW (decoupled decay)."""
from __future__ import annotations

from typing import Any, Iterable

from .optimizer import Optimizer, _check_nonneg


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's formulation::

        g = -grad if maximize else grad
        p *= 1 - lr * weight_decay   (decoupled, AdamW)  or  g += weight_decay * p
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v) if amsgrad else v
        p -= lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)
    """

    _decoupled = False

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool | None = None):
        decoupled = self._decoupled if decoupled_weight_decay is None else decoupled_weight_decay
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, decoupled_weight_decay=decoupled))

    def _check_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        _check_nonneg(name, lr=group["lr"], eps=group["eps"],
                      weight_decay=group["weight_decay"])
        b1, b2 = group["betas"]
        for i, b in enumerate((b1, b2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name}: invalid beta parameter at index {i}: {b} "
                                 "(must be in [0, 1))")

    def _init_state(self, state, p, group) -> None:
        state["step"] = self._step_tensor()
        state["exp_avg"] = self._buffer(p)
        state["exp_avg_sq"] = self._buffer(p)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = self._buffer(p)

    def _update(self, B, param, grad, state, group) -> None:
        step = self._count(state)
        beta1, beta2 = group["betas"]
        amsgrad = bool(group["amsgrad"])
        if amsgrad and "max_exp_avg_sq" not in state:  # amsgrad switched on later
            state["max_exp_avg_sq"] = self._zeros(param)
        mx = state["max_exp_avg_sq"]._data if amsgrad else None
        B.adam_step(param, grad, state["exp_avg"]._data, state["exp_avg_sq"]._data, mx,
                    step, float(group["lr"]), float(beta1), float(beta2),
                    float(group["eps"]), float(group["weight_decay"]), amsgrad,
                    bool(group["maximize"]), bool(group["decoupled_weight_decay"]))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): the parameter is scaled by
    ``1 - lr * weight_decay`` before the Adam update instead of adding an L2 term to the
    gradient.  Default weight_decay is 1e-2, as in PyTorch."""

    _decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
