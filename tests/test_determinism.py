"""Same seed, identical results: within a process, across Generators, and run to run (a
fresh interpreter with the same seed prints the same bytes)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np

import tinyfw

from helpers import npy

_SCRIPT = """
import hashlib, tinyfw
tinyfw.manual_seed(1234)
x = tinyfw.randn(64, 32, requires_grad=True)
w = tinyfw.rand(32, 16, requires_grad=True)
i = tinyfw.randint(0, 10, (50,))
p = tinyfw.randperm(20)
d = tinyfw.empty(100).uniform_(-1, 1).normal_()
y = ((x @ w).tanh() * 3).logsumexp(1).sum()
y.backward()
h = hashlib.sha256()
for t in (x, w, i, p, d, y, x.grad, w.grad):
    h.update(t.detach().cpu().numpy().tobytes())
print(h.hexdigest())
"""


def _draws():
    return [npy(tinyfw.rand(5)), npy(tinyfw.randn(3, 3)),
            npy(tinyfw.randint(0, 100, (7,))), npy(tinyfw.randperm(9)),
            npy(tinyfw.bernoulli(tinyfw.full((8,), 0.5))),
            npy(tinyfw.empty(4).normal_())]


def test_manual_seed_replays_the_stream():
    tinyfw.manual_seed(42)
    a = _draws()
    tinyfw.manual_seed(42)
    b = _draws()
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    tinyfw.manual_seed(43)
    c = _draws()
    assert not np.array_equal(a[1], c[1])
    assert tinyfw.initial_seed() == 43


def test_generators_are_independent_of_the_default_stream():
    g1, g2 = tinyfw.Generator(7), tinyfw.Generator(7)
    a = tinyfw.randn(10, generator=g1)
    tinyfw.randn(100)  # draws on the default generator must not disturb g2
    b = tinyfw.randn(10, generator=g2)
    np.testing.assert_array_equal(npy(a), npy(b))
    np.testing.assert_array_equal(npy(tinyfw.rand(3, generator=g1.manual_seed(1))),
                                  npy(tinyfw.rand(3, generator=tinyfw.Generator(1))))


def test_rng_state_round_trip():
    tinyfw.manual_seed(5)
    tinyfw.rand(3)
    state = tinyfw.get_rng_state()
    a = npy(tinyfw.randn(4))
    tinyfw.set_rng_state(state)
    np.testing.assert_array_equal(a, npy(tinyfw.randn(4)))


def test_computation_is_bitwise_repeatable_in_process():
    def run():
        tinyfw.manual_seed(0)
        x = tinyfw.randn(50, 40, requires_grad=True)
        y = tinyfw.softplus(x @ x.T).sum(1).logsumexp(0)
        y.backward()
        return y.item(), npy(x.grad).tobytes()

    assert run() == run()


def test_a_seed_draws_the_same_values_on_every_device():
    """Factories and in-place draws sample on the host and move the values, so a seed
    gives the same numbers on cpu and on the check device; meta draws nothing."""
    out = {}
    for dev in ("cpu", "check", "meta"):
        tinyfw.manual_seed(11)
        ts = [tinyfw.randn(3, 4, device=dev), tinyfw.rand(5, device=dev),
              tinyfw.randint(0, 9, (6,), device=dev), tinyfw.empty(4, device=dev).normal_()]
        out[dev] = ts + [tinyfw.rand(2)]  # where the default stream stands afterwards
    for a, b in zip(out["cpu"], out["check"]):
        np.testing.assert_array_equal(npy(a), npy(b))
    assert all(t.is_meta for t in out["meta"][:-1])
    tinyfw.manual_seed(11)
    np.testing.assert_array_equal(npy(out["meta"][-1]), npy(tinyfw.rand(2)))


def test_same_seed_same_bytes_run_to_run():
    env = dict(os.environ, PYTHONHASHSEED="random")
    outs = [subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                           env=env, check=True, timeout=120).stdout.strip() for _ in range(2)]
    assert outs[0] == outs[1] and len(outs[0]) == 64
    # and this process agrees with the fresh ones
    ns: dict = {}
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(_SCRIPT, ns)
    assert buf.getvalue().strip() == outs[0]
    assert hashlib.sha256  # used by the script
