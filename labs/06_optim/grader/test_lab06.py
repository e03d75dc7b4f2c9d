"""Lab 6's grader: the student's optimizers against tinyfw.optim (PyTorch's algorithms)
over 15 steps of seeded random problems, the schedule against its formula, and a real
training run."""
from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest

import tinyfw
from tinyfw.labs.student import expect_array, load, seed

SKELETON = pathlib.Path(__file__).resolve().parent.parent / "skeleton"
STEPS = 15


@pytest.fixture
def O():
    return load("optim", SKELETON)


def _problem(rng):
    """Parameter arrays and a smooth loss of them (tinyfw ops): a least-squares term plus
    a non-linear one, so every step's gradient differs."""
    shapes = [(int(rng.integers(1, 4)), int(rng.integers(1, 4))) for _ in range(2)]
    start = [rng.standard_normal(s) for s in shapes]
    targets = [tinyfw.tensor(rng.standard_normal(s), dtype=tinyfw.float64) for s in shapes]

    def loss(params):
        return sum(((p - t) * (p - t)).sum() + p.sin().sum() * 0.3
                   for p, t in zip(params, targets))
    return start, loss


def _run(make_opt, start, loss):
    params = [tinyfw.tensor(a.copy(), dtype=tinyfw.float64, requires_grad=True) for a in start]
    opt = make_opt(params)
    history = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss(params).backward()
        opt.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history


def _compare(O, name: str, student, reference, configs: list) -> None:
    rng = np.random.default_rng(seed(name))
    for cfg in configs:
        start, loss = _problem(rng)
        got = _run(lambda ps: student(ps, **cfg), start, loss)
        want = _run(lambda ps: reference(ps, **cfg), start, loss)
        for step, (g, w) in enumerate(zip(got, want)):
            for k, (a, b) in enumerate(zip(g, w)):
                expect_array(a, b, f"{name}{cfg}: parameter {k} after step {step + 1}",
                             rtol=1e-10, atol=1e-12)


@pytest.mark.task("6.1")
def test_sgd(O):
    _compare(O, "SGD", O.SGD, tinyfw.optim.SGD,
             [dict(lr=0.05), dict(lr=0.05, momentum=0.9), dict(lr=0.03, momentum=0.8, nesterov=True),
              dict(lr=0.05, momentum=0.5, weight_decay=0.1)])


@pytest.mark.task("6.2")
def test_adam(O):
    _compare(O, "Adam", O.Adam, tinyfw.optim.Adam,
             [dict(lr=0.05), dict(lr=0.02, betas=(0.8, 0.99), weight_decay=0.1)])


@pytest.mark.task("6.2")
def test_adamw(O):
    _compare(O, "AdamW", lambda ps, **kw: O.Adam(ps, decoupled=True, **kw), tinyfw.optim.AdamW,
             [dict(lr=0.05, weight_decay=0.1), dict(lr=0.01, weight_decay=0.5, eps=1e-6)])


@pytest.mark.task("6.3")
def test_rmsprop(O):
    _compare(O, "RMSprop", O.RMSprop, tinyfw.optim.RMSprop,
             [dict(lr=0.01), dict(lr=0.02, alpha=0.9, weight_decay=0.1)])


@pytest.mark.task("6.3")
def test_adagrad(O):
    _compare(O, "Adagrad", O.Adagrad, tinyfw.optim.Adagrad,
             [dict(lr=0.1), dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.2)])


def _warmup_cosine_model(step, total, warmup, base, low):
    if step < warmup:
        return base * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - 1 - warmup))
    return low + (base - low) * (1 + math.cos(math.pi * frac)) / 2


@pytest.mark.task("6.4")
def test_warmup_cosine(O):
    rng = np.random.default_rng(seed("6.4"))
    for _ in range(10):
        total = int(rng.integers(20, 200))
        warmup = int(rng.integers(1, total // 2))
        base, low = float(rng.uniform(0.01, 1.0)), float(rng.uniform(0, 0.005))
        got = [O.warmup_cosine(s, total, warmup, base, low) for s in range(total)]
        want = [_warmup_cosine_model(s, total, warmup, base, low) for s in range(total)]
        expect_array(np.array(got), np.array(want),
                     f"warmup_cosine over {total} steps, warm-up {warmup}", rtol=1e-12, atol=1e-15)


@pytest.mark.task("6.5")
def test_train_digits_reaches_93_percent(O):
    acc = O.train_digits()
    if not acc >= 0.93:
        raise AssertionError(f"test accuracy {acc:.4f}, expected at least 0.93")
