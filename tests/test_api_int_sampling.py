"""Issue 16, sampling: multinomial and bernoulli tested by their distributions, not against
PyTorch's random stream (tinyfw draws from its own generator).

Each statistical test draws with a fixed seed and compares a chi-square statistic with the
quantile that a correct sampler exceeds with probability 1e-6 (CHI2_1E6, checked below
against the chi-square survival function in closed form): a fresh seed would fail a
correct implementation about once in a million runs; with the fixed seed the outcome is
deterministic.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import tinyfw
from helpers import npy, requires_torch, torch

# chi-square upper 1e-6 quantiles by degrees of freedom (the tests' dfs)
CHI2_1E6 = {1: 23.928127, 3: 30.664850, 4: 33.376842, 11: 48.865643}


def chi2_sf(x: float, df: int) -> float:
    """P(chi-square(df) > x), closed form: a finite sum for even df, erfc plus a sum for
    odd df."""
    h = x / 2.0
    if df % 2 == 0:
        return math.exp(-h) * sum(h ** i / math.factorial(i) for i in range(df // 2))
    term, total = math.sqrt(2.0 * x / math.pi) * math.exp(-h), 0.0
    for i in range(1, (df - 1) // 2 + 1):
        total += term
        term *= x / (2 * i + 1)
    return math.erfc(math.sqrt(h)) + total


def chi2_limit(df: int) -> float:
    """The chi-square(df) value exceeded with probability 1e-6."""
    return CHI2_1E6[df]


def chi2(counts: np.ndarray, probs: np.ndarray) -> tuple:
    """(statistic, degrees of freedom) of observed counts against cell probabilities
    (cells of probability 0 must be empty and are left out)."""
    n = counts.sum()
    keep = probs > 0
    assert not counts[~keep].any(), "a category of probability 0 was drawn"
    exp = n * probs[keep]
    assert exp.min() >= 5, "too few expected draws per cell for the chi-square test"
    return float(((counts[keep] - exp) ** 2 / exp).sum()), int(keep.sum()) - 1


def test_chi2_limits_are_the_1e6_quantiles():
    for df, q in CHI2_1E6.items():
        assert abs(chi2_sf(q, df) - 1e-6) < 1e-11, df


@pytest.mark.parametrize("device", ["cpu", "check"])
def test_multinomial_with_replacement_distribution(device):
    w = np.array([0.3, 0.0, 0.75, 1.2, 0.75])  # unnormalised, one category never drawn
    g = tinyfw.Generator(1234)
    x = tinyfw.tensor(np.tile(w, (4, 1)), device=device)
    s = npy(tinyfw.multinomial(x, 5000, replacement=True, generator=g))
    assert s.shape == (4, 5000) and s.dtype == np.int64
    stat, df = chi2(np.bincount(s.reshape(-1), minlength=5), w / w.sum())
    assert stat < chi2_limit(df), (stat, df)


def test_multinomial_without_replacement_pair_distribution():
    """Ordered pairs (i, j) drawn without replacement: P = w_i / W * w_j / (W - w_i)."""
    w = np.array([1.0, 2.0, 3.0, 4.0])
    W = w.sum()
    rows = 20000
    s = npy(tinyfw.multinomial(tinyfw.tensor(np.tile(w, (rows, 1))), 2,
                               generator=tinyfw.Generator(99)))
    assert (s[:, 0] != s[:, 1]).all()
    pairs = list(itertools.permutations(range(4), 2))
    probs = np.array([w[i] / W * w[j] / (W - w[i]) for i, j in pairs])
    counts = np.array([np.sum((s[:, 0] == i) & (s[:, 1] == j)) for i, j in pairs])
    stat, df = chi2(counts, probs)
    assert stat < chi2_limit(df), (stat, df)


def test_multinomial_without_replacement_all_categories_is_a_permutation():
    x = tinyfw.tensor([[0.1, 5.0, 2.0, 0.5, 1.0]] * 50)
    s = npy(x.multinomial(5, generator=tinyfw.Generator(3)))
    assert (np.sort(s, axis=1) == np.arange(5)).all()
    one = npy(tinyfw.multinomial(tinyfw.tensor([0.0, 0.0, 2.0]), 1))
    assert one.tolist() == [2]


def test_multinomial_same_seed_same_draws_on_every_device():
    x = tinyfw.tensor([[1.0, 2.0, 3.0], [3.0, 0.0, 1.0]])
    a = npy(tinyfw.multinomial(x, 6, True, generator=tinyfw.Generator(5)))
    b = npy(tinyfw.multinomial(x.to("check"), 6, True, generator=tinyfw.Generator(5)))
    np.testing.assert_array_equal(a, b)
    tinyfw.manual_seed(8)
    c = npy(tinyfw.multinomial(x, 2))
    tinyfw.manual_seed(8)
    np.testing.assert_array_equal(c, npy(tinyfw.multinomial(x, 2)))


def test_multinomial_on_meta_and_empty_rows():
    m = tinyfw.multinomial(tinyfw.empty((3, 4), device="meta"), 2)
    assert m.shape == (3, 2) and m.dtype is tinyfw.int64 and m.device.type == "meta"
    assert tinyfw.multinomial(tinyfw.ones(0, 4), 2).shape == (0, 2)


@pytest.mark.parametrize("call,msg", [
    (lambda: tinyfw.multinomial(tinyfw.tensor([1.0, -1.0]), 1), "element < 0"),
    (lambda: tinyfw.multinomial(tinyfw.tensor([1.0, float("nan")]), 1), "inf, nan"),
    (lambda: tinyfw.multinomial(tinyfw.tensor([0.0, 0.0]), 1), "sum of probabilities <= 0"),
    (lambda: tinyfw.multinomial(tinyfw.tensor([1.0, 0.0, 0.0]), 2), "not enough non-zero categories"),
    (lambda: tinyfw.multinomial(tinyfw.tensor([1.0, 1.0]), 3), "cannot sample 3 > 2 categories"),
    (lambda: tinyfw.multinomial(tinyfw.tensor([1.0, 1.0]), 0), "num_samples must be a positive int"),
    (lambda: tinyfw.multinomial(tinyfw.ones(2, 2, 2), 1), "input must be 1-d or 2-d"),
    (lambda: tinyfw.multinomial(tinyfw.tensor([1, 2]), 1), "input must be floating point"),
    (lambda: tinyfw.bernoulli(tinyfw.tensor([1.5])), r"probabilities must be in \[0, 1\]"),
    (lambda: tinyfw.bernoulli(tinyfw.tensor([float("nan")])), "probabilities must be in"),
    (lambda: tinyfw.bernoulli(tinyfw.tensor([1])), "bernoulli: probabilities must be floating point"),
    (lambda: tinyfw.zeros(2).bernoulli(1.5), r"bernoulli: p must be in \[0, 1\]"),
])
def test_errors_name_the_op(call, msg):
    with pytest.raises((RuntimeError, TypeError), match=msg):
        call()


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_bernoulli_tensor_of_probabilities(dtype):
    """Elements are independent Bernoulli(p_i): p = 0 and 1 exactly, the rest by
    chi-square on the per-element counts of ones and zeros."""
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0, 0.25])
    n = 20000
    x = tinyfw.tensor(np.tile(p, (n, 1)), dtype=dtype)
    out = tinyfw.bernoulli(x, generator=tinyfw.Generator(17))
    assert out.dtype.name == dtype and out.shape == x.shape
    o = npy(out).astype(np.float64)
    assert set(np.unique(o)) <= {0.0, 1.0}
    ones = o.sum(axis=0)
    assert ones[0] == 0 and ones[4] == n
    mid = [1, 2, 3, 5]
    exp1, exp0 = n * p[mid], n * (1 - p[mid])
    stat = float((((ones[mid] - exp1) ** 2) / exp1 + ((n - ones[mid] - exp0) ** 2) / exp0).sum())
    assert stat < chi2_limit(len(mid)), stat  # one degree of freedom per element


def test_bernoulli_with_p_and_the_method_agree():
    x = tinyfw.zeros(40000, dtype="float64")
    a = x.bernoulli(0.3, generator=tinyfw.Generator(4))
    b = tinyfw.bernoulli(x, 0.3, generator=tinyfw.Generator(4))
    np.testing.assert_array_equal(npy(a), npy(b))
    k = npy(a).sum()
    stat = (k - 12000) ** 2 / 12000 + (40000 - k - 28000) ** 2 / 28000
    assert stat < chi2_limit(1)
    c = tinyfw.full((3,), 0.7).bernoulli(generator=tinyfw.Generator(4))  # p from the tensor
    assert c.dtype is tinyfw.float32 and c.shape == (3,)
    assert tinyfw.bernoulli(tinyfw.empty((2, 5), device="meta")).shape == (2, 5)


@requires_torch
def test_signatures_match_pytorch():
    """The argument names and defaults of PyTorch's Python-visible signatures."""
    x = tinyfw.tensor([0.2, 0.8])
    px = torch.tensor([0.2, 0.8])
    for t, pt in [(x, px)]:
        assert tinyfw.bernoulli(t, p=0.5).shape == torch.bernoulli(pt, p=0.5).shape
        assert t.multinomial(num_samples=2, replacement=True).shape == \
            pt.multinomial(num_samples=2, replacement=True).shape
        assert tinyfw.multinomial(t, 1, generator=tinyfw.Generator(0)).shape == \
            torch.multinomial(pt, 1, generator=torch.Generator().manual_seed(0)).shape
