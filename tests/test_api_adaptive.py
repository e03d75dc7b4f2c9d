"""Issue 16: nn.AdaptiveLogSoftmaxWithLoss against PyTorch with the same weights: the
per-row output, the loss, every parameter's gradient, log_prob and predict."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from helpers import assert_close, npy, requires_torch, torch
from nn_oracle import copy_weights

pytestmark = requires_torch


def _pair(**kw):
    tm = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4, 10], div_value=2.0, **kw).double()
    fm = tinyfw.nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4, 10], div_value=2.0, **kw).to(tinyfw.float64)
    copy_weights(tm, fm)
    return tm, fm


@pytest.mark.parametrize("head_bias", [False, True])
def test_forward_and_gradients_match_torch(head_bias):
    tm, fm = _pair(head_bias=head_bias)
    assert [(n, tuple(p.shape)) for n, p in fm.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in tm.named_parameters()]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 8))
    y = np.array([0, 3, 4, 9, 10, 19, 2, 12, 5])  # every cluster, both ends of each
    xt, xf = torch.tensor(x, requires_grad=True), tinyfw.tensor(x, requires_grad=True)
    ot, of = tm(xt, torch.tensor(y)), fm(xf, tinyfw.tensor(y))
    assert_close(of.output, ot.output, "float64", msg="output")
    assert_close(of.loss, ot.loss, "float64", msg="loss")
    ot.loss.backward()
    of.loss.backward()
    assert_close(xf.grad, xt.grad, "float64", msg="grad of input")
    tp = dict(tm.named_parameters())
    for name, p in fm.named_parameters():
        assert_close(p.grad, tp[name].grad, "float64", msg=f"grad of {name}")


def test_log_prob_predict_and_unbatched_match_torch():
    tm, fm = _pair()
    x = np.random.default_rng(1).standard_normal((5, 8))
    assert_close(fm.log_prob(tinyfw.tensor(x)), tm.log_prob(torch.tensor(x)), "float64")
    assert np.exp(npy(fm.log_prob(tinyfw.tensor(x)))).sum(1) == pytest.approx(np.ones(5))
    assert npy(fm.predict(tinyfw.tensor(x))).tolist() == tm.predict(torch.tensor(x)).tolist()
    o1 = fm(tinyfw.tensor(x[0]), tinyfw.tensor(12))
    t1 = tm(torch.tensor(x[0]), torch.tensor(12))
    assert tuple(o1.output.shape) == tuple(t1.output.shape) == ()
    assert_close(o1.output, t1.output, "float64")


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="sorted in an increasing order"):
        tinyfw.nn.AdaptiveLogSoftmaxWithLoss(8, 20, [10, 4])
    with pytest.raises(ValueError, match="between 1 and n_classes-1"):
        tinyfw.nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4, 20])
    m = tinyfw.nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4, 10])
    with pytest.raises(RuntimeError, match=r"should be in \[0, 19\]"):
        m(tinyfw.randn(2, 8), tinyfw.tensor([3, 20]))
    with pytest.raises(RuntimeError, match="same batch size"):
        m(tinyfw.randn(3, 8), tinyfw.tensor([3, 2]))
