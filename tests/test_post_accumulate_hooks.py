"""register_post_accumulate_grad_hook and queue_callback: what DistributedDataParallel
builds on (a bucket starts its all-reduce once its gradients are stored)."""
import numpy as np
import pytest

import tinyfw as tf
from tinyfw.autograd.engine import queue_callback


def test_post_hook_sees_the_stored_gradient_once_per_use():
    w = tf.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    ((w * 2.0).sum() + (w * w).sum()).backward()
    assert len(seen) == 3  # three edges reach w: w * 2 and both operands of w * w
    # the last call sees the whole gradient: 2 + 2w
    np.testing.assert_array_equal(seen[-1], 2.0 + 2.0 * np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(w.grad.numpy(), seen[-1])


def test_post_hook_remove_and_leaf_only():
    w = tf.ones(3, requires_grad=True)
    calls = []
    h = w.register_post_accumulate_grad_hook(lambda t: calls.append(1))
    h.remove()
    (w * 3.0).sum().backward()
    assert calls == []
    with pytest.raises(RuntimeError, match="leaf"):
        (w * 2.0).register_post_accumulate_grad_hook(lambda t: None)


def test_post_hook_not_called_by_autograd_grad():
    w = tf.ones(3, requires_grad=True)
    calls = []
    w.register_post_accumulate_grad_hook(lambda t: calls.append(1))
    tf.autograd.grad((w * 2.0).sum(), [w])
    assert calls == [] and w.grad is None


def test_queue_callback_runs_after_every_leaf():
    a = tf.ones(2, requires_grad=True)
    b = tf.ones(2, requires_grad=True)
    order = []

    def first(t):
        order.append("hook")
        queue_callback(lambda: order.append(("end", a.grad is not None, b.grad is not None)))

    a.register_post_accumulate_grad_hook(first)
    (a * b).sum().backward()
    assert order == ["hook", ("end", True, True)]
    with pytest.raises(RuntimeError, match="no backward pass"):
        queue_callback(lambda: None)
