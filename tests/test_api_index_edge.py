"""Issue 16, indexing family: edge cases against PyTorch — integer fancy indexing that
collapses a dim (integers select before the advanced indices, as in PyTorch), list
indices, empty tensors, negative dims/indices, NaN in the scatter reductions, integer
dtypes — and the error messages of bad input."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinyfw
from helpers import from_np, npy, requires_torch, torch

pytestmark = requires_torch

X = np.arange(120.0).reshape(2, 3, 4, 5)


def _T(v):
    return torch.tensor(v)


def _F(v):
    return tinyfw.tensor(np.array(v))


# each: index built from a tensor maker m (torch.tensor or tinyfw.tensor)
INDICES = {
    "int_slice_list": lambda m: (0, slice(None), [1, 2]),
    "slice_int_slice_list": lambda m: (slice(None), 0, slice(None), [1, 2]),
    "0d_tensor_slice_list": lambda m: (m(1), slice(None), [0, 2]),
    "list_int_list": lambda m: ([0, 1], 1, [1, 2]),
    "int_list_list": lambda m: (1, [0, 1], [1, 2]),
    "list_slice_int": lambda m: ([0, 1], slice(None), 0),
    "list_slice_slice_int": lambda m: (slice(None), [0, 2], slice(None), 3),
    "ellipsis_int_list": lambda m: (Ellipsis, 0, [1]),
    "int_ellipsis_list": lambda m: (0, Ellipsis, [1]),
    "none_int_slice_list": lambda m: (None, 0, slice(None), [1]),
    "int_mask": lambda m: (0, m([[True, False, True, False]] * 3)),
    "list_mask_int": lambda m: ([0, 1], m([True, False, True]), 0),
    "mask_int": lambda m: (m([True, False]), 0),
    "slice_mask_int": lambda m: (slice(None), m([True, False, True]), 1),
    "0d_tensor_then_slice": lambda m: (m(1), slice(1, None)),
    "0d_tensors_only": lambda m: (m(1), m(2)),
    "nested_list": lambda m: [[0, 1]],
    "list_of_lists": lambda m: [[0, 1], [1, 2]],
    "empty_list": lambda m: [],
    "slice_empty_list": lambda m: (slice(None), []),
    "x_0": lambda m: [0],
    "slice_list1": lambda m: (slice(None), [1]),
    "0d_tensor": lambda m: m(1),
    "2d_index_slice_1d": lambda m: (m([[0], [1]]), slice(None), m([0, 1, 2])),
    "negative_list": lambda m: (slice(None), [-1, 0], -2),
    # an Ellipsis standing for no dim does not separate index tensors (numpy's rule does)
    "list_empty_ellipsis_list_int": lambda m: (slice(None), m([-3, 1]), Ellipsis, m([-4]), m(4)),
    "list_empty_ellipsis_list": lambda m: (slice(None), [0, 2], Ellipsis, [1], slice(None)),
    "0d_slice_mask_ellipsis_list": lambda m: (m(0), slice(0, None), m([True, False, True, False]),
                                               Ellipsis, m([-2, -1])),
    "bool_scalar_list": lambda m: (True, [0, 1]),
}


@pytest.mark.parametrize("name", sorted(INDICES))
def test_getitem_matches_torch(name):
    # PyTorch 2.13 warns for lists indexing like tuples (its legacy rule, which it keeps)
    t, f = torch.from_numpy(X.copy()), from_np(X.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = t[INDICES[name](_T)]
    got = f[INDICES[name](_F)]
    assert got.shape == tuple(want.shape), f"{name}: {got.shape} vs {tuple(want.shape)}"
    np.testing.assert_array_equal(npy(got), want.numpy())


@pytest.mark.parametrize("name", sorted(INDICES))
@pytest.mark.parametrize("grad", [False, True])
def test_setitem_and_gradient_match_torch(name, grad):
    t = torch.from_numpy(X.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shape = t[INDICES[name](_T)].shape
        v = np.random.default_rng(0).standard_normal(tuple(shape))
        t[INDICES[name](_T)] = torch.from_numpy(v)
    f = from_np(X.copy())
    if grad:
        leaf = from_np(X.copy()).requires_grad_()
        f = leaf * 1
        vf = from_np(v.copy()).requires_grad_()
        f[INDICES[name](_F)] = vf
        (f * f).sum().backward()
        tt = torch.from_numpy(X.copy()).requires_grad_()
        ft = tt * 1
        vt = torch.from_numpy(v.copy()).requires_grad_()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ft[INDICES[name](_T)] = vt
        (ft * ft).sum().backward()
        np.testing.assert_array_equal(npy(leaf.grad), tt.grad.numpy())
        np.testing.assert_array_equal(npy(vf.grad), vt.grad.numpy())
    else:
        f[INDICES[name](_F)] = from_np(v)
    np.testing.assert_array_equal(npy(f), t.numpy())


def test_getitem_backward_with_collapsed_dim():
    x = from_np(X.copy()).requires_grad_()
    t = torch.from_numpy(X.copy()).requires_grad_()
    g = np.random.default_rng(1).standard_normal((3, 2, 5))
    (x[0, :, [1, 2]] * from_np(g)).sum().backward()
    (t[0, :, [1, 2]] * torch.from_numpy(g)).sum().backward()
    np.testing.assert_array_equal(npy(x.grad), t.grad.numpy())


# -- scatter reductions: NaN, empty, integer dtypes, negative dims --------------------------
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_nan_and_ints(reduce, include_self):
    x = np.array([[1.0, np.nan, 3.0, -0.0], [4.0, 5.0, 6.0, 7.0]])
    idx = np.array([[0, 0, 1, 3], [1, 2, 2, 0]])
    src = np.array([[np.nan, 2.0, 0.0, 1.0], [3.0, -1.0, np.inf, 2.0]])
    for dt in (np.float64, np.float32, np.int64, np.int32):
        xv, sv = np.nan_to_num(x).astype(dt), np.nan_to_num(src, posinf=9).astype(dt)
        if dt in (np.float64, np.float32):
            xv, sv = x.astype(dt), src.astype(dt)
        got = from_np(xv).scatter_reduce(-1, from_np(idx), from_np(sv), reduce,
                                         include_self=include_self)
        want = torch.from_numpy(xv).scatter_reduce(-1, torch.from_numpy(idx), torch.from_numpy(sv),
                                                   reduce, include_self=include_self)
        np.testing.assert_array_equal(npy(got), want.numpy(), err_msg=f"{dt}")


def test_empty_tensors_match_torch():
    e = np.zeros((0, 3))
    ie = np.zeros((0, 3), np.int64)
    f, t = from_np(e), torch.from_numpy(e)
    for name, ff, ft in [
        ("scatter_reduce", lambda x: x.scatter_reduce(0, from_np(ie), x, "amax"),
         lambda x: x.scatter_reduce(0, torch.from_numpy(ie), x, "amax")),
        ("index_add", lambda x: x.index_add(1, from_np(np.zeros(0, np.int64)), from_np(np.zeros((0, 0)))),
         lambda x: x.index_add(1, torch.zeros(0, dtype=torch.int64), torch.zeros(0, 0, dtype=torch.float64))),
        ("take", lambda x: tinyfw.take(x, from_np(np.zeros((2, 0), np.int64))),
         lambda x: torch.take(x, torch.zeros(2, 0, dtype=torch.int64))),
        ("diag_embed", lambda x: x.diag_embed(), lambda x: x.diag_embed()),
        ("roll", lambda x: x.roll(2, 0), lambda x: x.roll(2, 0)),
        ("tile", lambda x: x.tile((2, 2)), lambda x: x.tile((2, 2))),
        ("repeat_interleave", lambda x: x.repeat_interleave(2, 1), lambda x: x.repeat_interleave(2, 1)),
        ("tensor_split", lambda x: x.tensor_split(2, 0)[1], lambda x: x.tensor_split(2, 0)[1]),
        ("diagonal", lambda x: x.diagonal(), lambda x: x.diagonal()),
        ("kron", lambda x: tinyfw.kron(x, x), lambda x: torch.kron(x, x)),
    ]:
        got, want = ff(f), ft(t)
        assert got.shape == tuple(want.shape), name


def test_index_family_int_dtypes_match_torch():
    x = np.arange(12, dtype=np.int64).reshape(3, 4)
    idx = np.array([2, 0, 2])
    src = np.arange(12, dtype=np.int64).reshape(3, 4) - 5
    f, t = from_np(x), torch.from_numpy(x)
    fi, ti = from_np(idx), torch.from_numpy(idx)
    for red in ("prod", "mean", "amax", "amin"):
        np.testing.assert_array_equal(
            npy(f.index_reduce(0, fi, from_np(src), red, include_self=False)),
            t.index_reduce(0, ti, torch.from_numpy(src), red, include_self=False).numpy())
    np.testing.assert_array_equal(npy(f.index_add(0, fi, from_np(src), alpha=3)),
                                  t.index_add(0, ti, torch.from_numpy(src), alpha=3).numpy())
    np.testing.assert_array_equal(npy(f.index_fill(1, fi, -7)), t.index_fill(1, ti, -7).numpy())
    np.testing.assert_array_equal(npy(f.put(fi, from_np(idx), accumulate=True)),
                                  t.put(ti, torch.from_numpy(idx), accumulate=True).numpy())


def test_inplace_variants_write_into_the_tensor():
    x = from_np(np.zeros((3, 2)))
    idx = from_np(np.array([0, 2, 0]))
    assert x.index_add_(0, idx, from_np(np.ones((3, 2)))) is x
    np.testing.assert_array_equal(npy(x), [[2, 2], [0, 0], [1, 1]])
    x.index_fill_(1, from_np(np.array([1])), 5.0)
    x.scatter_reduce_(0, from_np(np.array([[1, 1]])), from_np(np.array([[3.0, 4.0]])), "amax")
    np.testing.assert_array_equal(npy(x), [[2, 5], [3, 5], [1, 5]])
    m = from_np(np.array([[True, False]] * 3))
    x.masked_scatter_(m, from_np(np.array([7.0, 8.0, 9.0])))
    np.testing.assert_array_equal(npy(x)[:, 0], [7, 8, 9])
    x.put_(from_np(np.array([5])), from_np(np.array([-1.0])))
    x.index_copy_(0, from_np(np.array([1])), from_np(np.array([[0.5, 0.5]])))
    x.index_reduce_(0, from_np(np.array([0])), from_np(np.array([[2.0, 2.0]])), "prod")
    np.testing.assert_array_equal(npy(x), [[14, 10], [0.5, 0.5], [9, -1]])


# -- errors ------------------------------------------------------------------------------------
ERRORS = [
    (lambda: tinyfw.zeros(3).scatter_reduce(0, tinyfw.tensor([3]), tinyfw.ones(1), "sum"),
     IndexError, "scatter_reduce: index 3 is out of bounds for dim 0 with size 3"),
    (lambda: tinyfw.zeros(3).scatter_reduce(0, tinyfw.tensor([0]), tinyfw.ones(1), "max"),
     RuntimeError, "scatter_reduce: reduce argument must be one of"),
    (lambda: tinyfw.zeros(3).scatter_reduce(0, tinyfw.tensor([0]), tinyfw.ones(1, dtype=tinyfw.float64), "sum"),
     RuntimeError, "scatter_reduce: expected self and source to have the same dtype"),
    (lambda: tinyfw.zeros(3, 2).index_add(0, tinyfw.tensor([0, 1]), tinyfw.ones(3, 2)),
     RuntimeError, r"index_add: source of shape \(3, 2\) does not match"),
    (lambda: tinyfw.zeros(3).index_add(0, tinyfw.tensor([[0]]), tinyfw.ones(1)),
     IndexError, "index_add: index should have 1 dimension or less"),
    (lambda: tinyfw.zeros(3).index_copy(0, tinyfw.tensor([-1]), tinyfw.ones(1)),
     IndexError, "index_copy: index -1 is out of bounds"),
    (lambda: tinyfw.zeros(3).index_fill(0, tinyfw.tensor([3]), 1.0),
     IndexError, "index_fill: index 3 is out of bounds for dim 0 with size 3"),
    (lambda: tinyfw.zeros(3).index_reduce(0, tinyfw.tensor([0]), tinyfw.ones(1), "sum"),
     RuntimeError, "index_reduce: reduce argument must be one of prod, mean, amax or amin"),
    (lambda: tinyfw.take(tinyfw.zeros(2, 2), tinyfw.tensor([4])),
     IndexError, "take: index 4 out of range for tensor of size 4"),
    (lambda: tinyfw.zeros(4).put(tinyfw.tensor([0, 1]), tinyfw.ones(3)),
     RuntimeError, "put: expected source and index to have the same number of elements"),
    (lambda: tinyfw.zeros(4).masked_scatter(tinyfw.ones(4, dtype=tinyfw.bool), tinyfw.ones(2)),
     RuntimeError, "masked_scatter: the mask selects 4 elements but source has only 2"),
    (lambda: tinyfw.take_along_dim(tinyfw.zeros(2, 2), tinyfw.tensor([[2]]), 1),
     IndexError, "take_along_dim: index 2 is out of bounds for dim 1 with size 2"),
    (lambda: tinyfw.zeros(2, 3).select_scatter(tinyfw.zeros(1, 2), 1, 0),
     RuntimeError, "select_scatter: expected src to have a size equal to the slice"),
    (lambda: tinyfw.zeros(2, 3).slice_scatter(tinyfw.zeros(2, 1), 1, 0, 3, 0),
     RuntimeError, "slice_scatter: slice step must be positive"),
    (lambda: tinyfw.zeros(2, 3).as_strided((2, 2), (3, 2), 1),
     RuntimeError, "as_strided: sizes \\[2, 2\\], strides \\[3, 2\\] and storage offset 1 need"),
    (lambda: tinyfw.zeros(4).as_strided((2,), (-1,)),
     RuntimeError, "as_strided: negative strides are not supported"),
    (lambda: tinyfw.zeros(4).diagonal(), RuntimeError, "diagonal: needs at least 2 dims"),
    (lambda: tinyfw.zeros(2, 2).diagonal(0, 1, -1), RuntimeError, "diagonal: dim1 and dim2 cannot be the same"),
    (lambda: tinyfw.zeros(2, 2).rot90(1, (0, 0)), RuntimeError, "rot90: the two dims must differ"),
    (lambda: tinyfw.zeros(3).fliplr(), RuntimeError, "fliplr: input must be >= 2-d"),
    (lambda: tinyfw.zeros(3, 4).hsplit(3), RuntimeError,
     "hsplit: attempted to split along dimension 1, but the size of the dimension 4 is not divisible"),
    (lambda: tinyfw.zeros(3).vsplit(1), RuntimeError, "vsplit: requires a tensor with at least 2"),
    (lambda: tinyfw.zeros(3).tensor_split(0), RuntimeError, "tensor_split: number of sections must be"),
    (lambda: tinyfw.zeros(3).repeat_interleave(tinyfw.tensor([1, 2])), RuntimeError,
     "repeat_interleave: repeats must have the same size as input along dim 0"),
    (lambda: tinyfw.zeros(3).repeat_interleave(-1), RuntimeError, "repeat_interleave: repeats can not be negative"),
    (lambda: tinyfw.zeros(2).roll((1, 2), 0), RuntimeError, "roll: shifts .* and dims .* must have the same length"),
    (lambda: tinyfw.zeros(2, 3).moveaxis((0, 1), (0,)), RuntimeError, "moveaxis: invalid source or destination"),
    (lambda: tinyfw.zeros(3).adjoint(), RuntimeError, "adjoint: only supported on matrices"),
    (lambda: tinyfw.zeros(2, 3)[0, :, [1]], IndexError, "too many indices"),
]


@pytest.mark.parametrize("k", range(len(ERRORS)))
def test_errors_name_the_op(k):
    fn, exc, msg = ERRORS[k]
    with pytest.raises(exc, match=msg):
        fn()
