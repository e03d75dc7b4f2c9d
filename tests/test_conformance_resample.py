"""The C++ resample_axis / resample_axis_backward kernels (csrc/interpolate.cpp) against the
numpy reference (tinyfw/backend/ref_resample.py): shapes, absent taps, layouts, dtypes,
thread-count independence and errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinyfw.backend import ref

C = pytest.importorskip("tinyfw._C")


def _gathered(x, index):
    """x[b, index[o, t], i] as (B, O, T, I) (0 where the tap is absent)."""
    g = x[:, np.maximum(index, 0), :]
    return np.where((index >= 0)[None, :, :, None], g, 0)


@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 5), n_in=st.integers(1, 9), inner=st.sampled_from([1, 2, 7, 33, 600]),
       n_out=st.integers(1, 9), taps=st.integers(1, 4), absent=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 16))
def test_forward_and_backward_match_ref(b, n_in, inner, n_out, taps, absent, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, n_in, inner)).astype(dtype)
    index = rng.integers(-1 if absent else 0, n_in, (n_out, taps))
    w = rng.standard_normal((n_out, taps)).astype(dtype)
    y, y_ref = C.resample_axis(x, index, w), ref.resample_axis(x, index, w)
    assert y.dtype == y_ref.dtype and y.shape == y_ref.shape == (b, n_out, inner)
    xg = _gathered(x, index).transpose(0, 1, 3, 2)  # (B, O, I, T)
    bound = 2 * (taps + 1) * np.finfo(dtype).eps * np.abs(xg.astype(np.float64) * w[None, :, None, :]).sum(-1)
    assert np.all(np.abs(y.astype(np.float64) - y_ref) <= bound + np.finfo(dtype).tiny)
    g = rng.standard_normal((b, n_out, inner)).astype(dtype)
    gx, gx_ref = C.resample_axis_backward(g, index, w, n_in), \
        ref.resample_axis_backward(g, index, w, n_in)
    assert gx.dtype == gx_ref.dtype and gx.shape == gx_ref.shape == (b, n_in, inner)
    # each input row sums at most O * T contributions, in the same order on both sides
    mag = np.zeros((b, n_in + 1, inner))
    for t in range(taps):
        np.add.at(mag, (slice(None), np.where(index[:, t] >= 0, index[:, t], n_in)),
                  np.abs(w[None, :, t, None] * g.astype(np.float64)))
    bound = 2 * (n_out * taps + 1) * np.finfo(dtype).eps * mag[:, :n_in]
    assert np.all(np.abs(gx.astype(np.float64) - gx_ref) <= bound + np.finfo(dtype).tiny)


def test_layouts_half_types_and_nan():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 8, 10)).astype(np.float32)
    x[0, 2, 3] = np.nan
    x[1, 5, 0] = np.inf
    index = np.array([[0, 1], [2, 3], [5, -1], [7, 7]])
    w = np.array([[0.25, 0.75], [1.0, 0.0], [0.5, 0.5], [2.0, -1.0]], np.float32)
    strided = x[:, :, ::2]  # not contiguous: the kernel copies it
    np.testing.assert_array_equal(C.resample_axis(strided, index, w),
                                  ref.resample_axis(np.ascontiguousarray(strided), index, w))
    np.testing.assert_array_equal(C.resample_axis(x, index, w), ref.resample_axis(x, index, w))
    for dt in (np.float16,):  # half types go to ref (float32 weights)
        xh = x.astype(dt)
        np.testing.assert_array_equal(C.resample_axis(xh, index, w), ref.resample_axis(xh, index, w))
    e = np.zeros((0, 8, 3), np.float32)
    assert C.resample_axis(e, index, w).shape == (0, 4, 3)
    assert C.resample_axis_backward(np.zeros((2, 4, 0), np.float32), index, w, 8).shape == (2, 8, 0)


def test_backward_does_not_depend_on_the_thread_count():
    import tinyfw
    rng = np.random.default_rng(2)
    g = rng.standard_normal((2, 300, 2000)).astype(np.float32)
    index = rng.integers(-1, 50, (300, 4))
    w = rng.standard_normal((300, 4)).astype(np.float32)
    before = tinyfw.get_num_threads()
    try:
        tinyfw.set_num_threads(1)
        one = C.resample_axis_backward(g, index, w, 50)
        tinyfw.set_num_threads(max(2, before))
        many = C.resample_axis_backward(g, index, w, 50)
    finally:
        tinyfw.set_num_threads(before)
    np.testing.assert_array_equal(one, many)


def test_bad_tables_raise():
    x = np.zeros((1, 4, 2), np.float32)
    w = np.ones((2, 2), np.float32)
    with pytest.raises(IndexError, match="resample_axis: tap index 4 is out of range for an axis "
                                         "of size 4"):
        C.resample_axis(x, np.array([[0, 4], [1, 2]]), w)
    with pytest.raises(IndexError, match="tap index -2"):
        C.resample_axis_backward(np.zeros((1, 2, 2), np.float32), np.array([[0, -2], [1, 2]]), w, 4)
    with pytest.raises(ValueError, match=r"index and weight must both be \(O, T\)"):
        C.resample_axis(x, np.array([[0, 1]]), w)
    with pytest.raises(ValueError, match="does not match 2 outputs"):
        C.resample_axis_backward(np.zeros((1, 3, 2), np.float32), np.array([[0, 1], [1, 2]]), w, 4)
