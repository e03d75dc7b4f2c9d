"""Autograd behaviour: accumulation, retain_graph, create_graph, hooks, retain_grad, grad
modes, detach, autograd.grad, the error cases; gradgradcheck for a representative set."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from helpers import assert_close, npy, requires_torch, torch
from tinyfw.backend import backend_of


def _same_memory(a: tinyfw.Tensor, b: tinyfw.Tensor) -> bool:
    """True when two tensors view one buffer (asked of their backend: any device)."""
    return backend_of(a._data).memory_owner(a._data) is backend_of(b._data).memory_owner(b._data)



def _x(*shape, seed=0):
    g = np.random.default_rng(seed)
    return tinyfw.tensor(g.standard_normal(shape), requires_grad=True)


def test_gradients_accumulate_across_backward_calls():
    x = _x(3)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    assert_close(x.grad, np.full(3, 5.0), "float64")
    x.grad = None
    (x * x).sum().backward()
    assert_close(x.grad, 2 * npy(x), "float64")


def test_shared_subexpression_and_diamond_graph():
    x = _x(4)
    y = x.exp()
    z = (y * y + y.sin()).sum()  # y is used twice: both contributions must arrive
    z.backward()
    e = np.exp(npy(x))
    assert_close(x.grad, 2 * e * e + np.cos(e) * e, "float64")


def test_retain_graph_and_freed_graph_error():
    x = _x(3)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = npy(x.grad).copy()
    y.backward()
    assert_close(x.grad, 2 * g1, "float64")
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_create_graph_gives_higher_order_gradients():
    x = _x(3)
    y = (x ** 3).sum()
    (g,) = tinyfw.autograd.grad(y, x, create_graph=True)
    assert g.requires_grad
    (h,) = tinyfw.autograd.grad(g.sum(), x, create_graph=True)
    assert_close(h, 6 * npy(x), "float64")
    (t,) = tinyfw.autograd.grad(h.sum(), x)
    assert_close(t, np.full(3, 6.0), "float64")
    # backward(create_graph=True) leaves a differentiable .grad
    x.grad = None
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    x.grad.sum().backward()


def test_backward_on_non_scalar_needs_a_gradient():
    x = _x(2, 3)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"implicitly created only for scalar outputs.*\(2, 3\)"):
        y.backward()
    y.backward(tinyfw.ones(2, 3, dtype=tinyfw.float64))
    assert_close(x.grad, np.full((2, 3), 2.0), "float64")
    with pytest.raises(RuntimeError, match=r"gradient of shape \(3,\) does not match"):
        (x * 2).backward(tinyfw.ones(3, dtype=tinyfw.float64))


def test_backward_without_grad_requirement_errors():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tinyfw.ones(3).sum().backward()


def test_hooks_modify_and_remove():
    x = _x(3)
    seen = []
    h1 = x.register_hook(lambda g: seen.append(npy(g).copy()))
    h2 = x.register_hook(lambda g: g * 10)
    (x * 2).sum().backward()
    assert_close(x.grad, np.full(3, 20.0), "float64")
    assert_close(seen[0], np.full(3, 2.0), "float64")
    h2.remove()
    h2.remove()  # removing twice is harmless
    x.grad = None
    (x * 2).sum().backward()
    assert_close(x.grad, np.full(3, 2.0), "float64")
    assert len(seen) == 2
    h1.remove()
    # a hook on a non-leaf sees (and may replace) the gradient flowing through it
    x.grad = None
    y = x * 3
    y.register_hook(lambda g: g * 0.5)
    y.sum().backward()
    assert_close(x.grad, np.full(3, 1.5), "float64")
    with pytest.raises(RuntimeError, match="does not require grad"):
        tinyfw.ones(2).register_hook(lambda g: g)


def test_retain_grad_on_non_leaf():
    x = _x(3)
    y = x * 2
    z = y * y
    y.retain_grad()
    assert y.retains_grad and not z.retains_grad
    z.sum().backward()
    assert_close(y.grad, 2 * npy(y), "float64")
    assert z.grad is None


@pytest.mark.parametrize("form", ["context", "decorator"])
def test_no_grad_enable_grad_set_grad_enabled(form):
    x = _x(3)
    if form == "context":
        with tinyfw.no_grad():
            y = x * 2
            with tinyfw.enable_grad():
                w = x * 2
            with tinyfw.set_grad_enabled(True):
                v = x * 2
        with tinyfw.set_grad_enabled(False):
            u = x * 2
    else:
        @tinyfw.no_grad()
        def f():
            return x * 2

        @tinyfw.enable_grad()
        def g():
            return x * 2

        with tinyfw.no_grad():
            w = g()
            v = tinyfw.set_grad_enabled(True)(lambda: x * 2)()
        y = f()
        u = tinyfw.set_grad_enabled(False)(lambda: x * 2)()
    assert not y.requires_grad and y.grad_fn is None
    assert not u.requires_grad
    assert w.requires_grad and v.requires_grad
    assert tinyfw.is_grad_enabled()
    # the function-call form switches at once, and restores nothing by itself
    tinyfw.set_grad_enabled(False)
    try:
        assert not tinyfw.is_grad_enabled()
        assert not (x * 2).requires_grad
    finally:
        tinyfw.set_grad_enabled(True)


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(ValueError):
        with tinyfw.no_grad():
            raise ValueError("boom")
    assert tinyfw.is_grad_enabled()


def test_detach_shares_memory_and_cuts_the_graph():
    x = _x(3)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert _same_memory(d, y)
    d2 = y.detach()
    d2.add_(1)  # visible through y, and y's version moves
    assert_close(y.detach(), d2, "float64")
    z = (y.detach() * x).sum()
    z.backward()
    assert_close(x.grad, y.detach(), "float64")  # no path through y's history


def test_autograd_grad_allow_unused_and_no_side_effects():
    x, y, unused = _x(3), _x(3, seed=1), _x(2, seed=2)
    out = (x * y).sum()
    gx, gy, gu = tinyfw.autograd.grad(out, [x, y, unused], allow_unused=True, retain_graph=True)
    assert_close(gx, y.detach(), "float64")
    assert_close(gy, x.detach(), "float64")
    assert gu is None
    assert x.grad is None and y.grad is None  # grad() does not touch .grad
    with pytest.raises(RuntimeError, match="was not used.*allow_unused=True"):
        tinyfw.autograd.grad(out, [x, unused])


def test_autograd_grad_wrt_non_leaf_and_grad_outputs():
    x = _x(3)
    h = x * 2
    out = h.exp()
    (gh,) = tinyfw.autograd.grad(out, h, grad_outputs=tinyfw.ones(3, dtype=tinyfw.float64))
    assert_close(gh, np.exp(npy(h)), "float64")


def test_backward_inputs_argument_limits_accumulation():
    x, y = _x(3), _x(3, seed=1)
    (x * y).sum().backward(inputs=[x])
    assert x.grad is not None and y.grad is None


def test_is_leaf_requires_grad_grad_fn_attributes():
    x = _x(2)
    y = x + 1
    assert x.is_leaf and x.grad_fn is None and x.requires_grad
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad
    assert tinyfw.ones(2).is_leaf and not tinyfw.ones(2).requires_grad
    with pytest.raises(RuntimeError, match="only floating-point tensors"):
        tinyfw.ones(2, dtype=tinyfw.int64).requires_grad_()
    with pytest.raises(RuntimeError, match="non-leaf"):
        y.requires_grad = False
    # integer results carry no gradient
    assert not x.long().requires_grad
    assert not (x > 0).requires_grad


def test_grad_assignment_checks():
    x = _x(2, 3)
    x.grad = tinyfw.ones(2, 3, dtype=tinyfw.float64)
    x.grad = None
    assert x.grad is None
    with pytest.raises(RuntimeError, match=r"assigned shape \(3,\) does not match.*\(2, 3\)"):
        x.grad = tinyfw.ones(3, dtype=tinyfw.float64)
    with pytest.raises(RuntimeError, match="assigned dtype float32 does not match.*float64"):
        x.grad = tinyfw.ones(2, 3)
    with pytest.raises(TypeError, match="grad must be a Tensor or None"):
        x.grad = np.ones((2, 3))


def test_leaf_grad_is_not_aliased_with_graph_buffers():
    """The .grad a leaf keeps must not share memory with a gradient elsewhere: modifying it
    in place (as optimizers do) must not corrupt another leaf's grad."""
    x = _x(3)
    y = _x(3, seed=1)
    (x + y).sum().backward()
    x.grad.mul_(100)
    assert_close(y.grad, np.ones(3), "float64")


# -- in-place and version counters ------------------------------------------------------------
def test_inplace_on_saved_tensor_is_detected():
    x = _x(3)
    y = x * 1
    z = (y * y).sum()  # mul saves y
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation.*version 0.*1"):
        z.backward()


def test_inplace_on_saved_output_is_detected():
    x = _x(3)
    y = x.exp()  # exp saves its output
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_inplace_through_a_view_bumps_the_shared_version():
    x = _x(4)
    y = x * 1
    z = (y.sin()).sum()  # sin saves y
    v = y[1:3]
    assert v._version is y._version
    before = y._version[0]
    with tinyfw.no_grad():
        v.mul_(2)
    assert y._version[0] == before + 1
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.backward()


def test_inplace_on_leaf_requiring_grad_errors_but_allowed_under_no_grad():
    x = _x(3)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        x.add_(1)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        x[0] = 5.0
    with tinyfw.no_grad():
        x.add_(1)
        x[0] = 5.0
    assert x.detach()[0].item() == 5.0


@requires_torch
def test_inplace_ops_record_history_like_torch():
    a = np.random.default_rng(0).standard_normal(4)
    x, tx = tinyfw.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    for lib, t in ((tinyfw, x), (torch, tx)):
        y = t * 2
        y.mul_(t).add_(3).sigmoid_()
        y.sum().backward()
    assert_close(x.grad, tx.grad, "float64")


# -- gradgradcheck: a representative set ------------------------------------------------------
def _pos(*shape, seed=0):
    g = np.random.default_rng(seed)
    return tinyfw.tensor(g.uniform(0.5, 2.0, shape), requires_grad=True)


GRADGRAD = {
    "mul": (lambda a, b: a * b, lambda: (_x(2, 3), _x(3, seed=1))),
    "div": (lambda a, b: a / b, lambda: (_x(2, 3), _pos(3, seed=1))),
    "pow": (lambda a, b: a ** b, lambda: (_pos(2, 3), _x(2, 3, seed=1))),
    "exp": (lambda a: a.exp(), lambda: (_x(2, 3),)),
    "log": (lambda a: a.log(), lambda: (_pos(2, 3),)),
    "tanh": (lambda a: a.tanh(), lambda: (_x(2, 3),)),
    "sigmoid": (lambda a: a.sigmoid(), lambda: (_x(2, 3),)),
    "softplus": (lambda a: tinyfw.softplus(a), lambda: (_x(2, 3),)),
    "erf": (lambda a: a.erf(), lambda: (_x(2, 3),)),
    "erfc": (lambda a: a.erfc(), lambda: (_x(2, 3),)),
    "gelu": (lambda a: tinyfw.gelu(a), lambda: (_x(2, 3),)),
    "gelu_tanh": (lambda a: tinyfw.gelu(a, approximate="tanh"), lambda: (_x(2, 3),)),
    "silu": (lambda a: tinyfw.silu(a), lambda: (_x(2, 3),)),
    "sqrt": (lambda a: a.sqrt(), lambda: (_pos(2, 3),)),
    "matmul": (lambda a, b: (a @ b) ** 2, lambda: (_x(2, 3), _x(3, 2, seed=1))),
    "sum": (lambda a: a.sum(1) ** 2, lambda: (_x(2, 3),)),
    "mean": (lambda a: a.mean(0) ** 2, lambda: (_x(2, 3),)),
    "amax": (lambda a: a.amax(1) ** 2, lambda: (_x(2, 3),)),
    "max_dim": (lambda a: a.max(0).values ** 2, lambda: (_x(2, 3),)),
    "var": (lambda a: a.var(1), lambda: (_x(2, 3),)),
    "logsumexp": (lambda a: a.logsumexp(1), lambda: (_x(2, 3),)),
    "norm": (lambda a: a.norm(dim=1), lambda: (_x(2, 3),)),
    "indexing": (lambda a: a[tinyfw.tensor([1, 0, 1]), 1:] ** 2, lambda: (_x(2, 3),)),
    "bool_mask": (lambda a: a[a > 0] ** 2, lambda: (_x(2, 3),)),
    "gather": (lambda a: a.gather(1, tinyfw.tensor([[0, 2], [1, 1]])) ** 2, lambda: (_x(2, 3),)),
    "cat": (lambda a, b: tinyfw.cat([a, b], 0) ** 2, lambda: (_x(2, 3), _x(1, 3, seed=1))),
    "stack": (lambda a, b: tinyfw.stack([a, b]) ** 3, lambda: (_x(2, 3), _x(2, 3, seed=1))),
    "where_max": (lambda a, b: tinyfw.maximum(a, b) * a, lambda: (_x(2, 3), _x(3, seed=1))),
    "prod": (lambda a: a.prod(1), lambda: (_x(2, 3),)),
    "cumsum": (lambda a: a.cumsum(1) ** 2, lambda: (_x(2, 3),)),
    "atan2": (lambda a, b: tinyfw.atan2(a, b), lambda: (_x(2, 3), _x(2, 3, seed=1))),
}


@pytest.mark.parametrize("name", sorted(GRADGRAD))
def test_gradgradcheck(name):
    fn, inputs = GRADGRAD[name]
    assert tinyfw.gradgradcheck(fn, inputs())


# -- leaf gradients: kept without a copy when private, copied when the memory is shared --
def test_linear_weight_grad_is_row_major_and_matches_torch():
    x, w, b = _x(5, 3, seed=1), _x(4, 3, seed=2), _x(4, seed=3)
    tinyfw.nn.functional.linear(x, w, b).square().sum().backward()
    assert w.grad.is_contiguous() and b.grad.is_contiguous()
    if torch is not None:
        tx, tw, tb = (torch.tensor(npy(t), requires_grad=True) for t in (x, w, b))
        torch.nn.functional.linear(tx, tw, tb).square().sum().backward()
        for t, r in ((x, tx), (w, tw), (b, tb)):
            assert_close(t.grad, r.grad.numpy(), "float64")
    # a transposed left operand takes the same path
    a = _x(3, 5, seed=4)
    (a.mT @ w.mT).sum().backward()
    assert a.grad.is_contiguous()
    assert_close(a.grad, np.broadcast_to(npy(w).sum(0), (5, 3)).T, "float64")


def test_leaf_grad_never_aliases_memory_seen_elsewhere():
    # a root gradient reaching a leaf through a view
    x = _x(2, 3)
    g = tinyfw.ones(6, dtype=tinyfw.float64)
    x.reshape(6).backward(g)
    assert not _same_memory(x.grad, g)
    # one gradient array reaching two leaves through views (add passes g to both)
    a, b = _x(2, 3, seed=1), _x(3, 2, seed=2)
    (a.reshape(6) * 2 + b.reshape(6)).sum().backward()
    (a.reshape(6) + b.reshape(6)).backward(tinyfw.arange(6.0, dtype=tinyfw.float64))
    assert not _same_memory(a.grad, b.grad)
    # a retained non-leaf gradient whose transpose is the leaf's gradient
    w = _x(4, 3, seed=3)
    wt = w.mT
    wt.retain_grad()
    (_x(2, 3, seed=4) @ wt).square().sum().backward()
    assert not _same_memory(w.grad, wt.grad)
    assert_close(w.grad, npy(wt.grad).T, "float64")
    # a gradient a hook has seen
    seen = []
    v = _x(3, 2, seed=5)
    v.register_hook(lambda gr: seen.append(gr))
    (v.mT * 3).sum().backward()
    assert not _same_memory(v.grad, seen[0])


def test_leaf_grad_is_writable_dense_memory():
    x = _x(1, 4)
    x.expand(3, 4).sum().backward()
    y = _x(3)
    y.sum().backward()  # the gradient arrives as a broadcast of the scalar ones
    for t, n in ((x, 3.0), (y, 1.0)):
        d = t.grad._data
        assert backend_of(d).is_writeable(d) and 0 not in d.strides
        t.grad.add_(1.0)
        assert_close(t.grad, np.full(t.shape, n + 1.0), "float64")


@requires_torch
def test_relu_backward_selects_like_torch():
    x = tinyfw.tensor([-1.0, 0.0, 2.0, float("nan")], requires_grad=True)
    g = tinyfw.tensor([float("nan"), float("inf"), 3.0, 1.0])
    x.relu().backward(g)
    tx = torch.tensor(npy(x), requires_grad=True)
    tx.relu().backward(torch.tensor(npy(g)))
    np.testing.assert_array_equal(npy(x.grad), tx.grad.numpy())
