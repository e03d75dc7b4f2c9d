"""Saved tensors are version-checked (issue 14, item 1): an index, a mask or a condition
kept for the backward, written in place before the backward runs, must raise the
in-place-modification error, as PyTorch does, instead of giving wrong gradients.

Each case builds the same computation in tinyfw and in PyTorch (the oracle) through one
function written against either library, writes into the saved tensor, and checks that
both raise; without the write, both give the same gradient.  A write into a tensor the op
does not save (where's values) must not raise in either.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from helpers import DEVICE, assert_close, requires_torch, torch

X = np.array([[1.0, -2.0, 3.0, 0.5], [4.0, 0.0, -1.0, 2.5], [0.3, 5.0, 1.5, -3.0]])


def _F(L):
    return tinyfw.nn.functional if L is tinyfw else torch.nn.functional


def _tensor(L, data, **kw):
    if L is tinyfw:
        return tinyfw.tensor(data, device=DEVICE, **kw)
    return torch.tensor(data, **kw)


def _where(L, x, write):
    c = _tensor(L, [True, False, True, True])
    y = L.where(c, x, _tensor(L, 0.0, dtype=x.dtype))
    if write:
        c.fill_(False)
    return y


def _getitem(L, x, write):
    i = _tensor(L, [0, 2, 2])
    y = x[i]
    if write:
        i.fill_(1)
    return y


def _index_select(L, x, write):
    i = _tensor(L, [3, 0])
    y = x.index_select(1, i)
    if write:
        i.fill_(1)
    return y


def _masked_fill(L, x, write):
    m = _tensor(L, [[True, False, False, True]])
    y = x.masked_fill(m, 0.0)
    if write:
        m.fill_(False)
    return y


def _masked_select(L, x, write):
    m = _tensor(L, X > 0.9)
    y = x.masked_select(m)
    if write:
        m.fill_(True)
    return y


def _index_put(L, x, write):
    i = _tensor(L, [0, 2])
    v = _tensor(L, [[9.0, 8.0, 7.0, 6.0]], dtype=x.dtype)
    y = x.index_put((i,), v)
    if write:
        i.fill_(1)
    return y


def _embedding(L, x, write):
    i = _tensor(L, [[0, 2], [2, 1]])
    y = _F(L).embedding(i, x)
    if write:
        i.fill_(1)
    return y


def _gather(L, x, write):
    i = _tensor(L, [[0, 1], [3, 3], [2, 0]])
    y = x.gather(1, i)
    if write:
        i.fill_(0)
    return y


def _scatter_add(L, x, write):
    i = _tensor(L, [[0, 1, 2, 0]])
    y = L.zeros(3, 4, dtype=x.dtype).scatter_add(0, i, x[:1] * 2)
    if write:
        i.fill_(2)
    return y


def _max_dim(L, x, write):
    v, i = x.max(1)
    if write:
        i.fill_(0)
    return v


def _sort(L, x, write):
    v, i = x.sort(1)
    if write:
        i.fill_(0)
    return v[:, :2] * _tensor(L, [1.0, 2.0], dtype=x.dtype)


def _max_pool(L, x, write):
    y, i = _F(L).max_pool2d(x.reshape(1, 1, 3, 4), 2, return_indices=True)
    if write:
        i.fill_(0)
    return y


CASES = {"where": _where, "getitem": _getitem, "index_select": _index_select,
         "masked_fill": _masked_fill, "masked_select": _masked_select, "index_put": _index_put,
         "embedding": _embedding, "gather": _gather, "scatter_add": _scatter_add,
         "max_dim": _max_dim, "sort": _sort, "max_pool2d": _max_pool}


def _run(L, case, write):
    x = _tensor(L, X, requires_grad=True)
    y = CASES[case](L, x, write)
    (y * y).sum().backward()
    return x.grad


@requires_torch
@pytest.mark.parametrize("case", sorted(CASES))
def test_writing_a_saved_index_or_mask_raises_like_torch(case):
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        _run(torch, case, write=True)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        _run(tinyfw, case, write=True)


@requires_torch
@pytest.mark.parametrize("case", sorted(CASES))
def test_without_the_write_gradients_match_torch(case):
    assert_close(_run(tinyfw, case, write=False), _run(torch, case, write=False), "float64")


@requires_torch
def test_where_values_are_not_saved():
    """where saves its condition only: writing into a value branch after the op is not an
    error (PyTorch agrees), and the gradient flows through the op's own record."""
    grads = []
    for L in (tinyfw, torch):
        x = _tensor(L, X, requires_grad=True)
        a = x * 2
        y = L.where(a > 0, a, _tensor(L, 0.0, dtype=a.dtype))
        a.add_(1)
        y.sum().backward()
        grads.append(x.grad)
    assert_close(grads[0], grads[1], "float64")


def test_returned_indices_written_before_a_second_backward():
    """retain_graph keeps the saved indices: a write between two backwards is caught by
    the second."""
    x = tinyfw.tensor(X, requires_grad=True, device=DEVICE)
    v, i = x.max(0)
    v.sum().backward(retain_graph=True)
    i.add_(1)
    with pytest.raises(RuntimeError, match="MaxDim: a tensor of shape \\(4,\\) needed for the "
                                           "gradient was modified"):
        v.sum().backward()
