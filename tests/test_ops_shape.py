"""Views (no copy) against PyTorch: reshape/view, flatten, permute, transpose, expand,
squeeze/unsqueeze, slicing with steps and negative indices, split/chunk/unbind; that they
share memory and version counters; gradcheck in float64."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import tinyfw
from tinyfw.backend import backend_of
from core_util import FLOAT_DTYPES, layouts, make, nonempty_shapes, seeds, shapes
from helpers import assert_close, requires_torch, torch


def _backward_both(p, out_tf, out_th, seed=0):
    g = np.random.default_rng(seed).standard_normal(tuple(out_th.shape))
    out_tf.backward(tinyfw.tensor(g, dtype=out_tf.dtype))
    out_th.backward(torch.tensor(g, dtype=out_th.dtype))
    assert_close(p.tf_leaf.grad, p.th_leaf.grad, out_tf.dtype.name)


def _shares_memory(view: tinyfw.Tensor, base: tinyfw.Tensor) -> bool:
    # the backend says which buffer an array views (any device)
    owner = [backend_of(t._data).memory_owner(t._data) for t in (view, base)]
    return owner[0] is owner[1]


@st.composite
def reshape_targets(draw):
    shape = draw(shapes)
    n = math.prod(shape)
    # a target: a random factorisation of n, possibly with one -1
    if n == 0:
        target = draw(st.sampled_from([(0,), (0, 3), (2, 0, 1), (-1,)]))
    else:
        target, rest = [], n
        for _ in range(draw(st.integers(0, 3))):
            divs = [d for d in range(1, rest + 1) if rest % d == 0]
            d = draw(st.sampled_from(divs))
            target.append(d)
            rest //= d
        target.append(rest)
        if draw(st.booleans()):
            target[draw(st.integers(0, len(target) - 1))] = -1
    return shape, tuple(target)


@requires_torch
@given(st_=reshape_targets(), layout=layouts, dtype=st.sampled_from(FLOAT_DTYPES), seed=seeds)
def test_reshape_vs_torch(st_, layout, dtype, seed):
    shape, target = st_
    p = make(shape, layout, dtype, seed, requires_grad=True)
    a, b = p.tf.reshape(*target), p.th.reshape(*target)
    assert a.shape == tuple(b.shape)
    assert_close(a, b, dtype)
    _backward_both(p, a * 2, b * 2, seed)


def test_reshape_and_view_are_views_when_contiguous():
    x = tinyfw.arange(12.0)
    for v in (x.view(3, 4), x.reshape(2, -1), x.view(2, 2, 3).flatten(), x.unsqueeze(0),
              x.view(1, 12).squeeze(0), x.view(3, 4).T, x.view(3, 4).transpose(0, 1),
              x.view(3, 4).permute(1, 0), x[2:8:2], x.view(3, 4)[:, -1], x.view(1, 12).expand(5, 12),
              x.narrow(0, 2, 3), x.view(3, 4).select(1, 2), x.view(3, 4).unbind(0)[1],
              x.split(5)[1], x.chunk(3)[2]):
        assert _shares_memory(v, x)
        assert v._version is x._version  # one counter for the storage
    t = tinyfw.arange(12.0).view(3, 4).T
    assert not t.is_contiguous()
    c = t.contiguous()
    assert c.is_contiguous() and not _shares_memory(c, t)
    assert c.contiguous() is c
    assert_close(c, t)


def test_view_of_non_contiguous_raises_and_reshape_copies():
    t = tinyfw.arange(12.0).view(3, 4).T
    with pytest.raises(RuntimeError, match="view: shape .* not compatible with the strides"):
        t.view(12)
    r = t.reshape(12)
    assert not _shares_memory(r, t)
    assert r.tolist() == t.contiguous().view(12).tolist()


@requires_torch
@given(shape=st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple), layout=layouts,
       seed=seeds, data=st.data())
def test_permute_transpose_flatten_vs_torch(shape, layout, seed, data):
    n = len(shape)
    perm = data.draw(st.permutations(range(n)))
    perm = [d - n if data.draw(st.booleans()) else d for d in perm]
    d0, d1 = data.draw(st.integers(-n, n - 1)), data.draw(st.integers(-n, n - 1))
    s, e = sorted([data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n - 1))])
    p = make(shape, layout, "float64", seed, requires_grad=True)
    for f in (lambda x: x.permute(*perm), lambda x: x.transpose(d0, d1),
              lambda x: x.flatten(s, e), lambda x: x.movedim(d0, d1)):
        a, b = f(p.tf), f(p.th)
        assert a.shape == tuple(b.shape)
        assert_close(a, b, "float64")
    p2 = make(shape, layout, "float64", seed, requires_grad=True)
    _backward_both(p2, p2.tf.permute(*perm).transpose(d0, d1).flatten(),
                   p2.th.permute(*perm).transpose(d0, d1).flatten(), seed)


@requires_torch
@given(shape=shapes, layout=layouts, seed=seeds, data=st.data())
def test_expand_squeeze_unsqueeze_vs_torch(shape, layout, seed, data):
    p = make(shape, layout, "float32", seed, requires_grad=True)
    n = len(shape)
    # a target shape that broadcasts: new leading dims, size-1 dims grown, -1 keeps a dim
    lead = data.draw(st.lists(st.integers(1, 3), max_size=2))
    tail = [data.draw(st.sampled_from([1, 3, -1])) if s == 1 else data.draw(st.sampled_from([s, -1]))
            for s in shape]
    target = tuple(lead + tail)
    a, b = p.tf.expand(*target), p.th.expand(target)
    assert_close(a, b)
    u = data.draw(st.integers(-n - 1, n))
    assert_close(p.tf.unsqueeze(u), p.th.unsqueeze(u))
    assert_close(p.tf.squeeze(), p.th.squeeze())
    if n:
        d = data.draw(st.integers(-n, n - 1))
        assert_close(p.tf.squeeze(d), p.th.squeeze(d))
        if d % n != 0:
            assert_close(p.tf.squeeze((0, d)), p.th.squeeze((0, d)))
    _backward_both(p, a.unsqueeze(u % (a.ndim + 1)).squeeze(), b.unsqueeze(u % (b.ndim + 1)).squeeze(), seed)
    assert_close(tinyfw.broadcast_to(p.tf, target), torch.broadcast_to(p.th, target))


@st.composite
def basic_index(draw, shape):
    """A basic index: ints (maybe negative), slices (any start/stop, positive steps), None,
    Ellipsis."""
    items, dims = [], list(shape)
    used_ellipsis = False
    k = draw(st.integers(0, len(dims)))
    for size in dims[:k]:
        kind = draw(st.sampled_from(["int", "slice", "slice", "none"] + ([] if used_ellipsis else ["ell"])))
        if kind == "int" and size > 0:
            items.append(draw(st.integers(-size, size - 1)))
        elif kind == "none":
            items.append(None)
            items.append(slice(None))
        elif kind == "ell":
            items.append(Ellipsis)
            used_ellipsis = True
            break
        else:
            start = draw(st.one_of(st.none(), st.integers(-size - 2, size + 2)))
            stop = draw(st.one_of(st.none(), st.integers(-size - 2, size + 2)))
            step = draw(st.one_of(st.none(), st.integers(1, 3)))
            items.append(slice(start, stop, step))
    return items[0] if len(items) == 1 and draw(st.booleans()) else tuple(items)


@requires_torch
@given(shape=shapes, layout=layouts, seed=seeds, data=st.data())
def test_basic_slicing_vs_torch(shape, layout, seed, data):
    idx = data.draw(basic_index(shape))
    p = make(shape, layout, "float64", seed, requires_grad=True)
    a, b = p.tf[idx], p.th[idx]
    assert a.shape == tuple(b.shape), idx
    assert_close(a, b, "float64")
    assert _shares_memory(a, p.tf_leaf) or a.numel() == 0
    _backward_both(p, a, b, seed)


@requires_torch
@given(shape=nonempty_shapes, seed=seeds, data=st.data())
def test_split_chunk_unbind_narrow_vs_torch(shape, seed, data):
    n = len(shape)
    d = data.draw(st.integers(-n, n - 1))
    size = shape[d]
    p = make(shape, "T", "float64", seed, requires_grad=True)
    k = data.draw(st.integers(1, size + 1))
    sections = data.draw(st.lists(st.integers(0, size), min_size=1, max_size=3))
    sections[-1] = size - sum(sections[:-1])
    assume(sections[-1] >= 0)
    cases = [(lambda x: x.split(k, d)), (lambda x: x.chunk(k, d)), (lambda x: x.unbind(d)),
             (lambda x: x.split(sections, d)), (lambda x: tinyfw.split(x, k, d) if isinstance(x, tinyfw.Tensor) else torch.split(x, k, d)),
             (lambda x: tinyfw.chunk(x, k, d) if isinstance(x, tinyfw.Tensor) else torch.chunk(x, k, d))]
    for f in cases:
        a, b = f(p.tf), f(p.th)
        assert len(a) == len(b)
        for u, v in zip(a, b):
            assert_close(u, v, "float64")
    start = data.draw(st.integers(0, size))
    length = data.draw(st.integers(0, size - start))
    assert_close(p.tf.narrow(d, start, length), p.th.narrow(d, start, length), "float64")
    # gradients flow from every piece back into the one leaf
    pieces_tf = p.tf.split(k, d)
    pieces_th = p.th.split(k, d)
    w = [float(i + 1) for i in range(len(pieces_tf))]
    sum(pc.sum() * wi for pc, wi in zip(pieces_tf, w)).backward()
    sum(pc.sum() * wi for pc, wi in zip(pieces_th, w)).backward()
    assert_close(p.tf_leaf.grad, p.th_leaf.grad, "float64")


def test_attributes_of_views():
    x = tinyfw.zeros(2, 3, 4)
    assert x.T.shape == (4, 3, 2)
    assert x.mT.shape == (2, 4, 3)
    assert x.permute(2, 0, 1).stride() == (1, 12, 4)
    assert x[:, ::2].stride() == (12, 8, 1)
    assert x.size() == (2, 3, 4) and x.size(-1) == 4 and x.ndim == 3 and x.dim() == 3
    assert x.numel() == 24 and x.view(-1).shape == (24,)
    assert tinyfw.zeros(3, 1).expand(3, 5).stride() == (1, 0)


GRADCHECK = {
    "reshape": lambda x: x.reshape(3, -1),
    "reshape_copy": lambda x: x.mT.reshape(-1),
    "view": lambda x: x.view(6, 2),
    "permute": lambda x: x.permute(2, 0, 1),
    "transpose": lambda x: x.transpose(0, 2),
    "T": lambda x: x.T,
    "flatten": lambda x: x.flatten(1),
    "expand": lambda x: x[:, :1].expand(2, 4, 2),
    "broadcast_to": lambda x: tinyfw.broadcast_to(x, (2, 2, 3, 2)),
    "squeeze": lambda x: x[:, :1].squeeze(1),
    "unsqueeze": lambda x: x.unsqueeze(-1),
    "slice": lambda x: x[1:, ::2, -1],
    "slice_none": lambda x: x[None, ..., 0],
    "narrow": lambda x: x.narrow(1, 1, 2),
    "select": lambda x: x.select(2, 0),
    "split": lambda x: x.split([1, 2], dim=1),
    "chunk": lambda x: x.chunk(2, 2),
    "unbind": lambda x: x.unbind(1),
    "contiguous": lambda x: x.mT.contiguous(),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK))
def test_view_gradcheck(name):
    x = make((2, 3, 2), "contig", "float64", 9, requires_grad=True).tf_leaf
    assert tinyfw.gradcheck(GRADCHECK[name], (x,))


@pytest.mark.parametrize("name", ["slice", "expand", "permute", "reshape_copy"])
def test_view_gradgradcheck(name):
    x = make((2, 3, 2), "contig", "float64", 9, requires_grad=True).tf_leaf
    assert tinyfw.gradgradcheck(lambda t: GRADCHECK[name](t) ** 2, (x,))
