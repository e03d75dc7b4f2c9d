"""Negative and out-of-range indices (issue 14, item 8): gather, scatter, scatter_add and
index_select refuse them with an error naming the op, as PyTorch does (PyTorch raises
for negative indices there; before the fix tinyfw wrapped them, Python style, and
returned numbers).  Indexing with x[idx] and index_put keep wrapping negatives: PyTorch
does too."""
from __future__ import annotations

import pytest

import tinyfw
from helpers import DEVICE, requires_torch, torch


def _t(L, data, **kw):
    return tinyfw.tensor(data, device=DEVICE, **kw) if L is tinyfw else torch.tensor(data, **kw)


def _x(L):
    return _t(L, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])


OPS = {
    "gather": lambda L, i: _x(L).gather(1, _t(L, [[i, 0], [0, 1]])),
    "scatter": lambda L, i: _x(L).scatter(1, _t(L, [[i, 0], [0, 1]]), _x(L)[:, :2]),
    "scatter_add": lambda L, i: _x(L).scatter_add(1, _t(L, [[i, 0], [0, 1]]), _x(L)[:, :2]),
    "index_select": lambda L, i: _x(L).index_select(1, _t(L, [i, 0])),
}


@requires_torch
@pytest.mark.parametrize("bad", [-1, -3, -4, 3, 7])
@pytest.mark.parametrize("op", sorted(OPS))
def test_bad_index_refused_like_torch(op, bad):
    with pytest.raises((RuntimeError, IndexError)):
        OPS[op](torch, bad)
    with pytest.raises(IndexError, match=f"{op}: index {bad} is out of bounds for dim 1"):
        OPS[op](tinyfw, bad)


@pytest.mark.parametrize("op", sorted(OPS))
def test_refused_before_recording(op):
    """The refusal comes before the op runs: no partial write, with or without autograd."""
    x = _x(tinyfw).requires_grad_()
    with pytest.raises(IndexError, match=op):
        {"gather": lambda: x.gather(1, _t(tinyfw, [[-1, 0], [0, 1]])),
         "scatter": lambda: x.scatter(1, _t(tinyfw, [[-1, 0], [0, 1]]), x[:, :2]),
         "scatter_add": lambda: x.scatter_add(1, _t(tinyfw, [[-1, 0], [0, 1]]), x[:, :2]),
         "index_select": lambda: x.index_select(1, _t(tinyfw, [-1]))}[op]()
    assert x.grad is None


@requires_torch
@pytest.mark.parametrize("i", [0, 2])
@pytest.mark.parametrize("op", sorted(OPS))
def test_in_range_indices_match_torch(op, i):
    a, b = OPS[op](tinyfw, i), OPS[op](torch, i)
    assert a.cpu().tolist() == b.tolist()


@requires_torch
def test_getitem_and_index_put_still_wrap_negatives_like_torch():
    got = [(_x(L)[_t(L, [-1, 0])].cpu().tolist(),
            _x(L).index_put((_t(L, [-1]),), _t(L, 9.0)).cpu().tolist()) for L in (tinyfw, torch)]
    assert got[0] == got[1]
