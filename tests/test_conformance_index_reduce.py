"""The scatter_reduce and index_reduce C++ kernels (csrc/index_reduce.cpp) against the numpy reference
(tinyfw/backend/ref_index.py), bit for bit: every reduction with and without x's own
values, every dtype (bool goes to ref), strided/reversed/expanded layouts, an index
smaller than src and x, negative and duplicate indices, NaN and signed zeros, and large
inputs that take the threaded paths (same bits at 1 and 2 threads).  Run also with
TINYFW_ISA=avx2 (the kernel is ISA-independent; the run checks the build's dispatch)."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw
from tinyfw.backend import cpu, ref

from helpers import in_layout

pytestmark = pytest.mark.skipif("index_reduce" not in cpu.KERNELS,
                                reason="the scatter_reduce/index_reduce C++ kernels are not built")

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = [np.dtype(t) for t in (np.float32, np.float64, np.float16, BF16, np.int8, np.int32,
                                np.int64, np.bool_)]
REDUCES = ["sum", "prod", "mean", "amax", "amin"]
LAYOUTS = ["contiguous", "transposed", "stepped", "reversed", "expanded"]


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind != "b" else a


def _values(rng, shape, dtype, special: bool) -> np.ndarray:
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(-3, 4, shape).astype(dtype)
    v = rng.standard_normal(shape) * 2
    if special and v.size:
        flat = v.reshape(-1)
        k = rng.integers(0, flat.size, 3)
        flat[k] = rng.choice([np.nan, 0.0, -0.0, np.inf, -np.inf], 3)
    return v.astype(dtype)


def _same(got: np.ndarray, exp: np.ndarray, label: str) -> None:
    assert got.dtype == exp.dtype and got.shape == exp.shape, f"{label}: {got.dtype}{got.shape} vs {exp.dtype}{exp.shape}"
    if exp.dtype.kind == "f" or exp.dtype == BF16:
        g, e = got.astype(np.float64), exp.astype(np.float64)
        both_nan = np.isnan(g) & np.isnan(e)
        assert np.array_equal(_bits(got)[~both_nan], _bits(exp)[~both_nan]), f"{label}:\n{got}\n{exp}"
        assert np.array_equal(np.isnan(g), np.isnan(e)), f"{label}: NaN positions differ"
    else:
        assert np.array_equal(got, exp), f"{label}:\n{got}\n{exp}"


@settings(max_examples=150, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2 ** 16))
def test_scatter_reduce_matches_ref(data, seed):
    rng = np.random.default_rng(seed)
    xs = tuple(data.draw(st.lists(st.integers(0, 5), min_size=1, max_size=3)))
    dim = data.draw(st.integers(0, len(xs) - 1))
    ish = [data.draw(st.integers(0, s)) for s in xs]
    ish[dim] = data.draw(st.integers(0, 7)) if xs[dim] > 0 else 0
    ish = tuple(ish)
    dtype = data.draw(st.sampled_from(DTYPES))
    reduce = data.draw(st.sampled_from(REDUCES))
    include_self = data.draw(st.booleans())
    special = data.draw(st.booleans())
    x = in_layout(_values(rng, xs, dtype, special), data.draw(st.sampled_from(LAYOUTS[:4])))
    sshape = tuple(s + data.draw(st.integers(0, 2)) for s in ish)
    src = in_layout(_values(rng, sshape, dtype, special), data.draw(st.sampled_from(LAYOUTS)))
    n = xs[dim]
    iv = rng.integers(-n, max(n, 1), ish) if n else np.zeros(ish, np.int64)
    index = in_layout(iv.astype(np.int64), data.draw(st.sampled_from(LAYOUTS[:4])))
    label = f"scatter_reduce[{dtype}, {reduce}, self={include_self}, x{xs}, idx{ish}, dim={dim}]"
    exp = ref.scatter_reduce(x, dim, index, src, reduce, include_self)
    got = cpu.scatter_reduce(x, dim, index, src, reduce, include_self)
    _same(got, exp, label)


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dim", [0, 1])
def test_large_threaded_and_deterministic(reduce, include_self, dim):
    """Sizes that take both threaded paths (rows when dim is last, columns otherwise):
    the same bits at 1 and 2 threads, and ref's."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 300)).astype(np.float32)
    src = (rng.standard_normal((900, 300)) if dim == 0 else rng.standard_normal((400, 900))) \
        .astype(np.float32)
    src = np.where(np.abs(src) < 1, 1 + src * 0.01, src).astype(np.float32)  # prods stay finite
    index = rng.integers(0, x.shape[dim], src.shape).astype(np.int64)
    n0 = tinyfw.get_num_threads()
    try:
        tinyfw.set_num_threads(1)
        one = cpu.scatter_reduce(x, dim, index, src, reduce, include_self)
        tinyfw.set_num_threads(2)
        two = cpu.scatter_reduce(x, dim, index, src, reduce, include_self)
    finally:
        tinyfw.set_num_threads(n0)
    assert np.array_equal(_bits(one), _bits(two)), "scatter_reduce depends on the thread count"
    _same(two, ref.scatter_reduce(x, dim, index, src, reduce, include_self), reduce)


def test_integer_mean_rounds_down_and_wraps():
    """Integer means are floor divisions (PyTorch's), int8 sums wrap as numpy's."""
    x = np.array([0, 0, 100], np.int8)
    idx = np.array([0, 0, 1, 1, 2, 2], np.int64)
    src = np.array([-3, -4, 3, 4, 100, 100], np.int8)
    for inc in (True, False):
        for red in REDUCES:
            _same(cpu.scatter_reduce(x, 0, idx, src, red, inc),
                  ref.scatter_reduce(x, 0, idx, src, red, inc), f"{red} {inc}")
    got = cpu.scatter_reduce(x.astype(np.int64), 0, idx, src.astype(np.int64), "mean", False)
    assert got.tolist() == [-4, 3, 100]


def test_errors_and_fallbacks():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(IndexError, match="scatter_reduce: index 3 is out of bounds for dim 0"):
        cpu.scatter_reduce(x, 0, np.array([[3]]), np.ones((1, 1), np.float32), "sum", True)
    with pytest.raises(ValueError, match="scatter_reduce: reduce must be"):
        cpu.scatter_reduce(x, 0, np.array([[0]]), np.ones((1, 1), np.float32), "max", True)
    # a src of another dtype goes to ref (numpy's casting), as do bool arrays
    src = np.ones((1, 4))
    np.testing.assert_array_equal(cpu.scatter_reduce(x, 0, np.zeros((1, 4), np.int64), src, "sum", True),
                                  ref.scatter_reduce(x, 0, np.zeros((1, 4), np.int64), src, "sum", True))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2 ** 16))
def test_index_reduce_matches_ref(data, seed):
    """index_reduce (index_add is its "sum"): whole slices along dim, any layout of x and
    src, negative and repeated indices."""
    rng = np.random.default_rng(seed)
    xs = tuple(data.draw(st.lists(st.integers(0, 5), min_size=1, max_size=3)))
    dim = data.draw(st.integers(0, len(xs) - 1))
    k = data.draw(st.integers(0, 7)) if xs[dim] else 0
    dtype = data.draw(st.sampled_from(DTYPES))
    reduce = data.draw(st.sampled_from(REDUCES))
    include_self = data.draw(st.booleans())
    special = data.draw(st.booleans())
    x = in_layout(_values(rng, xs, dtype, special), data.draw(st.sampled_from(LAYOUTS[:4])))
    src = in_layout(_values(rng, xs[:dim] + (k,) + xs[dim + 1:], dtype, special),
                    data.draw(st.sampled_from(LAYOUTS)))
    n = xs[dim]
    index = rng.integers(-n, max(n, 1), k).astype(data.draw(st.sampled_from([np.int64, np.int32])))
    label = f"index_reduce[{dtype}, {reduce}, self={include_self}, x{xs}, k={k}, dim={dim}]"
    exp = ref.index_reduce(x, dim, index, src, reduce, include_self)
    got = cpu.index_reduce(x, dim, index, src, reduce, include_self)
    _same(got, exp, label)


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("shape,dim", [((64, 300), 0), ((300, 64), 1), ((8, 50, 200), 1)])
def test_index_reduce_large_threaded(reduce, shape, dim):
    """Columns split among threads (wide rows) and outer slices (narrow ones): the same
    bits at 1 and 2 threads, and ref's."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(np.float32)
    k = 3 * shape[dim]
    src = rng.standard_normal(shape[:dim] + (k,) + shape[dim + 1:]).astype(np.float32)
    src = np.where(np.abs(src) < 1, 1 + src * 0.01, src).astype(np.float32)
    index = rng.integers(0, shape[dim], k)
    n0 = tinyfw.get_num_threads()
    try:
        outs = []
        for t in (1, 2):
            tinyfw.set_num_threads(t)
            outs.append(cpu.index_reduce(x, dim, index, src, reduce, False))
    finally:
        tinyfw.set_num_threads(n0)
    assert np.array_equal(_bits(outs[0]), _bits(outs[1])), "index_reduce depends on the thread count"
    _same(outs[1], ref.index_reduce(x, dim, index, src, reduce, False), reduce)
