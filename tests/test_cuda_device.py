"""The CUDA backend on a GPU: the runtime (allocator, streams, events, pinned memory,
errors), tensors on the cuda device through the public API, dropout's Philox stream and
deterministic reductions.  The kernels' values against ref are checked by
tests/test_conformance.py (its ``cuda`` parameter); every test here skips with the
backend's reason where no GPU can be used (bash benchmarks/gpu_check.sh runs them)."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from cuda_util import requires_cuda

pytestmark = requires_cuda


def _B():
    from tinyfw.backend import cuda

    return cuda


def test_roundtrip_all_dtypes_and_layouts():
    B = _B()
    rng = np.random.default_rng(0)
    for dt in B.DTYPES:
        a = (rng.standard_normal((5, 7)) * 3).astype(dt)
        d = B.from_host(a)
        assert d.shape == (5, 7) and d.dtype == a.dtype and d.device.type == "cuda"
        np.testing.assert_array_equal(B.to_host(d), a)
        np.testing.assert_array_equal(B.to_host(B.permute(d, (1, 0))), a.T)
        np.testing.assert_array_equal(B.to_host(B.slice_view(d, (slice(1, None, 2), -1))), a[1::2, -1])
        np.testing.assert_array_equal(B.to_host(B.expand(B.slice_view(d, (slice(0, 1),)), (3, 5, 7))),
                                      np.broadcast_to(a[:1], (3, 5, 7)))


def test_tensor_api_on_cuda():
    x = tinyfw.tensor([[1.0, -2.0], [3.0, 4.0]], device="cuda", requires_grad=True)
    y = (x * x + 1).relu().sum()
    y.backward()
    assert x.grad.device.type == "cuda"
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [[2.0, -4.0], [6.0, 8.0]])
    assert float(y.cpu()) == 2 + 5 + 10 + 17  # relu(x * x + 1) summed
    with pytest.raises(RuntimeError, match="expected all tensors on one device"):
        x + tinyfw.ones(2, 2)
    with pytest.raises(TypeError, match="cuda"):
        x.numpy()


def test_unimplemented_ops_raise_naming_op_and_device():
    a = tinyfw.ones(2, 2, device="cuda")
    with pytest.raises(NotImplementedError, match="matmul: not implemented on the cuda device"):
        a @ a


def test_allocator_caches_splits_and_reports():
    B = _B()
    tinyfw.cuda.synchronize()
    B.empty_cache()
    base = tinyfw.cuda.memory_allocated()
    a = B.empty((1000,), np.float32)  # 4000 bytes -> one 4096-byte block of a 2 MiB segment
    assert tinyfw.cuda.memory_allocated() == base + 4096
    assert tinyfw.cuda.memory_reserved() >= 2 << 20
    s0 = tinyfw.cuda.memory_stats()
    del a
    assert tinyfw.cuda.memory_allocated() == base
    b = B.empty((1000,), np.float32)  # reused: no new cudaMalloc
    assert tinyfw.cuda.memory_stats()["cuda_mallocs"] == s0["cuda_mallocs"]
    assert tinyfw.cuda.max_memory_allocated() >= base + 4096
    del b
    big = B.empty((8 << 20,), np.float32)  # 32 MiB: a segment of its own
    del big
    reserved = tinyfw.cuda.memory_reserved()
    B.empty_cache()
    assert tinyfw.cuda.memory_reserved() < reserved
    assert "allocated" in tinyfw.cuda.memory_summary()


def test_out_of_memory_is_a_python_exception():
    B = _B()
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        B.empty((1 << 50,), np.float32)


def test_streams_events_and_elapsed_time():
    B = _B()
    s = tinyfw.cuda.Stream()
    start, end = tinyfw.cuda.Event(enable_timing=True), tinyfw.cuda.Event(enable_timing=True)
    x = tinyfw.ones(1 << 20, device="cuda")
    with s:
        assert tinyfw.cuda.current_stream() == s
        start.record()
        y = x * 2 + 1
        end.record()
    tinyfw.cuda.current_stream().wait_stream(s)
    end.synchronize()
    assert start.elapsed_time(end) >= 0
    assert s.query()
    np.testing.assert_array_equal(y.cpu().numpy()[:3], [3.0, 3.0, 3.0])
    with pytest.raises(RuntimeError, match="enable_timing"):
        tinyfw.cuda.Event().elapsed_time(end)
    _ = B


def test_pinned_memory_and_dataloader():
    t = tinyfw.arange(10.0)
    p = tinyfw.cuda.pin_memory(t)
    assert tinyfw.cuda.is_pinned(p) and not tinyfw.cuda.is_pinned(t)
    np.testing.assert_array_equal(p.to("cuda").cpu().numpy(), t.numpy())
    ds = tinyfw.data.TensorDataset(tinyfw.arange(6.0))
    for (b,) in tinyfw.data.DataLoader(ds, batch_size=4, pin_memory=True):
        assert tinyfw.cuda.is_pinned(b)


def test_bad_index_is_an_index_error():
    x = tinyfw.arange(5.0, device="cuda")
    idx = tinyfw.tensor([0, 7], device="cuda")
    with pytest.raises(IndexError, match="out of bounds"):
        _B().gather(x._data, 0, idx._data)


def test_integer_division_by_zero():
    B = _B()
    a, b = B.from_host(np.array([1, 2], np.int32)), B.from_host(np.array([1, 0], np.int32))
    with pytest.raises(ZeroDivisionError, match="floor_divide"):
        B.floor_divide(a, b)


def test_reductions_are_deterministic_and_bounded():
    B = _B()
    x = np.random.default_rng(1).standard_normal((4097, 3001)).astype(np.float32)
    d = B.from_host(x)
    for dims in ((0,), (1,), (0, 1)):
        r1, r2 = B.to_host(B.sum(d, dims, False)), B.to_host(B.sum(d, dims, False))
        assert np.array_equal(r1, r2), f"sum over {dims} differs between runs"
        exact = x.astype(np.float64).sum(axis=dims)
        n = np.prod([x.shape[k] for k in dims])
        bound = np.abs(x.astype(np.float64)).sum(axis=dims) * (n / 256 + 64) * 2.0 ** -24
        assert np.all(np.abs(r1 - exact) <= bound)


def test_dropout_philox_reproducible_and_fair():
    B = _B()
    x = B.from_host(np.ones((1000, 1000), np.float32))
    y1, m1 = B.dropout(x, 0.3, 1234)
    y2, m2 = B.dropout(x, 0.3, 1234)
    _, m3 = B.dropout(x, 0.3, 1235)
    m1, m2, m3 = B.to_host(m1), B.to_host(m2), B.to_host(m3)
    assert np.array_equal(m1, m2) and not np.array_equal(m1, m3)
    keep = m1.mean()
    assert abs(keep - 0.7) < 5 * np.sqrt(0.21 / m1.size)  # 5 sigma
    y = B.to_host(y1)
    np.testing.assert_array_equal(y, np.where(m1, np.float32(1 / 0.7), 0).astype(np.float32))


def test_sort_rejects_long_rows_clearly():
    B = _B()
    x = B.from_host(np.zeros(5000, np.float32))
    with pytest.raises(NotImplementedError, match="sort: rows of more than"):
        B.sort(x, 0, False)
