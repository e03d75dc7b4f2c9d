"""Lab 4's grader: builds the student's kernels.cpp (their build.py: pybind11, -O3,
OpenMP), then checks values against numpy in float64, errors, and the blocked GEMM's
speed against the student's own triple loop."""
from __future__ import annotations

import os
import pathlib
import time

import numpy as np
import pytest

from tinyfw.labs import SRC_ENV
from tinyfw.labs.student import expect_array, load, seed

SKELETON = pathlib.Path(__file__).resolve().parent.parent / "skeleton"


@pytest.fixture(scope="module")
def K():
    src = pathlib.Path(os.environ.get(SRC_ENV) or SKELETON)
    return load("build", SKELETON).build(src)


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# -- 4.1 ---------------------------------------------------------------------------------
@pytest.mark.task("4.1")
def test_axpy(K):
    rng = np.random.default_rng(seed("4.1"))
    for shape in [(1,), (7,), (1000,), (3, 5), (2, 3, 4)]:
        x, y = _f32(rng, *shape), _f32(rng, *shape)
        a = float(rng.uniform(-3, 3))
        want = a * x.astype(np.float64) + y
        expect_array(K.axpy(a, x, y), want.astype(np.float32), f"axpy on {shape}",
                     rtol=1e-6, atol=1e-6)
    xt = _f32(rng, 6, 4).T  # not contiguous: the binding must copy it to C order
    expect_array(K.axpy(2.0, xt, np.ones_like(xt)), 2 * xt + 1, "axpy of a transposed array",
                 rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError):
        K.axpy(1.0, _f32(rng, 3), _f32(rng, 4))
        raise AssertionError("axpy of shapes (3,) and (4,) should raise ValueError")


@pytest.mark.task("4.1")
def test_softplus_is_accurate_and_does_not_overflow(K):
    rng = np.random.default_rng(seed("4.1b"))
    x = np.concatenate([_f32(rng, 200) * 5, np.array([0, 20, 88, 100, 1e4, -100, -1e4],
                                                     np.float32)])
    want = np.logaddexp(0, x.astype(np.float64))  # log(1 + e^x) without overflow
    got = K.softplus(x)
    if not np.all(np.isfinite(got)):
        raise AssertionError(f"softplus gave {got[~np.isfinite(got)][0]} for "
                             f"x = {x[~np.isfinite(got)][0]} (overflow)")
    expect_array(got.astype(np.float64), want, "softplus", rtol=4e-7, atol=1e-30)


# -- 4.2 ---------------------------------------------------------------------------------
def _check_product(f, rng, what):
    for m, k, n in [(1, 1, 1), (3, 5, 2), (17, 33, 9), (64, 40, 70)]:
        a, b = _f32(rng, m, k), _f32(rng, k, n)
        want = a.astype(np.float64) @ b.astype(np.float64)
        # a float32 dot product of k terms: a few ulps times sqrt(k) of the magnitude
        tol = 8 * np.finfo(np.float32).eps * np.sqrt(k) * (np.abs(a) @ np.abs(b)).max()
        expect_array(f(a, b).astype(np.float64), want, f"{what} of ({m}, {k}) @ ({k}, {n})",
                     atol=tol)


@pytest.mark.task("4.2")
def test_matmul_naive(K):
    _check_product(K.matmul_naive, np.random.default_rng(seed("4.2")), "matmul_naive")


@pytest.mark.task("4.2")
def test_matmul_shape_errors(K):
    with pytest.raises(ValueError):
        K.matmul_naive(np.ones((2, 3), np.float32), np.ones((4, 2), np.float32))
        raise AssertionError("matmul_naive of (2, 3) and (4, 2) should raise ValueError")
    with pytest.raises(ValueError):
        K.matmul_naive(np.ones(3, np.float32), np.ones((3, 2), np.float32))
        raise AssertionError("matmul_naive of a 1-d array should raise ValueError")


# -- 4.3 ---------------------------------------------------------------------------------
@pytest.mark.task("4.3")
def test_matmul_blocked_values(K):
    rng = np.random.default_rng(seed("4.3"))
    _check_product(K.matmul_blocked, rng, "matmul_blocked")
    a, b = _f32(rng, 257, 130), _f32(rng, 130, 129)  # sizes no block divides
    expect_array(K.matmul_blocked(a, b), (a.astype(np.float64) @ b).astype(np.float32),
                 "matmul_blocked of (257, 130) @ (130, 129)", rtol=1e-4, atol=1e-4)


@pytest.mark.task("4.3")
def test_matmul_blocked_is_at_least_twice_the_naive_loop(K):
    rng = np.random.default_rng(seed("4.3t"))
    a, b = _f32(rng, 320, 320), _f32(rng, 320, 320)
    times = {"naive": [], "blocked": []}
    for _ in range(5):  # interleaved, medians: the machine may be busy
        for name, f in (("naive", K.matmul_naive), ("blocked", K.matmul_blocked)):
            t = time.perf_counter()
            f(a, b)
            times[name].append(time.perf_counter() - t)
    naive, blocked = (float(np.median(times[k])) for k in ("naive", "blocked"))
    gflops = 2 * 320 ** 3 / blocked / 1e9
    if not naive >= 2 * blocked:
        raise AssertionError(f"blocked {blocked * 1e3:.1f} ms vs naive {naive * 1e3:.1f} ms "
                             f"({naive / blocked:.2f}x, {gflops:.1f} GFLOP/s): need 2x")
