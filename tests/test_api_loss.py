"""Issue 16 losses (tinyfw/nn/_losses_more.py, tinyfw/nn/_losses_ctc.py): the three-way
table of tests/op_table.py (PyTorch forward + backward in float64 and float32, float64
gradcheck, active backend vs ref), for every reduction and the options of each loss.

Targets are integer arrays (no gradient) or float arrays listed in `frozen`.  Hinges and
kinks are met with probability ~1e-6 per element within gradcheck's step; seeds are
fixed.  `terms` is the number of products a reduced loss sums (float32 tolerance)."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw.nn.functional as F
from helpers import torch
from op_table import KINDS, OpCase, case_id, check

TH = torch.nn.functional if torch is not None else None
REDS = ("none", "mean", "sum")


def loss(label: str, name: str, inputs, frozen=(), terms: int = 1, kinds=tuple(KINDS),
         weight_at: int | None = None, **kw) -> list:
    """One OpCase per reduction of F.<name>(*inputs, reduction=r, **kw); the input at
    `weight_at` is passed as weight=."""
    def call(mod, r):
        def fn(*a):
            a, extra = list(a), dict(kw)
            if weight_at is not None:
                extra["weight"] = a.pop(weight_at)
            return getattr(mod, name)(*a, reduction=r, **extra)
        return fn
    return [OpCase(f"{label}-{r}", call(F, r), call(TH, r), inputs, frozen=frozen,
                   terms=terms if r != "none" else 1, kinds=kinds) for r in REDS]


def pm1(rng, n) -> np.ndarray:
    return rng.choice([-1.0, 1.0], n)


def pair(*shape):
    return lambda rng, dt: [rng.standard_normal(shape).astype(dt),
                            rng.standard_normal(shape).astype(dt)]


def signed(*shape, int_target=False):
    def make(rng, dt):
        t = pm1(rng, shape)
        return [rng.standard_normal(shape).astype(dt),
                t.astype(np.int64) if int_target else t.astype(dt)]
    return make


def ranking(rng, dt):
    return [rng.standard_normal(7).astype(dt), rng.standard_normal(7).astype(dt),
            pm1(rng, 7).astype(dt)]


def cosine(n=None, d=5):
    def make(rng, dt):
        shape = (d,) if n is None else (n, d)
        t = pm1(rng, ()) if n is None else pm1(rng, n)
        return [rng.standard_normal(shape).astype(dt), rng.standard_normal(shape).astype(dt),
                np.asarray(t).astype(np.int64)]
    return make


def poisson(log_input):
    def make(rng, dt):
        x = rng.standard_normal((4, 5)) if log_input else rng.uniform(0.2, 3, (4, 5))
        return [x.astype(dt), rng.integers(0, 5, (4, 5)).astype(dt)]
    return make


def gaussian(var_shape):
    def make(rng, dt):
        return [rng.standard_normal((4, 3)).astype(dt), rng.standard_normal((4, 3)).astype(dt),
                rng.uniform(0.3, 2.0, var_shape).astype(dt)]
    return make


def gaussian_small_var(rng, dt):
    v = rng.uniform(0.3, 2.0, (4, 3))
    v[0, :2] = [1e-9, 0.0]  # below eps: clamped for the value, gradient as unclamped
    return [rng.standard_normal((4, 3)).astype(dt), rng.standard_normal((4, 3)).astype(dt),
            v.astype(dt)]


def multilabel_soft(rng, dt):
    return [rng.standard_normal((4, 6)).astype(dt), rng.integers(0, 2, (4, 6)).astype(dt),
            rng.uniform(0.5, 2, 6).astype(dt)]


def classes(n, c, weight=False):
    def make(rng, dt):
        shape = (c,) if n is None else (n, c)
        t = np.asarray(rng.integers(0, c, () if n is None else n), dtype=np.int64)
        out = [rng.standard_normal(shape).astype(dt), t]
        return out + [rng.uniform(0.5, 2, c).astype(dt)] if weight else out
    return make


def multilabel(rng, dt):
    x = rng.standard_normal((4, 5)).astype(dt)
    t = np.array([[3, 0, -1, 1, 1], [0, 1, 2, 4, 3], [-1, 2, 2, 0, 0], [4, 4, -1, 0, -1]])
    return [x, t]


def triplet(*shape):
    return lambda rng, dt: [rng.standard_normal(shape).astype(dt) for _ in range(3)]


def _cos_dist(a, b):
    """1 - cosine similarity over the last dim, written with ops both libraries share."""
    return 1 - (a * b).sum(-1) / ((a * a).sum(-1) * (b * b).sum(-1)).sqrt()


CASES = (
    loss("huber", "huber_loss", pair(4, 5), terms=20)
    + loss("huber_delta", "huber_loss", pair(4, 5), terms=20, delta=0.4)
    + [OpCase("huber_weight", lambda x, t, w: F.huber_loss(x, t, weight=w, delta=0.7),
              lambda x, t, w: TH.huber_loss(x, t, weight=w, delta=0.7),
              triplet(3, 4), terms=12)]
    + loss("mse_weight", "mse_loss", triplet(3, 4), terms=12, weight_at=2)
    + loss("l1_weight", "l1_loss", triplet(3, 4), terms=12, weight_at=2)
    + loss("soft_margin", "soft_margin_loss", signed(3, 5), frozen=(1,), terms=15)
    + loss("margin_ranking", "margin_ranking_loss", ranking, frozen=(2,), terms=7, margin=0.3)
    + loss("hinge_embedding", "hinge_embedding_loss", signed(4, 3), frozen=(1,), terms=12,
           margin=0.8)
    + loss("cosine_embedding", "cosine_embedding_loss", cosine(6), terms=30, margin=0.2)
    + loss("cosine_embedding_1d", "cosine_embedding_loss", cosine(None), terms=5)
    + loss("poisson_log", "poisson_nll_loss", poisson(True), frozen=(1,), terms=20)
    + loss("poisson_rate_full", "poisson_nll_loss", poisson(False), frozen=(1,), terms=20,
           log_input=False, full=True)
    + loss("poisson_log_full", "poisson_nll_loss", poisson(True), frozen=(1,), terms=20,
           full=True)
    + loss("gaussian", "gaussian_nll_loss", gaussian((4, 3)), terms=12)
    + loss("gaussian_short_var", "gaussian_nll_loss", gaussian((4,)), terms=12, full=True)
    + loss("gaussian_var_1", "gaussian_nll_loss", gaussian((4, 1)), terms=12)
    # no gradcheck: below eps the value is clamped but the gradient passes as unclamped
    # (PyTorch's definition), which finite differences cannot see
    + loss("gaussian_small_var", "gaussian_nll_loss", gaussian_small_var, terms=12,
           kinds=("torch64", "torch32", "ref"))
    + [OpCase("gaussian_float_var", lambda x, t: F.gaussian_nll_loss(x, t, 0.7),
              lambda x, t: TH.gaussian_nll_loss(x, t, 0.7), pair(3, 4), terms=12)]
    + loss("multilabel_soft", "multilabel_soft_margin_loss", multilabel_soft, frozen=(1,),
           terms=24)
    + loss("multi_margin", "multi_margin_loss", classes(5, 4), terms=20)
    + loss("multi_margin_p2_w", "multi_margin_loss", classes(5, 4, weight=True), terms=20,
           weight_at=2, frozen=(2,), p=2, margin=0.7)
    + loss("multi_margin_1d", "multi_margin_loss", classes(None, 6), terms=6)
    + loss("multilabel_margin", "multilabel_margin_loss", multilabel, terms=100)
    + loss("triplet", "triplet_margin_loss", triplet(5, 4), terms=20)
    + loss("triplet_p1_swap", "triplet_margin_loss", triplet(5, 4), terms=20, p=1.0,
           swap=True, margin=0.5)
    + loss("triplet_3d", "triplet_margin_loss", triplet(2, 3, 4), terms=24, p=3.0)
    + loss("triplet_1d", "triplet_margin_loss", triplet(6), terms=6)
    + loss("triplet_distance", "triplet_margin_with_distance_loss", triplet(5, 4), terms=20)
    + loss("triplet_distance_cos_swap", "triplet_margin_with_distance_loss", triplet(5, 4),
           terms=20, distance_function=_cos_dist, swap=True, margin=0.5)
    + [OpCase("pairwise_distance", lambda a, b: F.pairwise_distance(a, b, 1.5),
              lambda a, b: TH.pairwise_distance(a, b, 1.5), pair(4, 5), terms=5),
       OpCase("pairwise_distance_keepdim", lambda a, b: F.pairwise_distance(a, b, keepdim=True),
              lambda a, b: TH.pairwise_distance(a, b, keepdim=True), pair(3, 2, 5), terms=5),
       OpCase("cosine_similarity", lambda a, b: F.cosine_similarity(a, b),
              lambda a, b: TH.cosine_similarity(a, b), pair(4, 5, 2), terms=10),
       OpCase("cosine_similarity_bcast_dim", lambda a, b: F.cosine_similarity(a, b, -1, 1e-3),
              lambda a, b: TH.cosine_similarity(a, b, -1, 1e-3),
              lambda rng, dt: [rng.standard_normal((3, 1, 4)).astype(dt),
                               rng.standard_normal((2, 4)).astype(dt)], terms=8),
       OpCase("cosine_similarity_1d", lambda a, b: F.cosine_similarity(a, b, 0),
              lambda a, b: TH.cosine_similarity(a, b, 0), pair(6), terms=12)]
)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("c", CASES, ids=case_id)
def test_loss(c, kind):
    check(c, kind)
