"""Adagrad with learning-rate decay, initial accumulator value, eps and weight decay."""
from __future__ import annotations

from typing import Any, Iterable

from ..tensor import Tensor
from .optimizer import _LOW, Optimizer, _check_nonneg


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), PyTorch's formulation::

        g = -grad if maximize else grad;  g += weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s += g * g;  p -= clr * g / (sqrt(s) + eps)

    The accumulator `s` starts at `initial_accumulator_value`.
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))
        # PyTorch creates Adagrad's state eagerly, so a state_dict taken before the first
        # step already holds the accumulators
        for group in self.param_groups:
            for p in group["params"]:
                self._ensure_state(p, group)

    def _ensure_state(self, p, group) -> None:
        if p not in self.state:
            state = self.state[p] = {}
            if p._data.dtype in _LOW:
                state["master"] = p.detach().float()  # a copy: p is half
            self._init_state(state, p, group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group (its accumulators are created at once, as in PyTorch)."""
        super().add_param_group(param_group)
        if hasattr(self, "state"):
            group = self.param_groups[-1]
            for p in group["params"]:
                self._ensure_state(p, group)

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_nonneg("Adagrad", lr=group["lr"], lr_decay=group["lr_decay"], eps=group["eps"],
                      weight_decay=group["weight_decay"],
                      initial_accumulator_value=group["initial_accumulator_value"])

    def _init_state(self, state, p, group) -> None:
        state["step"] = self._step_tensor()
        state["sum"] = self._buffer(p, float(group["initial_accumulator_value"]))

    def _update(self, B, param, grad, state, group) -> None:
        step = self._count(state)
        B.adagrad_step(param, grad, state["sum"]._data, step, float(group["lr"]),
                       float(group["lr_decay"]), float(group["weight_decay"]),
                       float(group["eps"]), bool(group["maximize"]))
