"""ctc_loss (tinyfw/nn/_losses_ctc.py) against PyTorch: every reduction, padded and
concatenated targets, unbatched input, repeated labels, zero_infinity, impossible
alignments, and the error messages.

The torch-compared cases go through a log_softmax of logits (as CTC is used): PyTorch's
backward returns exp(log_probs) - posterior, the gradient through a log_softmax, not
d loss / d log_probs (tested below); gradcheck checks tinyfw's own derivative."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinyfw
import tinyfw.nn.functional as F
from helpers import npy, requires_torch, torch
from op_table import KINDS, OpCase, case_id, check

TH = torch.nn.functional if torch is not None else None

T, N, C = 7, 3, 5
IN_LENS = [7, 5, 6]
TG_LENS = [3, 2, 0]
# row 0 repeats a label (needs a blank between), row 2 is empty
TARGETS = np.array([[1, 1, 3, 0], [2, 4, 0, 0], [0, 0, 0, 0]], dtype=np.int64)
FLAT = np.array([1, 1, 3, 2, 4], dtype=np.int64)


def logits(*shape):
    return lambda rng, dt: [rng.standard_normal(shape).astype(dt)]


def ctc(mod, targets, in_lens, tg_lens, dim=2, **kw):
    def fn(z):
        lp = z.log_softmax(dim)
        args = [targets, in_lens, tg_lens]
        if mod is torch:
            args = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
            return torch.nn.functional.ctc_loss(lp, *args, **kw)
        args = [tinyfw.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
        return F.ctc_loss(lp, *args, **kw)
    return fn


def case(label, targets, in_lens, tg_lens, shape=(T, N, C), dim=2, **kw):
    lens = (in_lens, tg_lens) if isinstance(in_lens, tuple) \
        else (np.array(in_lens), np.array(tg_lens))
    return OpCase(label, ctc(tinyfw, targets, *lens, dim=dim, **kw),
                  ctc(torch, targets, *lens, dim=dim, **kw), logits(*shape), terms=T * C)


CASES = [case(f"padded-{r}", TARGETS, IN_LENS, TG_LENS, reduction=r)
         for r in ("none", "mean", "sum")] + [
    case("concatenated", FLAT, IN_LENS, TG_LENS, reduction="none"),
    case("blank_last", np.array([[0, 1, 1], [2, 3, 3], [1, 0, 0]]), IN_LENS, [3, 3, 1],
         blank=4, reduction="sum"),
    case("tuple_lengths", TARGETS, tuple(IN_LENS), tuple(TG_LENS)),
    case("unbatched", np.array([2, 2, 1], dtype=np.int64), 6, 3, shape=(T, C), dim=1,
         reduction="none"),
    # row 1 needs 2 * 2 + 1 = 5 steps for "2 2" but gets 3: infinite, zeroed
    case("zero_infinity", np.array([[1, 3], [2, 2], [4, 1]]), [7, 3, 5], [2, 2, 1],
         zero_infinity=True, reduction="mean"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("c", CASES, ids=case_id)
def test_ctc(c, kind):
    check(c, kind)


@requires_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_grad_wrt_log_probs_is_torchs_minus_softmax(dtype):
    """PyTorch's gradient w.r.t. normalised log_probs is exp(log_probs) - posterior at the
    steps inside each input; tinyfw's is -posterior, the derivative itself."""
    rng = np.random.default_rng(0)
    z = torch.from_numpy(rng.standard_normal((T, N, C)).astype(dtype)).log_softmax(2)
    lp_t = z.clone().requires_grad_()
    TH.ctc_loss(lp_t, torch.from_numpy(TARGETS), torch.tensor(IN_LENS), torch.tensor(TG_LENS),
                reduction="sum").backward()
    lp = tinyfw.tensor(z.numpy(), requires_grad=True)
    F.ctc_loss(lp, tinyfw.tensor(TARGETS), IN_LENS, TG_LENS, reduction="sum").backward()
    inside = (np.arange(T)[:, None] < np.array(IN_LENS)[None, :])[:, :, None]
    want = lp_t.grad.numpy() - np.exp(z.numpy()) * inside
    tol = 1e-12 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(npy(lp.grad), want, rtol=tol, atol=tol)


@requires_torch
def test_impossible_alignment_is_inf_and_zero_infinity_zeroes_its_gradient():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((4, 2, 3))
    tg, il, tl = np.array([[1, 1, 1], [1, 2, 0]]), [4, 4], [3, 2]  # "1 1 1" needs 5 steps
    lp = tinyfw.tensor(z, requires_grad=True)
    out = F.ctc_loss(lp.log_softmax(2), tinyfw.tensor(tg), il, tl, reduction="none")
    ref = TH.ctc_loss(torch.from_numpy(z).log_softmax(2), torch.from_numpy(tg),
                      torch.tensor(il), torch.tensor(tl), reduction="none")
    assert math.isinf(npy(out)[0]) and npy(out)[0] > 0
    np.testing.assert_allclose(npy(out), ref.numpy(), rtol=1e-12)
    lz = tinyfw.tensor(z, requires_grad=True)
    F.ctc_loss(lz.log_softmax(2), tinyfw.tensor(tg), il, tl, reduction="sum",
               zero_infinity=True).backward()
    g = npy(lz.grad)
    assert np.all(g[:, 0] == 0) and np.all(np.isfinite(g)) and np.any(g[:, 1] != 0)


@requires_torch
def test_zero_length_input_and_target():
    z = np.log(np.full((5, 2, 4), 0.25))
    tg, il, tl = np.array([[1, 2], [1, 1]]), [0, 5], [0, 2]
    out = F.ctc_loss(tinyfw.tensor(z), tinyfw.tensor(tg), il, tl, reduction="none")
    ref = TH.ctc_loss(torch.from_numpy(z), torch.from_numpy(tg), torch.tensor(il),
                      torch.tensor(tl), reduction="none")
    np.testing.assert_allclose(npy(out), ref.numpy(), rtol=1e-12, atol=1e-12)


@requires_torch
def test_empty_log_probs_raise_as_torch():
    z = np.zeros((4, 0, 3))
    with pytest.raises(RuntimeError, match="must not be empty"):
        TH.ctc_loss(torch.from_numpy(z), torch.zeros(0, 2, dtype=torch.int64),
                    torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    with pytest.raises(RuntimeError, match="ctc_loss: log_probs must not be empty"):
        F.ctc_loss(tinyfw.tensor(z), tinyfw.zeros(0, 2, dtype=tinyfw.int64), [], [])


ERRORS = [
    (dict(in_lens=[8, 5, 6]), RuntimeError, "ctc_loss: input_lengths must be at most T=7"),
    (dict(tg_lens=[5, 2, 0]), RuntimeError, "ctc_loss: a target length 5 exceeds"),
    (dict(tg_lens=[3, 2]), RuntimeError, "ctc_loss: target_lengths must have 3 entries"),
    (dict(targets=TARGETS + 4), IndexError, "ctc_loss: target label 5 is out of range"),
    (dict(blank=5), ValueError, "ctc_loss: blank 5 is out of range"),
    (dict(targets=TARGETS.astype(np.float64)), TypeError, "ctc_loss: targets"),
    (dict(lp_shape=(T, N, C, 1)), RuntimeError, "ctc_loss: log_probs must be"),
    (dict(reduction="avg"), ValueError, "ctc_loss: 'avg' is not a valid"),
]


@pytest.mark.parametrize("k", range(len(ERRORS)))
def test_errors(k):
    kw, exc, msg = ERRORS[k]
    lp = tinyfw.zeros(*kw.get("lp_shape", (T, N, C)))
    with pytest.raises(exc, match=msg):
        F.ctc_loss(lp, tinyfw.tensor(kw.get("targets", TARGETS)), kw.get("in_lens", IN_LENS),
                   kw.get("tg_lens", TG_LENS), blank=kw.get("blank", 0),
                   reduction=kw.get("reduction", "mean"))


@requires_torch
@given(data=st.data())
def test_random_problems_match_torch(data):
    """Random T, N, C, blank, target and input lengths (impossible alignments included),
    padded or concatenated targets, every reduction, zero_infinity on or off: the loss and
    the gradient through a log_softmax agree with PyTorch's in float64."""
    t_len = data.draw(st.integers(1, 8), "T")
    n = data.draw(st.integers(1, 4), "N")
    c = data.draw(st.integers(2, 5), "C")
    blank = data.draw(st.integers(0, c - 1), "blank")
    labels = [k for k in range(c) if k != blank]
    tg_lens = [data.draw(st.integers(0, 4), f"S{i}") for i in range(n)]
    in_lens = [data.draw(st.integers(0, t_len), f"L{i}") for i in range(n)]
    rows = [[data.draw(st.sampled_from(labels)) for _ in range(k)] for k in tg_lens]
    concat = data.draw(st.booleans(), "concatenated")
    red = data.draw(st.sampled_from(["none", "mean", "sum"]), "reduction")
    zero_inf = data.draw(st.booleans(), "zero_infinity")
    if concat:
        tg = np.array([v for r in rows for v in r], dtype=np.int64)
    else:
        width = max(tg_lens + [1])
        tg = np.array([r + [blank] * (width - len(r)) for r in rows], dtype=np.int64)
    z = np.random.default_rng(data.draw(st.integers(0, 999), "seed")).standard_normal(
        (t_len, n, c))
    x, xt = tinyfw.tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    y = F.ctc_loss(x.log_softmax(2), tinyfw.tensor(tg), in_lens, tg_lens, blank, red, zero_inf)
    yt = TH.ctc_loss(xt.log_softmax(2), torch.from_numpy(tg), torch.tensor(in_lens),
                     torch.tensor(tg_lens), blank, red, zero_inf)
    np.testing.assert_allclose(npy(y), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    if np.all(np.isfinite(yt.detach().numpy())):
        y.sum().backward()
        yt.sum().backward()
        np.testing.assert_allclose(npy(x.grad), xt.grad.numpy(), rtol=1e-9, atol=1e-11)
