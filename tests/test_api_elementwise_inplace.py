"""Issue 16: the in-place ``x_`` variants of the elementwise ops (tinyfw/ops/
elementwise_methods.py builds them all from one table): each against its out-of-place op
and against PyTorch's in-place method, values and gradients through the write, plus the
function forms (``tinyfw.sin_(x)``), version counters and the refusals."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from tinyfw.ops import elementwise_methods as EM
from helpers import torch

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")

# the input range each op is defined on (default: [-2, 2))
DOMAIN = {"asin_": (-0.9, 0.9), "acos_": (-0.9, 0.9), "atanh_": (-0.9, 0.9),
          "arcsin_": (-0.9, 0.9), "arccos_": (-0.9, 0.9), "arctanh_": (-0.9, 0.9),
          "erfinv_": (-0.9, 0.9), "acosh_": (1.1, 3.0), "arccosh_": (1.1, 3.0),
          "log2_": (0.1, 3.0), "log10_": (0.1, 3.0), "log_": (0.1, 3.0), "log1p_": (-0.5, 3.0),
          "sqrt_": (0.1, 3.0), "rsqrt_": (0.1, 3.0), "logit_": (0.05, 0.95),
          "lgamma_": (0.2, 4.0), "digamma_": (0.3, 4.0), "polygamma_": (0.5, 4.0),
          "mvlgamma_": (1.6, 4.0), "reciprocal_": (0.5, 2.0), "tan_": (-1.2, 1.2),
          "xlogy_": (-2.0, 2.0), "igamma_": (0.5, 3.0), "igammac_": (0.5, 3.0),
          "float_power_": (0.2, 3.0)}
# extra arguments after self (tensors of shape (4,) broadcast against x's (3, 4))
OTHER = "other"
ARGS = {"logit_": (0.1,), "clamp_": (-0.5, 0.5), "clamp_min_": (-0.3,), "clamp_max_": (0.4,),
        "clip_": (-0.5, 0.5), "ldexp_": (OTHER,), "xlogy_": ("pos",), "atan2_": (OTHER,),
        "arctan2_": (OTHER,), "hypot_": (OTHER,), "copysign_": (OTHER,), "fmod_": ("pos",),
        "heaviside_": (OTHER,), "lerp_": (OTHER, 0.3), "nextafter_": (OTHER,),
        "multiply_": (OTHER,), "subtract_": (OTHER,), "divide_": ("pos",),
        "true_divide_": ("pos",), "greater_": (OTHER,), "greater_equal_": (OTHER,),
        "less_": (OTHER,), "less_equal_": (OTHER,), "not_equal_": (OTHER,),
        "addcmul_": (OTHER, OTHER), "addcdiv_": (OTHER, "pos"), "polygamma_": (2,),
        "mvlgamma_": (2,), "igamma_": ("pos",), "igammac_": ("pos",), "remainder_": ("pos",),
        "floor_divide_": ("pos",), "eq_": (OTHER,), "ne_": (OTHER,), "lt_": (OTHER,),
        "le_": (OTHER,), "gt_": (OTHER,), "ge_": (OTHER,), "logical_and_": (OTHER,),
        "logical_or_": (OTHER,), "logical_xor_": (OTHER,), "float_power_": (1.5,)}
# no gradient in PyTorch (comparisons, piecewise constant or not implemented)
NO_GRAD = {"nextafter_", "heaviside_", "greater_", "greater_equal_", "less_", "less_equal_",
           "not_equal_", "eq_", "ne_", "lt_", "le_", "gt_", "ge_", "logical_and_",
           "logical_or_", "logical_xor_", "logical_not_", "floor_divide_", "igamma_",
           "igammac_"}
# PyTorch 2.13 raises "the derivative for 'inplace version of acosh' is not implemented"
# for these; tinyfw's in-place ops all have the out-of-place op's gradient
TORCH_INPLACE_HAS_NO_GRAD = {"acosh_", "arccosh_", "asinh_", "arcsinh_", "atanh_", "arctanh_"}
NAMES = sorted(set(EM._FUNCTIONS) | set(EM._METHODS_ONLY) | {"float_power_"})


def _inputs(name: str, dtype: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    lo, hi = DOMAIN.get(name, (-2.0, 2.0))
    x = rng.uniform(lo, hi, (3, 4)).astype(dtype)
    args = []
    for a in ARGS.get(name, ()):
        if a == OTHER:
            args.append(rng.standard_normal(4).astype(dtype))
        elif a == "pos":
            args.append(rng.uniform(0.5, 2.0, 4).astype(dtype))
        else:
            args.append(a)
    return x, args


def _tf(v):
    return tinyfw.tensor(v) if isinstance(v, np.ndarray) else v


def _th(v):
    return torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v


@pytest.mark.parametrize("name", NAMES)
def test_inplace_writes_the_out_of_place_result(name):
    """x.name_(...) returns x itself, holding what the out-of-place op gives, with its
    version counter bumped."""
    dtype = "float64" if name == "float_power_" else "float32"
    x, args = _inputs(name, dtype)
    t = tinyfw.tensor(x)
    version = t._version[0]
    out = getattr(t, name)(*[_tf(a) for a in args])
    assert out is t and t._version[0] == version + 1
    op = {**EM._FUNCTIONS, **EM._METHODS_ONLY}.get(name)
    if op is not None:
        want = op(tinyfw.tensor(x), *[_tf(a) for a in args]).to(t.dtype)
        assert np.array_equal(t.cpu().numpy(), want.cpu().numpy(), equal_nan=True)


@needs_torch
@pytest.mark.parametrize("name", NAMES)
def test_inplace_like_pytorch(name):
    """Values against PyTorch's in-place method (float64), and the gradient of a loss
    through the write into a non-leaf."""
    x, args = _inputs(name, "float64")
    grad = name not in NO_GRAD
    xf = tinyfw.tensor(x, requires_grad=grad)
    xt = torch.from_numpy(x.copy()).requires_grad_(grad)
    yf, yt = xf * 1, xt * 1  # non-leaves: the in-place op is recorded
    getattr(yf, name)(*[_tf(a) for a in args])
    if name in TORCH_INPLACE_HAS_NO_GRAD:  # its out-of-place op is the reference
        yt = getattr(yt, name[:-1])(*[_th(a) for a in args])
    else:
        getattr(yt, name)(*[_th(a) for a in args])
    np.testing.assert_allclose(yf.detach().cpu().numpy(), yt.detach().cpu().numpy(), rtol=1e-9,
                               atol=1e-12, equal_nan=True)
    if grad:
        g = np.random.default_rng(1).standard_normal((3, 4))
        (yf * tinyfw.tensor(g)).sum().backward()
        (yt * torch.from_numpy(g)).sum().backward()
        # (force: PyTorch's gradient of sgn is a ZeroTensor, which numpy() refuses)
        np.testing.assert_allclose(xf.grad.cpu().numpy(), xt.grad.numpy(force=True), rtol=1e-9,
                                   atol=1e-12)


@pytest.mark.parametrize("name", sorted(EM._FUNCTIONS))
def test_function_forms(name):
    """tinyfw.name_(x, ...) exists where torch.name_ does, and writes into x."""
    x, args = _inputs(name, "float32")
    t = tinyfw.tensor(x)
    assert getattr(tinyfw, name)(t, *[_tf(a) for a in args]) is t
    if torch is not None:
        assert hasattr(torch, name)


def test_refusals():
    with pytest.raises(RuntimeError, match="tan_: result type float32 cannot be cast to the "
                                           "tensor's dtype int64 in place"):
        tinyfw.tensor([1, 2]).tan_()
    with pytest.raises(RuntimeError, match="sinh_: a leaf tensor that requires grad"):
        tinyfw.ones(2, requires_grad=True).sinh_()
    with pytest.raises(RuntimeError, match="float_power_: the base has dtype float32"):
        tinyfw.ones(2).float_power_(2)
    with pytest.raises(RuntimeError, match="hypot_: the result's shape"):
        tinyfw.ones(3).hypot_(tinyfw.ones(2, 3))


def test_a_view_sees_the_write_and_saved_inputs_are_version_checked():
    base = tinyfw.tensor([[0.1, 0.2], [0.3, 0.4]])
    base[0].atanh_()
    assert np.allclose(base.cpu().numpy()[0], np.arctanh([0.1, 0.2]))
    x = tinyfw.tensor([0.5, 1.5], requires_grad=True)
    y = x * 1
    z = y.sinh()  # saves y
    y.cosh_()
    with pytest.raises(RuntimeError):
        z.sum().backward()
