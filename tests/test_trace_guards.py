"""Traced mode never serves a stale graph (issue 14, item 4): every call's cache key holds
what the graph was specialised on, and reading a traced value in Python is refused.
Each case gave a wrong result silently before its fix."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from tinyfw import jit, nn
from tinyfw.jit import TraceError
from tests.helpers import npy


def test_numpy_conversion_of_a_traced_value_is_refused():
    def branchy(x):
        return x * 2 if np.asarray(x).sum() > 0 else x * -3

    with pytest.raises(TraceError, match="__array__ reads the value of a traced tensor"):
        jit.trace(branchy, tinyfw.ones(3))


def test_a_dict_argument_mutated_between_calls_retraces():
    def scaled(x, cfg):
        return x * cfg["k"]

    cfg = {"k": 2.0}
    f = jit.trace(scaled, (tinyfw.ones(2), cfg))
    cfg["k"] = 3.0
    assert f(tinyfw.ones(2), cfg).tolist() == [3.0, 3.0]


def test_a_list_argument_mutated_between_calls_retraces():
    def pick(x, items):
        return x * items[0] + items[1]

    items = [2.0, 1.0]
    f = jit.trace(pick, (tinyfw.ones(2), items))
    items[0] = 5.0
    assert f(tinyfw.ones(2), items).tolist() == [6.0, 6.0]


def test_a_tensor_nested_in_a_list_written_in_place_retraces():
    def add(x, extra):
        return x + extra[0]

    bias = [tinyfw.zeros(2)]
    f = jit.trace(add, (tinyfw.ones(2), bias))
    bias[0].add_(4.0)
    assert f(tinyfw.ones(2), bias).tolist() == [5.0, 5.0]
    bias[0] = tinyfw.full((2,), -1.0)
    assert f(tinyfw.ones(2), bias).tolist() == [0.0, 0.0]


def test_a_replaced_parameter_is_used():
    m = nn.Linear(2, 1)
    f = jit.trace(m, tinyfw.ones(1, 2))
    m.weight = nn.Parameter(tinyfw.zeros(1, 2))
    assert f(tinyfw.ones(1, 2)).tolist() == m(tinyfw.ones(1, 2)).tolist()


def test_load_state_dict_with_assign_is_used():
    m = nn.Linear(2, 1)
    f = jit.trace(m, tinyfw.ones(1, 2))
    m.load_state_dict({"weight": tinyfw.full((1, 2), 3.0), "bias": tinyfw.zeros(1)}, assign=True)
    assert f(tinyfw.ones(1, 2)).tolist() == [[6.0]]


def test_unhashable_arguments_are_refused_with_a_clear_error():
    class Config:
        __hash__ = None

    with pytest.raises(TraceError, match="type Config is not hashable"):
        jit.trace(lambda x, c: x * 2, (tinyfw.ones(2), Config()))


def test_a_module_cast_after_tracing_retraces():
    # Module.to casts the parameters' data in place (the Parameter objects stay): a graph
    # specialised on float32 weights must not be replayed on float64 ones
    tinyfw.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 3), nn.GELU())
    traced = jit.trace(m, tinyfw.randn(2, 4))
    m.double()
    x = tinyfw.randn(2, 4)
    got, want = traced(x), m(x)
    assert got.dtype == want.dtype == tinyfw.float64
    np.testing.assert_allclose(npy(got), npy(want), rtol=1e-12, atol=1e-12)


def test_a_module_moved_after_tracing_runs_on_its_new_device():
    tinyfw.manual_seed(0)
    with tinyfw.device("cpu"):
        m = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
        x = tinyfw.randn(2, 4)
    traced = jit.trace(m, x)
    m.to("check")
    xc = x.to("check")
    got = traced(xc)
    assert got.device == tinyfw.device("check")
    np.testing.assert_allclose(npy(got), npy(m(xc)), rtol=1e-6, atol=1e-6)
