"""Lab 6: optimizers, a learning-rate schedule, and a training loop.

Each optimizer holds a list of parameters (tinyfw tensors with ``.grad``) and a state
dict per parameter; ``step()`` updates every parameter that has a gradient, in place,
under ``tinyfw.no_grad()``.  The update rules are PyTorch's (torch.optim's documented
algorithms), so tinyfw.optim and torch.optim are the references.
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
        h = self.hyper
        with tinyfw.no_grad():
            for p, g, st in self._each():
                if h["weight_decay"]:
                    g = g + h["weight_decay"] * p
                if h["momentum"]:
                    b = st.get("buf")
                    b = g.clone() if b is None else b * h["momentum"] + g
                    st["buf"] = b
                    g = g + h["momentum"] * b if h["nesterov"] else b
                p.sub_(h["lr"] * g)


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
        h = self.hyper
        b1, b2 = h["betas"]
        with tinyfw.no_grad():
            for p, g, st in self._each():
                t = st["t"] = st.get("t", 0) + 1
                if h["weight_decay"]:
                    if h["decoupled"]:
                        p.mul_(1 - h["lr"] * h["weight_decay"])
                    else:
                        g = g + h["weight_decay"] * p
                m = st["m"] = st.get("m", g * 0) * b1 + (1 - b1) * g
                v = st["v"] = st.get("v", g * 0) * b2 + (1 - b2) * g * g
                denom = (v / (1 - b2 ** t)).sqrt() + h["eps"]
                p.sub_(h["lr"] * (m / (1 - b1 ** t)) / denom)


class RMSprop(_Base):
    """RMSprop (not centered, no momentum)."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay)

    def step(self) -> None:
        """TASK 6.3 — g += wd * p; s = alpha s + (1 - alpha) g^2; p -= lr g / (sqrt(s) + eps)."""
        h = self.hyper
        with tinyfw.no_grad():
            for p, g, st in self._each():
                if h["weight_decay"]:
                    g = g + h["weight_decay"] * p
                s = st["s"] = st.get("s", g * 0) * h["alpha"] + (1 - h["alpha"]) * g * g
                p.sub_(h["lr"] * g / (s.sqrt() + h["eps"]))


class Adagrad(_Base):
    """AdaGrad with learning-rate decay and an initial accumulator value."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, lr=lr, lr_decay=lr_decay, init=initial_accumulator_value,
                         eps=eps)

    def step(self) -> None:
        """TASK 6.3 — t += 1; clr = lr / (1 + (t - 1) lr_decay); s += g^2;
        p -= clr g / (sqrt(s) + eps)."""
        h = self.hyper
        with tinyfw.no_grad():
            for p, g, st in self._each():
                t = st["t"] = st.get("t", 0) + 1
                clr = h["lr"] / (1 + (t - 1) * h["lr_decay"])
                s = st["s"] = st.get("s", g * 0 + h["init"]) + g * g
                p.sub_(clr * g / (s.sqrt() + h["eps"]))


def warmup_cosine(step: int, total: int, warmup: int, base_lr: float,
                  min_lr: float = 0.0) -> float:
    """TASK 6.4 — the learning rate at `step` (0-based) of `total`: linear from base_lr /
    warmup up to base_lr over the first `warmup` steps (step + 1) / warmup * base_lr,
    then a half cosine from base_lr down to min_lr at step total - 1."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    span = max(1, total - 1 - warmup)
    frac = min(1.0, (step - warmup) / span)
    return min_lr + (base_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * frac))


def train_digits(epochs: int = 15, seed: int = 0) -> float:
    """TASK 6.5 — train a small CNN on tinyfw's digits (tinyfw.data.datasets.load_digits)
    with your Adam and warmup_cosine, batch 64; return the test accuracy (>= 0.93)."""
    from tinyfw import nn
    from tinyfw.data import DataLoader
    from tinyfw.data.datasets import load_digits

    tinyfw.manual_seed(seed)
    train, test = load_digits("train", seed=0), load_digits("test", seed=0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(16 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = Adam(model.parameters(), lr=5e-3)
    loader = DataLoader(train, batch_size=64, shuffle=True)
    total = epochs * len(loader)
    step = 0
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            opt.hyper["lr"] = warmup_cosine(step, total, total // 10, 5e-3)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            step += 1
    model.eval()
    x, y = test.tensors
    with tinyfw.no_grad():
        return float((model(x).argmax(1) == y).float().mean())
