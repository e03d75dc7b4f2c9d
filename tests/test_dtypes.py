"""Type promotion against torch.result_type / torch.promote_types for every pair of dtypes,
across the three tiers (dimensioned tensor, 0-dim tensor, Python scalar), and the dtype
the ops actually produce."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tinyfw
from helpers import npy, requires_torch, torch

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
         "float64"]
SCALARS = [True, 3, 2.5]


def _tf(name: str, ndim: int) -> tinyfw.Tensor:
    return tinyfw.ones((2,) * ndim, dtype=name)


def _th(name: str, ndim: int):
    return torch.ones((2,) * ndim, dtype=getattr(torch, name))


def _name(d) -> str:
    return str(d).split(".")[-1]


@requires_torch
@pytest.mark.parametrize("a,b", list(itertools.product(NAMES, NAMES)))
def test_promote_types_vs_torch(a, b):
    got = tinyfw.promote_types(tinyfw.dtypes.as_dtype(a), tinyfw.dtypes.as_dtype(b))
    assert got.name == _name(torch.promote_types(getattr(torch, a), getattr(torch, b)))


@requires_torch
@pytest.mark.parametrize("a,b", list(itertools.product(NAMES, NAMES)))
@pytest.mark.parametrize("tiers", [(1, 1), (1, 0), (0, 1), (0, 0)])
def test_result_type_tensor_tiers_vs_torch(a, b, tiers):
    """Dimensioned tensors outrank 0-dim ones: a 0-dim operand only matters by category."""
    got = tinyfw.result_type(_tf(a, tiers[0]), _tf(b, tiers[1]))
    assert got.name == _name(torch.result_type(_th(a, tiers[0]), _th(b, tiers[1])))


@requires_torch
@pytest.mark.parametrize("a", NAMES)
@pytest.mark.parametrize("scalar", SCALARS, ids=["bool", "int", "float"])
@pytest.mark.parametrize("ndim", [0, 1])
def test_result_type_with_python_scalars_vs_torch(a, scalar, ndim):
    got = tinyfw.result_type(_tf(a, ndim), scalar)
    assert got.name == _name(torch.result_type(_th(a, ndim), scalar))


@requires_torch
@pytest.mark.parametrize("a,b", list(itertools.product(NAMES, NAMES)))
def test_binary_ops_produce_the_promoted_dtype(a, b):
    """Not just result_type: the op's output dtype and values follow PyTorch."""
    x, y = _tf(a, 1), _tf(b, 0)
    px, py = _th(a, 1), _th(b, 0)
    for op in ("mul", "maximum", "eq"):
        got, want = getattr(tinyfw, op)(x, y), getattr(torch, op)(px, py)
        assert got.dtype.name == _name(want.dtype), op
    if a != "bool" or b != "bool":  # torch refuses bool + bool - ... only sub; add is fine
        assert (x + y).dtype.name == _name((px + py).dtype)
    # true division always gives a float
    assert (x / y).dtype.name == _name((px / py).dtype)


@requires_torch
@pytest.mark.parametrize("a", NAMES)
def test_unary_float_ops_on_every_dtype_vs_torch(a):
    x, px = _tf(a, 1), _th(a, 1)
    assert x.exp().dtype.name == _name(px.exp().dtype)
    assert x.sum().dtype.name == _name(px.sum().dtype)
    assert x.abs().dtype.name == _name(px.abs().dtype) if a != "bool" else True


def test_dtype_objects():
    assert tinyfw.float is tinyfw.float32 and tinyfw.double is tinyfw.float64
    assert tinyfw.half is tinyfw.float16 and tinyfw.long is tinyfw.int64
    assert tinyfw.int is tinyfw.int32 and tinyfw.bool.name == "bool"
    assert repr(tinyfw.bfloat16) == "tinyfw.bfloat16"
    assert tinyfw.float16.is_floating_point and not tinyfw.int8.is_floating_point
    for name in NAMES:
        d = tinyfw.dtypes.as_dtype(name)
        assert tinyfw.dtypes.as_dtype(d.np) is d
    assert tinyfw.dtypes.as_dtype(float) is tinyfw.float32
    assert tinyfw.dtypes.as_dtype(int) is tinyfw.int64
    import pickle

    assert pickle.loads(pickle.dumps(tinyfw.bfloat16)) is tinyfw.bfloat16


def test_half_types_round_once_from_float32():
    """float16/bfloat16 ops compute in float32 and round the result once."""
    a = np.array([1.0, 1.0 / 3.0, 100.125], np.float32)
    for name in ("float16", "bfloat16"):
        x = tinyfw.tensor(a, dtype=name)
        expect = (npy(x).astype(np.float32) * np.float32(3.0)).astype(npy(x).dtype)
        np.testing.assert_array_equal(npy(x * 3.0), expect)


def test_scalars_said_to_store_quietly_do():
    """host.stores_quietly lets the hot paths skip np.errstate: every value it accepts must
    store without a warning (the suite turns warnings into errors), in every dtype."""
    import warnings

    from tinyfw.backend.host import stores_quietly

    values = [True, 0, 127, -128, 128, 0.5, 1e300, -1e300, 3.0e38, 3.3e38, 3.5e38,
              float("inf"), float("nan"), -0.0, 1e-50, 70000.0]
    accepted = 0
    for dt in [tinyfw.float64, tinyfw.float32, tinyfw.float16, tinyfw.bfloat16, tinyfw.int8,
               tinyfw.int32, tinyfw.int64, tinyfw.bool, tinyfw.uint8, tinyfw.int16]:
        for v in values:
            if stores_quietly(v, dt.np):
                accepted += 1
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    a = np.empty(3, dt.np)
                    a[...] = v
                    np.array(v, dt.np)
    assert accepted > 40  # the common cases do take the fast path
