"""cross_entropy with its reduction folded into the fused op: one autograd node forward
and one backward, PyTorch's weighted mean (ignore_index, all-ignored -> NaN), gradients of
every order (gradgradcheck in float64), both backends, and a jit trace following new targets."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from helpers import npy, requires_torch, torch
from tinyfw import jit

TARGETS = [0, 2, -100, 1, 2]  # one ignored entry


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = tinyfw.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    w = tinyfw.tensor(rng.random(3) + 0.5)
    return x, w


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_gradgradcheck_every_reduction(reduction, weighted, smoothing):
    x, w = _problem(1)
    t = tinyfw.tensor(TARGETS)
    fn = lambda x: F.cross_entropy(x, t, w if weighted else None, reduction=reduction,  # noqa
                                   label_smoothing=smoothing)
    assert tinyfw.gradcheck(fn, [x])
    assert tinyfw.gradgradcheck(fn, [x])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduced_loss_is_one_node(reduction):
    x, w = _problem()
    loss = F.cross_entropy(x, tinyfw.tensor(TARGETS), w, reduction=reduction)
    assert loss.shape == ()
    assert loss.grad_fn.name() == "CrossEntropy"
    assert loss.grad_fn.next[0] is x


@requires_torch
@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_torch_value_and_grad(backend, reduction, dtype):
    rng = np.random.default_rng(2)
    z = (3 * rng.standard_normal((6, 4, 2))).astype(dtype)
    t = rng.integers(0, 4, (6, 2))
    t[0, 0] = t[3, 1] = 1
    t[2, 0] = 7  # ignore_index
    w = (rng.random(4) + 0.2).astype(dtype)
    old = tinyfw.get_backend().__name__.rsplit(".", 1)[-1]
    tinyfw.set_backend(backend)
    try:
        x = tinyfw.tensor(z, requires_grad=True)
        loss = F.cross_entropy(x, tinyfw.tensor(t), tinyfw.tensor(w), ignore_index=7,
                               reduction=reduction, label_smoothing=0.1)
        loss.backward(tinyfw.tensor(np.array(1.7, dtype)))
    finally:
        tinyfw.set_backend(old)
    px = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(px, torch.tensor(t), torch.tensor(w), ignore_index=7,
                                            reduction=reduction, label_smoothing=0.1)
    ref.backward(torch.tensor(1.7, dtype=px.dtype))
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert loss.dtype.name == dtype and x.grad.dtype.name == dtype
    np.testing.assert_allclose(npy(loss), ref.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(npy(x.grad), px.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("weighted", [False, True])
def test_all_ignored_mean_is_nan_with_zero_grad(weighted):
    x, w = _problem()
    t = tinyfw.tensor([-100] * 5)
    loss = F.cross_entropy(x, t, w if weighted else None)
    assert np.isnan(loss.item())
    loss.backward()
    assert np.array_equal(npy(x.grad), np.zeros((5, 3)))
    assert F.cross_entropy(x, t, reduction="sum").item() == 0.0


def test_jit_trace_follows_the_targets_mean_divisor():
    """The 1/sum(weights) scale is recomputed per call, not baked in at trace time."""
    x0, w = _problem(3)
    fn = lambda x, t: F.cross_entropy(x, t, w)  # noqa: E731
    traced = jit.trace(fn, (x0, tinyfw.tensor([0, 1, 2, 1, 0])))
    t = tinyfw.tensor([0, -100, 2, -100, -100])
    x = tinyfw.tensor(npy(x0), requires_grad=True)
    out = traced(x, t)
    out.backward()
    g = npy(x.grad).copy()
    x.grad = None
    ref = fn(x, t)
    ref.backward()
    np.testing.assert_allclose(npy(out), npy(ref), rtol=1e-12)
    np.testing.assert_allclose(g, npy(x.grad), rtol=1e-12)
