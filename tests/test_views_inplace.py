"""In-place writes through views (issue 14, item 3): a value that requires grad, written
into a view of a tensor that does not, must reach the gradient through the view's base,
as in PyTorch (whose base takes a CopySlices history).  Before the fix the base kept no
history: ``buf[0:2].copy_(w * 1)`` left ``w.grad`` None, and ``v.add_(w)`` or
``buf[0][0:2] = w`` raised.

Each case is one function written against either library, run in tinyfw and in PyTorch
(the oracle): both give the same gradients, or both raise RuntimeError.  A hypothesis
property draws chains of view ops, a write through the chain's end and a read through
the base or another view.  See tinyfw/autograd/views.py for the mechanism.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
from helpers import DEVICE, assert_close, requires_torch, torch


def _t(L, data, **kw):
    if L is tinyfw:
        return tinyfw.tensor(data, dtype=tinyfw.float64, device=DEVICE, **kw)
    return torch.tensor(data, dtype=torch.float64, **kw)


def _zeros(L, *shape):
    if L is tinyfw:
        return tinyfw.zeros(*shape, dtype=tinyfw.float64, device=DEVICE)
    return torch.zeros(*shape, dtype=torch.float64)


def _weights(L, shape):
    """Distinct weights, so that a gradient sent to the wrong element shows."""
    n = int(np.prod(shape))
    return _t(L, np.linspace(0.5, 3.0, n).reshape(shape))


# -- the cases of the issue and their neighbours: each returns (loss, leaves) ----------
def _copy_into_slice(L):
    w = _t(L, [1.0, 2.0], requires_grad=True)
    buf = _zeros(L, 3)
    buf[0:2].copy_(w * 1)
    return (buf * _t(L, [1.0, 10.0, 100.0])).sum(), [w]


def _add_into_held_view(L):
    w = _t(L, [1.0, 2.0], requires_grad=True)
    buf = _zeros(L, 3)
    v = buf[0:2]
    v.add_(w)
    return (buf * _t(L, [1.0, 10.0, 100.0])).sum(), [w]


def _setitem_into_row(L):
    w = _t(L, [1.0, 2.0], requires_grad=True)
    buf = _zeros(L, 2, 3)
    buf[0][0:2] = w
    return (buf * _weights(L, (2, 3))).sum(), [w]


def _nested_views_read_another(L):
    w = _t(L, [[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    buf = _zeros(L, 3, 4)
    inner = buf[1:3][:, 1:3]   # a view of a view
    other = buf.t()[1:3]       # made before the write: sees it
    inner.mul_(2)
    inner.add_(w * w)
    return (other.exp() * _weights(L, (2, 3))).sum(), [w]


def _row_then_flat_reshape(L):
    w = _t(L, [1.0, 2.0, 3.0], requires_grad=True)
    buf = _zeros(L, 2, 3)
    flat = buf.reshape(6)
    buf[1].copy_(w.exp())
    return (flat * _weights(L, (6,))).sum(), [w]


def _transposed_target(L):
    w = _t(L, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    buf = _zeros(L, 2, 3)
    buf.t().copy_(w * 3)
    return buf.sin().sum(), [w]


def _write_into_history(L):
    """The base already has history (a non-leaf): the write replaces a region of it."""
    x = _t(L, [1.0, 2.0, 3.0, 4.0], requires_grad=True)
    w = _t(L, [5.0, 6.0], requires_grad=True)
    y = x * 2
    y[1:3].mul_(w)
    return (y * y).sum(), [x, w]


def _overlapping_writes(L):
    w = _t(L, [1.0, 2.0, 3.0], requires_grad=True)
    u = _t(L, [5.0, 6.0], requires_grad=True)
    buf = _zeros(L, 4)
    buf[0:3].copy_(w)
    buf[1:3].mul_(u)
    return (buf * _weights(L, (4,))).sum(), [w, u]


def _outer_view_after_inner_write(L):
    w = _t(L, [1.0, 2.0], requires_grad=True)
    buf = _zeros(L, 3, 3)
    row = buf[1]
    row[1:].copy_(w)
    return (row * row).sum(), [w]


def _unsqueeze_select_write(L):
    w = _t(L, [1.0, 2.0, 3.0, 4.0], requires_grad=True)
    buf = _zeros(L, 2, 2)
    buf.reshape(4).copy_(w * w)
    buf.unsqueeze(0)[0, 1].add_(w[:2])
    return buf.exp().sum(), [w]


def _index_setitem_on_view(L):
    w = _t(L, [1.0, 2.0], requires_grad=True)
    buf = _zeros(L, 2, 3)
    r = buf[1]
    idx = tinyfw.tensor([0, 2], device=DEVICE) if L is tinyfw else torch.tensor([0, 2])
    r[idx] = w * 5
    return (buf * buf).sum(), [w]


def _mask_setitem_on_view(L):
    w = _t(L, [1.0, 2.0, 3.0], requires_grad=True)
    buf = _zeros(L, 2, 3)
    m = [True, False, True]
    m = tinyfw.tensor(m, device=DEVICE) if L is tinyfw else torch.tensor(m)
    buf[0][m] = w[:2] * 3
    return buf.exp().sum(), [w]


def _old_view_read_after_base_write(L):
    w = _t(L, [1.0, 2.0, 3.0], requires_grad=True)
    buf = _zeros(L, 3) + 1
    v = buf[1:]
    buf.copy_(w)
    return (v * v).sum(), [w]


def _fill_region_of_history(L):
    w = _t(L, [1.0, 2.0, 3.0], requires_grad=True)
    y = w * 1
    y[1:].fill_(0.0)
    return (y * y).sum(), [w]


def _broadcast_value(L):
    w = _t(L, [2.0], requires_grad=True)
    buf = _zeros(L, 2, 3)
    buf[1].copy_(w)
    return (buf * _weights(L, (2, 3))).sum(), [w]


def _permute_slice_write(L):
    w = _t(L, [[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    buf = _zeros(L, 2, 3, 4)
    buf.permute(2, 0, 1)[1:3, :, 1].add_(w.t() * 2)
    return (buf * _weights(L, (2, 3, 4))).sum(), [w]


# -- refusals PyTorch makes too ----------------------------------------------------------
def _view_of_leaf(L):
    x = _t(L, [1.0, 2.0, 3.0], requires_grad=True)
    x[0:2].add_(1)
    return x.sum(), [x]


def _no_grad_view_written(L):
    w = _t(L, [1.0, 2.0], requires_grad=True)
    buf = _zeros(L, 3)
    with L.no_grad():
        v = buf[0:2]
    v.copy_(w)
    return buf.sum(), [w]


def _no_grad_view_read_after_write(L):
    w = _t(L, [1.0, 2.0, 3.0], requires_grad=True)
    buf = _zeros(L, 3)
    with L.no_grad():
        v = buf[0:2]
    buf.copy_(w * 1)
    return (v * 2).sum(), [w]


def _saved_view_then_write(L):
    """A view saved by a product, then its base written: the version check refuses."""
    w = _t(L, [1.0, 2.0, 3.0], requires_grad=True)
    buf = _zeros(L, 3)
    buf.copy_(w)
    v = buf[0:2]
    y = v * v
    buf[2:3].mul_(3)
    return y.sum() + buf.sum(), [w]


def _expanded_target(L):
    w = _t(L, [1.0, 2.0, 3.0], requires_grad=True)
    buf = _zeros(L, 3)
    buf.expand(2, 3).add_(w)
    return buf.sum(), [w]


CASES = {f.__name__[1:]: f for f in (
    _copy_into_slice, _add_into_held_view, _setitem_into_row, _nested_views_read_another,
    _row_then_flat_reshape, _transposed_target, _write_into_history, _overlapping_writes,
    _outer_view_after_inner_write, _unsqueeze_select_write, _index_setitem_on_view,
    _mask_setitem_on_view, _old_view_read_after_base_write, _fill_region_of_history,
    _broadcast_value, _permute_slice_write)}
REFUSED = {f.__name__[1:]: f for f in (
    _view_of_leaf, _no_grad_view_written, _no_grad_view_read_after_write,
    _saved_view_then_write, _expanded_target)}


def _grads(L, case):
    loss, leaves = case(L)
    loss.backward()
    return [x.grad for x in leaves]


@requires_torch
@pytest.mark.parametrize("name", sorted(CASES))
def test_write_through_view_gradients_match_torch(name):
    ours, theirs = _grads(tinyfw, CASES[name]), _grads(torch, CASES[name])
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a is not None, f"{name}: the written value got no gradient"
        assert_close(a, b, "float64", msg=name)


@requires_torch
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_like_torch(name):
    with pytest.raises(RuntimeError):
        _grads(torch, REFUSED[name])
    with pytest.raises(RuntimeError):
        _grads(tinyfw, REFUSED[name])


def test_view_takes_history_lazily():
    """A view made before its base was written reports the base's new history: it
    requires grad and is no leaf (PyTorch agrees)."""
    w = tinyfw.tensor([1.0, 2.0, 3.0], requires_grad=True, device=DEVICE)
    buf = tinyfw.zeros(3, device=DEVICE)
    v = buf[0:2]
    assert not v.requires_grad and v.is_leaf
    buf.copy_(w)
    assert v.requires_grad and not v.is_leaf


def test_copy_slices_gradcheck_and_double_backward():
    """The base's CopySlices history is differentiable twice: gradcheck in float64 of a
    write through a two-link view chain, and gradgradcheck of the same."""
    def fn(w, x):
        y = x * 1
        y.t()[1:3, 0:2].mul_(w)
        return (y * y).sum(1)

    w = tinyfw.tensor(np.linspace(-1, 1, 4).reshape(2, 2), dtype=tinyfw.float64,
                      requires_grad=True, device=DEVICE)
    x = tinyfw.tensor(np.linspace(0.5, 2, 12).reshape(3, 4), dtype=tinyfw.float64,
                      requires_grad=True, device=DEVICE)
    assert tinyfw.autograd.gradcheck(fn, (w, x))
    assert tinyfw.autograd.gradgradcheck(fn, (w, x))


# -- random view chains ------------------------------------------------------------------
_LINKS = ("slice0", "slice1", "t", "select0", "reshape", "unsqueeze")


def _link(x, how):
    """One view op on x (any library); None where it does not apply to x's shape."""
    if how == "slice0" and x.dim() >= 1 and x.shape[0] >= 2:
        return x[1:]
    if how == "slice1" and x.dim() >= 2 and x.shape[1] >= 2:
        return x[:, :-1]
    if how == "t" and x.dim() == 2:
        return x.t()
    if how == "select0" and x.dim() >= 2:
        return x[x.shape[0] - 1]
    if how == "reshape" and x.dim() >= 1 and x.is_contiguous():
        return x.reshape(-1)
    if how == "unsqueeze" and x.dim() < 3:
        return x.unsqueeze(0)
    return None


def _chain_program(L, links, write, read_base, base_has_history):
    x = _t(L, np.linspace(0.5, 2.0, 12).reshape(3, 4), requires_grad=True)
    buf = x * 1 if base_has_history else _zeros(L, 3, 4)
    other = buf.t()[1:]  # another view, made before the write
    v = buf
    for how in links:
        nxt = _link(v, how)
        if nxt is not None:
            v = nxt
    w = _t(L, np.linspace(-1.0, 1.0, max(v.numel(), 1)).reshape(tuple(v.shape)),
           requires_grad=True)
    if write == "copy_":
        v.copy_(w.sin())
    elif write == "add_":
        v.add_(w * w)
    elif write == "mul_":
        v.mul_(w)
    else:
        v[...] = w.exp()
    seen = buf if read_base else other
    loss = (seen * _weights(L, tuple(seen.shape))).sum()
    loss.backward()
    return [x.grad, w.grad]


@requires_torch
@given(links=st.lists(st.sampled_from(_LINKS), min_size=1, max_size=4),
       write=st.sampled_from(["copy_", "add_", "mul_", "setitem"]),
       read_base=st.booleans(), base_has_history=st.booleans())
def test_random_view_chain_write_matches_torch(links, write, read_base, base_has_history):
    ours = _chain_program(tinyfw, links, write, read_base, base_has_history)
    theirs = _chain_program(torch, links, write, read_base, base_has_history)
    for a, b in zip(ours, theirs):
        assert (a is None) == (b is None), (a, b)
        if a is not None:
            assert_close(a, b, "float64")
