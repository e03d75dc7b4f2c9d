"""The C++ cast and index kernels beyond the generated conformance cases (those are in
test_conformance.py's INDEX table): casts of large strided arrays (the conversion rules
themselves are tested in test_casts.py), fallbacks to ref, error paths, and large threaded
inputs that must give the same bits at 1 and 2 threads."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import tinyfw
from tinyfw.backend import cpu, ref

BF16 = np.dtype(ml_dtypes.bfloat16)
pytestmark = pytest.mark.skipif("gather" not in cpu.KERNELS, reason="the C++ index kernels are not built")


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


@pytest.mark.parametrize("pair", [(np.float32, BF16), (np.float32, np.float16), (BF16, np.float32),
                                  (np.float16, np.float32), (np.int64, BF16), (np.float64, np.int32)])
def test_cast_large_bits_and_layout(pair):
    src, dst = pair
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((300, 1000)) * 1e3).astype(src)
    x.reshape(-1)[:3] = [0, 1, 2] if np.dtype(src).kind == "i" else [np.nan, np.inf, -0.0]
    for v in (x, x.T, x[::2, ::-3]):
        with np.errstate(all="ignore"):
            out, exp, order_k = cpu.cast(v, np.dtype(dst)), ref.cast(v, np.dtype(dst)), v.astype(dst)
        np.testing.assert_array_equal(_bits(out), _bits(exp))
        assert out.strides == order_k.strides or not v.flags.c_contiguous  # astype's order='K'


def test_fallbacks_to_ref():
    """Index forms outside the fast path give ref's results."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 6, 7)).astype(np.float32)
    i, j = np.array([0, 4, -1]), np.array([1, 2, 5])
    for idx in [(i, slice(None), j), (x[:, 0, 0] > 0,), (1, i), (Ellipsis, j), (None, i), (i,) * 4]:
        try:
            exp = ref.index(x, idx)
        except IndexError:
            with pytest.raises(IndexError):
                cpu.index(x, idx)
            continue
        np.testing.assert_array_equal(cpu.index(x, idx), exp)
    v = rng.standard_normal((3, 6)).astype(np.float32)  # two arrays apart: their dims go first
    np.testing.assert_array_equal(cpu.index_put(x, (i, slice(None), j), v, True),
                                  ref.index_put(x, (i, slice(None), j), v, True))
    np.testing.assert_array_equal(cpu.index_put(x, (i,), np.float32(2.0), False), ref.index_put(x, (i,), np.float32(2.0), False))
    # values of another dtype: numpy's casting rules
    np.testing.assert_array_equal(cpu.index_put(x, (i,), np.ones((3, 6, 7)), True), ref.index_put(x, (i,), np.ones((3, 6, 7)), True))
    # gather with a size-1 input dim broadcast (numpy's take_along_axis accepts it)
    y, gi = x[:, :1], np.zeros((5, 3, 7), np.int64)
    np.testing.assert_array_equal(cpu.gather(y, 0, gi), ref.gather(y, 0, gi))


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_reversed_and_stepped_slices(accumulate):
    """Slices with negative steps start at the far end of the copy (a regression: the
    kernel once wrote relative to the copy's first element, out of bounds)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 5, 4)).astype(np.float32)
    for idx in [(slice(None, None, -1), np.array(0)), (slice(None, None, -2), np.array([1, 1, -1])),
                (slice(4, 0, -1), slice(None), np.array([[3, 0], [3, 3]])), (np.array([5, 0, 5]), slice(None, None, -3))]:
        rshape = np.empty(x.shape)[idx].shape
        v = rng.standard_normal(rshape).astype(np.float32)
        np.testing.assert_array_equal(cpu.index_put(x, idx, v, accumulate), ref.index_put(x, idx, v, accumulate))
        np.testing.assert_array_equal(cpu.index(x, idx), ref.index(x, idx))


def test_errors_name_the_kernel():
    x = np.zeros((4, 5), np.float32)
    with pytest.raises(IndexError, match="gather: index 4 is out of bounds for dim 0 with size 4"):
        cpu.gather(x, 0, np.array([[4]]))
    with pytest.raises(IndexError, match="gather: index -6 is out of bounds for dim 1"):
        cpu.gather(x, 1, np.array([[0, -6]]))
    with pytest.raises(IndexError, match="scatter_add: index 9 is out of bounds"):
        cpu.scatter_add(x, 1, np.array([[9]]), np.ones((1, 1), np.float32))
    with pytest.raises(IndexError, match="scatter: index -5 is out of bounds"):
        cpu.scatter(x, 0, np.array([[-5]]), np.ones((1, 1), np.float32))
    with pytest.raises(IndexError, match="index: index 5 is out of bounds for dim 1 with size 5"):
        cpu.index(x, (slice(None), np.array([0, 5])))
    with pytest.raises(IndexError, match="index_put: index -5 is out of bounds for dim 0 with size 4"):
        cpu.index_put(x, (np.array([-5]),), np.ones(5, np.float32), True)
    with pytest.raises(IndexError, match="index: index 3 is out of bounds for dim 0 with size 3"):
        cpu.index(x[1:], (np.array([3]),))
    with pytest.raises(ValueError, match="gather: index must be an integer array, got float64"):
        cpu.gather(x, 0, np.zeros((1, 1)))
    with pytest.raises(ValueError, match="gather: dim 2 out of range"):
        cpu.gather(x, 2, np.zeros((1, 1), np.int64))
    with pytest.raises(ValueError, match="cast: unsupported dtype complex64"):
        cpu.cast(x, np.dtype(np.complex64))
    with pytest.raises(ValueError, match="cast: unsupported dtype"):
        cpu.cast(np.zeros(3, np.uint16), np.dtype(np.float32))


def _both_thread_counts(fn):
    n0 = tinyfw.get_num_threads()
    try:
        tinyfw.set_num_threads(1)
        one = fn()
        tinyfw.set_num_threads(2)
        two = fn()
    finally:
        tinyfw.set_num_threads(n0)
    np.testing.assert_array_equal(_bits(one), _bits(two))
    return two


@pytest.mark.parametrize("dtype", [np.float32, BF16])
def test_embedding_backward_deterministic(dtype):
    """index_put(zeros, (idx,), g, accumulate=True) with many duplicates: ref's bits at
    any thread count."""
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 300, (32, 64))
    g = rng.standard_normal((32, 64, 96)).astype(dtype)
    z = np.zeros((300, 96), dtype)
    out = _both_thread_counts(lambda: cpu.index_put(z, (idx,), g, True))
    np.testing.assert_array_equal(_bits(out), _bits(ref.index_put(z, (idx,), g, True)))
    w = rng.standard_normal((300, 96)).astype(dtype)
    np.testing.assert_array_equal(_bits(cpu.index(w, (idx,))), _bits(ref.index(w, (idx,))))


@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_add_gather_large_deterministic(dim):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((600, 500)).astype(np.float32)
    idx = rng.integers(-20, 20, (600, 500))
    src = rng.standard_normal((600, 500)).astype(np.float32)
    out = _both_thread_counts(lambda: cpu.scatter_add(x, dim, idx, src))
    np.testing.assert_array_equal(out, ref.scatter_add(x, dim, idx, src))
    np.testing.assert_array_equal(_both_thread_counts(lambda: cpu.scatter(x, dim, idx, src)),
                                  ref.scatter(x, dim, idx, src))
    gi = idx[:500, :500] % 500
    np.testing.assert_array_equal(cpu.gather(x.T, dim, gi), ref.gather(x.T, dim, gi))


def test_ops_use_the_kernels():
    """Through the tensor ops (embedding forward/backward) the results match the ref backend."""
    rng = np.random.default_rng(5)
    w0 = rng.standard_normal((50, 8)).astype(np.float32)
    idx = rng.integers(0, 50, (4, 7))
    grads = {}
    old = tinyfw.get_backend().__name__.rsplit(".", 1)[-1]
    for backend in ("cpu", "ref"):
        tinyfw.set_backend(backend)
        try:
            # the CPU backends are compared: the tensors live on the CPU whatever the
            # suite's device
            w = tinyfw.tensor(w0, requires_grad=True, device="cpu")
            out = tinyfw.nn.functional.embedding(tinyfw.tensor(idx, device="cpu"), w)
            (out * out).sum().backward()
            grads[backend] = (out.detach().numpy(), w.grad.numpy())
        finally:
            tinyfw.set_backend(old)
    for a, b in zip(grads["cpu"], grads["ref"]):
        np.testing.assert_array_equal(a, b)
