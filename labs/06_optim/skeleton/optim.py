"""Lab 6: optimizers, a learning-rate schedule, and a training loop.

Each optimizer holds a list of parameters (tinyfw tensors with ``.grad``) and a state
dict per parameter; ``step()`` updates every parameter that has a gradient, in place,
under ``tinyfw.no_grad()``.  The update rules are PyTorch's (torch.optim's documented
algorithms), so tinyfw.optim and torch.optim are the references.

Your work: every function below that raises NotImplementedError("TODO ...") (README.md
lists the tasks).  Grade it with: python -m tinyfw.labs grade 6 --src <this folder>
"""
from __future__ import annotations

import math

import tinyfw


class _Base:
    """Parameters, per-parameter state, zero_grad (given)."""

    def __init__(self, params, **hyper):
        self.params = list(params)
        self.hyper = hyper
        self.state = {id(p): {} for p in self.params}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _each(self):
        for p in self.params:
            if p.grad is not None:
                yield p, p.grad, self.state[id(p)]


class SGD(_Base):
    """SGD with momentum (PyTorch's form: the buffer accumulates gradients, lr applies
    after), weight decay and Nesterov momentum."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         nesterov=nesterov)

    def step(self) -> None:
        """TASK 6.1 — g += wd * p; b = momentum * b + g (b = g at the first step);
        g = g + momentum * b (Nesterov) or b; p -= lr * g."""
        raise NotImplementedError("TODO 6.1: step")


class Adam(_Base):
    """Adam with bias correction; decoupled=True is AdamW (weight decay applied to the
    parameter directly, not through the gradient)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled=decoupled)

    def step(self) -> None:
        """TASK 6.2 — t += 1; (AdamW: p *= 1 - lr * wd, else g += wd * p);
        m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
        p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)."""
        raise NotImplementedError("TODO 6.2: step")


class RMSprop(_Base):
    """RMSprop (not centered, no momentum)."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay)

    def step(self) -> None:
        """TASK 6.3 — g += wd * p; s = alpha s + (1 - alpha) g^2; p -= lr g / (sqrt(s) + eps)."""
        raise NotImplementedError("TODO 6.3: step")


class Adagrad(_Base):
    """AdaGrad with learning-rate decay and an initial accumulator value."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, lr=lr, lr_decay=lr_decay, init=initial_accumulator_value,
                         eps=eps)

    def step(self) -> None:
        """TASK 6.3 — t += 1; clr = lr / (1 + (t - 1) lr_decay); s += g^2;
        p -= clr g / (sqrt(s) + eps)."""
        raise NotImplementedError("TODO 6.3: step")


def warmup_cosine(step: int, total: int, warmup: int, base_lr: float,
                  min_lr: float = 0.0) -> float:
    """TASK 6.4 — the learning rate at `step` (0-based) of `total`: linear from base_lr /
    warmup up to base_lr over the first `warmup` steps (step + 1) / warmup * base_lr,
    then a half cosine from base_lr down to min_lr at step total - 1."""
    raise NotImplementedError("TODO 6.4: warmup_cosine")


def train_digits(epochs: int = 15, seed: int = 0) -> float:
    """TASK 6.5 — train a small CNN on tinyfw's digits (tinyfw.data.datasets.load_digits)
    with your Adam and warmup_cosine, batch 64; return the test accuracy (>= 0.93)."""
    raise NotImplementedError("TODO 6.5: train_digits")
