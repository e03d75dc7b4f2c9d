"""Subgraph rewrites (tinyfw.jit.rewrite): the public API, matching rules, bad patterns,
the built-in identities; outputs against eager and gradients by gradcheck (float64)
after each rewrite.  Batch-norm folding and freeze: tests/test_jit_freeze.py."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from tinyfw import jit, nn
from tinyfw.autograd import gradcheck
from tinyfw.jit import Rewrite, TraceError
from tinyfw.jit.compiler import DEFAULT_PASSES
from tests.helpers import explain_text, npy

NO_REWRITE = tuple(p for p in DEFAULT_PASSES if p != "rewrite")
# the traced graph with the rewrite, but no fusion: each op runs eager's own kernel, so
# the rewritten graph equals the replacement run eagerly bit for bit
UNFUSED = ("rewrite", "dce", "cse", "const_fold", "simplify", "memory_plan")


def _ops(tf, *args) -> list:
    return [n.op for n in tf.graph(*args)[0].nodes]


def _x(*shape, dtype=tinyfw.float32, grad=False, seed=0):
    a = np.random.RandomState(seed).uniform(-2, 2, shape)
    return tinyfw.tensor(a, dtype=dtype, requires_grad=grad)


# -- the API ------------------------------------------------------------------------------------
def _tanh_pattern(x):
    return (tinyfw.exp(x * 2) - 1) / (tinyfw.exp(x * 2) + 1)


def _tanh(x):
    return tinyfw.tanh(x)


def test_user_rewrite_per_trace_matches_and_keeps_gradients():
    rw = Rewrite(_tanh_pattern, _tanh, name="tanh_from_exp")
    x = _x(5, 3, dtype=tinyfw.float64, grad=True)
    tf = jit.trace(_tanh_pattern, (x,), rewrites=[rw])
    assert "Tanh" in _ops(tf, x) and "Exp" not in _ops(tf, x)
    text = explain_text(tf, x)
    assert "rewrote tanh_from_exp:" in text and "-> Tanh" in text
    np.testing.assert_allclose(npy(tf(x).detach()), np.tanh(npy(x.detach())), rtol=1e-14)
    assert gradcheck(tf, (x,))
    # not registered: another trace does not apply it
    assert "Tanh" not in _ops(jit.trace(_tanh_pattern, (x,)), x)


def test_registered_rewrite_applies_to_every_trace_until_unregistered():
    rw = jit.register_rewrite(Rewrite(_tanh_pattern, _tanh, name="test_tanh"))
    try:
        assert rw in jit.registered_rewrites()
        x = _x(4, 4)
        assert "Tanh" in _ops(jit.trace(_tanh_pattern, (x,)), x)
        with pytest.raises(ValueError, match="already registered"):
            jit.register_rewrite(Rewrite(_tanh_pattern, _tanh, name="test_tanh"))
    finally:
        jit.unregister_rewrite("test_tanh")
    assert "Tanh" not in _ops(jit.trace(_tanh_pattern, (x,)), x)
    with pytest.raises(KeyError, match="no rewrite named 'test_tanh'"):
        jit.unregister_rewrite("test_tanh")


def test_passes_without_rewrite_turn_rewrites_off():
    x = _x(4, 4)
    f = lambda x: x * tinyfw.sigmoid(x)  # noqa: E731
    assert "Silu" in _ops(jit.trace(f, (x,)), x)
    assert "Silu" not in _ops(jit.trace(f, (x,), passes=NO_REWRITE), x)


def test_commutative_operands_match_in_either_order():
    x = _x(3, 4)
    for f in (lambda x: x * tinyfw.sigmoid(x), lambda x: tinyfw.sigmoid(x) * x):
        ops = _ops(jit.trace(f, (x,)), x)
        assert ops == ["Silu"], ops


def test_placeholder_must_bind_one_value_everywhere():
    x, y = _x(3, 4), _x(3, 4, seed=1)
    tf = jit.trace(lambda x, y: x * tinyfw.sigmoid(y), (x, y))
    assert "Silu" not in _ops(tf, x, y)


def test_interior_value_used_outside_blocks_the_match():
    x = _x(3, 4)

    def f(x):
        s = tinyfw.sigmoid(x)
        return x * s, s  # the sigmoid is needed anyway: nothing to gain, and it must stay

    tf = jit.trace(f, (x,))
    assert "Silu" not in _ops(tf, x)
    a, b = tf(x)
    np.testing.assert_array_equal(npy(b), npy(tinyfw.sigmoid(x)))


def test_match_filter_sees_shapes_and_dtypes():
    seen = []

    def only_wide(m) -> bool:
        v = m.values["x"]
        seen.append((tuple(v.shape), np.dtype(v.dtype)))
        return v.shape[-1] >= 8

    rw = Rewrite(_tanh_pattern, _tanh, only_wide, name="wide_tanh")
    narrow, wide = _x(2, 4), _x(2, 8)
    assert "Tanh" not in _ops(jit.trace(_tanh_pattern, (narrow,), rewrites=[rw]), narrow)
    assert "Tanh" in _ops(jit.trace(_tanh_pattern, (wide,), rewrites=[rw]), wide)
    assert seen == [((2, 4), np.dtype(np.float32)), ((2, 8), np.dtype(np.float32))]


def test_replacement_can_read_the_match():
    # softmax(x, d) * 1 -> softmax(x, d) read back from the matched node's attrs
    def pat(x):
        return F.softmax(x, dim=-1) * 2

    def rep(x, *, match):
        assert match.anchor.op == "Mul" and match.const(0) == 2.0
        return F.softmax(x, dim=match.node("Softmax").attrs["dim"]) * 2

    rw = Rewrite(pat, rep, name="read_match", ignore_attrs=("dim",))
    x = _x(2, 3, 5)
    f = lambda x: F.softmax(x, dim=1) * 2  # noqa: E731
    tf = jit.trace(f, (x,), rewrites=[rw], passes=UNFUSED)
    assert "rewrote read_match" in explain_text(tf, x)
    np.testing.assert_array_equal(npy(tf(x)), npy(f(x)))


def test_rewrites_repeat_until_none_matches():
    x = _x(3, 3, grad=True)
    f = lambda x: -(-(-(-x))) * 3  # noqa: E731
    tf = jit.trace(f, (x,))
    assert "Neg" not in _ops(tf, x)
    assert explain_text(tf, x).count("rewrote neg_neg") == 2


def test_replacement_by_an_input_never_aliases_an_output():
    x = _x(3, 3)
    x0 = npy(x).copy()
    tf = jit.trace(lambda x: -(-x), (x,))
    y = tf(x)
    assert _ops(tf, x) == ["Clone"]
    np.testing.assert_array_equal(npy(y), x0)
    y.add_(1)  # the caller owns y: writing it must leave x alone
    np.testing.assert_array_equal(npy(x), x0)


def test_rewrites_with_state_replay_dropout_and_batchnorm_as_eager():
    """A rewrite in a training model with dropout and batch norm: the replayed trace still
    draws and updates running statistics exactly as eager does (eager with silu)."""
    tinyfw.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Dropout(0.3))

    def traced_form(x):
        y = m(x)
        return y * tinyfw.sigmoid(y)

    def eager_form(x):
        return F.silu(m(x))

    x = _x(5, 6)
    tf = jit.trace(traced_form, (x,), passes=UNFUSED)
    rm0 = npy(m[1].running_mean).copy()
    assert "Silu" in _ops(tf, x)
    np.testing.assert_array_equal(npy(m[1].running_mean), rm0)  # tracing left no trace
    outs = []
    for fn in (eager_form, tf):
        tinyfw.manual_seed(3)
        m[1].running_mean.copy_(tinyfw.tensor(rm0))
        y = fn(x)
        y.sum().backward()
        outs.append((npy(y.detach()).copy(), npy(m[0].weight.grad).copy(),
                     npy(m[1].running_mean).copy()))
        m[0].weight.grad = None
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_rewrites_are_off_under_autocast():
    x = _x(4, 4)
    f = lambda x: x * tinyfw.sigmoid(x)  # noqa: E731
    with tinyfw.amp.autocast(dtype=tinyfw.bfloat16):
        tf = jit.trace(f, (x,))
        ops = _ops(tf, x)
    assert "Silu" not in ops


# -- bad patterns: clear errors ------------------------------------------------------------------
def test_pattern_without_ops_is_refused():
    rw = Rewrite(lambda x: x, lambda x: x * 1, name="nothing")
    with pytest.raises(ValueError, match="nothing: the pattern computes nothing"):
        jit.trace(lambda x: x + 1, (_x(2, 2),), rewrites=[rw])


def test_unused_placeholder_is_refused():
    rw = Rewrite(lambda x, y: x.exp(), lambda x, y: x.exp(), name="unused")
    with pytest.raises(ValueError, match="placeholder 'y' is not used"):
        rw.prepare()


def test_arity_mismatch_is_refused():
    with pytest.raises(TypeError,
                       match="pattern takes 2 tensors .x, y. but the replacement takes 1"):
        Rewrite(lambda x, y: x * y, lambda x: x, name="arity")


def test_pattern_returning_a_tuple_is_refused():
    rw = Rewrite(lambda x: (x.exp(), x), lambda x: x, name="tuple")
    with pytest.raises(TypeError, match="tuple: the pattern must return one Tensor"):
        rw.prepare()


def test_replacement_of_another_shape_is_refused():
    rw = Rewrite(lambda x: x.exp(), lambda x: x.sum(), name="shrinks")
    with pytest.raises(TraceError, match="shrinks: the replacement returns float32\\[\\] where "
                                         "the pattern matched float32\\[3, 3\\]"):
        jit.trace(lambda x: x.exp(), (_x(3, 3),), rewrites=[rw])


def test_non_rewrite_registration_is_refused():
    with pytest.raises(TypeError, match="expected a tinyfw.jit.Rewrite"):
        jit.register_rewrite(lambda x: x)


# -- the built-in identities -------------------------------------------------------------------
IDENTITIES = [
    # name, function, op that must appear, op that must go, eager form of the replacement
    ("silu", lambda x: x * tinyfw.sigmoid(x), "Silu", "Sigmoid", lambda x: F.silu(x)),
    ("log_softmax", lambda x: tinyfw.log(F.softmax(x, dim=0)), "LogSoftmax", "Softmax",
     lambda x: F.log_softmax(x, dim=0)),
    ("expm1", lambda x: tinyfw.exp(x) - 1, "Expm1", "Exp", lambda x: tinyfw.expm1(x)),
    ("log1p", lambda x: tinyfw.log(1 + (x * x)), "Log1p", "Log",
     lambda x: tinyfw.log1p(x * x)),
    ("relu_relu", lambda x: F.relu(F.relu(x)) * 2, None, None, lambda x: F.relu(x) * 2),
]


@pytest.mark.parametrize("name,f,new,gone,eager", IDENTITIES, ids=[c[0] for c in IDENTITIES])
def test_identity_matches_equals_replacement_and_keeps_gradients(name, f, new, gone, eager):
    x = _x(4, 5)
    tf = jit.trace(f, (x,), passes=UNFUSED)
    ops = _ops(tf, x)
    assert f"rewrote {name}:" in explain_text(tf, x)
    if new:
        assert new in ops and gone not in ops, ops
    np.testing.assert_array_equal(npy(tf(x)), npy(eager(x)))
    # the unrewritten graph agrees to rounding (the identities are exact in real numbers)
    np.testing.assert_allclose(npy(tf(x)), npy(jit.trace(f, (x,), passes=NO_REWRITE)(x)),
                               rtol=1e-5, atol=1e-6)
    x64 = _x(4, 5, dtype=tinyfw.float64, grad=True, seed=2)
    assert gradcheck(jit.trace(f, (x64,)), (x64,))


NEAR_MISSES = [
    ("silu", lambda x: x * tinyfw.sigmoid(x * 2)),          # different operands
    ("silu", lambda x: x + tinyfw.sigmoid(x)),              # another op
    ("expm1", lambda x: tinyfw.exp(x) - 2),                 # another constant
    ("expm1", lambda x: 1 - tinyfw.exp(x)),                 # Sub is not commutative
    ("expm1", lambda x: tinyfw.exp(x) - tinyfw.ones(3, 4, 5)),  # broadcasts: filtered
    ("log1p", lambda x: tinyfw.log(x + 2)),
    ("log_softmax", lambda x: tinyfw.log(F.softmax(x, dim=0) + 1)),
    ("neg_neg", lambda x: -(x - 1)),
]


@pytest.mark.parametrize("name,f", NEAR_MISSES)
def test_identity_near_miss_is_not_rewritten(name, f):
    x = _x(4, 5).abs() + 0.5
    tf = jit.trace(f, (x,))
    assert f"rewrote {name}:" not in explain_text(tf, x)
    np.testing.assert_allclose(npy(tf(x)), npy(f(x)), rtol=1e-6, atol=1e-7)


def test_identity_on_integers_is_not_rewritten():
    x = tinyfw.tensor([[1, 2], [3, 4]])
    tf = jit.trace(lambda x: x * tinyfw.sigmoid(x), (x,))
    assert "Silu" not in _ops(tf, x)


def test_expm1_rewrite_is_accurate_near_zero():
    """exp(x) - 1 loses every digit below exp's rounding near 0; expm1 keeps them: the
    rewritten graph is within 1 ulp of the float64 value (x**2/2 decides the rounding)."""
    xs = np.array([1e-10, -3e-9, 2.5e-12], dtype=np.float64)
    x = tinyfw.tensor(xs)
    tf = jit.trace(lambda x: tinyfw.exp(x) - 1, (x,))
    got = npy(tf(x))
    want = np.array([math.expm1(v) for v in xs])
    assert np.all(np.abs(got - want) <= np.spacing(np.abs(want)))
    eager = npy(tinyfw.exp(x) - 1)
    assert np.all(np.abs(eager - want) > 100 * np.spacing(np.abs(want)))


def test_log_softmax_rewrite_stays_finite_where_softmax_underflows():
    x = tinyfw.tensor([[0.0, -200.0, 1.0]])
    f = lambda x: tinyfw.log(F.softmax(x, dim=1))  # noqa: E731
    got = npy(jit.trace(f, (x,))(x))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, npy(F.log_softmax(x, dim=1)), rtol=0, atol=0)


def test_match_filter_ops_are_not_traced_into_the_model():
    def fussy(m) -> bool:
        return float(tinyfw.ones(3).sum()) == 3.0  # tensor work of its own

    rw = Rewrite(_tanh_pattern, _tanh, fussy, name="fussy_tanh")
    x = _x(3, 3)
    tf = jit.trace(_tanh_pattern, (x,), rewrites=[rw], passes=UNFUSED)
    assert _ops(tf, x) == ["Tanh"]
