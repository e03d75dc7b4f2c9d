"""AdaptiveLogSoftmaxWithLoss (tinyfw/nn/modules/adaptive.py) against PyTorch's, on the
same weights: output, loss, every parameter's gradient, log_prob, predict; unbatched
input; errors."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.nn as nn
from helpers import assert_close, npy, requires_torch, torch
from nn_oracle import compare, copy_weights

pytestmark = requires_torch


def _pair(head_bias: bool, dtype: str):
    torch.manual_seed(0)
    tmod = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 6], div_value=2.0,
                                               head_bias=head_bias)
    fmod = nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 6], div_value=2.0, head_bias=head_bias)
    if dtype == "float64":
        tmod.double()
        fmod.to(tinyfw.float64)
    return tmod, fmod


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("head_bias", [False, True])
def test_forward_backward(head_bias, dtype):
    tmod, fmod = _pair(head_bias, dtype)
    assert repr(fmod) == repr(tmod)
    assert [n for n, _ in fmod.named_parameters()] == [n for n, _ in tmod.named_parameters()]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 8)).astype(dtype)
    t = np.array([0, 9, 4, 2, 6, 5, 8])  # every cluster, and the shortlist
    compare(tmod, fmod, [x, t], dtype, grad_inputs=[True, False])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_prob_predict_and_unbatched(dtype):
    tmod, fmod = _pair(True, dtype)
    copy_weights(tmod, fmod)
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(dtype)
    lp = fmod.log_prob(tinyfw.tensor(x))
    assert_close(lp, tmod.log_prob(torch.tensor(x)), dtype)
    np.testing.assert_allclose(np.exp(npy(lp)).sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(npy(fmod.predict(tinyfw.tensor(x))),
                                  tmod.predict(torch.tensor(x)).numpy())
    out = fmod(tinyfw.tensor(x[0]), tinyfw.tensor(7))
    ref = tmod(torch.tensor(x[0]), torch.tensor(7))
    assert out.output.ndim == 0
    assert_close(out.output, ref.output, dtype)
    assert_close(out.loss, ref.loss, dtype)


ERRORS = [
    (lambda: nn.AdaptiveLogSoftmaxWithLoss(8, 10, []), ValueError, "cutoffs must not be empty"),
    (lambda: nn.AdaptiveLogSoftmaxWithLoss(8, 10, [5, 3]), ValueError, "cutoffs must be"),
    (lambda: nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 10]), ValueError, "cutoffs must be"),
    (lambda: nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3])(tinyfw.randn(2, 8),
                                                       tinyfw.tensor([1, 10])),
     RuntimeError, r"target values must be in \[0, 9\], got 10"),
    (lambda: nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3])(tinyfw.randn(2, 8),
                                                       tinyfw.tensor([1, 2, 3])),
     RuntimeError, "differ in batch size"),
    (lambda: nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3])(tinyfw.randn(2, 8), tinyfw.tensor(1)),
     RuntimeError, "a 0-d target needs a 1-d input"),
]


@pytest.mark.parametrize("k", range(len(ERRORS)))
def test_errors(k):
    fn, exc, msg = ERRORS[k]
    with pytest.raises(exc, match="AdaptiveLogSoftmaxWithLoss: .*" + msg):
        fn()
