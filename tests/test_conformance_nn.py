"""Conformance of the C++ GEMM and nn kernels (tinyfw._C) with the numpy reference backend.

Every kernel registered by csrc/gemm.cpp and csrc/nn.cpp is run on hypothesis-generated
shapes, options, strides and dtypes and compared with `tinyfw.backend.ref`, the
specification.  Tolerances: float64 to ~1e-12 relative, float32 to a few ulps scaled by the
length of the sums involved, half types to one rounding of the half format.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
from tinyfw.backend import ref

C = pytest.importorskip("tinyfw._C", reason="the C++ extension is not built")

FLOATS = [np.float32, np.float64, np.float16, ml_dtypes.bfloat16]
# (rtol, atol per unit of sqrt(sum length)) for one output element
TOL = {np.dtype(np.float64): (1e-12, 1e-13), np.dtype(np.float32): (2e-5, 2e-6),
       np.dtype(np.float16): (2e-3, 2e-3), np.dtype(ml_dtypes.bfloat16): (1.6e-2, 1.6e-2)}


def close(actual, expected, dtype, terms: int = 1, msg: str = ""):
    """Compare in float64 with the dtype's tolerance for sums of `terms` products."""
    assert actual.dtype == expected.dtype, f"{msg}: dtype {actual.dtype} vs {expected.dtype}"
    assert actual.shape == expected.shape, f"{msg}: shape {actual.shape} vs {expected.shape}"
    r, a = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                               rtol=r, atol=a * max(1.0, np.sqrt(terms)), equal_nan=True,
                               err_msg=msg)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"], autouse=True)
def threads(request):
    """Run every test with 1 and 2 OpenMP threads (the parallel splits differ)."""
    old = tinyfw.get_num_threads()
    tinyfw.set_num_threads(request.param)
    yield request.param
    tinyfw.set_num_threads(old)


def layout(a: np.ndarray, kind: str) -> np.ndarray:
    """The same values in another memory layout: C order, Fortran order, or a strided
    slice of a larger array."""
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "slice":
        big = np.zeros(tuple(2 * s + 1 for s in a.shape), a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    return a


# -- matmul ---------------------------------------------------------------------------------
dims = st.sampled_from([0, 1, 2, 5, 6, 7, 16, 17, 33, 70])


@given(m=dims, n=dims, k=dims, batch_a=st.sampled_from([(), (1,), (3,), (2, 1)]),
       batch_b=st.sampled_from([(), (1,), (3,), (4, 3)]),
       dtype=st.sampled_from(FLOATS + [np.int8, np.int32, np.int64]),
       la=st.sampled_from(["C", "F", "slice"]), lb=st.sampled_from(["C", "F", "slice"]),
       seed=st.integers(0, 2**31))
def test_matmul(m, n, k, batch_a, batch_b, dtype, la, lb, seed):
    if len(batch_a) == 2 and len(batch_b) == 2 and batch_a[0] != batch_b[0]:
        batch_a = (batch_b[0], 1)
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "i":
        a = rng.integers(-100, 100, batch_a + (m, k)).astype(dtype)
        b = rng.integers(-100, 100, batch_b + (k, n)).astype(dtype)
    else:
        a, b = randn(rng, batch_a + (m, k), dtype), randn(rng, batch_b + (k, n), dtype)
    a, b = layout(a, la), layout(b, lb)
    got, want = C.matmul(a, b), ref.matmul(a, b)
    if np.dtype(dtype).kind == "i":  # exact, wrapping on overflow as numpy
        assert got.dtype == want.dtype and np.array_equal(got, want)
    else:
        close(got, want, dtype, terms=k, msg=f"{a.shape} @ {b.shape}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,k", [(131, 263, 517), (7, 4100, 3), (300, 5, 300), (1, 513, 1)])
def test_matmul_blocking_edges(m, n, k, dtype):
    """Sizes that cross the MC / KC / NC block edges and leave partial register tiles."""
    rng = np.random.default_rng(0)
    a, b = randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)
    close(C.matmul(a, b), ref.matmul(a, b), dtype, terms=k)
    # transposed operands, read in place by the packing
    at, bt = np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T
    close(C.matmul(at, bt), ref.matmul(a, b), dtype, terms=k)


def test_matmul_errors():
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="matmul"):
        C.matmul(a, np.zeros((5, 2), np.float32))
    with pytest.raises(ValueError, match="matmul"):
        C.matmul(np.zeros((2, 3, 4), np.float32), np.zeros((3, 4, 2), np.float32))
    with pytest.raises(TypeError, match="matmul"):
        C.matmul(a, np.zeros((4, 2), np.float64))
    with pytest.raises(TypeError, match="matmul"):
        C.matmul(a, [[1.0]])


# -- conv2d -------------------------------------------------------------------------------------
@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 9))
    w = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 9))
    n = draw(st.integers(0, 3))
    return dict(x=(n, cg * groups, h, w), w=(og * groups, cg, kh, kw), stride=stride,
                padding=padding, dilation=dilation, groups=groups)


@given(case=conv_cases(), dtype=st.sampled_from(FLOATS), lx=st.sampled_from(["C", "F", "slice"]),
       seed=st.integers(0, 2**31))
def test_conv2d(case, dtype, lx, seed):
    rng = np.random.default_rng(seed)
    x = layout(randn(rng, case["x"], dtype), lx)
    w = randn(rng, case["w"], dtype)
    opts = (case["stride"], case["padding"], case["dilation"], case["groups"])
    terms = int(np.prod(case["w"][1:]))
    y = C.conv2d(x, w, *opts)
    close(y, ref.conv2d(x, w, *opts), dtype, terms, "conv2d")
    g = layout(randn(rng, y.shape, dtype), lx)
    close(C.conv2d_backward_input(g, w, x.shape, *opts),
          ref.conv2d_backward_input(g, w, x.shape, *opts), dtype, terms * 4, "backward_input")
    close(C.conv2d_backward_weight(g, x, w.shape, *opts),
          ref.conv2d_backward_weight(g, x, w.shape, *opts), dtype,
          y.shape[0] * y.shape[2] * y.shape[3], "backward_weight")


@pytest.mark.parametrize("shape,out,k,pad", [((64, 1, 28, 28), 32, 3, 0), ((16, 32, 13, 13), 64, 3, 1),
                                             ((4, 8, 10, 10), 16, 1, 0)])
def test_conv2d_benchmark_shapes(shape, out, k, pad):
    """The benchmark's shapes (batch-parallel path) and the 1x1 path without im2col."""
    rng = np.random.default_rng(1)
    x, w = randn(rng, shape, np.float32), randn(rng, (out, shape[1], k, k), np.float32)
    opts = ((1, 1), (pad, pad), (1, 1), 1)
    y = C.conv2d(x, w, *opts)
    terms = shape[1] * k * k
    close(y, ref.conv2d(x, w, *opts), np.float32, terms)
    g = randn(rng, y.shape, np.float32)
    close(C.conv2d_backward_input(g, w, x.shape, *opts), ref.conv2d_backward_input(g, w, x.shape, *opts),
          np.float32, out * k * k)
    close(C.conv2d_backward_weight(g, x, w.shape, *opts), ref.conv2d_backward_weight(g, x, w.shape, *opts),
          np.float32, shape[0] * y.shape[2] * y.shape[3])


def test_conv2d_errors():
    x, w = np.zeros((1, 4, 5, 5), np.float32), np.zeros((2, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="conv2d"):
        C.conv2d(x, w, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="conv2d"):
        C.conv2d(x, np.zeros((2, 4, 7, 7), np.float32), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="conv2d_backward_input"):
        C.conv2d_backward_input(np.zeros((1, 2, 9, 9), np.float32), np.zeros((2, 4, 3, 3), np.float32),
                                (1, 4, 5, 5), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(TypeError, match="conv2d"):
        C.conv2d(x.astype(np.int32), w, (1, 1), (0, 0), (1, 1), 1)
