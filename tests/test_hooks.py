"""Gradient hooks (issue 14, item 2): a hook's return value replaces the gradient only
when it has the gradient's shape, dtype and device; anything else raises, as in PyTorch
(each wrong case was accepted silently before: stored, summed back or upcast)."""
from __future__ import annotations

import pytest

import tinyfw

from helpers import requires_torch, torch


def _leaf():
    return tinyfw.tensor([1.0, 2.0, 3.0], requires_grad=True)


@pytest.mark.parametrize("make, pattern", [
    (lambda g: tinyfw.ones(5), r"changed the gradient's shape from \(3,\) to \(5,\)"),
    (lambda g: g.to(tinyfw.float64), "changed the gradient's dtype from float32 to float64"),
    (lambda g: g.tolist(), "returned list"),
])
def test_a_leaf_hook_returning_a_wrong_gradient_raises(make, pattern):
    x = _leaf()
    x.register_hook(make)
    with pytest.raises((RuntimeError, TypeError), match=pattern):
        (x * 2).sum().backward()
    assert x.grad is None


def test_a_non_leaf_hook_returning_another_shape_raises():
    x = tinyfw.ones(2, 3, requires_grad=True)
    y = (x * 2).sum(0)  # shape (3,)
    y.register_hook(lambda g: tinyfw.ones(2, 3))
    with pytest.raises(RuntimeError, match=r"shape from \(3,\) to \(2, 3\)"):
        y.sum().backward()


def test_a_valid_replacement_is_used_and_none_keeps_the_gradient():
    x = _leaf()
    x.register_hook(lambda g: None)
    x.register_hook(lambda g: g * 10)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [20.0, 20.0, 20.0]


@requires_torch
def test_pytorch_refuses_the_same_hooks():
    for bad in (lambda g: torch.ones(5), lambda g: g.double()):
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        x.register_hook(bad)
        with pytest.raises(RuntimeError):
            (x * 2).sum().backward()
