"""softmax / log_softmax / layer_norm and their backward passes on bfloat16 / float16
inputs stage rows (or column chunks) into float32 buffers (csrc/half_stage.h) instead of
converting the whole tensor: the result must be, bit for bit, the float32 kernel's on the
float32 values rounded once to the half dtype (the float32 kernels themselves are checked
against the reference backend in test_norms_kernels.py and test_conformance_nn.py).
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyfw.backend import cpu

_C = cpu._C
pytestmark = pytest.mark.skipif(_C is None, reason="tinyfw._C is not built (python setup.py build_ext --inplace)")
HALVES = [np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16)]


def same_bits(got: np.ndarray, want32: np.ndarray, dtype) -> None:
    assert got.dtype == dtype
    np.testing.assert_array_equal(got.view(np.uint16), want32.astype(dtype).view(np.uint16))


def data(shape, dtype, seed, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


@given(shape=st.sampled_from([(7, 33), (3, 300, 5), (2, 4, 70), (1, 1), (0, 9), (130, 17)]),
       dim=st.integers(-1, 1), dtype=st.sampled_from(HALVES), seed=st.integers(0, 2**16))
def test_softmax_family_staged_equals_float32_rounded(shape, dim, dtype, seed):
    x = data(shape, dtype, seed)
    g = data(shape, dtype, seed + 1, 1.0)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    for name in ("softmax", "log_softmax"):
        f = getattr(_C, name)
        y = f(x, dim)
        same_bits(y, f(x32, dim), dtype)
        bwd = getattr(_C, name + "_backward")
        same_bits(bwd(y, g, dim), bwd(y.astype(np.float32), g32, dim), dtype)


def test_softmax_with_specials_in_a_half_row():
    x = data((4, 40), HALVES[0], 3)
    x[0, 3], x[1, 7], x[2, :] = np.inf, np.nan, -np.inf
    same_bits(_C.softmax(x, 1), _C.softmax(x.astype(np.float32), 1), x.dtype)


@given(m=st.integers(0, 70), n=st.integers(1, 200), dtype=st.sampled_from(HALVES), affine=st.booleans(),
       seed=st.integers(0, 2**16))
def test_layer_norm_staged_equals_float32_rounded(m, n, dtype, affine, seed):
    x = data((m, n), dtype, seed)
    g = data((m, n), dtype, seed + 1, 1.0)
    w = data((n,), dtype, seed + 2, 1.0) if affine else None
    b = data((n,), dtype, seed + 3, 1.0) if affine else None
    f32 = lambda a: None if a is None else a.astype(np.float32)  # noqa: E731
    y, mean, rstd = _C.layer_norm(x, w, b, 1e-5)
    y32, mean32, rstd32 = _C.layer_norm(f32(x), f32(w), f32(b), 1e-5)
    same_bits(y, y32, dtype)
    assert mean.dtype == np.float32 and rstd.dtype == np.float32
    np.testing.assert_array_equal(mean, mean32)
    np.testing.assert_array_equal(rstd, rstd32)
    gx, gw, gb = _C.layer_norm_backward(g, x, w, mean, rstd)
    gx32, gw32, gb32 = _C.layer_norm_backward(f32(g), f32(x), f32(w), mean32, rstd32)
    same_bits(gx, gx32, dtype)
    if affine:
        same_bits(gw, gw32, dtype)
        same_bits(gb, gb32, dtype)
    else:
        assert gw is None and gb is None


@given(n=st.integers(0, 3), c=st.integers(1, 4), h=st.integers(2, 12), w=st.integers(2, 12),
       k=st.integers(1, 3), s=st.integers(1, 2), dtype=st.sampled_from(HALVES), seed=st.integers(0, 2**16))
def test_pools_staged_equal_float32_rounded(n, c, h, w, k, s, dtype, seed):
    x = data((n, c, h, w), dtype, seed)
    x32 = x.astype(np.float32)
    pad = k // 2
    y, idx = _C.max_pool2d(x, (k, k), (s, s), (pad, pad), (1, 1), False)
    y32, idx32 = _C.max_pool2d(x32, (k, k), (s, s), (pad, pad), (1, 1), False)
    same_bits(y, y32, dtype)
    np.testing.assert_array_equal(idx, idx32)
    g = data(y.shape, dtype, seed + 1, 1.0)
    same_bits(_C.max_pool2d_backward(g, idx, x.shape), _C.max_pool2d_backward(g.astype(np.float32), idx, x.shape),
              dtype)
    a = _C.avg_pool2d(x, (k, k), (s, s), (pad, pad), False, True, None)
    same_bits(a, _C.avg_pool2d(x32, (k, k), (s, s), (pad, pad), False, True, None), dtype)
    ga = data(a.shape, dtype, seed + 2, 1.0)
    same_bits(_C.avg_pool2d_backward(ga, x.shape, (k, k), (s, s), (pad, pad), False, True, None),
              _C.avg_pool2d_backward(ga.astype(np.float32), x.shape, (k, k), (s, s), (pad, pad), False, True, None),
              dtype)


# broadcast shapes: a bias over channels, a row, a column, a scalar (0-d), and none
_BROADCASTS = [((2, 5, 4, 7), (1, 5, 1, 1)), ((9, 300), (300,)), ((9, 300), (9, 1)), ((6, 40), ()),
               ((3, 70), (3, 70))]


@given(shapes=st.sampled_from(_BROADCASTS), swap=st.booleans(), op=st.sampled_from(["add", "mul", "sub", "le"]),
       dtype=st.sampled_from(HALVES), seed=st.integers(0, 2**16))
def test_binary_ops_with_broadcast_operands_equal_float32_rounded(shapes, swap, op, dtype, seed):
    """A broadcast half operand (stride 0) is converted once, not per element: the result is
    still the float32 kernel's on the float32 values, rounded once (a comparison's bools
    equal)."""
    sa, sb = shapes[::-1] if swap else shapes
    a, b = np.asarray(data(sa, dtype, seed)), np.asarray(data(sb, dtype, seed + 1))
    f = getattr(cpu, op)
    got, want = f(a, b), f(a.astype(np.float32), b.astype(np.float32))
    if op == "le":
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, want)
    else:
        same_bits(got, want, dtype)


@given(shape=st.sampled_from([(128, 512), (5, 3, 70), (2, 3, 4, 5), (300, 1), (0, 8)]),
       which=st.sampled_from(["first", "second", "first two", "last"]), dtype=st.sampled_from(HALVES),
       seed=st.integers(0, 2**16))
def test_sums_of_half_arrays_equal_float32_rounded(shape, which, dtype, seed):
    """Half rows are converted in bulk into the float32 accumulators (the outer reduction of
    a bias gradient read them one element at a time): same sums, same order as float32."""
    x = data(shape, dtype, seed)
    dims = {"first": [0], "second": [1], "first two": [0, 1], "last": [len(shape) - 1]}[which]
    same_bits(cpu.sum(x, dims, False), cpu.sum(x.astype(np.float32), dims, False), dtype)
