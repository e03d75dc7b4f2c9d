"""Gradient accumulation into existing ``.grad`` (autograd/engine.py, jit/api.py,
jit/executor.py, the fused add-norm backward's ``gx_into`` / ``gh_into``).

- eager: a second backward adds into the ``.grad`` tensor the first one stored (the same
  tensor, its version bumped, as PyTorch's AccumulateGrad does), the same sums as an
  out-of-place add; a gradient stored during the pass is never written over while other
  nodes may still read it;
- traced: the backward graph adds its gradients into existing ``.grad`` itself, the fused
  kernel for the ones it makes: the same bits as eager's accumulation (b's column sum to
  its documented bound); hooks, a non-contiguous ``.grad``, a leaf passed twice and
  ``autograd.grad`` take the plain path;
- the kernel: ``gx_into`` / ``gh_into`` give ``into + gx`` bit for bit, g read in place
  when its rows are strided or broadcast, bad arrays refused with a message.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw
import tinyfw.nn.functional as F
from helpers import npy, requires_torch, torch
from tinyfw import jit, nn
from tinyfw.backend import cpu, ref

needs_kernels = pytest.mark.skipif(not cpu.KERNELS,
                                   reason="tinyfw._C is not built (python setup.py build_ext --inplace)")


def _leaf(*shape, seed=0):
    return tinyfw.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


# -- eager -------------------------------------------------------------------------------------
def test_second_backward_adds_into_the_same_grad_tensor():
    x = _leaf(5)
    (x * 2).sum().backward()
    first = x.grad
    held = npy(first).copy()
    v0 = first._version[0]
    x.sin().sum().backward()  # one gradient reaches x: one write
    assert x.grad is first and first._version[0] == v0 + 1
    np.testing.assert_array_equal(npy(x.grad), held + np.cos(npy(x)))


@requires_torch
def test_accumulation_keeps_the_grad_tensor_as_pytorch_does():
    a = np.arange(4.0)
    x, tx = tinyfw.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    for t in (x, tx):
        (t * 3).sum().backward()
    g, tg = x.grad, tx.grad
    for t in (x, tx):
        (t * t).sum().backward()
    assert (x.grad is g) == (tx.grad is tg)
    np.testing.assert_array_equal(npy(g), tg.numpy())


@pytest.mark.parametrize("swap", [False, True])
def test_a_gradient_stored_in_this_pass_is_not_written_over(swap):
    """a keeps G = 2 * dy (one array, also handed to exp's and sin's nodes); exp's node then
    sends a its second gradient: added in place into G, sin's node would read the sum."""
    a, b = _leaf(6, seed=1), _leaf(6, seed=2)
    inner = (b.sin() + a.exp()) if swap else (a.exp() + b.sin())
    ((a + inner) * 2).sum().backward()
    av, bv = npy(a), npy(b)
    np.testing.assert_allclose(npy(a.grad), 2 + 2 * np.exp(av), rtol=1e-12)
    np.testing.assert_allclose(npy(b.grad), 2 * np.cos(bv), rtol=1e-12)


def test_backward_with_inputs_keeps_no_shared_memory():
    """backward(inputs=...) stores gradients as run() does: a and b get the same array
    from (a + b)'s node, and the caller's gradient is the caller's, so adding into one
    .grad later must not change the other, nor the caller's tensor."""
    a, b = _leaf(3, seed=3), _leaf(3, seed=4)
    ((a + b) * 2).sum().backward(inputs=[a, b])
    (a * 2).sum().backward()
    np.testing.assert_array_equal(npy(a.grad), np.full(3, 4.0))
    np.testing.assert_array_equal(npy(b.grad), np.full(3, 2.0))
    c = _leaf(3, seed=5)
    gy = tinyfw.ones(3, dtype=c.dtype, device=c.device)
    for _ in range(2):
        (c * 1).backward(gy, inputs=[c])
    np.testing.assert_array_equal(npy(c.grad), np.full(3, 2.0))
    np.testing.assert_array_equal(npy(gy), np.ones(3))


def test_create_graph_accumulates_out_of_place_with_history():
    x = _leaf(3)
    (x * x).sum().backward(create_graph=True)
    first = x.grad
    (x * x).sum().backward(create_graph=True)
    assert x.grad is not first and x.grad.grad_fn is not None
    np.testing.assert_allclose(npy(x.grad), 4 * npy(x), rtol=1e-12)


def test_a_read_only_grad_is_replaced_not_written():
    x = _leaf(3)
    x.grad = tinyfw.zeros(1, dtype=tinyfw.float64, device=x.device).expand(3)  # read-only
    ro = x.grad
    (x * 2).sum().backward()
    assert x.grad is not ro
    np.testing.assert_array_equal(npy(x.grad), np.full(3, 2.0))


# -- traced ------------------------------------------------------------------------------------
def _block_leaves(shape, seed):
    rng = np.random.default_rng(seed)
    n = shape[-1]

    def t(*s):
        return tinyfw.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
    ln = nn.LayerNorm(n)
    with tinyfw.no_grad():
        ln.weight.copy_(t(n))
        ln.bias.copy_(t(n))
    return t(*shape), t(*shape), t(n), ln


@needs_kernels
@settings(max_examples=15, deadline=None)
@given(shape=st.sampled_from([(1, 1), (7, 17), (40, 33), (2, 3, 16)]), steps=st.integers(2, 3),
       seed=st.integers(0, 2**31))
def test_traced_backward_accumulates_as_eager(shape, steps, seed):
    h, x, b, ln = _block_leaves(shape, seed)
    leaves = (h, x, b, ln.weight, ln.bias)

    def block(h, x):
        return ln(F.gelu(h + b) + x)

    traced = jit.trace(block, (h, x))
    assert "GeluAddNorm" in [nd.op for nd in traced.graph(h, x)[0].nodes]
    gy = tinyfw.tensor(np.random.default_rng(seed + 1).standard_normal(shape).astype(np.float32))
    results = []
    for f in (block, traced):
        for t in leaves:
            t.grad = None
        for _ in range(steps):
            f(h, x).backward(gy)
        results.append([npy(t.grad).copy() for t in leaves])
    (eh, ex, eb, ew, ebeta), (th, tx, tb, tw, tbeta) = results
    for got, want in ((th, eh), (tx, ex), (tw, ew), (tbeta, ebeta)):
        np.testing.assert_array_equal(got, want)
    # b's gradient: a column sum of gh per call, in the kernel's own order
    rows = int(np.prod(shape[:-1]))
    np.testing.assert_allclose(tb, eb, rtol=0, atol=4 * rows * steps * np.finfo(np.float32).eps
                               * np.abs(eh).reshape(-1, shape[-1]).sum(0).max() + 1e-30)


@needs_kernels
def test_traced_backward_adds_into_the_grad_tensors_in_place():
    h, x, b, ln = _block_leaves((16, 32), 0)
    leaves = (h, x, b, ln.weight, ln.bias)
    calls = []
    h.register_post_accumulate_grad_hook(lambda t: calls.append(t))
    traced = jit.trace(lambda h, x: ln(F.gelu(h + b) + x), (h, x))
    traced(h, x).sum().backward()
    kept = [t.grad for t in leaves]
    versions = [g._version[0] for g in kept]
    traced(h, x).sum().backward()
    assert all(t.grad is g for t, g in zip(leaves, kept))
    assert [g._version[0] for g in kept] == [v + 1 for v in versions]
    assert len(calls) == 2  # the post-accumulate hook ran for the fused accumulation too


@needs_kernels
def test_the_backward_graph_hands_the_grads_to_the_fused_kernel():
    h, x, b, ln = _block_leaves((4, 2, 8), 1)
    traced = jit.trace(lambda h, x: ln(F.gelu(h + b) + x), (h, x))
    c = next(iter(traced.cache.values()))
    src = c.backward.accumulate.source
    assert "gh_into=" in src and "gx_into=" in src
    # b, weight, bias: made as column sums, added by the backend's add
    assert src.count("B.add(_into[") == 3


@needs_kernels
def test_plain_path_where_the_grad_cannot_take_it():
    """A non-contiguous .grad, a leaf hook, a leaf passed twice, autograd.grad: the plain
    (out-of-place or engine) path, same values as eager."""
    h, x, b, ln = _block_leaves((8, 16), 2)

    def block(h, x):
        return ln(F.gelu(h + b) + x)

    traced = jit.trace(block, (h, x))
    # a transposed .grad
    for f in (block, traced):
        h.grad = tinyfw.tensor(np.zeros((16, 8), np.float32)).T
        f(h, x).sum().backward()
        f(h, x).sum().backward()
        if f is block:
            want = npy(h.grad).copy()
    np.testing.assert_array_equal(npy(h.grad), want)
    # a hook on x doubles what reaches x.grad
    x.grad = None
    x.register_hook(lambda g: g * 2)
    for f in (block, traced):
        x.grad = None
        f(h, x).sum().backward()
        f(h, x).sum().backward()
        if f is block:
            want = npy(x.grad).copy()
    np.testing.assert_array_equal(npy(x.grad), want)
    # one leaf used as both h and x: its gradient is a sum made in the graph
    y = tinyfw.tensor(npy(h), requires_grad=True)

    def both(y):
        return block(y, y)

    twice = jit.trace(both, (y,))
    for f in (both, twice):
        y.grad = None
        f(y).sum().backward()
        f(y).sum().backward()
        if f is both:
            want = npy(y.grad).copy()
    np.testing.assert_allclose(npy(y.grad), want, rtol=1e-6, atol=1e-6)
    # autograd.grad touches no .grad
    before = npy(b.grad).copy() if b.grad is not None else None
    gh, = tinyfw.autograd.grad([traced(h, x).sum()], [h])
    np.testing.assert_array_equal(npy(b.grad) if b.grad is not None else None, before)


# -- the kernel ----------------------------------------------------------------------------------
def _saved(m, n, seed):
    rng = np.random.default_rng(seed)
    h, x = (rng.standard_normal((m, n)).astype(np.float32) for _ in range(2))
    b, w, beta = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    _, r, mean, rstd = ref.gelu_add_layer_norm(h, b, x, w, beta, 1e-5, "none")
    return h, b, w, r, mean, rstd, rng


@needs_kernels
@pytest.mark.parametrize("backend", [cpu, ref], ids=["cpu", "ref"])
@pytest.mark.parametrize("m,n", [(1, 1), (5, 17), (70, 1030)])
def test_into_arrays_get_the_sum(backend, m, n):
    h, b, w, r, mean, rstd, rng = _saved(m, n, m + n)
    g = rng.standard_normal((m, n)).astype(np.float32)
    gx, gh, gw, gbeta, gb = backend.gelu_add_layer_norm_backward(g, r, w, mean, rstd, h, b, "none")
    ax, ah = (rng.standard_normal((m, n)).astype(np.float32) for _ in range(2))
    want_x, want_h = ax + gx, ah + gh
    out = backend.gelu_add_layer_norm_backward(g, r, w, mean, rstd, h, b, "none", ax, ah)
    assert out[0] is ax and out[1] is ah
    np.testing.assert_array_equal(ax, want_x)
    np.testing.assert_array_equal(ah, want_h)
    for a, e in zip(out[2:], (gw, gbeta, gb)):  # the column sums are this call's own
        np.testing.assert_array_equal(a, e)


@needs_kernels
@pytest.mark.parametrize("make_g", ["scalar", "row", "strided", "columns"])
def test_gradient_rows_read_in_place(make_g):
    m, n = 37, 33
    h, b, w, r, mean, rstd, rng = _saved(m, n, 5)
    if make_g == "scalar":
        g = np.broadcast_to(np.float32(0.75), (m, n))
    elif make_g == "row":
        g = np.broadcast_to(rng.standard_normal(n).astype(np.float32), (m, n))
    elif make_g == "strided":
        g = rng.standard_normal((m, n + 7)).astype(np.float32)[:, :n]
    else:  # every other column: copied first
        g = rng.standard_normal((m, 2 * n)).astype(np.float32)[:, ::2]
    got = cpu.gelu_add_layer_norm_backward(g, r, w, mean, rstd, h, b, "none")
    want = cpu.gelu_add_layer_norm_backward(np.ascontiguousarray(g), r, w, mean, rstd, h, b, "none")
    for a, e in zip(got, want):
        np.testing.assert_array_equal(a, e)


@needs_kernels
def test_bad_into_arrays_are_refused():
    h, b, w, r, mean, rstd, rng = _saved(4, 8, 0)
    g = np.ones((4, 8), np.float32)
    bad = {"shape": np.zeros((4, 7), np.float32), "dtype": np.zeros((4, 8), np.float64),
           "layout": np.zeros((8, 4), np.float32).T}
    ro = np.zeros((4, 8), np.float32)
    ro.flags.writeable = False
    bad["read-only"] = ro
    for what, a in bad.items():
        with pytest.raises(ValueError, match="gx_into must be a writeable C-contiguous float32"):
            cpu.gelu_add_layer_norm_backward(g, r, w, mean, rstd, h, b, "none", a, None)
        with pytest.raises(ValueError, match="gh_into"):
            cpu.gelu_add_layer_norm_backward(g, r, w, mean, rstd, h, b, "none", None, a)
