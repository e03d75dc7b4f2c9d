"""Lab 1's grader: the student's strided.py against NumPy (and tinyfw, which follows the
same rules).  Every test draws its cases from a generator seeded by the student id, so
each student gets their own hidden cases; messages say what differed."""
from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest

import tinyfw
from tinyfw.labs.student import expect_array, expect_equal, load, seed

SKELETON = pathlib.Path(__file__).resolve().parent.parent / "skeleton"
CASES = 40


@pytest.fixture
def S():
    return load("strided", SKELETON)


def _shape(rng, max_nd: int = 4, low: int = 1) -> tuple:
    return tuple(int(v) for v in rng.integers(low, 4, int(rng.integers(0, max_nd + 1))))


def _view_of(S, a: np.ndarray, base: np.ndarray):
    """The StridedArray showing numpy view `a` of the 1-d int64 array `base`."""
    item = base.itemsize
    offset = (a.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    return S.StridedArray(base.tolist(), a.shape, tuple(s // item for s in a.strides), offset)


def _random_view(rng):
    """(base, a): a random permuted / stepped view `a` of a 1-d buffer `base`."""
    shape = _shape(rng)
    base = np.arange(10_000, 10_000 + 2 * max(1, math.prod(shape)) + 7)
    a = base[3:3 + math.prod(shape)].reshape(shape)
    if a.ndim:
        a = a.transpose(tuple(int(d) for d in rng.permutation(a.ndim)))
        d = int(rng.integers(a.ndim))
        step = int(rng.integers(1, 3))
        a = np.moveaxis(np.moveaxis(a, d, 0)[::step], 0, d)
    return base, a


def _values(arr) -> np.ndarray:
    return np.array(arr.tolist(), dtype=np.int64).reshape(tuple(arr.shape))


def _steps(shape: tuple, strides: tuple) -> tuple:
    """The strides that matter: a size-1 dim's stride is never used (shown as None)."""
    return tuple(None if n == 1 else s for n, s in zip(shape, strides))


# -- 1.1 ---------------------------------------------------------------------------------
@pytest.mark.task("1.1")
def test_contiguous_strides(S):
    rng = np.random.default_rng(seed("1.1a"))
    for _ in range(CASES):
        shape = _shape(rng)
        want = tinyfw.empty(*shape).stride() if shape else ()
        expect_equal(tuple(S.contiguous_strides(shape)), tuple(want),
                     f"contiguous_strides({shape})")


@pytest.mark.task("1.1")
def test_flat_index_reads_the_right_element(S):
    rng = np.random.default_rng(seed("1.1b"))
    for _ in range(CASES):
        base, a = _random_view(rng)
        arr = _view_of(S, a, base)
        if a.size == 0:
            continue
        idx = tuple(int(rng.integers(-n, n)) for n in a.shape)
        got = arr.buffer[arr.flat_index(idx)]
        expect_equal(got, int(a[idx]), f"element {idx} of a {a.shape} view with strides "
                                       f"{arr.strides}, offset {arr.offset}")


@pytest.mark.task("1.1")
def test_flat_index_rejects_bad_indices(S):
    arr = S.StridedArray(list(range(6)), (2, 3), (3, 1))
    for bad in [(2, 0), (0, -4), (0,), (0, 0, 0)]:
        with pytest.raises(IndexError):
            arr.flat_index(bad)
            raise AssertionError(f"flat_index{bad} on shape (2, 3) should raise IndexError")


@pytest.mark.task("1.1")
def test_is_contiguous(S):
    rng = np.random.default_rng(seed("1.1c"))
    for _ in range(CASES):
        base, a = _random_view(rng)
        expect_equal(bool(_view_of(S, a, base).is_contiguous()), bool(a.flags["C_CONTIGUOUS"]),
                     f"is_contiguous of shape {a.shape} strides {tuple(s // 8 for s in a.strides)}")


# -- 1.2 ---------------------------------------------------------------------------------
@pytest.mark.task("1.2")
def test_permute_is_a_view_with_permuted_strides(S):
    rng = np.random.default_rng(seed("1.2a"))
    for _ in range(CASES):
        base, a = _random_view(rng)
        if a.ndim == 0:
            continue
        perm = tuple(int(d) - (a.ndim if rng.random() < 0.3 else 0)
                     for d in rng.permutation(a.ndim))
        orig = _view_of(S, a, base)
        arr = orig.permute(*perm)
        expect_equal(arr.buffer is orig.buffer, True, "permute must be a view (same buffer)")
        want = np.transpose(a, [d % a.ndim for d in perm])
        expect_equal(tuple(arr.shape), want.shape, f"shape of permute{perm} of {a.shape}")
        expect_equal(tuple(arr.strides), tuple(s // 8 for s in want.strides),
                     f"strides of permute{perm} of {a.shape}")
        expect_array(_values(arr), want, f"values of permute{perm}")


@pytest.mark.task("1.2")
def test_permute_rejects_a_non_permutation(S):
    arr = S.StridedArray(list(range(6)), (2, 3), (3, 1))
    for bad in [(0, 0), (0,), (0, 1, 2)]:
        with pytest.raises(ValueError):
            arr.permute(*bad)
            raise AssertionError(f"permute{bad} of a 2-d array should raise ValueError")


@pytest.mark.task("1.2")
def test_transpose(S):
    rng = np.random.default_rng(seed("1.2b"))
    for _ in range(CASES):
        base, a = _random_view(rng)
        if a.ndim < 2:
            continue
        d0, d1 = (int(v) for v in rng.integers(0, a.ndim, 2))
        arr = _view_of(S, a, base).transpose(d0, d1)
        want = np.swapaxes(a, d0, d1)
        expect_equal(tuple(arr.strides), tuple(s // 8 for s in want.strides),
                     f"strides of transpose({d0}, {d1}) of {a.shape}")
        expect_array(_values(arr), want, f"values of transpose({d0}, {d1})")


@pytest.mark.task("1.2")
def test_slice_is_a_view(S):
    rng = np.random.default_rng(seed("1.2c"))
    for _ in range(CASES):
        base, a = _random_view(rng)
        if a.ndim == 0:
            continue
        d = int(rng.integers(a.ndim))
        n = a.shape[d]
        start, stop = (int(v) for v in rng.integers(-n - 2, n + 3, 2))
        step = int(rng.integers(1, 4))
        orig = _view_of(S, a, base)
        arr = orig.slice(d, start, stop, step)
        index = [slice(None)] * a.ndim
        index[d] = slice(start, stop, step)
        want = a[tuple(index)]
        expect_equal(tuple(arr.shape), want.shape,
                     f"shape of slice({d}, {start}, {stop}, {step}) of {a.shape}")
        expect_array(_values(arr), want, f"values of slice({d}, {start}, {stop}, {step})")
        expect_equal(arr.buffer is orig.buffer, True, "slice must be a view (same buffer)")


# -- 1.3 ---------------------------------------------------------------------------------
def _target(rng, size: int) -> tuple:
    out, rest = [], size
    while rest > 1:
        f = int(rng.choice([f for f in range(2, rest + 1) if rest % f == 0]))
        out.append(f)
        rest //= f
    if rng.random() < 0.3:
        out.insert(int(rng.integers(0, len(out) + 1)), 1)
    return tuple(out)


@pytest.mark.task("1.3")
def test_reshape_values_and_view_or_copy(S):
    rng = np.random.default_rng(seed("1.3a"))
    for _ in range(2 * CASES):
        base, a = _random_view(rng)
        shape = _target(rng, a.size)
        arr = _view_of(S, a, base)
        got = arr.reshape(*shape)
        want = a.reshape(shape)
        expect_equal(tuple(got.shape), shape, f"shape of reshape{shape} of {a.shape}")
        expect_array(_values(got), want, f"values of reshape{shape} of a {a.shape} view "
                                         f"with strides {arr.strides}")
        expect_equal(got.buffer is arr.buffer, bool(np.shares_memory(want, a)),
                     f"reshape{shape} of shape {a.shape} strides {arr.strides}: is a view")


@pytest.mark.task("1.3")
def test_reshape_infers_minus_one_and_checks_sizes(S):
    arr = S.StridedArray(list(range(12)), (3, 4), (4, 1))
    expect_equal(tuple(arr.reshape(2, -1).shape), (2, 6), "reshape(2, -1) of (3, 4)")
    expect_equal(tuple(arr.reshape(-1).shape), (12,), "reshape(-1) of (3, 4)")
    for bad in [(5, -1), (-1, -1), (5, 2)]:
        with pytest.raises(ValueError):
            arr.reshape(*bad)
            raise AssertionError(f"reshape{bad} of 12 elements should raise ValueError")


# -- 1.4 ---------------------------------------------------------------------------------
def _broadcastable(rng, shape: tuple) -> tuple:
    """A shape that broadcasts with `shape`: some dims set to 1, some leading dims dropped."""
    out = tuple(1 if rng.random() < 0.4 else n for n in shape)
    return out[int(rng.integers(0, len(out) + 1)):]


@pytest.mark.task("1.4")
def test_broadcast_shapes(S):
    rng = np.random.default_rng(seed("1.4a"))
    for _ in range(CASES):
        full = _shape(rng, 4)
        shapes = [_broadcastable(rng, full) for _ in range(int(rng.integers(2, 4)))]
        expect_equal(tuple(S.broadcast_shapes(*shapes)), np.broadcast_shapes(*shapes),
                     f"broadcast_shapes{tuple(shapes)}")
    with pytest.raises(ValueError):
        S.broadcast_shapes((2, 3), (4, 3))
        raise AssertionError("broadcast_shapes((2, 3), (4, 3)) should raise ValueError")


@pytest.mark.task("1.4")
def test_broadcast_to_is_a_zero_stride_view(S):
    rng = np.random.default_rng(seed("1.4b"))
    for _ in range(CASES):
        full = _shape(rng, 4)
        small = _broadcastable(rng, full)
        base = np.arange(100, 100 + max(1, math.prod(small)))
        a = base[:math.prod(small)].reshape(small)
        arr = _view_of(S, a, base).broadcast_to(full)
        want = np.broadcast_to(a, full)
        expect_equal(_steps(full, tuple(arr.strides)),
                     _steps(full, tuple(s // 8 for s in want.strides)),
                     f"strides (of the dims of size > 1) of broadcast_to({full}) of {small}")
        expect_array(_values(arr), want, f"values of broadcast_to({full}) of {small}")
    with pytest.raises(ValueError):
        S.StridedArray(list(range(6)), (2, 3), (3, 1)).broadcast_to((3, 3))
        raise AssertionError("broadcast_to((3, 3)) of (2, 3) should raise ValueError")


@pytest.mark.task("1.4")
def test_add_broadcasts(S):
    rng = np.random.default_rng(seed("1.4c"))
    for _ in range(CASES):
        full = _shape(rng, 3)
        sa, sb = _broadcastable(rng, full), _broadcastable(rng, full)
        x = rng.integers(-9, 10, sa)
        y = rng.integers(-9, 10, sb)
        bx, by = x.reshape(-1), y.reshape(-1)
        got = S.add(_view_of(S, x, bx), _view_of(S, y, by))
        expect_array(_values(got), x + y, f"add of shapes {sa} and {sb}")
        expect_equal(bool(got.is_contiguous()), True, "add's result must be contiguous")
