"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize."""
from __future__ import annotations

from typing import Any, Iterable

from .optimizer import Optimizer, _check_nonneg


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's formulation::

        g = -grad if maximize else grad;  g += weight_decay * p
        buf = g (first step) or momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
        p -= lr * g
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_nonneg("SGD", lr=group["lr"], momentum=group["momentum"],
                      weight_decay=group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening "
                             f"(got momentum={group['momentum']}, "
                             f"dampening={group['dampening']})")

    def _init_state(self, state, p, group) -> None:
        # the buffer is created on the first step with momentum, as in PyTorch
        pass

    def _update(self, B, param, grad, state, group) -> None:
        momentum = group["momentum"]
        buf = state.get("momentum_buffer")
        first = False
        if momentum != 0 and buf is None:
            # filled by the kernel from this step's gradient
            buf = state["momentum_buffer"] = self._zeros(param)
            first = True
        B.sgd_step(param, grad, None if buf is None else buf._data, float(group["lr"]),
                   float(momentum), float(group["dampening"]), float(group["weight_decay"]),
                   bool(group["nesterov"]), bool(group["maximize"]), first)
