"""Issue 16's functions and modules take PyTorch's arguments: same names, order, kinds and
defaults (tinyfw may add keyword-only arguments, e.g. `generator=`), so positional calls
written for PyTorch mean the same here."""
from __future__ import annotations

import inspect
import math

import pytest

import tinyfw
import tinyfw.nn as nn
import tinyfw.nn.functional as F
from helpers import requires_torch, torch

pytestmark = requires_torch

FUNCTIONAL = [
    "celu", "glu", "hardsigmoid", "hardswish", "mish", "rrelu", "selu", "softsign",
    "tanhshrink", "threshold", "gumbel_softmax", "cosine_embedding_loss", "ctc_loss",
    "gaussian_nll_loss", "hinge_embedding_loss", "huber_loss", "margin_ranking_loss",
    "multi_margin_loss", "multilabel_margin_loss", "multilabel_soft_margin_loss",
    "poisson_nll_loss", "soft_margin_loss", "triplet_margin_loss",
    "triplet_margin_with_distance_loss", "alpha_dropout", "feature_alpha_dropout",
    "dropout1d", "dropout2d", "dropout3d", "linear_cross_entropy",
    # the older ones (F.relu/leaky_relu/silu are the core ops, pinned by
    # test_functional.py::test_reexports_are_the_core_ops, and take no inplace=)
    "softmax", "log_softmax", "softmin", "mse_loss", "l1_loss",
    "elu", "hardtanh", "relu6", "smooth_l1_loss", "cross_entropy", "nll_loss", "kl_div",
    "binary_cross_entropy", "binary_cross_entropy_with_logits"]
MODULES = [
    "CELU", "ELU", "GLU", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh", "LogSigmoid",
    "Mish", "PReLU", "RReLU", "ReLU6", "SELU", "Softmin", "Softplus", "Softshrink", "Softsign",
    "Softmax2d", "Tanhshrink", "Threshold", "CosineEmbeddingLoss", "CTCLoss",
    "GaussianNLLLoss", "HingeEmbeddingLoss", "HuberLoss", "MarginRankingLoss",
    "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "PoissonNLLLoss",
    "SmoothL1Loss", "SoftMarginLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss",
    "AlphaDropout", "FeatureAlphaDropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "PairwiseDistance", "CosineSimilarity", "LinearCrossEntropyLoss",
    "AdaptiveLogSoftmaxWithLoss"]


def _params(fn) -> list:
    """(name, kind, default) of each parameter, PyTorch's keyword-only extras of tinyfw
    dropped by the caller."""
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.name in ("self", "_stacklevel"):
            continue
        d = p.default
        if isinstance(d, float) and math.isnan(d):
            d = "nan"
        out.append((p.name, p.kind, d if d is not inspect.Parameter.empty else "-"))
    return out


def _same(ours, theirs, what: str) -> None:
    extra = [p for p in ours[len(theirs):]]
    assert ours[:len(theirs)] == theirs, f"{what}: {ours} vs PyTorch's {theirs}"
    assert all(p[1] is inspect.Parameter.KEYWORD_ONLY for p in extra), \
        f"{what}: extra positional parameters {extra}"


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_functional_signature(name):
    _same(_params(getattr(F, name)), _params(getattr(torch.nn.functional, name)), name)


@pytest.mark.parametrize("name", MODULES)
def test_module_signature(name):
    ours, theirs = getattr(nn, name), getattr(torch.nn, name)
    if theirs.__init__ is torch.nn.Module.__init__:  # no arguments of its own
        assert all(p[2] != "-" for p in _params(ours.__init__)), name
    else:
        _same(_params(ours.__init__), _params(theirs.__init__), f"{name}.__init__")
    _same(_params(ours.forward), _params(theirs.forward), f"{name}.forward")


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "prelu", "hardshrink", "relu_"])
def test_tensor_function_and_method(name):
    assert callable(getattr(tinyfw, name))
    if name != "relu_":
        assert callable(getattr(tinyfw.Tensor, name))


def test_hardtanh_deprecated_spellings():
    with pytest.warns(FutureWarning, match="min_value is deprecated"):
        m = nn.Hardtanh(min_value=-2.0)
    assert m.min_val == -2.0


def test_legacy_flags_on_modules():
    with pytest.warns(UserWarning):
        tm = torch.nn.MarginRankingLoss(0.1, None, False)
    fm = nn.MarginRankingLoss(0.1, None, False)
    assert fm.reduction == tm.reduction == "none"
    assert nn.PoissonNLLLoss(True, False, False).reduction == "sum"
