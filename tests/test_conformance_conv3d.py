"""Conformance of the C++ conv3d kernels (csrc/conv3d.cpp) with the numpy reference
(tinyfw/backend/ref_conv3d.py): hypothesis over shapes, groups, stride, padding, dilation,
dtypes and input layouts, with 1 and 2 OpenMP threads; the slab split of a large column
matrix, the 1x1x1 path without im2col, and the errors.  Tolerances as
tests/test_conformance_nn.py (a few ulps scaled by the square root of the sum length)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinyfw.backend import ref
from test_conformance_nn import FLOATS, close, layout, randn, threads  # noqa: F401

C = pytest.importorskip("tinyfw._C", reason="the C++ extension is not built")


@st.composite
def conv3d_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(3))
    size = tuple(draw(st.integers(max(1, d * (kk - 1) + 1 - 2 * p), 6))
                 for kk, p, d in zip(k, padding, dilation))
    n = draw(st.integers(0, 3))
    return dict(x=(n, cg * groups) + size, w=(og * groups, cg) + k, stride=stride,
                padding=padding, dilation=dilation, groups=groups)


def _check_all(x, w, opts, dtype, rng, lg="C"):
    y = C.conv3d(x, w, *opts)
    close(y, ref.conv3d(x, w, *opts), dtype, int(np.prod(w.shape[1:])), "conv3d")
    g = layout(randn(rng, y.shape, dtype), lg)
    close(C.conv3d_backward_input(g, w, x.shape, *opts),
          ref.conv3d_backward_input(g, w, x.shape, *opts), dtype,
          w.shape[0] // opts[3] * int(np.prod(w.shape[2:])), "backward_input")
    close(C.conv3d_backward_weight(g, x, w.shape, *opts),
          ref.conv3d_backward_weight(g, x, w.shape, *opts), dtype,
          y.shape[0] * int(np.prod(y.shape[2:])), "backward_weight")


@given(case=conv3d_cases(), dtype=st.sampled_from(FLOATS),
       lx=st.sampled_from(["C", "F", "slice"]), seed=st.integers(0, 2**31))
def test_conv3d(case, dtype, lx, seed):
    rng = np.random.default_rng(seed)
    x = layout(randn(rng, case["x"], dtype), lx)
    w = randn(rng, case["w"], dtype)
    opts = (case["stride"], case["padding"], case["dilation"], case["groups"])
    _check_all(x, w, opts, dtype, rng, lx)


@pytest.mark.parametrize("xs,ws,opts", [
    # K * OH * OW = 432 * 1024: slabs of 2 output depths, the last one shorter
    ((2, 16, 5, 32, 32), (4, 16, 3, 3, 3), ((1, 1, 1), (1, 1, 1), (1, 1, 1), 1)),
    # 1x1x1: the input plane is the column matrix (contiguous) / im2col (sliced input below)
    ((3, 6, 4, 5, 6), (8, 3, 1, 1, 1), ((1, 1, 1), (0, 0, 0), (1, 1, 1), 2)),
])
@pytest.mark.parametrize("lx", ["C", "slice"])
def test_conv3d_slabs_and_pointwise(xs, ws, opts, lx):
    rng = np.random.default_rng(1)
    x, w = layout(randn(rng, xs, np.float32), lx), randn(rng, ws, np.float32)
    _check_all(x, w, opts, np.float32, rng)


def test_conv3d_without_input_channels_sums_nothing():
    x, w = np.zeros((2, 0, 3, 3, 3), np.float32), np.zeros((4, 0, 2, 2, 2), np.float32)
    y = C.conv3d(x, w, (1, 1, 1), (0, 0, 0), (1, 1, 1), 1)
    np.testing.assert_array_equal(y, np.zeros((2, 4, 2, 2, 2), np.float32))


def test_conv3d_errors():
    x, w = np.zeros((1, 4, 5, 5, 5), np.float32), np.zeros((2, 3, 3, 3, 3), np.float32)
    opts = ((1, 1, 1), (0, 0, 0), (1, 1, 1), 1)
    with pytest.raises(ValueError, match=r"conv3d: inconsistent shapes \(input \(1, 4, 5, 5, 5\)"):
        C.conv3d(x, w, *opts)
    with pytest.raises(ValueError, match="conv3d: kernel larger than the padded input"):
        C.conv3d(x, np.zeros((2, 4, 7, 3, 3), np.float32), *opts)
    with pytest.raises(ValueError, match="conv3d: stride must have 3 values"):
        C.conv3d(x, np.zeros((2, 4, 3, 3, 3), np.float32), (1, 1), (0, 0, 0), (1, 1, 1), 1)
    with pytest.raises(TypeError, match="conv3d: operands have different dtypes"):
        C.conv3d(x, np.zeros((2, 4, 3, 3, 3)), *opts)
    with pytest.raises(TypeError, match="conv3d: input must be a floating-point array"):
        C.conv3d(x.astype(np.int32), np.zeros((2, 4, 3, 3, 3), np.int32), *opts)
    w4 = np.zeros((2, 4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"conv3d_backward_input: grad has shape \(1, 2, 2, 3, 3\), "
                                         r"expected \(1, 2, 3, 3, 3\)"):
        C.conv3d_backward_input(np.zeros((1, 2, 2, 3, 3), np.float32), w4, x.shape, *opts)
    with pytest.raises(ValueError, match="conv3d_backward_weight: grad has shape"):
        C.conv3d_backward_weight(np.zeros((1, 3, 3, 3, 3), np.float32), x, w4.shape, *opts)
