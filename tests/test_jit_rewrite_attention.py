"""The attention rewrites (jit/rewrites_attention.py): written-out attention becomes the
fused scaled_dot_product_attention op; outputs and gradients against eager, gradcheck in
float64, near misses that must stay as written."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from tinyfw import jit
from tinyfw.autograd import gradcheck
from tests.helpers import npy

SDPA = "ScaledDotProductAttention"
L, S, E = 5, 6, 8


def _t(shape, dtype=tinyfw.float32, seed=0, grad=True):
    a = np.random.RandomState(seed).normal(0, 1, shape)
    return tinyfw.tensor(a, dtype=dtype, requires_grad=grad)


def _qkv(batch=(2, 2), dtype=tinyfw.float32):
    return (_t(batch + (L, E), dtype, 0), _t(batch + (S, E), dtype, 1),
            _t(batch + (S, E), dtype, 2))


def _kt(k):
    return k.transpose(-2, -1)


_FMASK = np.random.RandomState(3).normal(0, 1, (L, S))
_KEEP = np.tril(np.ones((L, S), dtype=bool))
_RANDOM_KEEP = np.random.RandomState(4).uniform(size=(L, S)) > 0.3
_RANDOM_KEEP[:, 0] = True  # no fully masked row: softmax and the op agree everywhere


def _forms(dtype):
    fmask = tinyfw.tensor(_FMASK, dtype=dtype)
    keep, rkeep = tinyfw.tensor(_KEEP), tinyfw.tensor(_RANDOM_KEEP)
    return {
        "mul": (lambda q, k, v: F.softmax(q @ _kt(k) * 0.3, dim=-1) @ v, False, False),
        "div_sqrt": (lambda q, k, v: F.softmax(q @ _kt(k) / math.sqrt(E), dim=-1) @ v,
                     False, False),
        "float_mask": (lambda q, k, v: F.softmax(q @ _kt(k) * 0.3 + fmask, dim=-1) @ v,
                       True, False),
        "causal_where": (lambda q, k, v: F.softmax(
            tinyfw.where(keep, q @ _kt(k) / 2.0, float("-inf")), dim=-1) @ v, False, True),
        "causal_masked_fill": (lambda q, k, v: F.softmax(
            (q @ _kt(k) * 0.3).masked_fill(~keep, float("-inf")), dim=-1) @ v, False, True),
        "bool_mask": (lambda q, k, v: F.softmax(
            tinyfw.where(rkeep, q @ _kt(k) * 0.3, float("-inf")), dim=-1) @ v, True, False),
    }


def _sdpa_nodes(tf, *args):
    return [n for n in tf.graph(*args)[0].nodes if n.op == SDPA]


@pytest.mark.parametrize("batch", [(2, 2), (3,)], ids=["4d", "3d"])
@pytest.mark.parametrize("form", list(_forms(tinyfw.float32)))
def test_attention_becomes_sdpa_with_equal_outputs_and_gradients(form, batch):
    f, has_mask, causal = _forms(tinyfw.float32)[form]
    q, k, v = _qkv(batch)
    tf = jit.trace(f, (q, k, v))
    nodes = _sdpa_nodes(tf, q, k, v)
    assert len(nodes) == 1, [n.op for n in tf.graph(q, k, v)[0].nodes]
    assert nodes[0].attrs["has_mask"] is has_mask and nodes[0].attrs["is_causal"] is causal
    assert "Softmax" not in [n.op for n in tf.graph(q, k, v)[0].nodes]
    outs = []
    for fn in (tf, f):
        for t in (q, k, v):
            t.grad = None
        y = fn(q, k, v)
        (y * y).sum().backward()
        outs.append([npy(y.detach()).copy()] + [npy(t.grad).copy() for t in (q, k, v)])
    # float32: the fused kernel sums in another order.  Its backward also takes the row term
    # D = sum(dO * O) where eager sums dP * P: where the exact dS is 0 (a causal row with one
    # live key) each side rounds differently, by at most 2 * gamma_E * sum|dO| |v| per
    # score, which reaches dq / dk through S products with scale * |k| / |q|.  That bound is
    # the absolute tolerance of the gradients (u: float32's unit roundoff).
    u = 2.0 ** -24
    gamma = E * u / (1 - E * u)
    dout = 2 * np.abs(outs[1][0]).max()  # y * y summed: dO = 2y
    big = max(np.abs(npy(t.detach())).max() for t in (q, k, v))
    grad_atol = 2 * gamma * E * dout * big * S * big  # scale <= 1 in every form
    for i, (a, b) in enumerate(zip(*outs)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6 if i == 0 else grad_atol)


@pytest.mark.parametrize("form", ["div_sqrt", "float_mask", "causal_where"])
def test_rewritten_attention_gradcheck_float64(form):
    f, _, _ = _forms(tinyfw.float64)[form]
    q, k, v = _qkv((1, 2), tinyfw.float64)
    tf = jit.trace(f, (q, k, v))
    assert _sdpa_nodes(tf, q, k, v)
    assert gradcheck(tf, (q, k, v))


def test_fully_masked_rows_give_zero_like_the_op():
    """The documented difference: softmax of an all -inf row is NaN, the op gives 0."""
    q, k, v = _qkv((1,))
    keep = tinyfw.tensor(np.tril(np.ones((L, S), dtype=bool), -1))  # row 0 all masked
    f = lambda q, k, v: F.softmax(  # noqa: E731
        tinyfw.where(keep, q @ _kt(k) * 0.3, float("-inf")), dim=-1) @ v
    y = npy(jit.trace(f, (q, k, v))(q, k, v).detach())
    assert np.all(y[:, 0] == 0) and np.all(np.isnan(npy(f(q, k, v).detach())[:, 0]))
    np.testing.assert_allclose(y[:, 1:], npy(f(q, k, v).detach())[:, 1:], rtol=2e-5, atol=2e-6)


def _near_misses():
    fmask = tinyfw.tensor(_FMASK, dtype=tinyfw.float32)
    keep = tinyfw.tensor(_KEEP)
    wide = tinyfw.tensor(np.random.RandomState(5).normal(0, 1, (3, 2, L, S)),
                         dtype=tinyfw.float32)

    def scores_out(q, k, v):
        s = q @ _kt(k) * 0.3 + fmask
        return F.softmax(s, dim=-1) @ v, s

    return {
        # softmax over the query axis
        "softmax_dim": lambda q, k, v: F.softmax(q @ _kt(k) * 0.3, dim=-2) @ v,
        # masked with 0, not -inf
        "where_zero": lambda q, k, v: F.softmax(
            tinyfw.where(keep, q @ _kt(k) * 0.3, 0.0), dim=-1) @ v,
        # a mask that widens the scores' batch dim (q, k, v have batch (1, 2))
        "wide_mask": lambda q, k, v: F.softmax(q @ _kt(k) * 0.3 + wide, dim=-1) @ v,
        # the scores are also returned: the interior value is read outside
        "scores_out": scores_out,
        # a scale of 0
        "zero_scale": lambda q, k, v: F.softmax(q @ _kt(k) * 0.0, dim=-1) @ v,
    }


@pytest.mark.parametrize("name", list(_near_misses()))
def test_attention_near_misses_stay_as_written(name):
    f = _near_misses()[name]
    q, k, v = _qkv((1, 2))
    tf = jit.trace(f, (q, k, v))
    assert not _sdpa_nodes(tf, q, k, v)
    got, want = tf(q, k, v), f(q, k, v)
    got, want = (got if isinstance(got, tuple) else (got,)), (want if isinstance(
        want, tuple) else (want,))
    for a, b in zip(got, want):
        np.testing.assert_allclose(npy(a.detach()), npy(b.detach()), rtol=1e-6, atol=1e-6)


def test_dropout_between_softmax_and_v_stays_as_written():
    q, k, v = _qkv()
    f = lambda q, k, v: F.dropout(  # noqa: E731
        F.softmax(q @ _kt(k) * 0.3, dim=-1), 0.2, True) @ v
    assert not _sdpa_nodes(jit.trace(f, (q, k, v)), q, k, v)
