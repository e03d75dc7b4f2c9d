"""Lab 3's grader: the student's ops.py against tinyfw's own ops (and PyTorch where
installed), float64 gradcheck and second derivatives, on shapes seeded by the student id."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import tinyfw
from tinyfw.labs.student import expect_array, expect_equal, load, seed

F = tinyfw.nn.functional
SKELETON = pathlib.Path(__file__).resolve().parent.parent / "skeleton"
CASES = 6


@pytest.fixture
def O():
    return load("ops", SKELETON)


def _t(a, grad: bool = True):
    return tinyfw.tensor(np.asarray(a, np.float64), dtype=tinyfw.float64, requires_grad=grad)


def _check_grads(fn, inputs, what: str, second: bool = True) -> None:
    try:
        tinyfw.gradcheck(fn, inputs)
    except AssertionError as e:
        raise AssertionError(f"{what}: gradient check failed: {e}") from None
    if second:
        try:
            tinyfw.gradgradcheck(fn, inputs)
        except AssertionError as e:
            raise AssertionError(f"{what}: second-derivative check failed (is backward "
                                 f"written in tinyfw ops?): {e}") from None


# -- 3.1 ---------------------------------------------------------------------------------
@pytest.mark.task("3.1")
def test_numerical_gradient_matches_finite_differences(O):
    rng = np.random.default_rng(seed("3.1"))
    for case in range(CASES):
        x = _t(rng.standard_normal((int(rng.integers(1, 4)), int(rng.integers(1, 4)))), False)
        f = (lambda t: (t.sin() * t).sum()) if case % 2 else (lambda t: (t * t * t).sum())
        got = O.numerical_gradient(f, x)
        want = (np.cos(x.numpy()) * x.numpy() + np.sin(x.numpy())) if case % 2 \
            else 3 * x.numpy() ** 2
        expect_array(got, want, f"case {case}: numerical gradient", rtol=1e-6, atol=1e-7)


@pytest.mark.task("3.1")
def test_worst_gradient_error_finds_a_wrong_gradient(O):
    x = _t([[0.5, -1.0, 2.0]], False)
    err, where = O.worst_gradient_error(lambda t: (t.exp() * 3.0).sum(), x)
    if err > 1e-6:
        raise AssertionError(f"a right gradient reported an error of {err}")
    wrong = lambda t: (t.detach() * t.detach() + t * 0.0).sum() + (t[0, 2] * 1.0)  # noqa: E731
    err, where = O.worst_gradient_error(wrong, x)
    expect_equal(tuple(where), (0, 2), "index of the worst entry (d/dx2 of x2**2 is 4, "
                                       "autograd sees only the +x2 term)")
    if abs(err - 4.0) > 1e-4:
        raise AssertionError(f"worst error {err}, expected 4.0 (|1 - (2*2 + 1)|)")


# -- 3.2 ---------------------------------------------------------------------------------
@pytest.mark.task("3.2")
def test_softmax_matches_tinyfw_and_is_stable(O):
    rng = np.random.default_rng(seed("3.2"))
    for case in range(CASES):
        shape = tuple(int(v) for v in rng.integers(1, 5, int(rng.integers(1, 4))))
        dim = int(rng.integers(-len(shape), len(shape)))
        a = rng.standard_normal(shape) * 3
        expect_array(O.softmax(_t(a, False), dim).numpy(), F.softmax(_t(a, False), dim).numpy(),
                     f"case {case}: softmax of {shape} along {dim}", rtol=1e-12, atol=1e-15)
    big = _t([[1000.0, 1001.0, 999.0]], False)
    expect_array(O.softmax(big, -1).numpy(), F.softmax(big, -1).numpy(),
                 "softmax of [1000, 1001, 999] (no overflow)", rtol=1e-12)


@pytest.mark.task("3.2")
def test_softmax_gradients(O):
    rng = np.random.default_rng(seed("3.2g"))
    x = _t(rng.standard_normal((2, 4)))
    _check_grads(lambda t: O.softmax(t, 1), [x], "softmax")
    x0 = _t(rng.standard_normal((3, 2)))
    _check_grads(lambda t: O.softmax(t, 0), [x0], "softmax along dim 0", second=False)


# -- 3.3 ---------------------------------------------------------------------------------
@pytest.mark.task("3.3")
def test_layer_norm_matches_tinyfw(O):
    rng = np.random.default_rng(seed("3.3"))
    for case in range(CASES):
        shape = tuple(int(v) for v in rng.integers(1, 5, int(rng.integers(1, 4)))) + (5,)
        a, w, b = rng.standard_normal(shape), rng.standard_normal(5), rng.standard_normal(5)
        got = O.layer_norm(_t(a, False), _t(w, False), _t(b, False))
        want = F.layer_norm(_t(a, False), (5,), _t(w, False), _t(b, False))
        expect_array(got.numpy(), want.numpy(), f"case {case}: layer_norm of {shape}",
                     rtol=1e-10, atol=1e-12)


@pytest.mark.task("3.3")
def test_layer_norm_gradients(O):
    rng = np.random.default_rng(seed("3.3g"))
    x, w, b = _t(rng.standard_normal((2, 4))), _t(rng.standard_normal(4)), _t(rng.standard_normal(4))
    _check_grads(lambda *t: O.layer_norm(*t), [x, w, b], "layer_norm")


# -- 3.4 ---------------------------------------------------------------------------------
@pytest.mark.task("3.4")
def test_conv2d_matches_tinyfw(O):
    rng = np.random.default_rng(seed("3.4"))
    for case in range(CASES):
        stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, 3))
        kh, kw = (int(v) for v in rng.integers(1, 4, 2))
        h, w_ = kh + int(rng.integers(0, 4)), kw + int(rng.integers(0, 4))
        x = rng.standard_normal((2, 3, h, w_))
        w = rng.standard_normal((4, 3, kh, kw))
        b = rng.standard_normal(4)
        got = O.conv2d(_t(x, False), _t(w, False), _t(b, False), stride, padding)
        want = F.conv2d(_t(x, False), _t(w, False), _t(b, False), stride=stride, padding=padding)
        expect_array(got.numpy(), want.numpy(), f"case {case}: conv2d of {x.shape} with "
                     f"{w.shape}, stride {stride}, padding {padding}", rtol=1e-10, atol=1e-12)


@pytest.mark.task("3.4")
def test_conv2d_gradients(O):
    rng = np.random.default_rng(seed("3.4g"))
    x, w = _t(rng.standard_normal((1, 2, 4, 3))), _t(rng.standard_normal((2, 2, 2, 2)))
    b = _t(rng.standard_normal(2))
    _check_grads(lambda *t: O.conv2d(*t, stride=2, padding=1), [x, w, b], "conv2d", second=False)
