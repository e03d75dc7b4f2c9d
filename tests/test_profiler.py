"""Profiler: op counts, FLOP and byte accounting, the table, interceptor clean-up, and
model_size."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from tinyfw import dispatch, nn, profiler
from tests.helpers import npy


def test_matmul_flops_bytes_and_table():
    a, b = tinyfw.randn(32, 64), tinyfw.randn(64, 16)
    with profiler.profile() as prof:
        for _ in range(3):
            c = a @ b
        d = (c + 1.0).exp()
    s = prof.stats["Matmul"]
    assert s.calls == 3
    assert s.flops == 3 * 2 * 32 * 64 * 16
    assert s.bytes == 3 * 4 * (32 * 64 + 64 * 16 + 32 * 16)
    assert s.time_s > 0 and s.gflops > 0 and s.gbps > 0
    assert prof.stats["Exp"].flops == 4 * d.numel()
    text = prof.table(sort_by="flops")
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["op", "calls", "time"]
    assert lines[2].startswith("Matmul")  # the most FLOPs first
    assert "wall time" in lines[-1]
    with pytest.raises(ValueError, match="sort_by must be one of"):
        prof.table(sort_by="colour")
    assert prof not in dispatch.interceptors()


def test_backward_ops_and_conv_are_counted():
    x = tinyfw.randn(2, 3, 10, 10, requires_grad=True)
    conv = nn.Conv2d(3, 4, 3)
    with profiler.profile() as prof:
        y = conv(x)
        y.sum().backward()
    out_elems = 2 * 4 * 8 * 8
    assert prof.stats["Conv2d"].flops == 2 * out_elems * 3 * 3 * 3
    assert prof.stats["Conv2dBackwardInput"].flops == 2 * out_elems * 3 * 3 * 3
    assert prof.stats["Conv2dBackwardWeight"].flops == 2 * out_elems * 3 * 3 * 3
    assert prof.total_flops > 0 and prof.total_time_s > 0


def test_results_unchanged_and_exception_safety():
    a = tinyfw.randn(5, 5)
    ref = npy(a @ a).copy()
    with profiler.profile():
        np.testing.assert_array_equal(npy(a @ a), ref)
    with pytest.raises(RuntimeError):
        with profiler.profile():
            a @ tinyfw.randn(4, 4)
    assert not dispatch.interceptors()
    with profiler.profile(enabled=False) as prof:
        a @ a
    assert prof.stats == {}


def test_model_size():
    m = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10), nn.BatchNorm1d(10))
    size = profiler.model_size(m)
    n = 784 * 512 + 512 + 512 * 10 + 10 + 2 * 10
    assert size["parameters"] == n and size["trainable"] == n
    assert size["bytes"] == 4 * n
    assert size["bytes_with_buffers"] >= 4 * n + 2 * 4 * 10  # running mean and var
