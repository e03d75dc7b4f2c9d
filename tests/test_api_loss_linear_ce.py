"""linear_cross_entropy / LinearCrossEntropyLoss (tinyfw/nn/_losses_linear_ce.py) against
PyTorch: class indices and probabilities, K-dimensional weights, bias, class weights,
ignore_index, label smoothing, every reduction (three-way table), and the module with
PyTorch's parameter layout."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.nn as nn
import tinyfw.nn.functional as F
from helpers import requires_torch, torch
from nn_oracle import compare
from op_table import KINDS, OpCase, case_id, check

TH = torch.nn.functional if torch is not None else None
N, IN, C = 5, 4, 3


def lce(mod, **kw):
    def fn(x, w, t, *rest):
        extra = dict(kw)
        if rest:
            extra["linear_bias"] = rest[0]
        if "cw" in extra:
            cw = extra.pop("cw")
            if mod is F:
                extra["weight"] = tinyfw.tensor(cw).to(x.dtype)
            else:
                extra["weight"] = torch.from_numpy(cw).to(x.dtype)
        return mod.linear_cross_entropy(x, w, t, **extra)
    return fn


def recipe(out=(), bias=False, probs=False, unbatched=False):
    def make(rng, dt):
        x = rng.standard_normal((IN,) if unbatched else (N, IN)).astype(dt)
        w = rng.standard_normal((C, *out, IN)).astype(dt)
        tshape = () if unbatched else (N, *out)
        if probs:
            p = rng.uniform(0, 1, (N, C, *out))
            t = (p / p.sum(1, keepdims=True)).astype(dt)
        else:
            t = np.asarray(rng.integers(0, C, tshape), dtype=np.int64)
            if not unbatched:
                t.reshape(-1)[0] = 7  # ignored (ignore_index=7 cases) or valid when C > 7
        out_ = [x, w, t]
        return out_ + [rng.standard_normal((C, *out)).astype(dt)] if bias else out_
    return make


CW = np.array([0.5, 1.0, 2.0])
CASES = []
for r in ("none", "mean", "sum"):
    CASES += [
        OpCase(f"plain-{r}", lce(F, reduction=r, ignore_index=7),
               lce(TH, reduction=r, ignore_index=7), recipe(), frozen=(2,), terms=IN * C),
        OpCase(f"bias_weight_smooth-{r}",
               lce(F, reduction=r, ignore_index=7, cw=CW, label_smoothing=0.2),
               lce(TH, reduction=r, ignore_index=7, cw=CW, label_smoothing=0.2),
               recipe(bias=True), frozen=(2,), terms=IN * C),
        OpCase(f"kdim-{r}", lce(F, reduction=r, ignore_index=7),
               lce(TH, reduction=r, ignore_index=7), recipe(out=(2, 3), bias=True),
               frozen=(2,), terms=IN * C * 6),
        OpCase(f"probs-{r}", lce(F, reduction=r), lce(TH, reduction=r), recipe(probs=True),
               frozen=(2,), terms=IN * C),
    ]
CASES.append(OpCase("unbatched", lce(F), lce(TH), recipe(unbatched=True), frozen=(2,),
                    terms=IN * C))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("c", CASES, ids=case_id)
def test_linear_cross_entropy(c, kind):
    check(c, kind)


ERRORS = [
    (lambda: F.linear_cross_entropy(tinyfw.randn(2, 3, 4), tinyfw.randn(3, 4),
                                    tinyfw.tensor([0, 1])), "expected an input of 1 or 2"),
    (lambda: F.linear_cross_entropy(tinyfw.randn(2, 4), tinyfw.randn(4),
                                    tinyfw.tensor([0, 1])), "linear_weight of at least 2"),
    (lambda: F.linear_cross_entropy(tinyfw.randn(2, 4), tinyfw.randn(3, 5),
                                    tinyfw.tensor([0, 1])), "differ in their last dim"),
    (lambda: F.linear_cross_entropy(tinyfw.randn(2, 4), tinyfw.randn(3, 4),
                                    tinyfw.tensor([0, 1]), linear_bias=tinyfw.randn(2)),
     "linear_bias of shape"),
    (lambda: F.linear_cross_entropy(tinyfw.randn(4), tinyfw.randn(3, 2, 4),
                                    tinyfw.tensor([0, 1])), "needs a batched"),
    (lambda: F.linear_cross_entropy(tinyfw.randn(2, 4), tinyfw.randn(3, 4),
                                    tinyfw.randn(2, 3), ignore_index=0), "ignore_index cannot"),
]


@pytest.mark.parametrize("k", range(len(ERRORS)))
def test_errors(k):
    fn, msg = ERRORS[k]
    with pytest.raises(RuntimeError, match="linear_cross_entropy: .*" + msg):
        fn()


@requires_torch
@pytest.mark.parametrize("out,bias", [((), False), ((), True), ((2,), True)])
def test_module(out, bias):
    torch.manual_seed(0)
    kw = dict(out_features=out, bias=bias, label_smoothing=0.1)
    tmod = torch.nn.LinearCrossEntropyLoss(IN, C, **kw).double()
    fmod = nn.LinearCrossEntropyLoss(IN, C, dtype=tinyfw.float64, **kw)
    assert repr(fmod) == repr(tmod)
    assert [n for n, _ in fmod.named_parameters()] == [n for n, _ in tmod.named_parameters()]
    rng = np.random.default_rng(3)
    t = rng.integers(0, C, (N, *out))
    compare(tmod, fmod, [rng.standard_normal((N, IN)), t], "float64", grad_inputs=[True, False])
