"""Issue 16, elementwise math: the three-way check (tests/op_table.py) of every new name:
PyTorch forward and backward in float64 and float32, float64 gradcheck (and gradgradcheck
for the ops whose backward is written here), and the active backend against ref.

The special functions are in test_api_elementwise_special.py; NaN/inf/-0.0 and integer
inputs in test_api_elementwise_edges.py; in-place variants in
test_api_elementwise_inplace.py.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from op_table import KINDS, OpCase, case_id, check, normal, unary
from helpers import torch


def _t(name: str):
    """(tinyfw.name, torch.name) taking the same arguments."""
    return getattr(tinyfw, name), (getattr(torch, name) if torch is not None else None)


def _m(name: str, *args, **kw):
    """(the method `name` on tinyfw, the same on torch), extra arguments bound."""
    f = lambda x, *a: getattr(x, name)(*a, *args, **kw)
    return f, f


def _fn(name: str, *args, **kw):
    """(tinyfw.name, torch.name) with extra arguments bound after the tensors."""
    return (lambda *x: getattr(tinyfw, name)(*x, *args, **kw),
            lambda *x: getattr(torch, name)(*x, *args, **kw))


def uniform2(lo_a, hi_a, lo_b, hi_b, sa=(3, 4), sb=(4,)):
    """Two uniform arrays, broadcasting (`sb` against `sa`)."""
    return lambda rng, dt: [rng.uniform(lo_a, hi_a, sa).astype(dt),
                            rng.uniform(lo_b, hi_b, sb).astype(dt)]


def signed(lo, hi, *shape):
    """Uniform magnitudes in [lo, hi) with random signs."""
    return lambda rng, dt: [(rng.uniform(lo, hi, shape) * rng.choice([-1, 1], shape)).astype(dt)]


def with_zero(*shape):
    """Normal values with an exact 0 among them (sinc's removable singularity)."""
    def make(rng, dt):
        x = rng.standard_normal(shape)
        x.flat[0] = 0.0
        return [x.astype(dt)]
    return make


U = unary(3, 4)
UNIT = unary(3, 4, low=-0.9, high=0.9)
POS = unary(3, 4, low=0.1, high=3.0)
N2 = normal((3, 4), (4,))

CASES = [
    # trigonometric and hyperbolic, and their arc* spellings
    OpCase("tan", *_t("tan"), unary(3, 4, low=-1.4, high=1.4), gradgrad=True),
    OpCase("asin", *_t("asin"), UNIT, gradgrad=True),
    OpCase("acos", *_t("acos"), UNIT, gradgrad=True),
    OpCase("atan", *_t("atan"), U, gradgrad=True),
    OpCase("sinh", *_t("sinh"), U, gradgrad=True),
    OpCase("cosh", *_t("cosh"), U, gradgrad=True),
    OpCase("asinh", *_t("asinh"), U, gradgrad=True),
    OpCase("acosh", *_t("acosh"), unary(3, 4, low=1.1, high=3.0), gradgrad=True),
    OpCase("atanh", *_t("atanh"), UNIT, gradgrad=True),
    OpCase("arcsin", *_t("arcsin"), UNIT),
    OpCase("arccos", *_t("arccos"), UNIT),
    OpCase("arctan", *_t("arctan"), U),
    OpCase("arcsinh", *_t("arcsinh"), U),
    OpCase("arccosh", *_t("arccosh"), unary(3, 4, low=1.1, high=3.0)),
    OpCase("arctanh", *_t("arctanh"), UNIT),
    OpCase("arctan2", *_t("arctan2"), N2),
    OpCase("tan.method", *_m("tan"), unary(2, 3, low=-1.2, high=1.2)),
    OpCase("arccosh.method", *_m("arccosh"), unary(2, 3, low=1.1, high=3.0)),
    # logarithms, powers, angles
    OpCase("log2", *_t("log2"), POS, gradgrad=True),
    OpCase("log10", *_t("log10"), POS, gradgrad=True),
    OpCase("exp2", *_t("exp2"), U, gradgrad=True),
    OpCase("deg2rad", *_t("deg2rad"), unary(3, 4, low=-360, high=360)),
    OpCase("rad2deg", *_t("rad2deg"), U),
    OpCase("logit", *_t("logit"), unary(3, 4, low=0.05, high=0.95), gradgrad=True),
    OpCase("logit.eps", *_fn("logit", eps=0.1), unary(3, 4, low=-0.2, high=1.2), gradgrad=True),
    OpCase("logit.method", *_m("logit", 0.2), unary(2, 3, low=0.0, high=1.0)),
    OpCase("ldexp", lambda x, e: tinyfw.ldexp(x, e),
           (lambda x, e: torch.ldexp(x, e)) if torch else None,
           lambda rng, dt: [rng.standard_normal((3, 4)).astype(dt),
                            rng.integers(0, 5, (4,)).astype(np.int64)], gradgrad=True),
    # (negative integer exponents: PyTorch's gradient is 0 there, see test_ldexp_gradient)
    OpCase("ldexp.float", *_t("ldexp"), N2),
    OpCase("float_power", *_t("float_power"), uniform2(0.2, 3.0, -2.0, 2.0), gradgrad=True),
    OpCase("float_power.scalar", *_fn("float_power", 2.5), POS),
    OpCase("float_power.int", lambda x: tinyfw.float_power(x, 3),
           (lambda x: torch.float_power(x, 3)) if torch else None,
           lambda rng, dt: [rng.integers(-5, 6, (3, 4)).astype(np.int64)], grad=False),
    # rounding-like and sign-like (zero gradient where PyTorch's is zero)
    OpCase("frac", *_t("frac"), unary(3, 4, low=-5.0, high=5.0)),
    OpCase("fix", *_t("fix"), unary(3, 4, low=-5.0, high=5.0)),
    OpCase("sinc", *_t("sinc"), with_zero(3, 4), gradgrad=True),
    # (PyTorch's gradient of sgn is a ZeroTensor, which has no numpy view: adding x * 0
    # makes it a plain zero tensor without changing any value)
    OpCase("sgn", tinyfw.sgn, (lambda x: torch.sgn(x) + x * 0) if torch else None, U),
    OpCase("angle", *_t("angle"), U),
    OpCase("signbit", *_t("signbit"), U, grad=False),
    OpCase("positive", *_t("positive"), U),
    OpCase("negative", *_t("negative"), U),
    OpCase("absolute", *_t("absolute"), signed(0.1, 2.0, 3, 4)),
    OpCase("frexp", *_t("frexp"), unary(3, 4, low=-40.0, high=40.0)),
    # binary math
    OpCase("hypot", *_t("hypot"), N2, gradgrad=True),
    OpCase("copysign", *_t("copysign"), N2, gradgrad=True),
    OpCase("fmod", *_t("fmod"), lambda rng, dt: [rng.uniform(-6, 6, (3, 4)).astype(dt),
                                                   signed(0.6, 2.0, 4)(rng, dt)[0]],
           gradgrad=True),
    OpCase("fmax", *_t("fmax"), N2, gradgrad=True),
    OpCase("fmin", *_t("fmin"), N2, gradgrad=True),
    OpCase("logaddexp", *_t("logaddexp"), N2, gradgrad=True),
    OpCase("logaddexp2", *_t("logaddexp2"), N2, gradgrad=True),
    OpCase("xlogy", *_t("xlogy"), uniform2(-2.0, 2.0, 0.2, 3.0), gradgrad=True),
    OpCase("nextafter", *_t("nextafter"), N2, grad=False),
    OpCase("heaviside", *_t("heaviside"), lambda rng, dt: [
        np.array([[-1.0, 0.0, 2.0], [0.0, -0.0, -3.0]], dt), rng.standard_normal(3).astype(dt)],
        grad=False),
    OpCase("lerp", *_t("lerp"), lambda rng, dt: [rng.standard_normal((3, 4)).astype(dt),
                                                   rng.standard_normal((3, 4)).astype(dt),
                                                   rng.uniform(-0.5, 1.5, (4,)).astype(dt)]),
    OpCase("lerp.scalar_small", *_fn("lerp", 0.3), normal((3, 4), (3, 4))),
    OpCase("lerp.scalar_large", *_fn("lerp", 0.8), normal((3, 4), (3, 4))),
    OpCase("addcmul", *_fn("addcmul", value=0.5), normal((4,), (3, 4), (3, 1))),
    OpCase("addcmul.default", *_t("addcmul"), normal((3, 4), (3, 4), (4,))),
    OpCase("addcdiv", *_fn("addcdiv", value=-2.0), lambda rng, dt: [
        rng.standard_normal((3, 4)).astype(dt), rng.standard_normal((4,)).astype(dt),
        signed(0.5, 2.0, 3, 1)(rng, dt)[0]]),
    # aliases of existing ops
    OpCase("multiply", *_t("multiply"), N2),
    OpCase("subtract", *_fn("subtract", alpha=2), N2),
    OpCase("divide", *_t("divide"), lambda rng, dt: [rng.standard_normal((3, 4)).astype(dt),
                                                     signed(0.5, 2.0, 4)(rng, dt)[0]]),
    OpCase("divide.trunc", *_fn("divide", rounding_mode="trunc"), N2, grad=False),
    OpCase("divide.floor", *_fn("divide", rounding_mode="floor"), N2, grad=False),
    OpCase("true_divide", *_t("true_divide"), lambda rng, dt: [
        rng.standard_normal((3, 4)).astype(dt), signed(0.5, 2.0, 4)(rng, dt)[0]]),
    OpCase("greater", *_t("greater"), N2, grad=False),
    OpCase("greater_equal", *_t("greater_equal"), N2, grad=False),
    OpCase("less", *_t("less"), N2, grad=False),
    OpCase("less_equal", *_t("less_equal"), N2, grad=False),
    OpCase("not_equal", *_t("not_equal"), N2, grad=False),
    OpCase("clamp_min", *_fn("clamp_min", -0.3), U),
    OpCase("clamp_max", *_fn("clamp_max", 0.4), U),
    OpCase("clamp_min.tensor", *_t("clamp_min"), N2),
    OpCase("clip", *_fn("clip", -0.5, 0.5), U),
    OpCase("clip.method", *_m("clip", max=0.5), U),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)


def test_every_new_name_is_a_function_and_a_method():
    """The names of the family (the issue's list) exist as tinyfw.<n> and Tensor.<n>."""
    names = ("tan asin acos atan sinh cosh asinh acosh atanh arcsin arccos arctan arcsinh "
             "arccosh arctanh arctan2 log2 log10 exp2 deg2rad rad2deg frac fix sinc logit xlogy "
             "hypot copysign fmod fmax fmin heaviside lerp logaddexp logaddexp2 nextafter ldexp "
             "frexp float_power signbit sgn angle positive negative absolute multiply subtract "
             "divide true_divide greater greater_equal less less_equal not_equal clamp_min "
             "clamp_max clip addcmul addcdiv lgamma digamma polygamma mvlgamma erfinv i0 igamma "
             "igammac").split()
    missing = [n for n in names if not (callable(getattr(tinyfw, n, None))
                                        and callable(getattr(tinyfw.Tensor, n, None)))]
    assert not missing


def test_ldexp_gradient_for_negative_integer_exponents():
    """d/dx ldexp(x, e) = 2**e, exact in binary: PyTorch 2.13 computes 2**e in the
    integer dtype in its backward and gets 0 for e < 0 (docs/semantics.md)."""
    x = tinyfw.tensor([1.5, -3.0, 0.25, 7.0], dtype=tinyfw.float64, requires_grad=True)
    e = tinyfw.tensor([-3, -1, 0, 2])
    y = tinyfw.ldexp(x, e)
    y.sum().backward()
    assert y.detach().cpu().numpy().tolist() == [1.5 / 8, -1.5, 0.25, 28.0]
    assert x.grad.cpu().numpy().tolist() == [0.125, 0.5, 1.0, 4.0]


# -- export and tracing ------------------------------------------------------------------------
ONNX_OPS = {"tan": (-1.2, 1.2), "asin": (-0.9, 0.9), "acos": (-0.9, 0.9), "atan": (-3, 3),
            "sinh": (-3, 3), "cosh": (-3, 3), "asinh": (-3, 3), "acosh": (1.1, 3),
            "atanh": (-0.9, 0.9)}


@pytest.mark.parametrize("name", sorted(ONNX_OPS))
def test_onnx_export_runs_in_onnxruntime(name, tmp_path):
    """The ops that name an ONNX operator export to it; onnxruntime's float32 results
    agree within its own float32 evaluation (a few ulp: 4 * 2**-23 relative)."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    lo, hi = ONNX_OPS[name]
    x = np.random.default_rng(0).uniform(lo, hi, (3, 5)).astype(np.float32)
    path = str(tmp_path / "op.onnx")
    fn = getattr(tinyfw, name)
    tinyfw.onnx.export(fn, (tinyfw.tensor(x),), path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    (got,) = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
        None, {"input_0": x})
    want = fn(tinyfw.tensor(x)).cpu().numpy()
    np.testing.assert_allclose(got, want, rtol=4 * 2.0 ** -23, atol=0)


def test_traced_function_equals_eager():
    """The ops record into a jit graph (attributes such as logit's eps and polygamma's
    n included; frexp's two outputs) and replay with eager's results and gradients."""
    def f(x, y):
        m, e = tinyfw.frexp(x)
        return (tinyfw.tan(x).hypot(y) + tinyfw.logit(x.sigmoid(), eps=0.01)
                + tinyfw.polygamma(2, y.abs() + 1) + m * e + tinyfw.lerp(x, y.expand(3, 4), 0.7))

    rng = np.random.default_rng(0)
    args = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    g = tinyfw.jit.trace(f, tuple(tinyfw.tensor(a) for a in args))
    xs = [tinyfw.tensor(a, requires_grad=True) for a in args]
    ys = [tinyfw.tensor(a, requires_grad=True) for a in args]
    out_t, out_e = g(*xs), f(*ys)
    np.testing.assert_array_equal(out_t.detach().cpu().numpy(), out_e.detach().cpu().numpy())
    out_t.sum().backward()
    out_e.sum().backward()
    for a, b in zip(xs, ys):
        np.testing.assert_allclose(a.grad.cpu().numpy(), b.grad.cpu().numpy(), rtol=1e-12)
