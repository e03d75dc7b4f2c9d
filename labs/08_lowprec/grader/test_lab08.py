"""Lab 8's grader: the student's LossScaler trains next to tinyfw.amp.GradScaler (PyTorch's
rules) with overflows injected at seeded steps; quantization against the formulas and
against error bounds derived from the scales."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import tinyfw
from tinyfw.labs.student import expect_array, expect_equal, load, seed

SKELETON = pathlib.Path(__file__).resolve().parent.parent / "skeleton"


@pytest.fixture
def L():
    return load("lowprec", SKELETON)


def _model():
    tinyfw.manual_seed(0)
    return tinyfw.nn.Sequential(tinyfw.nn.Linear(4, 8), tinyfw.nn.Tanh(), tinyfw.nn.Linear(8, 1))


def _batches(rng, steps: int, bad: set):
    out = []
    for s in range(steps):
        x = rng.standard_normal((16, 4)).astype(np.float32)
        y = rng.standard_normal((16, 1)).astype(np.float32)
        if s in bad:
            y[0, 0] = 3e38  # the squared error overflows: the gradients are inf/NaN
        out.append((x, y))
    return out


# -- 8.1 / 8.2 ---------------------------------------------------------------------------
def _train_both(L, rng, steps=12, interval=3):
    bad = {int(v) for v in rng.choice(steps, 3, replace=False)}
    data = _batches(rng, steps, bad)
    mine, ref = _model(), _model()
    opt_m = tinyfw.optim.SGD(mine.parameters(), lr=0.1)
    opt_r = tinyfw.optim.SGD(ref.parameters(), lr=0.1)
    sm = L.LossScaler(init_scale=2.0 ** 10, growth_interval=interval)
    sr = tinyfw.amp.GradScaler(init_scale=2.0 ** 10, growth_interval=interval)
    for step, (x, y) in enumerate(data):
        for model, opt in ((mine, opt_m), (ref, opt_r)):
            opt.zero_grad()
        loss_m = ((mine(tinyfw.tensor(x)) - tinyfw.tensor(y)) ** 2).mean()
        sm.scale(loss_m).backward()
        stepped = sm.step(opt_m, list(mine.parameters()))
        loss_r = ((ref(tinyfw.tensor(x)) - tinyfw.tensor(y)) ** 2).mean()
        sr.scale(loss_r).backward()
        sr.step(opt_r)
        sr.update()
        yield step, step in bad, stepped, sm, sr, mine, ref


@pytest.mark.task("8.1")
def test_overflowing_steps_are_skipped_and_others_match_the_reference(L):
    rng = np.random.default_rng(seed("8.1"))
    for step, bad, stepped, sm, sr, mine, ref in _train_both(L, rng, interval=1000):
        expect_equal(bool(stepped), not bad, f"step {step}: did the optimizer step "
                                             f"(the batch {'overflows' if bad else 'is fine'})")
        for (name, p), q in zip(mine.named_parameters(), ref.parameters()):
            expect_array(p.detach().numpy(), q.detach().numpy(),
                         f"step {step}: parameter {name}", rtol=1e-6, atol=1e-7)


@pytest.mark.task("8.1")
def test_unscale_divides_and_reports(L):
    p = tinyfw.tensor([1.0, 2.0], requires_grad=True)
    p.grad = tinyfw.tensor([512.0, -1024.0])
    s = L.LossScaler(init_scale=256.0)
    expect_equal(bool(s.unscale_([p])), False, "unscale_ of finite gradients reports inf")
    expect_array(p.grad.numpy(), np.array([2.0, -4.0], np.float32), "gradient after unscale_")
    p.grad = tinyfw.tensor([float("inf"), 1.0])
    expect_equal(bool(s.unscale_([p])), True, "unscale_ of an inf gradient reports inf")


@pytest.mark.task("8.2")
def test_the_scale_follows_the_reference(L):
    rng = np.random.default_rng(seed("8.2"))
    for step, bad, stepped, sm, sr, mine, ref in _train_both(L, rng, steps=14, interval=3):
        expect_equal(float(sm.scale_value), float(sr.get_scale()),
                     f"scale after step {step} ({'overflow' if bad else 'clean'})")


@pytest.mark.task("8.2")
def test_update_rule(L):
    rng = np.random.default_rng(seed("8.2b"))
    s = L.LossScaler(init_scale=1024.0, growth_interval=4)
    scale, count = 1024.0, 0
    for k in range(40):
        bad = bool(rng.random() < 0.25)
        s.update(bad)
        if bad:
            scale, count = scale * 0.5, 0
        else:
            count += 1
            if count == 4:
                scale, count = scale * 2.0, 0
        expect_equal(float(s.scale_value), scale, f"scale after update {k} (found_inf={bad})")


# -- 8.3 ---------------------------------------------------------------------------------
@pytest.mark.task("8.3")
def test_qparams(L):
    rng = np.random.default_rng(seed("8.3"))
    for _ in range(30):
        lo, hi = sorted(float(v) for v in rng.uniform(-5, 5, 2))
        scale, zp = L.qparams(lo, hi)
        l0, h0 = min(lo, 0.0), max(hi, 0.0)
        want = (h0 - l0) / 255
        expect_array(np.array(scale), np.array(want), f"scale of [{lo}, {hi}]", rtol=1e-12)
        expect_equal(int(zp), int(min(255, max(0, -round(l0 / want)))), f"zero point of [{lo}, {hi}]")
    expect_equal(tuple(L.qparams(0.0, 0.0)), (1.0, 0), "qparams of an all-zero range")


@pytest.mark.task("8.3")
def test_quantize_round_trip_within_half_a_step(L):
    rng = np.random.default_rng(seed("8.3b"))
    for _ in range(20):
        x = rng.standard_normal(50) * float(rng.uniform(0.1, 10))
        scale, zp = L.qparams(float(x.min()), float(x.max()))
        q = L.quantize(x, scale, zp)
        expect_equal(str(np.asarray(q).dtype), "int32", "quantize's dtype")
        expect_array(q, np.clip(np.rint(x / scale) + zp, 0, 255).astype(np.int64),
                     "quantized values")
        back = L.dequantize(q, scale, zp)
        err = float(np.abs(back - x).max())
        if err > scale / 2 * (1 + 1e-6) + 1e-7:
            raise AssertionError(f"round trip error {err} exceeds half a step ({scale / 2})")
        expect_array(L.dequantize(L.quantize(np.zeros(1), scale, zp), scale, zp),
                     np.zeros(1, np.float32), "0.0 after a round trip")


# -- 8.4 ---------------------------------------------------------------------------------
@pytest.mark.task("8.4")
def test_quantized_linear(L):
    rng = np.random.default_rng(seed("8.4"))
    for case in range(5):
        k, o = int(rng.integers(3, 20)), int(rng.integers(1, 8))
        w = rng.standard_normal((o, k)) * rng.uniform(0.1, 2, (o, 1))
        w[0] = 0.0 if case == 0 else w[0]  # an all-zero row
        b = rng.standard_normal(o)
        ql = L.QuantizedLinear(w, b)
        amax = np.abs(w).max(1)
        w_scale = np.where(amax > 0, amax / 127, 1.0)
        expect_array(np.asarray(ql.w_scale), w_scale, f"case {case}: w_scale", rtol=1e-12)
        expect_array(np.asarray(ql.qweight),
                     np.clip(np.rint(w / w_scale[:, None]), -127, 127).astype(np.int64),
                     f"case {case}: qweight")
        expect_equal(str(np.asarray(ql.qweight).dtype), "int8", "qweight's dtype")
        calib = [rng.uniform(-1, 3, (8, k)) for _ in range(3)]
        ql.calibrate(calib)
        lo = min(c.min() for c in calib)
        hi = max(c.max() for c in calib)
        expect_array(np.array(ql.x_scale), np.array((hi - min(lo, 0)) / 255), "x_scale",
                     rtol=1e-12)
        x = rng.uniform(lo, hi, (6, k))
        got = np.asarray(ql(x))
        qx = np.clip(np.rint(x / ql.x_scale) + ql.x_zero_point, 0, 255).astype(np.int64)
        exact = (qx - ql.x_zero_point) @ np.asarray(ql.qweight, np.int64).T
        expect_array(got, exact * (ql.x_scale * w_scale) + b, f"case {case}: output",
                     rtol=1e-12, atol=1e-12)
        # and it approximates the float layer: rounding of x and W, half a step each
        bound = (ql.x_scale / 2) * np.abs(w).sum(1) + (w_scale / 2) * np.abs(x).sum(1, keepdims=True) \
            + (ql.x_scale / 2) * (w_scale / 2) * k
        err = np.abs(got - (x @ w.T + b))
        if np.any(err > bound * (1 + 1e-9)):
            raise AssertionError(f"case {case}: error {err.max()} above the rounding bound")
