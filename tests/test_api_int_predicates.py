"""Issue 16, predicates and counting: isclose/allclose/equal, nan_to_num (the one with a
gradient), isposinf/isneginf/isreal, the tensor predicates, bincount, histc and histogram
against PyTorch (the op_table harness, then NaN/inf/empty/dtype edge cases and errors)."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from helpers import from_np, npy, requires_torch, torch
from op_table import KINDS, OpCase, case_id, check, normal

NO_GRAD = dict(grad=False, kinds=("torch64", "torch32", "ref"))


def specials(*shape):
    """Normal values with NaN, +-inf and -0.0 among them."""
    def make(rng, dtype):
        x = rng.standard_normal(shape).astype(dtype)
        x.reshape(-1)[:4] = [np.nan, np.inf, -np.inf, -0.0]
        return [x]
    return make


def near_pairs(rng, dtype):
    """a and b equal, a few ulps apart, far apart, with NaN/inf in both."""
    a = rng.standard_normal((4, 6)).astype(dtype)
    b = a.copy()
    b[0] += np.spacing(a[0]) * rng.integers(-40, 40, 6)
    b[1] *= 1 + rng.uniform(-2e-5, 2e-5, 6)
    b[2] = rng.standard_normal(6)
    a[3, :3] = b[3, :3] = [np.nan, np.inf, -np.inf]
    a[3, 3], b[3, 3] = np.inf, -np.inf
    return [a, b]


def ints1d(rng, dtype):
    return [rng.integers(0, 9, 30).astype(np.int64 if dtype == "float64" else np.int32)]


def ints_and_weights(rng, dtype):
    return [rng.integers(0, 7, 25), rng.standard_normal(25).astype(dtype)]


def uniform(rng, dtype):
    return [rng.uniform(-3, 3, (40,)).astype(dtype)]


CASES = [
    OpCase("isclose", tinyfw.isclose, torch.isclose if torch else None, near_pairs, **NO_GRAD),
    OpCase("isclose_equal_nan", lambda a, b: a.isclose(b, rtol=1e-3, atol=1e-4, equal_nan=True),
           lambda a, b: a.isclose(b, rtol=1e-3, atol=1e-4, equal_nan=True), near_pairs, **NO_GRAD),
    OpCase("nan_to_num", tinyfw.nan_to_num, torch.nan_to_num if torch else None, specials(3, 5)),
    OpCase("nan_to_num_args", lambda x: x.nan_to_num(nan=0.5, posinf=2.0, neginf=-3.0),
           lambda x: x.nan_to_num(nan=0.5, posinf=2.0, neginf=-3.0), specials(4, 4)),
    OpCase("nan_to_num_finite", tinyfw.nan_to_num, torch.nan_to_num if torch else None,
           normal((3, 4)), gradgrad=True),
    OpCase("isposinf_isneginf_isreal", lambda x: (tinyfw.isposinf(x), x.isneginf(), x.isreal()),
           lambda x: (torch.isposinf(x), x.isneginf(), x.isreal()), specials(3, 4), **NO_GRAD),
    OpCase("bincount", tinyfw.bincount, torch.bincount if torch else None, ints1d, **NO_GRAD),
    OpCase("bincount_minlength", lambda x: x.bincount(minlength=15),
           lambda x: x.bincount(minlength=15), ints1d, **NO_GRAD),
    OpCase("bincount_weights", lambda x, w: tinyfw.bincount(x, w), lambda x, w: torch.bincount(x, w),
           ints_and_weights, terms=25, **NO_GRAD),
    OpCase("histc", lambda x: x.histc(bins=7), lambda x: x.histc(bins=7), uniform, **NO_GRAD),
    OpCase("histc_range", lambda x: tinyfw.histc(x, 5, -1, 2), lambda x: torch.histc(x, 5, -1, 2),
           uniform, **NO_GRAD),
    OpCase("histogram", lambda x: tuple(tinyfw.histogram(x, 6)), lambda x: tuple(torch.histogram(x, 6)),
           uniform, **NO_GRAD),
    OpCase("histogram_weighted_density",
           lambda x, w: tuple(x.histogram(4, range=(-2.0, 2.5), weight=w, density=True)),
           lambda x, w: tuple(x.histogram(4, range=(-2.0, 2.5), weight=w, density=True)),
           lambda rng, dt: [rng.uniform(-3, 3, 40).astype(dt), rng.uniform(0, 1, 40).astype(dt)],
           terms=40, **NO_GRAD),
    OpCase("histogram_edges",
           lambda x, e: tuple(tinyfw.histogram(x, e)), lambda x, e: tuple(torch.histogram(x, e)),
           lambda rng, dt: [rng.uniform(-3, 3, 50).astype(dt), np.array([-2, -0.5, 0, 0.1, 2.5], dt)],
           **NO_GRAD),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)


def _t(vals, dtype="float32"):
    return from_np(np.array(vals, dtype))


def _p(vals, dtype="float32"):
    return torch.from_numpy(np.array(vals, dtype))


@requires_torch
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "int32", "uint8", "bool"])
def test_isclose_and_nan_to_num_on_every_dtype(dtype):
    if dtype == "bfloat16":
        x, px = tinyfw.tensor([1.0, 2.0, float("nan"), float("inf")], dtype=dtype), \
            torch.tensor([1.0, 2.0, float("nan"), float("inf")], dtype=torch.bfloat16)
        y, py = x * 1.004, px * 1.004
    else:
        kind = np.dtype(dtype).kind
        a = [1, 0, 1, 1] if kind == "b" else ([1, 2, 200, 7] if kind in "iu" else [1, 2, np.nan, np.inf])
        b = [1, 1, 0, 1] if kind == "b" else ([1, 3, 199, 7] if kind in "iu" else [1.0004, 2, np.nan, np.inf])
        x, y, px, py = _t(a, dtype), _t(b, dtype), _p(a, dtype), _p(b, dtype)
    for kw in ({}, {"rtol": 0.0, "atol": 0.0}, {"atol": 1.0}, {"equal_nan": True}):
        np.testing.assert_array_equal(npy(tinyfw.isclose(x, y, **kw)), torch.isclose(px, py, **kw).numpy())
        assert tinyfw.allclose(x, y, **kw) == torch.allclose(px, py, **kw)
    got, want = tinyfw.nan_to_num(x), torch.nan_to_num(px)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_array_equal(npy(got).astype(np.float64), want.double().numpy())


@requires_torch
def test_equal_vs_torch():
    n = float("nan")
    pairs = [([1, 2], [1, 2], "int64", "float32"), ([1.0, n], [1.0, n], "float32", "float32"),
             ([1], [1, 1], "int64", "int64"), ([], [], "float32", "float32"),
             ([0.0], [-0.0], "float32", "float64"), ([True, False], [1, 0], "bool", "uint8")]
    for a, b, da, db in pairs:
        assert tinyfw.equal(_t(a, da), _t(b, db)) == torch.equal(_p(a, da), _p(b, db)), (a, b)
    x = _t([1.0, n])
    assert tinyfw.equal(x, x) is torch.equal(_p([1.0, n]), _p([1.0, n])) is False


@requires_torch
def test_allclose_broadcasts_and_is_a_python_bool():
    assert tinyfw.allclose(_t([1.0]), _t([1.0, 1.0 + 1e-7])) is True
    assert tinyfw.tensor([1.0, 2.0]).allclose(tinyfw.tensor([1.0, 2.1])) is False


def test_nan_to_num_gradient_is_zero_where_replaced():
    x = tinyfw.tensor([1.0, float("nan"), float("inf"), -float("inf"), -2.0], requires_grad=True)
    tinyfw.nan_to_num(x).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]


def test_nan_to_num_in_place():
    x = tinyfw.tensor([float("nan"), 1.0, float("-inf")])
    assert x.nan_to_num_(nan=7.0) is x
    assert x.tolist() == [7.0, 1.0, float(np.finfo(np.float32).min)]
    y = tinyfw.tensor([float("inf")], dtype="float64")
    tinyfw.nan_to_num_(y, posinf=3.0)
    assert y.tolist() == [3.0]


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "int16", "bool", "bfloat16"])
def test_tensor_predicates_vs_torch(dtype):
    x = tinyfw.ones(2, 3, dtype=dtype)
    px = torch.ones(2, 3, dtype=getattr(torch, dtype))
    for name in ("is_complex", "is_floating_point", "is_signed", "is_inference",
                 "is_distributed", "is_neg", "get_device"):
        assert getattr(x, name)() == getattr(px, name)(), name
        if hasattr(torch, name):
            assert getattr(tinyfw, name)(x) == getattr(torch, name)(px), name
    assert x.is_same_size(tinyfw.zeros(2, 3)) and not tinyfw.is_same_size(x, tinyfw.zeros(3, 2))
    assert x.resolve_neg() is x and tinyfw.resolve_neg(x) is x
    assert tinyfw.is_nonzero(x[:1, :1]) == torch.is_nonzero(px[:1, :1])
    assert tinyfw.is_nonzero(tinyfw.zeros(1, dtype=dtype)) is False


def test_is_nonzero_errors_and_nan():
    assert tinyfw.tensor([[float("nan")]]).is_nonzero() is True
    with pytest.raises(RuntimeError, match="no values is ambiguous"):
        tinyfw.is_nonzero(tinyfw.tensor([]))
    with pytest.raises(RuntimeError, match="more than one value is ambiguous"):
        tinyfw.tensor([1, 2]).is_nonzero()


def test_get_device_and_meta():
    assert tinyfw.empty(2, device="meta").get_device() == -1
    x = tinyfw.empty((2, 3), device="meta")
    assert tinyfw.isclose(x, x).shape == (2, 3) and tinyfw.nan_to_num(x).device.type == "meta"
    assert tinyfw.histc(x, bins=4).shape == (4,)
    assert tinyfw.histogram(x, 5, range=(0.0, 1.0))[0].shape == (5,)
    with pytest.raises(RuntimeError, match="meta: bincount's output size depends"):
        tinyfw.bincount(tinyfw.empty(3, dtype="int64", device="meta"))


@requires_torch
@pytest.mark.parametrize("vals,kw", [
    ([1.0, 2.0, 1.0], {"bins": 4, "min": 0, "max": 3}), ([1.0, 1.0, 1.0], {"bins": 4}),
    ([], {"bins": 4}), ([float("nan"), 1.0, 2.0], {"bins": 4, "min": 0, "max": 3}),
    ([float("inf"), 1.0, 2.0, -5.0, 3.0], {"bins": 4, "min": 0, "max": 3}),
    ([0.0, 0.1, 0.2, 0.3, 0.7, 1.0], {"bins": 10, "min": 0, "max": 1}),
])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_histc_edges_vs_torch(vals, kw, dtype):
    x = tinyfw.tensor(vals, dtype=dtype)
    px = torch.tensor(vals, dtype=getattr(torch, dtype))
    got, want = tinyfw.histc(x, **kw), torch.histc(px, **kw)
    assert got.dtype.name == dtype
    np.testing.assert_array_equal(npy(got).astype(np.float64), want.double().numpy())


@requires_torch
@pytest.mark.parametrize("vals,bins,kw", [
    ([1.0, 1.0], 3, {}), ([], 3, {}), ([float("nan"), 1.0], 3, {"range": (0.0, 2.0)}),
    ([1.0, 2.0, 1.0, 5.0, 0.0], 3, {}), ([0.0, 1.0, 2.0, 3.0], 3, {"range": (0.0, 3.0)}),
    ([0.5, 1.5], [0.0, 1.0, 1.0, 2.0], {}),
])
def test_histogram_edges_vs_torch(vals, bins, kw):
    x, px = _t(vals), _p(vals)
    b, pb = (_t(bins), _p(bins)) if isinstance(bins, list) else (bins, bins)
    (h, e), (ph, pe) = tinyfw.histogram(x, b, **kw), torch.histogram(px, pb, **kw)
    np.testing.assert_array_equal(npy(h), ph.numpy())
    np.testing.assert_allclose(npy(e), pe.numpy(), rtol=2 ** -23, atol=0)  # PyTorch's linspace, +-1 ulp


@requires_torch
def test_bincount_dtypes_vs_torch():
    x = [0, 3, 3, 1]
    for wdt in ["float32", "float64", "float16", "int32", "int64", "uint8"]:
        w = [1, 2, 3, 4]
        got = tinyfw.bincount(_t(x, "int64"), _t(w, wdt))
        want = torch.bincount(_p(x, "int64"), _p(w, wdt))
        assert got.dtype.name == str(want.dtype).split(".")[-1], wdt
        np.testing.assert_array_equal(npy(got), want.numpy())
    for xdt in ["uint8", "int8", "int16", "int32"]:
        np.testing.assert_array_equal(npy(tinyfw.bincount(_t(x, xdt))), torch.bincount(_p(x, xdt)).numpy())
    assert tinyfw.bincount(tinyfw.tensor([], dtype="int64"), minlength=3).tolist() == [0, 0, 0]
    w = tinyfw.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    assert not tinyfw.bincount(_t(x, "int64"), w).requires_grad  # no gradient (PyTorch's raises)


@pytest.mark.parametrize("call,msg", [
    (lambda: tinyfw.isclose(_t([1], "int64"), _t([1.0])), "isclose: input and other must have the same dtype"),
    (lambda: tinyfw.isclose(_t([1.0]), 1.0), "isclose: other must be a Tensor"),
    (lambda: tinyfw.isclose(_t([1.0]), _t([1.0]), rtol=-1), "isclose: rtol and atol must be non-negative"),
    (lambda: tinyfw.bincount(_t([-1], "int64")), "bincount: the input holds a negative value"),
    (lambda: tinyfw.bincount(_t([[1]], "int64")), "bincount: expected a 1-d tensor"),
    (lambda: tinyfw.bincount(_t([1.0])), "bincount: expected a 1-d tensor of non-negative integers, got 1-d float32"),
    (lambda: tinyfw.bincount(_t([1], "int64"), minlength=-1), "bincount: minlength must be"),
    (lambda: tinyfw.bincount(_t([1], "int64"), _t([1.0, 2.0])), "bincount: weights must have"),
    (lambda: tinyfw.histc(_t([1, 2], "int64")), "histc: expected a floating-point input, got int64"),
    (lambda: tinyfw.histc(_t([1.0]), bins=0), "histc: bins must be a positive int"),
    (lambda: tinyfw.histc(_t([1.0]), min=3, max=1), "histc: max must be larger than min"),
    (lambda: tinyfw.histc(_t([float("inf"), 1.0])), r"histc: range of \[1.0, inf\] is not finite"),
    (lambda: tinyfw.histogram(_t([1.0]), 0), "histogram: bins must be > 0"),
    (lambda: tinyfw.histogram(_t([1.0], "float16"), 2), "histogram: expected a float32 or float64 input"),
    (lambda: tinyfw.histogram(_t([1.0]), _t([0.0, 1.0], "float64")), "histogram: bins must have the input's dtype"),
    (lambda: tinyfw.histogram(_t([1.0]), 2, weight=_t([1.0, 2.0])), "histogram: weight must have"),
    (lambda: tinyfw.is_nonzero(1.0), "is_nonzero: input must be a Tensor"),
])
def test_errors_name_the_op(call, msg):
    with pytest.raises((TypeError, RuntimeError, ValueError), match=msg):
        call()
