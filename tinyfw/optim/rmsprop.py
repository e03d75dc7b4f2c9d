"""RMSprop with smoothing constant alpha, momentum, centering and weight decay."""
from __future__ import annotations

from typing import Any, Iterable

from .optimizer import Optimizer, _check_nonneg


class RMSprop(Optimizer):
    """RMSprop (Hinton), PyTorch's formulation::

        g = -grad if maximize else grad;  g += weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - lerp(ga, g, 1 - alpha)**2) if centered else sqrt(v);  avg += eps
        buf = momentum * buf + g / avg;  p -= lr * buf     (momentum > 0)
        p -= lr * g / avg                                    (otherwise)
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_nonneg("RMSprop", lr=group["lr"], eps=group["eps"], momentum=group["momentum"],
                      weight_decay=group["weight_decay"], alpha=group["alpha"])

    def _init_state(self, state, p, group) -> None:
        state["step"] = self._step_tensor()
        state["square_avg"] = self._buffer(p)
        if group["momentum"] > 0:
            state["momentum_buffer"] = self._buffer(p)
        if group["centered"]:
            state["grad_avg"] = self._buffer(p)

    def _update(self, B, param, grad, state, group) -> None:
        self._count(state)
        momentum, centered = float(group["momentum"]), bool(group["centered"])
        for key, needed in (("momentum_buffer", momentum > 0), ("grad_avg", centered)):
            if needed and key not in state:  # option switched on after the first step
                state[key] = self._zeros(param)
        B.rmsprop_step(param, grad, state["square_avg"]._data,
                       state["grad_avg"]._data if centered else None,
                       state["momentum_buffer"]._data if momentum > 0 else None,
                       float(group["lr"]), float(group["alpha"]), float(group["eps"]),
                       float(group["weight_decay"]), momentum, centered,
                       bool(group["maximize"]))
