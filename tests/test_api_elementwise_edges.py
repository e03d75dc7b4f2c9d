"""Issue 16, elementwise math at the edges: NaN, +-inf, +-0.0, poles and overflow against
PyTorch; integer and bool inputs (result dtypes and values); empty tensors; broadcasting
(hypothesis); the rounded functions against mpmath; the errors; and `pow`'s IEEE cases
and gradients (the issue's "pow with -inf results").

Where tinyfw deliberately differs from PyTorch (docs/semantics.md, "## elementwise
math") the case is left out of the PyTorch comparison and asserted on its own below.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
from helpers import torch

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")

SPECIALS = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, 1e-30, -1e-30, 100.0, -100.0,
            1e30, -1e30, np.inf, -np.inf, np.nan, 1e-40, 88.0, 710.0, -710.0, 0.9999, 1.0001]
UNARY = ["tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "arcsin",
         "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "log2", "log10", "exp2",
         "deg2rad", "rad2deg", "frac", "fix", "sinc", "logit", "signbit", "angle", "positive",
         "negative", "absolute", "lgamma", "digamma", "erfinv", "i0"]
BINARY = ["xlogy", "hypot", "copysign", "fmod", "fmax", "fmin", "heaviside", "logaddexp",
          "logaddexp2", "nextafter", "ldexp", "float_power", "igamma", "igammac", "arctan2",
          "multiply", "subtract", "divide", "true_divide", "greater", "greater_equal", "less",
          "less_equal", "not_equal", "pow"]


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, tinyfw.Tensor) else t.detach().cpu().numpy()


def _agree_on_specials(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """NaN exactly where PyTorch has NaN; infinities and zeros (with their signs) equal
    where PyTorch's result is one; an infinity only where PyTorch has one.  Finite values
    are checked against mpmath (test_rounded_functions_*), not against PyTorch's
    own few-ulp errors."""
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} vs {want.dtype}"
    if got.dtype.kind != "f":
        assert np.array_equal(got, want), f"{what}: {got} vs {want}"
        return
    nan = np.isnan(want)
    bad = np.flatnonzero(np.isnan(got) != nan)
    assert not bad.size, f"{what}: NaN differs at {bad}: {got[bad]} vs {want[bad]}"
    exact = ~nan & (np.isinf(want) | (want == 0) | np.isinf(got))
    bad = np.flatnonzero(exact & ((got != want) | (np.signbit(got) != np.signbit(want))))
    assert not bad.size, f"{what}: at {bad}: {got[bad]} vs {want[bad]}"


# documented differences (docs/semantics.md, "## elementwise math"): input values left out
SKIP_UNARY = {
    # i0(88) = 2.1e37 fits float32; PyTorch's float32 kernel overflows to inf from ~88
    ("i0", "float32"): lambda x: np.abs(x) >= 88,
}


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_special_values_match_pytorch(name, dtype):
    x = np.array(SPECIALS, dtype)
    skip = SKIP_UNARY.get((name, dtype))
    if skip is not None:
        x = x[~skip(x)]
    got = _np(getattr(tinyfw, name)(tinyfw.tensor(x)))
    want = _np(getattr(torch, name)(torch.from_numpy(x)))
    _agree_on_specials(got, want, f"{name}({dtype})")


def test_i0_does_not_overflow_before_float32_does():
    """docs/semantics.md: i0(88) ~ 2.1e37 < float32's max 3.4e38 (PyTorch gives inf)."""
    y = tinyfw.i0(tinyfw.tensor([88.0, -88.0, 93.0], dtype=tinyfw.float32)).cpu().numpy()
    assert np.isfinite(y[:2]).all() and y[0] == y[1] and y[2] == np.inf


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", [n for n in BINARY if n not in ("igamma", "igammac")])
def test_binary_special_values_match_pytorch(name, dtype):
    """Every pair of special values (igamma/igammac: test_api_elementwise_special.py)."""
    pairs = np.array(list(itertools.product(SPECIALS, SPECIALS)), dtype)
    a, b = pairs[:, 0], pairs[:, 1]
    if name == "ldexp":  # PyTorch's ldexp takes any exponent; keep it representable
        b = np.clip(b, -200, 200)
    got = _np(getattr(tinyfw, name)(tinyfw.tensor(a), tinyfw.tensor(b)))
    want = _np(getattr(torch, name)(torch.from_numpy(a), torch.from_numpy(b)))
    _agree_on_specials(got, want, f"{name}({dtype})")


# -- integers, bools, empties --------------------------------------------------------------------
INTS = np.array([-3, -2, -1, 0, 1, 2, 3], np.int64)
BOOLS = np.array([True, False, True])


def _outcome(fn):
    try:
        return fn(), None
    except Exception as e:  # noqa: BLE001 - the kind of outcome is what is compared
        return None, e


@needs_torch
@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("kind", ["int64", "bool"])
def test_integer_and_bool_inputs_like_pytorch(name, kind):
    """Same result dtype (math functions of integers give the default float dtype) and
    values, or an error in both."""
    x = INTS if kind == "int64" else BOOLS
    got, gerr = _outcome(lambda: _np(getattr(tinyfw, name)(tinyfw.tensor(x))))
    want, werr = _outcome(lambda: _np(getattr(torch, name)(torch.from_numpy(x))))
    if werr is not None:
        assert gerr is not None, f"{name}({kind}): PyTorch raises ({werr}), tinyfw gives {got}"
        assert name in str(gerr) or "+" in str(gerr) or "-" in str(gerr), str(gerr)
        return
    assert gerr is None, f"{name}({kind}): {gerr}"
    _agree_on_specials(got, want, f"{name}({kind})")
    _same_as_converted_first(got, name, [x])


def _same_as_converted_first(got, name, arrays):
    """An integer operand is converted to the result's float dtype first: the values are
    then bit for bit those of the op on converted inputs (whose accuracy is tested
    against mpmath; PyTorch's own float32 errors of a few ulps are not the reference)."""
    if got.dtype.kind != "f":
        return
    conv = [tinyfw.tensor(a.astype(got.dtype) if a.dtype.kind in "biu" else a) for a in arrays]
    want = _np(getattr(tinyfw, name)(*conv))
    assert np.array_equal(got, want, equal_nan=True), f"{name}: {got} vs {want}"


@needs_torch
@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("kinds", [("int64", "int64"), ("int64", "float32"),
                                   ("float32", "int64"), ("bool", "bool")])
def test_integer_operands_of_binary_ops_like_pytorch(name, kinds):
    if name == "pow" and kinds == ("int64", "int64"):
        pytest.skip("negative integer powers of integers: test_pow_of_integers")
    arrs = []
    for k in kinds:
        arrs.append({"int64": np.array([-3, -1, 1, 2, 3], np.int64),
                     "float32": np.array([-2.5, -0.5, 0.5, 1.5, 4.0], np.float32),
                     "bool": np.array([True, False, True, True, False])}[k])
    got, gerr = _outcome(lambda: _np(getattr(tinyfw, name)(*[tinyfw.tensor(a) for a in arrs])))
    want, werr = _outcome(lambda: _np(getattr(torch, name)(*[torch.from_numpy(a) for a in arrs])))
    if werr is not None:
        assert gerr is not None, f"{name}{kinds}: PyTorch raises ({werr}), tinyfw gives {got}"
        return
    assert gerr is None, f"{name}{kinds}: {gerr}"
    _agree_on_specials(got, want, f"{name}{kinds}")
    if name not in ("float_power", "ldexp"):  # (they convert only some operands, to float64)
        _same_as_converted_first(got, name, arrs)


@pytest.mark.parametrize("name", UNARY + ["sgn", "frexp"])
def test_empty_tensors(name):
    x = tinyfw.empty((0, 3))
    out = getattr(tinyfw, name)(x)
    for o in (out if isinstance(out, tuple) else (out,)):
        assert tuple(o.shape) == (0, 3)


@pytest.mark.parametrize("name", BINARY)
def test_empty_tensors_binary(name):
    out = getattr(tinyfw, name)(tinyfw.empty((0, 1, 3)), tinyfw.empty((2, 1)))
    assert tuple(out.shape) == (0, 2, 3)


# -- pow (the "pow with -inf results") -------------------------------------------------
POW_VALUES = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, np.inf, -np.inf, np.nan,
              1e-300, -1e-300]


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pow_gradients_at_ieee_cases_match_pytorch(dtype):
    """Both partial derivatives of a ** b for every pair of special values: at a = +-0
    with b < 0, d/db is a**b log|a| = inf * -inf = -inf (+inf at -0.0 for odd b), as in
    PyTorch (tinyfw gave NaN before: log was taken of 1 there)."""
    pairs = np.array(list(itertools.product(POW_VALUES, POW_VALUES)), dtype)
    a, b = tinyfw.tensor(pairs[:, 0], requires_grad=True), tinyfw.tensor(pairs[:, 1], requires_grad=True)
    ta = torch.from_numpy(pairs[:, 0].copy()).requires_grad_()
    tb = torch.from_numpy(pairs[:, 1].copy()).requires_grad_()
    (a ** b).sum().backward()
    (ta ** tb).sum().backward()
    _agree_on_specials(a.grad.cpu().numpy(), ta.grad.cpu().numpy(), f"d/da pow ({dtype})")
    _agree_on_specials(b.grad.cpu().numpy(), tb.grad.cpu().numpy(), f"d/db pow ({dtype})")
    fin = np.isfinite(ta.grad.cpu().numpy()) & np.isfinite(tb.grad.cpu().numpy())
    tol = 8 * np.finfo(dtype).eps  # a**b and log(a), each within a few ulps, one product
    np.testing.assert_allclose(a.grad.cpu().numpy()[fin], ta.grad.cpu().numpy()[fin], rtol=tol)
    np.testing.assert_allclose(b.grad.cpu().numpy()[fin], tb.grad.cpu().numpy()[fin], rtol=tol)


def test_pow_second_derivatives_stay_finite_where_the_first_is_masked():
    """d/db at a = 0, b >= 0 is 0 by a mask; its own derivative must not be NaN."""
    a = tinyfw.tensor([0.0, 2.0], dtype=tinyfw.float64, requires_grad=True)
    b = tinyfw.tensor([2.0, 3.0], dtype=tinyfw.float64, requires_grad=True)
    gb, = tinyfw.autograd.grad((a ** b).sum(), [b], create_graph=True)
    gab, = tinyfw.autograd.grad(gb.sum(), [a])
    assert np.isfinite(gab.cpu().numpy()).all()


@needs_torch
def test_pow_of_integers():
    """Integer powers wrap like PyTorch's; negative integer exponents of integer tensors
    are an error (PyTorch raises for a scalar exponent and truncates a tensor one to 0 or
    +-1: docs/semantics.md)."""
    a = np.array([-3, -1, 0, 1, 2, 3], np.int64)
    b = np.array([3, 2, 5, 0, 62, 40], np.int64)
    got = tinyfw.pow(tinyfw.tensor(a), tinyfw.tensor(b)).cpu().numpy()
    assert np.array_equal(got, torch.pow(torch.from_numpy(a), torch.from_numpy(b)).cpu().numpy())
    with pytest.raises(ValueError, match="pow: integers to negative integer powers"):
        tinyfw.tensor([2, 3]) ** tinyfw.tensor([1, -1])
    with pytest.raises(TypeError, match="pow: not implemented for bool"):
        tinyfw.tensor([True]) ** tinyfw.tensor([False])
    assert (tinyfw.tensor([2, 3]) ** 0.5).dtype is tinyfw.float32


# -- accuracy of the rounded functions against mpmath -------------------------------------------
mpmath = pytest.importorskip("mpmath", reason="mpmath gives the correctly rounded references")
mpmath.mp.dps = 40
MP_UNARY = {
    "tan": (mpmath.tan, (-1.5, 1.5)), "asin": (mpmath.asin, (-1, 1)),
    "acos": (mpmath.acos, (-1, 1)), "atan": (mpmath.atan, (-30, 30)),
    "sinh": (mpmath.sinh, (-80, 80)), "cosh": (mpmath.cosh, (-80, 80)),
    "asinh": (mpmath.asinh, (-1e4, 1e4)), "acosh": (mpmath.acosh, (1, 1e4)),
    "atanh": (mpmath.atanh, (-0.999, 0.999)), "log2": (lambda v: mpmath.log(v, 2), (1e-3, 1e4)),
    "log10": (mpmath.log10, (1e-3, 1e4)), "exp2": (lambda v: mpmath.power(2, v), (-100, 100)),
}
MP_BINARY = {
    "hypot": (lambda a, b: mpmath.sqrt(a * a + b * b), (-1e3, 1e3)),
    "logaddexp": (lambda a, b: mpmath.log(mpmath.exp(a) + mpmath.exp(b)), (-60, 60)),
    "logaddexp2": (lambda a, b: mpmath.log(mpmath.power(2, a) + mpmath.power(2, b), 2), (-60, 60)),
}
# float64 through numpy: its SIMD (SVML) kernels are documented within 4 ulp; glibc's
# libm within 2 for these functions
F64_ULPS = 4


def _grid(lo, hi, n=401):
    g = np.linspace(lo, hi, n)
    return g[(g != 0) | (lo < 0 < hi)]


def _f32_bound(name: str) -> float:
    """1 ulp for the reference (float64, rounded once); the float32 vector kernels of
    csrc/vmath_math.h are held to their own sweep's bounds (tests/test_vmath_math.py)."""
    from tinyfw.backend import cpu

    on_cpu = tinyfw.get_default_device().type == "cpu"  # (the check device runs ref)
    if on_cpu and tinyfw.get_backend() is cpu and name in cpu.KERNELS:
        from test_vmath_math import BOUND

        return BOUND.get(name, 1.0)
    return 1.0


@pytest.mark.parametrize("name", sorted(MP_UNARY))
def test_rounded_unary_functions_against_mpmath(name):
    exact, (lo, hi) = MP_UNARY[name]
    for dt, bound in ((np.float32, _f32_bound(name)), (np.float64, F64_ULPS)):
        x = _grid(lo, hi).astype(dt)
        want = np.array([float(exact(mpmath.mpf(float(v)))) for v in x])
        got = _np(getattr(tinyfw, name)(tinyfw.tensor(x))).astype(np.float64)
        ulps = np.abs(got - want) / np.spacing(np.abs(want).astype(dt)).astype(np.float64)
        assert ulps.max() <= bound, f"{name}({dt.__name__}): {ulps.max()} ulp at {x[ulps.argmax()]}"


@pytest.mark.parametrize("name", sorted(MP_BINARY))
def test_rounded_binary_functions_against_mpmath(name):
    exact, (lo, hi) = MP_BINARY[name]
    rng = np.random.default_rng(3)
    for dt, bound in ((np.float32, 1.0), (np.float64, F64_ULPS)):
        a, b = (rng.uniform(lo, hi, 300).astype(dt) for _ in range(2))
        want = np.array([float(exact(mpmath.mpf(float(u)), mpmath.mpf(float(v))))
                         for u, v in zip(a, b)])
        got = _np(getattr(tinyfw, name)(tinyfw.tensor(a), tinyfw.tensor(b))).astype(np.float64)
        ulps = np.abs(got - want) / np.spacing(np.abs(want).astype(dt)).astype(np.float64)
        assert ulps.max() <= bound, f"{name}({dt.__name__}): {ulps.max()} ulp"


@needs_torch
@pytest.mark.parametrize("name", ["deg2rad", "rad2deg", "frac", "fix", "negative", "absolute",
                                  "positive", "sgn", "signbit"])
def test_exact_ops_equal_pytorch_bit_for_bit(name):
    """One product by a rounded constant (deg2rad), or an exact operation: no rounding
    freedom, so the results equal PyTorch's bit for bit (NaN left out: sgn, docs)."""
    x = np.random.default_rng(0).standard_normal(200).astype(np.float32) * 100
    got = _np(getattr(tinyfw, name)(tinyfw.tensor(x)))
    want = _np(getattr(torch, name)(torch.from_numpy(x)))
    assert np.array_equal(got, want)


# -- broadcasting (hypothesis) -------------------------------------------------------------------
_shape = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)
BROADCAST = ["hypot", "copysign", "fmod", "fmax", "fmin", "logaddexp", "logaddexp2", "xlogy",
             "nextafter", "heaviside", "ldexp", "float_power", "igamma", "igammac", "lerp",
             "addcmul", "addcdiv"]


@needs_torch
@pytest.mark.parametrize("name", BROADCAST)
@given(sa=_shape, sb=_shape, data=st.data())
def test_broadcasting_like_pytorch(name, sa, sb, data):
    """Two (three for lerp/addcmul/addcdiv) operands of broadcastable random shapes:
    same shape, values and gradients as PyTorch (float64)."""
    nd = max(len(sa), len(sb))
    sa, sb = (1,) * (nd - len(sa)) + sa, (1,) * (nd - len(sb)) + sb
    sb = tuple(b if a == 1 or b == 1 else a for a, b in zip(sa, sb))  # make them broadcast
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    u = lambda shape: np.asarray(rng.uniform(0.3, 2.0, shape))
    arrs = [u(sa), u(sb) * rng.choice([-1, 1], sb)]
    if name in ("igamma", "igammac", "xlogy", "float_power"):
        arrs[1] = np.abs(arrs[1])
    if name in ("lerp", "addcmul", "addcdiv"):
        arrs.append(u(sb[data.draw(st.integers(0, len(sb))):]))
    arrs = [np.asarray(a) for a in arrs]  # (0-d results of numpy are scalars)
    grads = name not in ("nextafter", "heaviside")
    frozen = {0} if name in ("igamma", "igammac") else set()
    tf = [tinyfw.tensor(a).requires_grad_(grads and k not in frozen) for k, a in enumerate(arrs)]
    th = [torch.from_numpy(a).requires_grad_(grads and k not in frozen) for k, a in enumerate(arrs)]
    y, ty = getattr(tinyfw, name)(*tf), getattr(torch, name)(*th)
    assert tuple(y.shape) == tuple(ty.shape)
    np.testing.assert_allclose(_np(y), _np(ty), rtol=1e-9, atol=1e-12)
    if grads:
        g = rng.standard_normal(tuple(ty.shape))
        (y * tinyfw.tensor(g)).sum().backward()
        (ty * torch.from_numpy(g)).sum().backward()
        for k, (a, b) in enumerate(zip(tf, th)):
            if k not in frozen:
                np.testing.assert_allclose(a.grad.cpu().numpy(), b.grad.cpu().numpy(), rtol=1e-9,
                                           atol=1e-12, err_msg=f"{name}: grad {k}")


# -- errors ------------------------------------------------------------------------------------
ERRORS = [
    (lambda: tinyfw.hypot(tinyfw.tensor([1, 2]), tinyfw.tensor([3, 4])), TypeError,
     r"hypot: not implemented for int64"),
    (lambda: tinyfw.logaddexp(tinyfw.tensor([True]), tinyfw.tensor([False])), TypeError,
     r"logaddexp: not implemented for bool"),
    (lambda: tinyfw.nextafter(tinyfw.tensor([1]), tinyfw.tensor([2])), TypeError, "nextafter"),
    (lambda: tinyfw.fmod(tinyfw.tensor([True]), tinyfw.tensor([True])), TypeError,
     r"fmod: not implemented for bool"),
    (lambda: tinyfw.fmod(tinyfw.tensor([3]), tinyfw.tensor([0])), ZeroDivisionError,
     r"fmod: integer division by zero"),
    (lambda: tinyfw.heaviside(tinyfw.tensor([1.0]), tinyfw.tensor([1])), TypeError,
     r"heaviside: input and values must have the same dtype, got float32 and int64"),
    (lambda: tinyfw.frexp(tinyfw.tensor([1])), TypeError, r"frexp: only floating-point"),
    (lambda: tinyfw.frac(tinyfw.tensor([1])), TypeError, r"frac: only floating-point"),
    (lambda: tinyfw.lerp(tinyfw.tensor([1.0]), tinyfw.tensor([1]), 0.5), TypeError,
     r"lerp: expected end of dtype float32, got int64"),
    (lambda: tinyfw.addcdiv(tinyfw.tensor([1.0]), tinyfw.tensor([1]), tinyfw.tensor([2])),
     TypeError, r"addcdiv: integer division"),
    (lambda: tinyfw.hypot(tinyfw.ones(2, 3), tinyfw.ones(4)), RuntimeError,
     r"hypot: shapes \(2, 3\) and \(4,\) cannot be broadcast"),
    (lambda: tinyfw.positive(tinyfw.tensor([True])), TypeError, r"positive: the \+ operator"),
    (lambda: tinyfw.addcmul(tinyfw.tensor([1]), tinyfw.tensor([2]), tinyfw.tensor([3]),
                            value=0.5), TypeError, r"addcmul: for integer tensors, value"),
    (lambda: tinyfw.tan("x"), TypeError, r"tan: expected a Tensor or a number, got str"),
    (lambda: tinyfw.divide(tinyfw.ones(2), 2.0, rounding_mode="up"), ValueError,
     r"div: rounding_mode must be None, 'floor' or 'trunc'"),
]


@pytest.mark.parametrize("fn,exc,msg", ERRORS)
def test_errors_name_the_op(fn, exc, msg):
    with pytest.raises(exc, match=msg):
        fn()


@needs_torch
def test_float_power_rounds_python_numbers_once():
    """A Python float goes to float64 directly (0.1 is not rounded to float32 first)."""
    x = np.array([1.5, 2.0, 3.0], np.float32)
    for args in ((tinyfw.tensor(x), 0.1), (0.1, tinyfw.tensor(x))):
        targs = [torch.from_numpy(a.cpu().numpy()) if isinstance(a, tinyfw.Tensor) else a
                 for a in args]
        got = tinyfw.float_power(*args).cpu().numpy()
        # pow within an ulp in both libraries; 0.1 rounded to float32 would be 1e-9 off
        np.testing.assert_allclose(got, torch.float_power(*targs).numpy(), rtol=2.0 ** -50)
