"""Traced == eager: the bugs tests/test_jit_property.py found, each as a plain example.

Each case failed before its fix; all run with the fusion passes off, where traced mode
must agree with eager bit for bit (docs/jit.md, "Traced == eager, by property").
"""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from tinyfw import jit
from tinyfw.jit.compiler import DEFAULT_PASSES
from tests.helpers import DEVICE, explain_text, npy

NO_FUSION = tuple(p for p in DEFAULT_PASSES if p not in ("fuse_elementwise", "fuse_epilogue"))


def _grad_of(fn, x, weights):
    x.grad = None
    outs = fn(x)
    loss = None
    for o, w in zip(outs, weights):
        term = (o * tinyfw.tensor(w)).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    return npy(x.grad).copy()


def test_outputs_sharing_a_value_get_eager_gradients_bit_for_bit():
    # three outputs read h: eager sums their gradients at h, then runs tanh's backward
    # once; the traced call ran its backward graph once per output and the engine summed
    # three tanh backwards (39 of 64 elements 1 ulp off).  Now the graph runs once.
    rng = np.random.default_rng(0)
    x = tinyfw.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=True)

    def f(x):
        h = x.tanh()
        return h * 3.0, h * 0.7, h.exp()

    ws = [rng.standard_normal((8, 8)).astype(np.float32) for _ in range(3)]
    traced = jit.trace(f, (x,), passes=NO_FUSION)
    assert np.array_equal(_grad_of(traced, x, ws), _grad_of(f, x, ws))


def test_outputs_without_gradient_and_retained_graph():
    # only some outputs reach the loss (the others' gradients are zeros); a retained
    # graph runs twice.  (x.grad is reset in between: accumulating into an existing .grad
    # is not bit-exact: eager adds each contribution to .grad as it arrives, (G + g1) +
    # g2, the traced graph sums its contributions first, G + (g1 + g2), as PyTorch does)
    x = tinyfw.tensor(np.linspace(-1, 1, 6), requires_grad=True)

    def f(x):
        return x.sin(), x * 2.0

    def steps(fn):
        x.grad = None
        a, b = fn(x)
        b.sum().backward(retain_graph=True)
        first = npy(x.grad).copy()
        x.grad = None
        (a.sum() + b.sum()).backward()
        return first, npy(x.grad).copy()

    traced = jit.trace(f, (x,), passes=NO_FUSION)
    for got, want in zip(steps(traced), steps(f)):
        np.testing.assert_array_equal(got, want)


def test_tensor_that_requires_grad_first_used_through_a_detaching_cast_stays_live():
    # cast(p, int64) detaches p before the Cast op: the tracer met the detached alias
    # first and baked p's array in as a constant, so later updates of p were not seen and
    # p itself (found by the same array) lost its gradient
    p = tinyfw.tensor(np.array([[0.5, 1.7], [-2.2, 3.1]]), requires_grad=True)

    def f(x):
        return p.to(tinyfw.int64).to(tinyfw.float64) * x + p

    x = tinyfw.tensor(np.array([1.0, 2.0]))
    traced = jit.trace(f, (x,), passes=NO_FUSION)
    with tinyfw.no_grad():
        p.copy_(tinyfw.tensor(np.array([[4.5, 5.0], [6.0, -7.9]])))
    y = traced(x)
    np.testing.assert_array_equal(npy(y), npy(f(x)))
    y.sum().backward()
    np.testing.assert_array_equal(npy(p.grad), np.ones((2, 2)))


def test_outputs_sharing_an_autograd_node_do_not_lose_gradients():
    # b.squeeze(1) of a dim that is not 1 is a new tensor on b's node: with both as
    # outputs the engine counted the node's edges twice and the multiply before it waited
    # forever, so p got no gradient: in eager autograd.grad, and in every trace (which
    # differentiates all outputs at once) -- the traced call had no backward at all
    p = tinyfw.tensor(np.arange(4.0).reshape(2, 2) + 0.5, requires_grad=True)

    def f():
        a = p * 2.0
        b = a.floor()
        return b.squeeze(1), b, a

    outs = f()
    ones = [tinyfw.ones(2, 2, dtype=tinyfw.float64) for _ in outs]
    (g,) = tinyfw.autograd.grad(list(outs), [p], ones)
    np.testing.assert_array_equal(npy(g), np.full((2, 2), 2.0))
    traced = jit.trace(f, (), passes=NO_FUSION)
    sum(o.sum() for o in traced()).backward()
    np.testing.assert_array_equal(npy(p.grad), np.full((2, 2), 2.0))


def test_function_of_captured_tensors_alone_runs_on_their_device():
    # no tensor arguments: the graph's device was taken from the arguments only, so a
    # function of closed-over tensors on another device ran the CPU backend on them
    p = tinyfw.tensor(np.array([1.5, -2.0]), requires_grad=True, device="check")

    def f():
        return p * 2.0

    traced = jit.trace(f, (), passes=NO_FUSION)
    y = traced()
    assert y.device == p.device
    np.testing.assert_array_equal(npy(y), np.array([3.0, -4.0]))
    y.sum().backward()
    np.testing.assert_array_equal(npy(p.grad), np.array([2.0, 2.0]))


def test_function_of_constants_alone_runs_on_their_device():
    # no arguments, no captured tensor that requires grad: the graph ran the CPU
    # backend on the constants' device arrays, and an output that IS a constant was
    # copied with .copy(), which device arrays lack
    c = tinyfw.tensor(np.array([[1.0, -2.0]]), device="check")

    def f():
        return c.abs(), c

    traced = jit.trace(f, (), passes=NO_FUSION)
    a, b = traced()
    np.testing.assert_array_equal(npy(a), np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(npy(b), npy(c))


def test_adding_zero_to_negative_zero_gives_positive_zero():
    # simplify dropped x + 0.0 as an identity: for x = -0.0 eager gives +0.0, the traced
    # graph returned -0.0 (the sign is visible: 1 / x, copysign, atan2)
    x = tinyfw.tensor(np.array([0.0, 1.0, -2.0], np.float32))

    def f(x):
        return -x + 0.0

    got, want = npy(jit.trace(f, (x,), passes=NO_FUSION)(x)), npy(f(x))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(DEVICE.type != "cpu", reason="fused kernels are CPU code")
def test_fused_relu_of_negative_zero_is_positive_zero_as_in_eager():
    # the generated relu was a < 0 ? 0 : a, which keeps -0.0; eager's kernels give +0.0
    x = tinyfw.tensor(np.array([0.0, -1.0, 2.0, np.nan]))

    def f(x):
        return (-x).relu() * 2.0  # two ops: one fused kernel

    traced = jit.trace(f, (x,))
    assert any(n.kernel is not None for n in traced.graph(x)[0].nodes)
    got, want = npy(traced(x)), npy(f(x))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(DEVICE.type != "cpu", reason="fused kernels are CPU code")
def test_backward_does_not_take_a_forward_product_as_its_epilogue():
    # the gradient of s in s * (x @ p) reads the product, a saved forward value; the
    # backward's lone kernel over it was merged with the product's Matmul node -- a node
    # of the forward graph -- and the backward graph failed to build ("leaf ... is not an
    # argument")
    p = tinyfw.tensor(np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4),
                      requires_grad=True)
    s = tinyfw.tensor(np.float32(2.0), requires_grad=True)
    x = tinyfw.tensor(np.arange(20, dtype=np.float32).reshape(5, 4))

    def f(x, s):
        return s * (x @ p).squeeze(1)

    traced = jit.trace(f, (x, s))
    for fn in (traced, f):
        s.grad = p.grad = None
        fn(x, s).sum().backward()
        if fn is traced:
            got = npy(s.grad), npy(p.grad)
    # (exact: the fused part multiplies by an output gradient of ones)
    np.testing.assert_array_equal(got[0], npy(s.grad))
    np.testing.assert_array_equal(got[1], npy(p.grad))


@pytest.mark.skipif(DEVICE.type != "cpu", reason="fused kernels are CPU code")
def test_backward_kernel_does_not_read_through_a_forward_expand():
    # the backward of 1 / (e * e + 1), e = x.expand(...), reads the saved e; the fused
    # backward kernel read through e's Expand node -- a node of the forward graph -- to x,
    # which the backward graph does not have ("leaf ... is not an argument")
    x = tinyfw.tensor(np.linspace(-2, 2, 20).reshape(4, 5), requires_grad=True)

    def f(x):
        e = x.expand(3, 4, 5)
        return 1.0 / (e * e + 1.0)

    traced = jit.trace(f, (x,))
    grads = []
    for fn in (traced, f):
        x.grad = None
        fn(x).sum().backward()
        grads.append(npy(x.grad))
    # a fused float64 kernel may round each of its ~6 ops 2 ulp differently (the
    # property's bound); 18 ulp relative covers them with room, a wrong value would not pass
    np.testing.assert_allclose(grads[0], grads[1], rtol=4e-15)


def test_integer_result_of_a_rewritten_trace_carries_no_gradient():
    # found by the 10,000-program run after the merge: when a rewrite fires (here -(-x)),
    # the forward is replayed through each op's Function, and a float -> int64 cast there
    # returned a tensor that required grad (eager's Tensor.to detaches), so the traced
    # output of an integer dtype required grad and a loss over it reached x
    def f(x, s):
        unused = -(-s)  # noqa: F841 - makes the rewrite fire, hence the replay
        return -(x.abs().sqrt().to(tinyfw.float64).to(tinyfw.int64))

    x = tinyfw.tensor(np.float32([[0.3, 4.0], [9.5, 2.0]]), requires_grad=True)
    s = tinyfw.tensor(np.float32(0.5), requires_grad=True)
    tf = jit.trace(f, (x, s))
    assert "rewrote" in explain_text(tf, x, s)
    y = tf(x, s)
    assert y.dtype == tinyfw.int64 and not y.requires_grad
    np.testing.assert_array_equal(npy(y), npy(f(x, s)))
