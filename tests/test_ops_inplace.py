"""In-place ops against PyTorch: values, aliasing through views, version counters, dtype
rules, and gradients through rebased history."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from helpers import assert_close, npy, requires_torch, torch

OPS = {
    "add_": lambda t, o: t.add_(o), "sub_": lambda t, o: t.sub_(o), "mul_": lambda t, o: t.mul_(o),
    "div_": lambda t, o: t.div_(o), "pow_": lambda t, o: t.abs_().pow_(o),
    "clamp_": lambda t, o: t.clamp_(-0.3, 0.4), "neg_": lambda t, o: t.neg_(),
    "exp_": lambda t, o: t.exp_(), "sqrt_": lambda t, o: t.abs_().sqrt_(),
    "relu_": lambda t, o: t.relu_(), "sigmoid_": lambda t, o: t.sigmoid_(),
    "tanh_": lambda t, o: t.tanh_(), "zero_": lambda t, o: t.zero_(),
    "fill_": lambda t, o: t.fill_(2.5), "copy_": lambda t, o: t.copy_(o),
    "iadd": lambda t, o: t.__iadd__(o), "imul": lambda t, o: t.__imul__(o),
    "isub": lambda t, o: t.__isub__(o), "idiv": lambda t, o: t.__itruediv__(o),
    "masked_fill_": lambda t, o: t.masked_fill_(o > 0, -1.0),
    "maximum_via_clamp_min": lambda t, o: t.clamp_(min=0.0),
}


@requires_torch
@pytest.mark.parametrize("name", sorted(OPS))
def test_inplace_values_and_views_vs_torch(name):
    a = np.random.default_rng(0).standard_normal((3, 4))
    o = np.random.default_rng(1).standard_normal(4) + 2.0
    ta, pa = tinyfw.tensor(a), torch.tensor(a)
    tv, pv = ta[:, 1:], pa[:, 1:]  # write through a strided view; the base must see it
    r1 = OPS[name](tv, tinyfw.tensor(o[1:]))
    r2 = OPS[name](pv, torch.tensor(o[1:]))
    assert r1 is tv  # in-place ops return self
    assert_close(ta, pa, "float64")
    assert ta._version[0] >= 1 and tv._version is ta._version


@requires_torch
@pytest.mark.parametrize("name", ["add_", "mul_", "div_", "sigmoid_", "copy_", "fill_", "zero_",
                                  "clamp_", "masked_fill_"])
def test_inplace_gradients_vs_torch(name):
    a = np.random.default_rng(0).standard_normal((3, 4))
    o = np.random.default_rng(1).standard_normal(4) + 2.0
    tx, px = tinyfw.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    to, po = tinyfw.tensor(o, requires_grad=True), torch.tensor(o, requires_grad=True)
    ty, py = tx * 1.5, px * 1.5
    OPS[name](ty, to)
    OPS[name](py, po)
    (ty * ty).sum().backward()
    (py * py).sum().backward()
    assert_close(tx.grad, px.grad, "float64")
    if po.grad is not None:
        assert_close(to.grad, po.grad, "float64")


def test_inplace_dtype_rules():
    i = tinyfw.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="result type float32 cannot be cast.*int64"):
        i.add_(0.5)
    i.add_(2)  # same category is fine
    assert i.tolist() == [3, 4, 5] and i.dtype is tinyfw.int64
    f = tinyfw.tensor([1.0, 2.0])
    f.add_(tinyfw.tensor([1, 1]))  # int into float is fine
    assert f.tolist() == [2.0, 3.0] and f.dtype is tinyfw.float32
    h = tinyfw.tensor([1.0, 2.0], dtype="float16")
    h.mul_(tinyfw.tensor([2.0, 2.0], dtype="float64"))  # a wider float is rounded down, as torch
    assert h.dtype is tinyfw.float16 and h.tolist() == [2.0, 4.0]


def test_inplace_broadcast_rules():
    x = tinyfw.zeros(2, 3)
    x.add_(tinyfw.ones(3))
    with pytest.raises(RuntimeError, match=r"add_: the result's shape \(4, 2, 3\).*\(2, 3\)"):
        x.add_(tinyfw.ones(4, 1, 1))
    with pytest.raises(RuntimeError, match="read-only"):
        tinyfw.zeros(1, 3).expand(2, 3).add_(1)


def test_uniform_normal_fill_are_seeded_and_in_place():
    x = tinyfw.empty(1000)
    tinyfw.manual_seed(3)
    x.uniform_(-2, 3)
    v = npy(x).copy()
    assert v.min() >= -2 and v.max() < 3 and x._version[0] == 1
    tinyfw.manual_seed(3)
    x.uniform_(-2, 3)
    assert np.array_equal(v, npy(x))
    x.normal_(1.0, 0.5)
    assert abs(npy(x).mean() - 1.0) < 0.1 and abs(npy(x).std() - 0.5) < 0.1


def test_setitem_bumps_version_and_writes_through_views():
    x = tinyfw.zeros(3, 4)
    v = x[1]
    x[1, tinyfw.tensor([0, 3])] = tinyfw.tensor([5.0, 6.0])
    assert v.tolist() == [5.0, 0.0, 0.0, 6.0]
    assert x._version[0] == 1
    v[2] = 7.0
    assert x[1, 2].item() == 7.0 and x._version[0] == 2
    x[x > 5] = -1.0
    assert x.tolist()[1] == [5.0, 0.0, -1.0, -1.0]
    x[...] = tinyfw.arange(4.0)
    assert x.tolist()[2] == [0.0, 1.0, 2.0, 3.0]


SETITEM_CASES = [  # (index builder taking the library, value builder)
    (lambda L: 1, lambda L: 2.5), (lambda L: (slice(None), 2), lambda L: -1),
    (lambda L: (Ellipsis, slice(1, 3)), lambda L: L.tensor([7.0, 8.0])),
    (lambda L: (0, slice(None, None, 2)), lambda L: L.tensor([[1.0, 2.0]])),  # a leading 1
    (lambda L: L.tensor([2, 0]), lambda L: L.tensor([1.0, 2.0, 3.0, 4.0])),
    (lambda L: (L.tensor([0, 1, 1]), L.tensor([3, 0, 0])), lambda L: 9.0),
    (lambda L: (slice(1, None), L.tensor([1, 3])), lambda L: L.tensor([[5.0], [6.0]])),
    (lambda L: L.tensor([[True, False, True, False], [False] * 4, [True] * 4]), lambda L: 0.5),
    (lambda L: L.tensor([False, True, True]), lambda L: L.tensor([-3.0, -4.0, -5.0, -6.0])),
    (lambda L: [0, 2], lambda L: 3), (lambda L: (None, 1, slice(None)), lambda L: 4.0),
]


@requires_torch
@pytest.mark.parametrize("case", range(len(SETITEM_CASES)))
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_setitem_without_grad_vs_torch(case, dtype):
    """x[index] = value written by the backend in x's memory (any device), seen through a
    view taken before, for basic, integer, bool and mixed indices."""
    index, value = SETITEM_CASES[case]
    x = tinyfw.arange(12, dtype=dtype).reshape(3, 4)
    view = x[1:]
    t = torch.arange(12, dtype=getattr(torch, dtype)).reshape(3, 4)
    v, w = value(tinyfw), value(torch)
    if isinstance(w, torch.Tensor):  # PyTorch's index_put wants the destination's dtype
        v, w = v.to(x.dtype), w.to(t.dtype)
    x[index(tinyfw)] = v
    t[index(torch)] = w
    np.testing.assert_array_equal(npy(x), t.numpy())
    np.testing.assert_array_equal(npy(view), t[1:].numpy())
    assert x._version[0] == 1


def test_index_put_accumulate_and_scatter_add_inplace_vs_numpy():
    x = tinyfw.zeros(5)
    x.index_put_((tinyfw.tensor([0, 0, 3]),), tinyfw.tensor([1.0, 2.0, 3.0]), accumulate=True)
    assert x.tolist() == [3.0, 0.0, 0.0, 3.0, 0.0]
    y = tinyfw.zeros(2, 3)
    y.scatter_add_(1, tinyfw.tensor([[0, 0], [2, 1]]), tinyfw.ones(2, 2))
    assert y.tolist() == [[2.0, 0.0, 0.0], [0.0, 1.0, 1.0]]
