"""Modes are per thread: grad mode, interceptors (profiler, tracer), trace hooks and the
default device are ContextVars, so threads training, evaluating, profiling and tracing
side by side each see only their own (issue 14, item 5; issue 9)."""
from __future__ import annotations

import threading

import numpy as np

import tinyfw
from tinyfw import jit, nn
from tinyfw.profiler import profile


def _run_threads(*targets, timeout: float = 120.0) -> None:
    errors: list = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)
        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


def test_no_grad_in_one_thread_leaves_another_recording():
    w = tinyfw.tensor([1.0, 2.0, 3.0], requires_grad=True)
    inside, trained = threading.Event(), threading.Event()
    seen = {}

    def evaluate():
        with tinyfw.no_grad():
            inside.set()
            trained.wait(30)  # the other thread trains while this one is under no_grad
            seen["eval_requires_grad"] = (w * 2).requires_grad

    def train():
        inside.wait(30)
        y = (w * w).sum()
        seen["recorded"] = y.requires_grad
        y.backward()
        seen["grad"] = w.grad.tolist()
        trained.set()

    _run_threads(evaluate, train)
    assert seen == {"eval_requires_grad": False, "recorded": True, "grad": [2.0, 4.0, 6.0]}


def test_threads_alternating_no_grad_and_training_never_lose_a_gradient():
    start = threading.Barrier(2)
    w = tinyfw.tensor([1.0, 2.0, 3.0], requires_grad=True)
    grads, inference = [], []

    def train():
        start.wait()
        for _ in range(300):
            y = (w * w).sum()
            grads.append(tinyfw.autograd.grad(y, w)[0].tolist())

    def evaluate():
        start.wait()
        for _ in range(300):
            with tinyfw.no_grad():
                inference.append((w * 2).requires_grad)

    _run_threads(train, evaluate)
    assert grads == [[2.0, 4.0, 6.0]] * 300
    assert inference == [False] * 300


def test_two_threads_training_their_own_models_agree_with_one_thread():
    def train(seed: int) -> list:
        tinyfw.manual_seed(seed)
        g = tinyfw.Generator(seed)
        model = nn.Linear(8, 1)
        with tinyfw.no_grad():
            model.weight.copy_(tinyfw.randn(1, 8, generator=g))
            model.bias.zero_()
        opt = tinyfw.optim.SGD(model.parameters(), lr=0.1)
        x = tinyfw.randn(32, 8, generator=g)
        y = tinyfw.randn(32, 1, generator=g)
        for _ in range(40):
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()
        return model.weight.tolist()

    alone = [train(1), train(2)]
    together: dict = {}
    _run_threads(lambda: together.__setitem__(1, train(1)), lambda: together.__setitem__(2, train(2)))
    assert [together[1], together[2]] == alone


def test_a_profiler_sees_only_its_own_thread():
    ready, done = threading.Event(), threading.Event()
    seen = {}

    def profiled():
        with profile() as prof:
            ready.set()
            a = tinyfw.ones(4)
            (a + a).sum()
            done.wait(30)
        seen["ops"] = {s.name for s in prof.key_averages()}

    def other():
        ready.wait(30)
        b = tinyfw.ones(3)
        for _ in range(20):
            b = b.exp()
        done.set()

    _run_threads(profiled, other)
    assert "Exp" not in seen["ops"] and "Add" in seen["ops"]


def test_tracing_in_one_thread_does_not_guard_another():
    started, finish = threading.Event(), threading.Event()
    out = {}

    def traced_fn(x):
        started.set()
        finish.wait(30)  # another thread reads values eagerly while this one traces
        return x * 2

    def tracer():
        f = jit.trace(traced_fn, tinyfw.ones(3))
        out["traced"] = f(tinyfw.ones(3)).tolist()

    def eager():
        started.wait(30)
        t = tinyfw.tensor([1.0, -1.0])
        out["branch"] = "pos" if (t.sum() >= 0).item() else "neg"  # a value read: allowed here
        out["np"] = np.asarray(t.cpu()).tolist()
        finish.set()

    _run_threads(tracer, eager)
    assert out == {"traced": [2.0, 2.0, 2.0], "branch": "pos", "np": [1.0, -1.0]}


def test_default_device_is_per_thread():
    seen = {}

    def meta_thread():
        tinyfw.set_default_device("meta")
        seen["meta"] = tinyfw.zeros(2).device.type

    _run_threads(meta_thread)
    assert seen["meta"] == "meta"
    assert tinyfw.zeros(2).device == tinyfw.get_default_device()
