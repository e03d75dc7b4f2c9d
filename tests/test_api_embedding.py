"""Issue 16: F.embedding_bag / nn.EmbeddingBag and embedding's max_norm and
scale_grad_by_freq, three ways (tests/op_table.py) and as modules against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from helpers import npy, requires_torch, torch
from nn_oracle import compare
from op_table import KINDS, OpCase, case_id, check

NUM, DIM = 10, 3


def _table(*idx_shapes, offsets=None, psw=False):
    """weight (NUM, DIM), then integer index arrays of the given shapes (values repeat, so
    scale_grad_by_freq and max_norm see shared rows), then offsets, then per-sample weights."""
    def make(rng, dtype):
        out = [rng.standard_normal((NUM, DIM)).astype(dtype) * 2]
        out += [rng.integers(0, NUM, s).astype(np.int64) for s in idx_shapes]
        if offsets is not None:
            out.append(np.asarray(offsets, np.int64))
        if psw:
            out.append(rng.standard_normal(idx_shapes[0]).astype(dtype))
        return out
    return make



def _bag_case(name, shapes, offsets=None, psw=False, kinds=tuple(KINDS), **kw):
    def tf(w, i, *rest):
        off = rest[0] if offsets is not None else None
        p = rest[-1] if psw else None
        return F.embedding_bag(i, w, off, per_sample_weights=p, **kw)

    def th(w, i, *rest):
        off = rest[0] if offsets is not None else None
        p = rest[-1] if psw else None
        return torch.nn.functional.embedding_bag(i, w, off, per_sample_weights=p, **kw)

    return OpCase(name, tf, th, _table(*shapes, offsets=offsets, psw=psw), kinds=kinds,
                  terms=8)


# scale_grad_by_freq's gradient is deliberately not the derivative (finite differences
# cannot check it); PyTorch is the oracle for it
NOT_A_DERIVATIVE = ("torch64", "torch32", "ref")
EMPTY_BAG = [0, 2, 2, 5]  # bags [0, 2), [2, 2) (empty), [2, 5), [5, 9)
CASES = [
    _bag_case("embedding_bag-2d-mean", [(4, 3)]),
    _bag_case("embedding_bag-2d-sum", [(4, 3)], mode="sum"),
    _bag_case("embedding_bag-2d-max", [(4, 3)], mode="max"),
    _bag_case("embedding_bag-offsets-mean", [(9,)], offsets=EMPTY_BAG),
    _bag_case("embedding_bag-offsets-sum", [(9,)], offsets=EMPTY_BAG, mode="sum"),
    _bag_case("embedding_bag-offsets-max", [(9,)], offsets=EMPTY_BAG, mode="max"),
    _bag_case("embedding_bag-include_last_offset", [(9,)], offsets=[0, 4, 4, 9],
              include_last_offset=True, mode="sum"),
    _bag_case("embedding_bag-per_sample_weights", [(9,)], offsets=EMPTY_BAG, psw=True,
              mode="sum"),
    _bag_case("embedding_bag-padding_idx-mean", [(4, 5)], padding_idx=3),
    _bag_case("embedding_bag-padding_idx-max", [(9,)], offsets=EMPTY_BAG, padding_idx=2,
              mode="max"),
    # PyTorch 2.13's CPU embedding_bag divides by the wrong count (pytorch#190063, fixed after
    # 2.13): the oracle is the documented rule, a sum of F.embedding's lookups, which is right
    OpCase("embedding_bag-scale_grad_by_freq",
           lambda w, i: F.embedding_bag(i, w, mode="sum", scale_grad_by_freq=True),
           lambda w, i: torch.nn.functional.embedding(i, w, scale_grad_by_freq=True).sum(1),
           _table((4, 6)), terms=6, kinds=NOT_A_DERIVATIVE),
    _bag_case("embedding_bag-max_norm", [(4, 3)], max_norm=1.0,
              kinds=("torch64", "torch32", "ref")),  # renormalises its input in place
    OpCase("embedding-scale_grad_by_freq",
           lambda w, i: F.embedding(i, w, scale_grad_by_freq=True),
           lambda w, i: torch.nn.functional.embedding(i, w, scale_grad_by_freq=True),
           _table((5, 4)), kinds=NOT_A_DERIVATIVE),
    OpCase("embedding-max_norm", lambda w, i: F.embedding(i, w, max_norm=1.5, norm_type=1.0),
           lambda w, i: torch.nn.functional.embedding(i, w, max_norm=1.5, norm_type=1.0),
           _table((5, 4)), kinds=("torch64", "torch32", "ref")),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)


@requires_torch
def test_max_norm_renormalises_the_table_in_place_like_torch():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((NUM, DIM)) * 3
    idx = np.array([[1, 4, 4], [7, 1, 0]])
    wt, wf = torch.from_numpy(w.copy()), tinyfw.tensor(w.copy())
    torch.nn.functional.embedding_bag(torch.from_numpy(idx), wt, max_norm=2.0)
    F.embedding_bag(tinyfw.tensor(idx), wf, max_norm=2.0)
    np.testing.assert_allclose(npy(wf), wt.numpy(), rtol=1e-12, atol=0)
    untouched = [r for r in range(NUM) if r not in idx]
    np.testing.assert_array_equal(npy(wf)[untouched], w[untouched])


@requires_torch
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_module_matches_torch(mode):
    tm = torch.nn.EmbeddingBag(NUM, 4, mode=mode, padding_idx=0).double()
    fm = tinyfw.nn.EmbeddingBag(NUM, 4, mode=mode, padding_idx=0, dtype=tinyfw.float64)
    idx = np.array([0, 3, 3, 9, 0, 0, 5, 2])
    offs = np.array([0, 3, 4, 6])
    compare(tm, fm, [idx, offs], dtype="float64")
    fresh = tinyfw.nn.EmbeddingBag(NUM, 4, padding_idx=0)
    assert not npy(fresh.weight)[0].any()


def test_embedding_bag_errors_name_the_problem():
    w = tinyfw.randn(NUM, DIM)
    with pytest.raises(ValueError, match="offsets is required"):
        F.embedding_bag(tinyfw.tensor([1, 2]), w)
    with pytest.raises(ValueError, match="offsets must be None"):
        F.embedding_bag(tinyfw.tensor([[1, 2]]), w, tinyfw.tensor([0]))
    with pytest.raises(ValueError, match=r"offsets\[0\] must be 0"):
        F.embedding_bag(tinyfw.tensor([1, 2]), w, tinyfw.tensor([1]))
    with pytest.raises(ValueError, match="non-decreasing"):
        F.embedding_bag(tinyfw.tensor([1, 2, 3]), w, tinyfw.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="only supported with mode='sum'"):
        F.embedding_bag(tinyfw.tensor([[1, 2]]), w, per_sample_weights=tinyfw.ones(1, 2))
    with pytest.raises(ValueError, match="mode must be"):
        F.embedding_bag(tinyfw.tensor([[1, 2]]), w, mode="min")
    with pytest.raises(IndexError, match="index 10 is out of range for 10"):
        F.embedding_bag(tinyfw.tensor([[1, 10]]), w)
    with pytest.raises(ValueError, match="sparse gradients"):
        F.embedding_bag(tinyfw.tensor([[1, 2]]), w, sparse=True)


@requires_torch
def test_scale_grad_by_freq_divides_each_rows_gradient_by_its_count():
    # the rule itself, on the case pytorch#190063 shows torch 2.13's CPU bag kernel getting wrong
    w = tinyfw.ones(4, 3, dtype=tinyfw.float64, requires_grad=True)
    F.embedding_bag(tinyfw.tensor([1, 1, 3]), w, tinyfw.tensor([0]), mode="sum",
                    scale_grad_by_freq=True).sum().backward()
    assert npy(w.grad)[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
