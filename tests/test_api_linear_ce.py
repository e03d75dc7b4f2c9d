"""Issue 16: F.linear_cross_entropy and nn.LinearCrossEntropyLoss three ways / against
PyTorch (its reference definition: linear, then cross_entropy)."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from helpers import requires_torch, torch
from nn_oracle import compare
from op_table import KINDS, OpCase, case_id, check


def _inputs(n, fin, wshape, target_shape, bias=False, classes=None):
    def make(rng, dtype):
        out = [rng.standard_normal((n, fin) if n else (fin,)).astype(dtype),
               rng.standard_normal(wshape).astype(dtype),
               rng.integers(0, classes or wshape[0], target_shape).astype(np.int64)]
        if bias:
            out.append(rng.standard_normal(wshape[:-1]).astype(dtype))
        return out
    return make


def _case(name, make, **kw):
    def tf(x, w, t, *b):
        return F.linear_cross_entropy(x, w, t, linear_bias=b[0] if b else None, **kw)

    def th(x, w, t, *b):
        return torch.nn.functional.linear_cross_entropy(x, w, t, linear_bias=b[0] if b else None,
                                                        **kw)
    return OpCase(name, tf, th, make, terms=12)


CASES = [
    _case("linear_cross_entropy", _inputs(6, 4, (5, 4), (6,))),
    _case("linear_cross_entropy-bias-sum", _inputs(6, 4, (5, 4), (6,), bias=True), reduction="sum"),
    _case("linear_cross_entropy-kdim", _inputs(3, 4, (5, 2, 4), (3, 2), bias=True)),
    _case("linear_cross_entropy-unbatched", _inputs(0, 4, (5, 4), ())),
    _case("linear_cross_entropy-smoothing-none", _inputs(6, 4, (5, 4), (6,)),
          label_smoothing=0.2, reduction="none"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)


@requires_torch
def test_ignore_index_none_means_minus_100_like_torch():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    t = np.array([1, -100, 4, 2])
    got = F.linear_cross_entropy(tinyfw.tensor(x), tinyfw.tensor(w), tinyfw.tensor(t))
    want = torch.nn.functional.linear_cross_entropy(torch.tensor(x), torch.tensor(w), torch.tensor(t))
    assert float(got) == pytest.approx(float(want), rel=1e-12)


@requires_torch
@pytest.mark.parametrize("out_features", [(), (2,)])
def test_module_matches_torch(out_features):
    tm = torch.nn.LinearCrossEntropyLoss(4, 5, out_features=out_features, bias=True).double()
    fm = tinyfw.nn.LinearCrossEntropyLoss(4, 5, out_features=out_features, bias=True,
                                          dtype=tinyfw.float64)
    rng = np.random.default_rng(1)
    t = rng.integers(0, 5, (6,) + out_features)
    compare(tm, fm, [rng.standard_normal((6, 4)), t], dtype="float64")


def test_errors_name_the_problem():
    x, w, t = tinyfw.randn(2, 3), tinyfw.randn(4, 3), tinyfw.tensor([0, 1])
    with pytest.raises(ValueError, match="options=None"):
        F.linear_cross_entropy(x, w, t, options=object())
    with pytest.raises(ValueError, match="in_features 5"):
        F.linear_cross_entropy(x, tinyfw.randn(4, 5), t)
    with pytest.raises(ValueError, match=r"linear_bias of shape \(3,\)"):
        F.linear_cross_entropy(x, w, t, linear_bias=tinyfw.randn(3))
