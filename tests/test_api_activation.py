"""Issue 16 activations (tinyfw/nn/functional_activation.py, tinyfw/ops/activation_more.py):
the three-way table of tests/op_table.py (PyTorch forward + backward in float64 and
float32, float64 gradcheck, active backend vs ref).

Inputs are uniform on a range wider than each function's kinks; a draw within
gradcheck's step (1e-6) of a kink has probability ~1e-6 per element, and the seeds are
fixed.  The in-place forms run on a clone, so the gradient reaches the leaf.
"""
from __future__ import annotations

import pytest

import tinyfw
import tinyfw.nn.functional as F
from helpers import torch
from op_table import KINDS, OpCase, case_id, check, normal, unary

TF = F
TH = torch.nn.functional if torch is not None else None


def _both(name: str, *args, **kwargs):
    """(tinyfw fn, torch fn) applying F.<name>(x, *args, **kwargs)."""
    return (lambda x: getattr(TF, name)(x, *args, **kwargs),
            lambda x: getattr(TH, name)(x, *args, **kwargs))


def _inplace(name: str, *args):
    """The in-place form on a clone (the leaf keeps its value and gets the gradient)."""
    return (lambda x: getattr(TF, name)(x.clone(), *args),
            lambda x: getattr(TH, name)(x.clone(), *args))


def case(label: str, pair, inputs=unary(3, 5), **kw) -> OpCase:
    return OpCase(label, pair[0], pair[1], inputs, **kw)


CASES = [
    case("celu", _both("celu"), gradgrad=True),
    case("celu_alpha", _both("celu", 0.5), gradgrad=True),
    case("celu_", _inplace("celu_", 1.5)),
    case("elu_", _inplace("elu_", 0.7)),
    case("selu", _both("selu"), gradgrad=True),
    case("selu_", _inplace("selu_")),
    case("glu_last", _both("glu"), normal((3, 6)), gradgrad=True),
    case("glu_dim0", _both("glu", 0), normal((4, 3, 2)), gradgrad=True),
    case("hardshrink", _both("hardshrink")),
    case("hardshrink_lambd", _both("hardshrink", 1.2)),
    case("torch.hardshrink", (lambda x: tinyfw.hardshrink(x, 0.3),
                              lambda x: torch.hardshrink(x, 0.3))),
    case("Tensor.hardshrink", (lambda x: x.hardshrink(), lambda x: x.hardshrink())),
    # torch64 is test_api_activation_edges.py::test_hardsigmoid_grad_is_exact_sixth:
    # PyTorch's backward multiplies by a float32 1/6 (2.98e-8 off) in float64 too
    case("hardsigmoid", _both("hardsigmoid"), unary(4, 6, low=-5, high=5),
         kinds=("torch32", "gradcheck", "ref")),
    case("hardsigmoid_inplace", (lambda x: TF.hardsigmoid(x.clone(), inplace=True),
                                 lambda x: TH.hardsigmoid(x.clone(), inplace=True)),
         unary(4, 6, low=-5, high=5), kinds=("torch32", "gradcheck", "ref")),
    case("hardswish", _both("hardswish"), unary(4, 6, low=-5, high=5)),
    case("hardtanh_", _inplace("hardtanh_", -0.5, 1.0)),
    case("leaky_relu_", _inplace("leaky_relu_", 0.2)),
    case("mish", _both("mish"), unary(3, 5, low=-6, high=6), gradgrad=True),
    case("mish_inplace", (lambda x: TF.mish(x.clone(), inplace=True),
                          lambda x: TH.mish(x.clone(), inplace=True))),
    case("relu_", _inplace("relu_")),
    case("torch.relu_", (lambda x: tinyfw.relu_(x.clone()), lambda x: torch.relu_(x.clone()))),
    case("rrelu_eval", _both("rrelu", 0.1, 0.3, training=False)),
    case("rrelu_", (lambda x: TF.rrelu_(x.clone()), lambda x: TH.rrelu_(x.clone()))),
    case("softshrink", _both("softshrink")),
    case("softshrink_0", _both("softshrink", 0.0)),
    case("softsign", _both("softsign"), unary(3, 5, low=-5, high=5), gradgrad=True),
    case("tanhshrink", _both("tanhshrink"), gradgrad=True),
    case("threshold", _both("threshold", 0.1, 20.0)),
    case("threshold_", _inplace("threshold_", -0.3, -1.0)),
    case("threshold_inplace", (lambda x: TF.threshold(x.clone(), 0.5, 2.0, True),
                               lambda x: TH.threshold(x.clone(), 0.5, 2.0, True))),
    case("celu_inplace", (lambda x: TF.celu(x.clone(), 2.0, True),
                          lambda x: TH.celu(x.clone(), 2.0, True))),
    OpCase("prelu_one", lambda x, w: TF.prelu(x, w), lambda x, w: TH.prelu(x, w),
           lambda rng, dt: [rng.uniform(-2, 2, (2, 3, 4)).astype(dt),
                            rng.uniform(0, 1, (1,)).astype(dt)]),
    OpCase("prelu_channels", lambda x, w: TF.prelu(x, w), lambda x, w: TH.prelu(x, w),
           lambda rng, dt: [rng.uniform(-2, 2, (2, 3, 4, 2)).astype(dt),
                            rng.uniform(0, 1, (3,)).astype(dt)], terms=16),
    OpCase("prelu_1d", lambda x, w: tinyfw.prelu(x, w), lambda x, w: torch.prelu(x, w),
           lambda rng, dt: [rng.uniform(-2, 2, (5,)).astype(dt),
                            rng.uniform(0, 1, (1,)).astype(dt)]),
    OpCase("Tensor.prelu", lambda x, w: x.prelu(w), lambda x, w: x.prelu(w),
           lambda rng, dt: [rng.uniform(-2, 2, (4, 2)).astype(dt),
                            rng.uniform(0, 1, (2,)).astype(dt)]),
    case("torch.softmax", (lambda x: tinyfw.softmax(x, 1), lambda x: torch.softmax(x, 1)),
         normal((3, 5))),
    case("torch.log_softmax", (lambda x: tinyfw.log_softmax(x, -1),
                               lambda x: torch.log_softmax(x, -1)), normal((3, 5))),
    case("Tensor.softmax", (lambda x: x.softmax(0), lambda x: x.softmax(0)), normal((4, 2, 3))),
    case("Tensor.log_softmax", (lambda x: x.log_softmax(dim=2),
                                lambda x: x.log_softmax(dim=2)), normal((2, 2, 4))),
    case("Tensor.softmax_dtype", (lambda x: x.softmax(-1, dtype=tinyfw.float64),
                                  lambda x: x.softmax(-1, dtype=torch.float64)),
         normal((3, 4)), kinds=("torch32",)),
    case("softmin_dtype", (lambda x: TF.softmin(x, 1), lambda x: TH.softmin(x, 1)),
         normal((3, 4))),
    # PyTorch's full signatures of the older activations
    # the torch.* forms
    case("torch.selu", (lambda x: tinyfw.selu(x), lambda x: torch.selu(x))),
    case("torch.selu_", (lambda x: tinyfw.selu_(x.clone()), lambda x: torch.selu_(x.clone()))),
    case("torch.celu", (lambda x: tinyfw.celu(x, 0.5), lambda x: torch.celu(x, 0.5))),
    case("torch.celu_", (lambda x: tinyfw.celu_(x.clone()), lambda x: torch.celu_(x.clone()))),
    case("torch.rrelu", (lambda x: tinyfw.rrelu(x, 0.1, 0.2), lambda x: torch.rrelu(x, 0.1, 0.2))),
    case("torch.rrelu_", (lambda x: tinyfw.rrelu_(x.clone()),
                          lambda x: torch.rrelu_(x.clone()))),
    case("torch.threshold", (lambda x: tinyfw.threshold(x, 0.2, 5.0),
                             lambda x: torch.threshold(x, 0.2, 5.0))),
    case("torch.threshold_", (lambda x: tinyfw.threshold_(x.clone(), 0.2, 5.0),
                              lambda x: torch.threshold_(x.clone(), 0.2, 5.0))),
    OpCase("torch.cosine_similarity", lambda a, b: tinyfw.cosine_similarity(a, b),
           lambda a, b: torch.cosine_similarity(a, b), normal((3, 4), (3, 4)), terms=8),
    OpCase("torch.pairwise_distance", lambda a, b: tinyfw.pairwise_distance(a, b),
           lambda a, b: torch.pairwise_distance(a, b), normal((3, 4), (3, 4)), terms=4),
    case("softmax_stacklevel_dtype", (lambda x: TF.softmax(x, 1, 3, tinyfw.float64),
                                      lambda x: TH.softmax(x, 1, 3, torch.float64)),
         normal((3, 4)), kinds=("torch32",)),
    case("log_softmax_stacklevel", (lambda x: TF.log_softmax(x, 0, 3),
                                    lambda x: TH.log_softmax(x, 0, 3)), normal((3, 4))),
    case("softmin_dtype_kw", (lambda x: TF.softmin(x, -1, dtype=tinyfw.float64),
                              lambda x: TH.softmin(x, -1, dtype=torch.float64)),
         normal((3, 4)), kinds=("torch32",)),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("c", CASES, ids=case_id)
def test_activation(c, kind):
    check(c, kind)
