"""Conformance of the C++ shape kernels (csrc/shape.cpp, csrc/sort.cpp) with the numpy
reference backend: cat, pad, flip, tile, triu/tril, masked_fill, fill_ and sort.

These kernels only move elements, so every comparison is BIT-exact (NaN payloads and -0.0
included) on hypothesis-generated shapes (size-0 dims too), every dtype of the contract,
layouts (transposed, stepped, reversed, expanded 0-stride), negative dims, sorts with ties,
NaNs, signed zeros and integer minimums in both directions, and rows long enough for each
of the sort's algorithms.  Inputs above the kernels' thread threshold are checked at 1 and
2 threads.  Bad arguments reaching the C++ kernels directly must raise an exception that
names the kernel.  A few op-level cases compare with PyTorch.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
from helpers import in_layout, requires_torch, torch
from tinyfw.backend import cpu, ref

SHAPE_KERNELS = ("cat", "pad", "flip", "tile", "masked_fill", "fill_", "triu", "tril", "sort")
pytestmark = pytest.mark.skipif(any(k not in cpu.KERNELS for k in SHAPE_KERNELS),
                                reason="the C++ shape kernels are not built (python setup.py build_ext --inplace)")

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), BF16,
          np.dtype(np.int8), np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)]
LAYOUTS = ["contiguous", "transposed", "stepped", "reversed", "expanded"]

# fill values: Python numbers converted in C++ (exact, or one rounding) and the rest by numpy
# (inexact in a half type, out of range, NaN into an int, numpy scalars) - errors included
VALUES = [0.0, -0.0, 1.5, 0.1, -2, 3, True, False, 300, -129, 70000, 2 ** 24 + 1, -2 ** 40, 1e10, 1e30,
          1e40, float("inf"), float("-inf"), float("nan"), np.float32(0.5), np.int64(-3), np.float64(1e-8)]
dtypes = st.sampled_from(DTYPES)
layouts = st.sampled_from(LAYOUTS)
seeds = st.integers(0, 2 ** 16)


def shapes(min_dims: int = 0, max_dims: int = 4, max_side: int = 5):
    return st.lists(st.integers(0, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


# ------------------------------------------------------------------------------ arrays
def values(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Values with ties, and for floats NaN, +-0.0 and +-inf; for ints the dtype's minimum."""
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind == "i":
        v = rng.integers(-4, 5, shape).astype(dtype)
        flat = v.reshape(-1)
        if flat.size >= 3:
            flat[:2] = [np.iinfo(dtype).min, np.iinfo(dtype).max]
        return v
    v = np.where(rng.random(shape) < 0.5, rng.integers(-3, 4, shape), rng.standard_normal(shape) * 3)
    flat = v.reshape(-1)
    specials = [np.nan, -0.0, 0.0, np.inf, -np.inf, np.nan]
    if flat.size:
        pos = rng.choice(flat.size, min(flat.size, len(specials)), replace=False)
        flat[pos] = specials[:len(pos)]
    return v.astype(dtype)


def make(rng, shape, dtype, how):
    return in_layout(np.asarray(values(rng, tuple(shape), dtype)), how)


def bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}") if a.dtype != np.bool_ else a


def assert_same(out, exp, what: str) -> None:
    """Same type, dtype, shape and bits."""
    assert isinstance(out, np.ndarray), f"{what}: returned {type(out).__name__}"
    assert out.dtype == exp.dtype, f"{what}: dtype {out.dtype} vs ref {exp.dtype}"
    assert out.shape == exp.shape, f"{what}: shape {out.shape} vs ref {exp.shape}"
    np.testing.assert_array_equal(bits(out), bits(exp), err_msg=what)


def same_outcome(name: str, *args) -> None:
    """cpu and ref give the same bits, or raise the same exception type."""
    try:
        with np.errstate(all="ignore"):
            exp = getattr(ref, name)(*args)
    except Exception as e:  # noqa: BLE001 - the kernel must raise the same kind
        with pytest.raises(type(e)):
            getattr(cpu, name)(*args)
        return
    assert_same(getattr(cpu, name)(*args), np.asarray(exp), f"{name}{[getattr(a, 'shape', a) for a in args]}")


def dim_of(draw, ndim: int) -> int:
    return draw(st.integers(-ndim, ndim - 1))


# ------------------------------------------------------------------------------ generated cases
@given(data=st.data(), shape=shapes(1), dtype=dtypes, seed=seeds)
def test_cat(data, shape, dtype, seed):
    rng = np.random.default_rng(seed)
    d = dim_of(data.draw, len(shape))
    parts = []
    for _ in range(data.draw(st.integers(1, 4))):
        s = list(shape)
        s[d] = data.draw(st.integers(0, 4))
        parts.append(make(rng, s, dtype, data.draw(layouts)))
    same_outcome("cat", parts, d)


@given(data=st.data(), shape=shapes(0, 3), dtype=dtypes, seed=seeds,
       value=st.sampled_from(VALUES))
def test_pad(data, shape, dtype, seed, value):
    x = make(np.random.default_rng(seed), shape, dtype, data.draw(layouts))
    pads = tuple((data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))) for _ in shape)
    same_outcome("pad", x, pads, value)


@given(data=st.data(), shape=shapes(0), dtype=dtypes, seed=seeds)
def test_flip(data, shape, dtype, seed):
    x = make(np.random.default_rng(seed), shape, dtype, data.draw(layouts))
    chosen = data.draw(st.lists(st.integers(0, max(len(shape) - 1, 0)), unique=True, max_size=len(shape)))
    dims = tuple(d - len(shape) if data.draw(st.booleans()) else d for d in chosen)  # some negative
    same_outcome("flip", x, dims)


@given(data=st.data(), shape=shapes(0, 3), dtype=dtypes, seed=seeds)
def test_tile(data, shape, dtype, seed):
    x = make(np.random.default_rng(seed), shape, dtype, data.draw(layouts))
    reps = tuple(data.draw(st.lists(st.integers(0, 3), max_size=len(shape) + 2)))
    same_outcome("tile", x, reps)


@given(data=st.data(), shape=shapes(2, 4, 6), dtype=dtypes, seed=seeds, upper=st.booleans(),
       k=st.one_of(st.integers(-7, 7), st.sampled_from([2 ** 62, -2 ** 62, 2 ** 63 - 1])))
def test_triu_tril(data, shape, dtype, seed, upper, k):
    x = make(np.random.default_rng(seed), shape, dtype, data.draw(layouts))
    same_outcome("triu" if upper else "tril", x, k)


@given(data=st.data(), shape=shapes(0), dtype=dtypes, seed=seeds,
       mask_dtype=st.sampled_from([np.dtype(np.bool_)] * 3 + DTYPES),
       value=st.sampled_from(VALUES))
def test_masked_fill(data, shape, dtype, seed, mask_dtype, value):
    rng = np.random.default_rng(seed)
    mshape = [1 if data.draw(st.booleans()) and data.draw(st.booleans()) else s for s in shape]
    mshape = mshape[data.draw(st.integers(0, len(shape))):]  # broadcast: leading dims dropped
    if data.draw(st.booleans()):  # or the mask is the larger operand
        shape, mshape = [1 if data.draw(st.booleans()) else s for s in mshape], list(shape)
    x = make(rng, shape, dtype, data.draw(layouts))
    mask = make(rng, mshape, mask_dtype, data.draw(layouts))
    same_outcome("masked_fill", x, mask, value)


@given(data=st.data(), shape=shapes(0), dtype=dtypes, seed=seeds,
       value=st.sampled_from(VALUES))
def test_fill_(data, shape, dtype, seed, value):
    how = data.draw(st.sampled_from(["contiguous", "transposed", "stepped", "reversed"]))
    a = make(np.random.default_rng(seed), shape, dtype, how)
    b = a.copy() if how == "contiguous" else in_layout(a.copy(), how)  # the same layout, own memory
    try:
        with np.errstate(all="ignore"):  # ref warns where 1e40 rounds to inf; the kernel does not
            ref.fill_(b, value)
    except Exception as e:  # noqa: BLE001 - NaN / out of range into an integer dtype
        with pytest.raises(type(e)):
            cpu.fill_(a, value)
        return
    assert cpu.fill_(a, value) is None
    assert_same(a, b, f"fill_{shape}")


@given(data=st.data(), shape=shapes(1, 3, 7), dtype=dtypes, seed=seeds, descending=st.booleans())
def test_sort(data, shape, dtype, seed, descending):
    x = make(np.random.default_rng(seed), shape, dtype, data.draw(layouts))
    _check_sort(x, dim_of(data.draw, len(shape)), descending)


def _check_sort(x, dim, descending):
    try:
        ev, ei = ref.sort(x, dim, descending)
    except TypeError:  # ref's -x of a bool array
        with pytest.raises(TypeError, match="sort"):
            cpu.sort(x, dim, descending)
        return
    v, i = cpu.sort(x, dim, descending)
    assert_same(i, ei, f"sort indices {x.shape} dim={dim} descending={descending}")
    assert_same(v, ev, f"sort values {x.shape} dim={dim} descending={descending}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", [0, 1, 31, 33, 200, 257, 3000])  # insertion / stable_sort / radix
def test_sort_row_lengths(dtype, n):
    """Each algorithm of the kernel (chosen by row length) on ties, NaNs, +-0.0 and the
    integer minimum, along the last and the first dim, both directions."""
    rng = np.random.default_rng(n)
    x = values(rng, (3, n), dtype)
    for desc in (False, True):
        _check_sort(x, -1, desc)
        _check_sort(np.ascontiguousarray(x.T), 0, desc)
        _check_sort(x[:, ::-2], 1, desc)


def test_sort_nan_and_integer_order():
    """The orders ref defines, spelled out: NaNs last in BOTH directions in input order,
    -0.0 tied with 0.0 (stable), and a descending int8 sort puts -128 last (the key is
    ~x; -x would wrap -128 onto itself), as PyTorch."""
    x = np.array([1.0, np.nan, -0.0, 2.0, 0.0, np.nan, -1.0], np.float32)
    v, i = cpu.sort(x, 0, True)
    assert i.tolist() == [3, 0, 2, 4, 6, 1, 5]
    v, i = cpu.sort(x, 0, False)
    assert i.tolist() == [6, 2, 4, 0, 3, 1, 5]
    assert np.signbit(v[1]) and not np.signbit(v[2])
    for B in (cpu, ref):
        for dt in (np.int8, np.int32, np.int64):
            info = np.iinfo(dt)
            v, i = B.sort(np.array([5, info.min, info.max, -1, info.min], dt), 0, True)
            assert v.tolist() == [info.max, 5, -1, info.min, info.min] and i.tolist() == [2, 0, 3, 1, 4]


# ------------------------------------------------------------------------------ fallbacks and odd inputs
def test_fallbacks_and_odd_inputs():
    """Arguments numpy accepts outside the fast path give ref's results: mixed dtypes in
    cat, array values, tile/flip with a bare int, overlapping and 0-stride writeable views
    for fill_."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 3)).astype(np.float32)
    same_outcome("cat", [a, np.ones((1, 3), np.float64)], 0)
    same_outcome("cat", (a, a), -1)
    same_outcome("pad", a, ((1, 0), (0, 2)), np.float32(np.pi))
    same_outcome("pad", a, ((1, 0), (0, 2)), np.array(7))
    same_outcome("pad", np.full((), 3.0), (), 1.0)
    same_outcome("masked_fill", a, a > 0, np.array([[1.0], [2.0]]))
    same_outcome("tile", a, 3)
    same_outcome("flip", a, -1)
    x, y = a.copy(), a.copy()
    cpu.fill_(x, np.array([1.0, 2.0, 3.0]))
    ref.fill_(y, np.array([1.0, 2.0, 3.0]))
    assert_same(x, y, "fill_ with an array value")
    for strides in [(0, 4), (4, 4), (8, 4)]:  # 0-stride and self-overlapping writeable views
        base = np.zeros(16, np.float32)
        v = np.lib.stride_tricks.as_strided(base, (3, 4), strides)
        cpu.fill_(v, 1.25)
        assert (base[:v.strides[0] // 4 * 2 + 4] == 1.25).all() and base.sum() > 0


# ------------------------------------------------------------------------------ large, threaded
@pytest.mark.parametrize("threads", [1, 2])
def test_large_inputs_threaded(threads):
    """Inputs above the kernels' OpenMP threshold: the same bits as ref at 1 and 2 threads."""
    rng = np.random.default_rng(4)
    n0 = tinyfw.get_num_threads()
    tinyfw.set_num_threads(threads)
    try:
        a = rng.standard_normal((300, 400)).astype(np.float32)
        a.reshape(-1)[::97] = np.nan
        h = a.astype(BF16)
        same_outcome("cat", [a, a.T[:100].T.copy(), a[:, ::-1]], 1)
        same_outcome("cat", [h, h], 0)
        same_outcome("flip", a, (0, 1))
        same_outcome("flip", a.T, (1,))
        same_outcome("tile", a[:50], (2, 3))
        same_outcome("pad", a, ((3, 5), (7, 1)), -1.0)
        same_outcome("tril", a, 3)
        same_outcome("triu", a.T, -5)
        same_outcome("masked_fill", a, a[:1] > 0, 0.5)
        x, y = a.copy(), a.copy()
        cpu.fill_(x, 4.0)
        ref.fill_(y, 4.0)
        assert_same(x, y, "fill_ large")
        _check_sort(a, 0, True)
        _check_sort(a, 1, False)
        big = rng.standard_normal(200_000).astype(np.float32)
        big[::1000] = np.nan
        _check_sort(big, 0, False)
        _check_sort(rng.integers(-50, 50, 100_000).astype(np.int64), 0, True)
    finally:
        tinyfw.set_num_threads(n0)


# ------------------------------------------------------------------------------ error paths
def test_errors_name_the_kernel():
    """Bad arguments reaching the compiled kernels directly raise (never crash) and say which
    kernel refused them."""
    C = tinyfw._C
    a = np.ones((2, 3), np.float32)
    cases = [
        ("cat", lambda: C.cat([], 0), "non-empty"),
        ("cat", lambda: C.cat([np.ones((), np.float32)] * 2, 0), "zero-dimensional"),
        ("cat", lambda: C.cat([a, np.ones((3, 3), np.float32)], 1), r"array 1 has shape \(3, 3\)"),
        ("cat", lambda: C.cat([a, np.ones((2, 3, 1), np.float32)], 0), "does not match"),
        ("cat", lambda: C.cat([a, a], 2), "dim 2 out of range"),
        ("cat", lambda: C.cat([a, a], -3), "dim -3 out of range"),
        ("cat", lambda: C.cat([a.astype(np.complex64)] * 2, 0), "unsupported dtype complex64"),
        ("pad", lambda: C.pad(a, ((1, 1),), 0.0), "expected 2"),
        ("pad", lambda: C.pad(a, ((1, 1), (1,)), 0.0), "pairs"),
        ("pad", lambda: C.pad(a, ((1, 1), (-1, 0)), 0.0), "non-negative"),
        ("pad", lambda: C.pad(a, ((1, 1), (0.5, 0)), 0.0), "integers"),
        ("pad", lambda: C.pad(a, ((2 ** 62, 2 ** 62), (0, 0)), 0.0), "overflows"),
        ("pad", lambda: C.pad(a.astype(np.uint16), ((1, 1), (0, 0)), 0.0), "unsupported dtype uint16"),
        ("flip", lambda: C.flip(a, (0, -2)), "repeated dim 0"),
        ("flip", lambda: C.flip(a, (2,)), "dim 2 out of range"),
        ("flip", lambda: C.flip(a, ("x",)), "integers"),
        ("tile", lambda: C.tile(a, (2, -1)), "non-negative"),
        ("tile", lambda: C.tile(a, (2 ** 62, 2 ** 62)), "overflows"),
        ("triu", lambda: C.triu(np.ones(3, np.float32), 0), r"at least 2 dims, got shape \(3,\)"),
        ("tril", lambda: C.tril(np.ones((), np.float32), 0), "at least 2 dims"),
        ("masked_fill", lambda: C.masked_fill(a, np.ones(4, bool), 0.0), "cannot be broadcast"),
        ("masked_fill", lambda: C.masked_fill(a, np.ones(3, np.uint16), 0.0), "unsupported dtype uint16"),
        ("fill_", lambda: C.fill_(np.broadcast_to(a, (2, 2, 3)), 1.0), "read-only"),
        ("fill_", lambda: C.fill_(a.astype(np.complex128), 1.0), "unsupported dtype"),
        ("sort", lambda: C.sort(a, 2, False), "dim 2 out of range"),
        ("sort", lambda: C.sort(np.ones((), np.float32), 0, False), "out of range"),
        ("sort", lambda: C.sort(np.ones(3, bool), 0, True), "descending sort of a bool array"),
    ]
    for name, call, msg in cases:
        with pytest.raises((ValueError, TypeError), match=f"^{name}: .*{msg}"):
            call()
    # errors of the scalar conversion are numpy's, as in ref
    with pytest.raises(ValueError, match="NaN"):
        C.fill_(np.ones(3, np.int32), float("nan"))
    with pytest.raises(OverflowError):
        C.masked_fill(np.ones(3, np.int8), np.ones(3, bool), 300)


# ------------------------------------------------------------------------------ op level vs PyTorch
@requires_torch
@pytest.mark.usefixtures("on_the_cpu")  # the cpu backend's kernels, on CPU tensors
def test_ops_against_torch():
    """The ops that reach these kernels, on the cpu backend, agree with PyTorch (float32,
    no NaNs: torch puts NaNs first in a descending sort where numpy/ref put them last)."""
    tinyfw.set_backend("cpu")
    rng = np.random.default_rng(5)
    a = rng.integers(-3, 4, (4, 6)).astype(np.float32)  # ties, so stability shows
    t, th = tinyfw.tensor(a), torch.from_numpy(a)
    for desc in (False, True):
        v, i = tinyfw.sort(t, dim=1, descending=desc)
        tv, ti = torch.sort(th, dim=1, descending=desc, stable=True)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
    np.testing.assert_array_equal(tinyfw.cat([t, t[:2]], 0).numpy(), torch.cat([th, th[:2]], 0).numpy())
    np.testing.assert_array_equal(t.flip((0, 1)).numpy(), th.flip((0, 1)).numpy())
    np.testing.assert_array_equal(t.T.repeat(2, 1, 3).numpy(), th.T.repeat(2, 1, 3).numpy())
    np.testing.assert_array_equal(tinyfw.tril(t, -1).numpy(), torch.tril(th, -1).numpy())
    np.testing.assert_array_equal(tinyfw.triu(t.T, 2).numpy(), torch.triu(th.T, 2).numpy())
    np.testing.assert_array_equal(tinyfw.nn.functional.pad(t, (1, 2, 3, 0), value=9.0).numpy(),
                                  torch.nn.functional.pad(th, (1, 2, 3, 0), value=9.0).numpy())
