"""Issue 16, shape part of the indexing family: views (as_strided, diagonal, swapaxes,
moveaxis, ravel, adjoint, slice_inverse) and composed shape ops (diag*, roll, rot90,
tile, repeat_interleave, kron, the splits, flips, narrow_copy), three ways
(tests/op_table.py), plus hypothesis over shapes and dims against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw
from helpers import from_np, npy, requires_torch, torch
from op_table import KINDS, OpCase, case_id, check, normal

I64 = np.int64


def _th(name):
    """torch.<name> looked up at call time (torch is optional)."""
    return lambda *a, **k: getattr(torch, name)(*a, **k)


CASES = [
    OpCase("diagonal", lambda x: x.diagonal(), lambda x: x.diagonal(), normal((3, 4))),
    OpCase("diagonal_offset_dims", lambda x: tinyfw.diagonal(x, -1, 2, 0),
           lambda x: torch.diagonal(x, -1, 2, 0), normal((3, 2, 4)), gradgrad=True),
    OpCase("diagonal_empty", lambda x: x.diagonal(5), lambda x: x.diagonal(5), normal((3, 4))),
    OpCase("diag_1d", lambda x: tinyfw.diag(x, 1), lambda x: torch.diag(x, 1), normal((3,))),
    OpCase("diag_2d", lambda x: x.diag(-1), lambda x: x.diag(-1), normal((3, 4))),
    OpCase("diag_embed", lambda x: x.diag_embed(), lambda x: x.diag_embed(), normal((2, 3)),
           gradgrad=True),
    OpCase("diag_embed_dims", lambda x: tinyfw.diag_embed(x, -2, 0, 2),
           lambda x: torch.diag_embed(x, -2, 0, 2), normal((2, 3))),
    OpCase("diagflat", lambda x: x.diagflat(1), lambda x: x.diagflat(1), normal((2, 2))),
    OpCase("as_strided", lambda x: x.as_strided((3, 2), (1, 2), 1),
           lambda x: x.as_strided((3, 2), (1, 2), 1), normal((2, 4)), gradgrad=True),
    OpCase("as_strided_overlap", lambda x: tinyfw.as_strided(x, (3, 3), (1, 1)),
           lambda x: torch.as_strided(x, (3, 3), (1, 1)), normal((6,))),
    OpCase("as_strided_of_view", lambda x: x[1:].as_strided((2, 2), (2, 1)),
           lambda x: x[1:].as_strided((2, 2), (2, 1)), normal((3, 2))),
    OpCase("swapaxes", lambda x: x.swapaxes(0, -1), lambda x: x.swapaxes(0, -1), normal((2, 3, 4))),
    OpCase("swapdims", lambda x: tinyfw.swapdims(x, 1, 2), lambda x: torch.swapdims(x, 1, 2),
           normal((2, 3, 4))),
    OpCase("moveaxis", lambda x: x.moveaxis(0, -1), lambda x: x.moveaxis(0, -1), normal((2, 3, 4))),
    OpCase("moveaxis_seq", lambda x: tinyfw.moveaxis(x, (0, 1), (2, 0)),
           lambda x: torch.moveaxis(x, (0, 1), (2, 0)), normal((2, 3, 4))),
    OpCase("ravel", lambda x: x.ravel(), lambda x: x.ravel(), normal((2, 3))),
    OpCase("ravel_t", lambda x: x.t().ravel(), lambda x: x.t().ravel(), normal((2, 3))),
    OpCase("adjoint", lambda x: x.adjoint(), lambda x: x.adjoint(), normal((2, 3, 4))),
    OpCase("roll", lambda x: x.roll(2), lambda x: x.roll(2), normal((3, 4))),
    OpCase("roll_dims", lambda x: tinyfw.roll(x, (-1, 5), (1, 0)),
           lambda x: torch.roll(x, (-1, 5), (1, 0)), normal((3, 4))),
    OpCase("rot90", lambda x: x.rot90(), lambda x: x.rot90(), normal((2, 3))),
    OpCase("rot90_k", lambda x: tinyfw.rot90(x, -1, (2, 0)), lambda x: torch.rot90(x, -1, (2, 0)),
           normal((2, 3, 4))),
    OpCase("rot90_2", lambda x: x.rot90(2, (1, 0)), lambda x: x.rot90(2, (1, 0)), normal((2, 3))),
    OpCase("fliplr", lambda x: x.fliplr(), lambda x: x.fliplr(), normal((2, 3))),
    OpCase("flipud", lambda x: tinyfw.flipud(x), lambda x: torch.flipud(x), normal((2, 3))),
    OpCase("tile", lambda x: x.tile((2, 1, 3)), lambda x: x.tile((2, 1, 3)), normal((2, 3))),
    OpCase("tile_short", lambda x: tinyfw.tile(x, (2,)), lambda x: torch.tile(x, (2,)),
           normal((2, 3))),
    OpCase("repeat_interleave", lambda x: x.repeat_interleave(2, 1),
           lambda x: x.repeat_interleave(2, 1), normal((2, 3))),
    OpCase("repeat_interleave_flat", lambda x: tinyfw.repeat_interleave(x, 3),
           lambda x: torch.repeat_interleave(x, 3), normal((2, 2))),
    OpCase("repeat_interleave_tensor", lambda x, r: x.repeat_interleave(r, 0, output_size=5),
           lambda x, r: x.repeat_interleave(r, 0, output_size=5),
           lambda rng, dt: [rng.standard_normal((3, 2)).astype(dt), np.array([2, 0, 3], I64)]),
    OpCase("kron", lambda a, b: a.kron(b), lambda a, b: a.kron(b), normal((2, 3), (3, 2)),
           gradgrad=True),
    OpCase("kron_ndim", lambda a, b: tinyfw.kron(a, b), lambda a, b: torch.kron(a, b),
           normal((2,), (2, 3, 2))),
    OpCase("tensor_split_sections", lambda x: x.tensor_split(3, 1),
           lambda x: x.tensor_split(3, 1), normal((2, 7))),
    OpCase("tensor_split_indices", lambda x: tinyfw.tensor_split(x, [1, -1, 9]),
           lambda x: torch.tensor_split(x, [1, -1, 9]), normal((5, 2))),
    OpCase("hsplit", lambda x: x.hsplit(2), lambda x: x.hsplit(2), normal((2, 4))),
    OpCase("hsplit_1d", lambda x: tinyfw.hsplit(x, [1, 3]), lambda x: torch.hsplit(x, [1, 3]),
           normal((5,))),
    OpCase("vsplit", lambda x: x.vsplit([2]), lambda x: x.vsplit([2]), normal((3, 2))),
    OpCase("dsplit", lambda x: tinyfw.dsplit(x, 2), lambda x: torch.dsplit(x, 2), normal((1, 2, 4))),
    OpCase("split_with_sizes", lambda x: x.split_with_sizes([1, 3], -1),
           lambda x: x.split_with_sizes([1, 3], -1), normal((2, 4))),
    OpCase("narrow_copy", lambda x: x.narrow_copy(1, 1, 2), lambda x: x.narrow_copy(1, 1, 2),
           normal((2, 4))),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)


def _shares(a: tinyfw.Tensor, b: tinyfw.Tensor) -> bool:
    B = a._data.backend if hasattr(a._data, "backend") else None
    from tinyfw.backend import backend_of

    B = backend_of(a._data)
    return B.memory_owner(a._data) is B.memory_owner(b._data)


VIEWS = {
    "diagonal": lambda x: x.diagonal(1),
    "swapaxes": lambda x: x.swapaxes(0, 1),
    "swapdims": lambda x: x.swapdims(0, 1),
    "moveaxis": lambda x: x.moveaxis(1, 0),
    "ravel": lambda x: x.ravel(),
    "adjoint": lambda x: x.adjoint(),
    "as_strided": lambda x: x.as_strided((2, 2), (1, 4)),
    "tensor_split": lambda x: x.tensor_split(2, 1)[1],
    "hsplit": lambda x: x.hsplit(2)[0],
    "split_with_sizes": lambda x: x.split_with_sizes([1, 2])[1],
}


@requires_torch
@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_share_memory_as_in_torch(name):
    """A write into the base shows in the view (and the view is a view in PyTorch too)."""
    base = np.arange(12.0).reshape(3, 4)
    xt = torch.from_numpy(base.copy())
    vt = VIEWS[name](xt)
    assert vt._base is xt or vt.untyped_storage().data_ptr() == xt.untyped_storage().data_ptr()
    x = from_np(base.copy())
    v = VIEWS[name](x)
    assert _shares(v, x)
    with tinyfw.no_grad():
        x.mul_(-1)
    xt.mul_(-1)
    np.testing.assert_array_equal(npy(v), vt.numpy())


@requires_torch
def test_copies_do_not_share_memory():
    x = from_np(np.arange(12.0).reshape(3, 4))
    for name, f in {"diag": lambda x: x.diag(), "narrow_copy": lambda x: x.narrow_copy(0, 0, 2),
                    "ravel_t": lambda x: x.t().ravel(), "roll": lambda x: x.roll(0)}.items():
        assert not _shares(f(x), x), name


def test_view_backward_flows_through_writes():
    """A write through a diagonal view reaches the base's gradient as in PyTorch."""
    a = np.random.default_rng(0).standard_normal((3, 3))
    x = from_np(a.copy()).requires_grad_()
    y = x * 1
    y.diagonal().mul_(2)
    y.sum().backward()
    want = np.ones((3, 3)) + np.eye(3)
    np.testing.assert_allclose(npy(x.grad), want)


# -- hypothesis: shapes and dims against PyTorch ------------------------------------------
shapes = st.lists(st.integers(0, 4), min_size=2, max_size=4).map(tuple)


@requires_torch
@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(-5, 5), st.data())
def test_diagonal_and_embed_match_torch(shape, offset, data):
    nd = len(shape)
    d1 = data.draw(st.integers(-nd, nd - 1))
    d2 = data.draw(st.integers(-nd, nd - 1).filter(lambda d: d % nd != d1 % nd))
    a = np.random.default_rng(0).standard_normal(shape)
    got = tinyfw.diagonal(from_np(a), offset, d1, d2)
    want = torch.diagonal(torch.from_numpy(a), offset, d1, d2)
    assert got.shape == tuple(want.shape)
    np.testing.assert_array_equal(npy(got), want.numpy())
    back = tinyfw.diagonal_scatter(from_np(np.zeros(shape)), got, offset, d1, d2)
    np.testing.assert_array_equal(npy(back), torch.zeros(shape, dtype=torch.float64)
                                  .diagonal_scatter(want, offset, d1, d2).numpy())
    e = tinyfw.diag_embed(got, offset, d1, d2)
    np.testing.assert_array_equal(npy(e), torch.diag_embed(want, offset, d1, d2).numpy())


@requires_torch
@settings(max_examples=40, deadline=None)
@given(shapes, st.data())
def test_roll_tile_split_match_torch(shape, data):
    a = np.random.default_rng(1).standard_normal(shape)
    x, t = from_np(a), torch.from_numpy(a)
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    shift = data.draw(st.integers(-6, 6))
    np.testing.assert_array_equal(npy(x.roll(shift, dim)), t.roll(shift, dim).numpy())
    reps = tuple(data.draw(st.lists(st.integers(0, 2), min_size=1, max_size=4)))
    np.testing.assert_array_equal(npy(x.tile(reps)), t.tile(reps).numpy())
    k = data.draw(st.integers(1, 5))
    for p, q in zip(x.tensor_split(k, dim), t.tensor_split(k, dim)):
        np.testing.assert_array_equal(npy(p), q.numpy())
    idx = data.draw(st.lists(st.integers(-6, 6), max_size=3))
    got, want = x.tensor_split(idx, dim), t.tensor_split(idx, dim)
    assert len(got) == len(want)
    for p, q in zip(got, want):
        np.testing.assert_array_equal(npy(p), q.numpy())
    r = data.draw(st.integers(0, 3))
    np.testing.assert_array_equal(npy(x.repeat_interleave(r, dim)),
                                  t.repeat_interleave(r, dim).numpy())


@requires_torch
@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple),
       st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple))
def test_kron_matches_torch(sa, sb):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    np.testing.assert_allclose(npy(tinyfw.kron(from_np(a), from_np(b))),
                               torch.kron(torch.from_numpy(a), torch.from_numpy(b)).numpy(),
                               rtol=0, atol=0)


# -- function forms and in-place ones -------------------------------------------------------
def test_function_forms_of_methods():
    x = tinyfw.ones(2, 3, requires_grad=True)
    y = x * 2
    assert tinyfw.detach(y).grad_fn is None and not tinyfw.detach(y).requires_grad
    z = y * 1
    assert tinyfw.detach_(z) is z and z.grad_fn is None
    w = tinyfw.zeros(2, 2)
    assert tinyfw.fill_(w, 3.5) is w and npy(w).tolist() == [[3.5, 3.5]] * 2
    assert tinyfw.zero_(w) is w and not npy(w).any()


@requires_torch
def test_resize_as_keeps_the_leading_elements_as_torch():
    a = np.arange(6.0)
    x, t = from_np(a.copy()), torch.from_numpy(a.copy())
    x.resize_as_(tinyfw.zeros(2, 2))
    t.resize_as_(torch.zeros(2, 2))
    np.testing.assert_array_equal(npy(x), t.numpy())
    x.resize_as_(tinyfw.zeros(3, 2))  # grows: the first 4 kept (the rest is uninitialised)
    assert x.shape == (3, 2) and npy(x).reshape(-1)[:4].tolist() == [0, 1, 2, 3]
    with pytest.raises(RuntimeError, match="resize_as_: cannot resize a tensor that requires grad"):
        tinyfw.ones(2, requires_grad=True).resize_as_(tinyfw.zeros(3))


@requires_torch
def test_as_strided_storage_offset_and_inplace():
    base = np.arange(10.0)
    x, t = from_np(base.copy()), torch.from_numpy(base.copy())
    v, vt = x[2:], t[2:]
    assert v.storage_offset() == vt.storage_offset() == 2
    np.testing.assert_array_equal(npy(v.as_strided((2, 2), (3, 1), 1)),
                                  vt.as_strided((2, 2), (3, 1), 1).numpy())
    np.testing.assert_array_equal(npy(v.as_strided((3,), (2,))), vt.as_strided((3,), (2,)).numpy())
    w, wt = from_np(base.copy()), torch.from_numpy(base.copy())
    assert w.as_strided_((2, 3), (3, 1), 2) is w
    wt.as_strided_((2, 3), (3, 1), 2)
    np.testing.assert_array_equal(npy(w), wt.numpy())
    # slice_inverse: the slice's memory seen with the geometry of the tensor it was cut from
    s, st_ = x[:, None][3:], t[:, None][3:]
    np.testing.assert_array_equal(npy(tinyfw.slice_inverse(s, x[:, None], 0, 3)),
                                  torch.slice_inverse(st_, t[:, None], 0, 3).numpy())
