"""The CPU caching allocator (csrc/pool.cpp) and the memory statistics API."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import tinyfw
import tinyfw.memory as M
from tinyfw.backend import cpu

pytestmark = pytest.mark.skipif(not cpu.KERNELS, reason="tinyfw._C is not built")
_C = tinyfw.backend.cpu._C
BIG = (512, 512)  # 1 MiB of float32: above the pool's 64 KiB floor


@pytest.fixture(autouse=True)
def _pool_on():
    _C.pool_configure(enabled=True)
    yield
    _C.pool_configure(enabled=True)


def test_a_block_returns_when_its_last_view_dies():
    before = cpu.memory_allocated()
    a = _C.empty(BIG, np.dtype(np.float32))
    assert cpu.memory_allocated() == before + 2 ** 20
    view = a[1:, ::2]  # keeps the block alive through numpy's base chain
    del a
    assert cpu.memory_allocated() == before + 2 ** 20
    del view
    assert cpu.memory_allocated() == before
    assert cpu.memory_reserved() >= 2 ** 20  # cached for the next request


def test_cached_blocks_are_reused_and_live_ones_never_shared():
    cpu.empty_cache()
    a = _C.empty(BIG, np.dtype(np.float32))
    a[...] = 1
    ptr = a.__array_interface__["data"][0]
    del a
    hits = cpu.memory_stats()["hits"]
    b = _C.empty(BIG, np.dtype(np.float32))
    c = _C.empty(BIG, np.dtype(np.float32))
    assert cpu.memory_stats()["hits"] == hits + 1
    assert {b.__array_interface__["data"][0], c.__array_interface__["data"][0]} >= {ptr}
    b[...] = 2
    c[...] = 3
    assert (b == 2).all() and (c == 3).all()


def test_size_classes_bound_the_waste():
    cpu.reset_peak_memory_stats()
    before = cpu.memory_allocated()
    n = 300_001  # float32 elements: 1.2 MB, rounded up to the next of 4 steps per octave
    a = _C.empty((n,), np.dtype(np.float32))
    grown = cpu.memory_allocated() - before
    assert 4 * n <= grown <= 1.25 * 4 * n
    assert cpu.max_memory_allocated() >= before + grown
    del a


def test_small_arrays_and_the_off_switch_bypass_the_pool():
    before = cpu.memory_allocated()
    small = _C.empty((16,), np.dtype(np.float32))
    assert cpu.memory_allocated() == before and small.base is None
    _C.pool_configure(enabled=False)
    big = _C.empty(BIG, np.dtype(np.float32))
    assert cpu.memory_allocated() == before
    assert big.base is None  # numpy owns it
    del small, big


def test_cap_and_empty_cache():
    cpu.empty_cache()
    _C.pool_configure(cap=3 * 2 ** 20)
    try:
        arrays = [_C.empty(BIG, np.dtype(np.float32)) for _ in range(5)]
        del arrays
        assert cpu.memory_stats()["cached"] <= 3 * 2 ** 20
        cpu.empty_cache()
        assert cpu.memory_stats()["cached"] == 0
    finally:
        _C.pool_configure(cap=2 << 30)


@pytest.mark.skipif(tinyfw.get_backend() is not cpu or tinyfw.get_default_device().type != "cpu",
                    reason="the suite runs CPU tensors on another backend or device")
def test_kernel_outputs_come_from_the_pool_and_stay_correct():
    x = tinyfw.randn(*BIG)
    before = cpu.memory_allocated()
    y = x * 2 + 1
    assert cpu.memory_allocated() > before
    np.testing.assert_array_equal(y.numpy(), x.numpy() * np.float32(2) + np.float32(1))
    y.sum().item()
    del y
    assert cpu.memory_allocated() == before


def test_threads_allocate_and_free_concurrently():
    errors = []

    def work(seed):
        try:
            rng = np.random.default_rng(seed)
            for _ in range(50):
                a = _C.empty((int(rng.integers(16_384, 200_000)),), np.dtype(np.float32))
                a[...] = seed
                assert (a == seed).all()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    before = cpu.memory_allocated()
    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert cpu.memory_allocated() == before


def test_the_public_api_reads_the_device_backend():
    if tinyfw.get_backend() is cpu:
        assert M.memory_stats("cpu") == cpu.memory_stats()
    assert M.memory_stats("meta") == {"allocated": 0, "max_allocated": 0, "reserved": 0}


def test_other_devices_report_zero_and_bad_shapes_raise():
    assert M.memory_allocated("meta") == 0 and M.memory_reserved("check") == 0
    with pytest.raises(ValueError, match="negative dimension"):
        _C.empty((-1, 3), np.dtype(np.float32))


def _pooled(a) -> bool:
    return type(a.base).__name__ == "PyCapsule"


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint8, np.bool_])
def test_full_allocates_from_the_pool_with_refs_values(dtype):
    """The cpu backend's full: the pool's memory (no page faults every step), ref's values
    (ints out of range wrap; uint8 is outside the kernels' dtypes)."""
    for value in (0, 1, 300, -1, True):
        got = cpu.full(BIG, value, np.dtype(dtype))
        want = tinyfw.backend.ref.full(BIG, value, np.dtype(dtype))
        assert got.dtype == want.dtype and np.array_equal(got, want), (value, dtype)
        assert _pooled(got) or np.dtype(dtype) == np.uint8


def test_nn_kernel_outputs_come_from_the_pool():
    """Outputs of the fused nn kernels (were numpy allocations: mmap'd, page-faulted on
    every training step)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(BIG).astype(np.float32)
    w, b = np.ones(BIG[1], np.float32), np.zeros(BIG[1], np.float32)
    q = rng.standard_normal((2, 4, 128, 64)).astype(np.float32)
    out, lse = cpu.sdpa_forward(q, q, q, None, 0.125, False)
    assert _pooled(out)
    assert all(map(_pooled, cpu.sdpa_backward(q, q, q, q, out, lse, None, 0.125, False)))
    assert _pooled(cpu.layer_norm(x, w, b, 1e-5)[0])
    y, mask = cpu.dropout(x, 0.5, 0)
    assert _pooled(y) and _pooled(mask)
