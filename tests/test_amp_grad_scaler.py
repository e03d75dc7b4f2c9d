"""tinyfw.amp.GradScaler against torch.amp.GradScaler("cpu"), step by step: the same
model, optimizer and data, infs/NaNs injected into chosen gradients; the scale sequence,
the skipped steps and the parameters must match.  Also gradient accumulation, clipping
after unscale_, the misuse errors, checkpoints (exact resume) and enabled=False."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from tests.helpers import requires_torch, to_numpy, torch

# optimizer name -> hyperparameters both frameworks take
OPTIMIZERS = {"SGD": {"lr": 0.05, "momentum": 0.9}, "Adam": {"lr": 0.01},
              "AdamW": {"lr": 0.01, "weight_decay": 0.1}, "RMSprop": {"lr": 0.01},
              "Adagrad": {"lr": 0.05}}
# step -> what is written into the first parameter's gradient before the scaler sees it
INJECT = {2: math.inf, 3: -math.inf, 7: math.nan}
STEPS = 12


def _data(seed=0):
    rng = np.random.default_rng(seed)
    ws = [(rng.standard_normal((5, 6)) * 0.3).astype(np.float32), np.zeros(5, np.float32),
          (rng.standard_normal((3, 5)) * 0.3).astype(np.float32), np.zeros(3, np.float32)]
    xs = [rng.standard_normal((8, 6)).astype(np.float32) for _ in range(STEPS)]
    ys = [rng.integers(0, 3, 8) for _ in range(STEPS)]
    return ws, xs, ys


def _tinyfw_run(opt_name, ws, xs, ys, clip=None, accumulate=1, scaler_kw=None):
    ps = [tinyfw.tensor(w, requires_grad=True) for w in ws]
    opt = getattr(tinyfw.optim, opt_name)(ps, **OPTIMIZERS[opt_name])
    scaler = tinyfw.amp.GradScaler("cpu", **(scaler_kw or {}))
    trace = []
    for i, (x, y) in enumerate(zip(xs, ys)):
        opt.zero_grad()
        for k in range(accumulate):
            sl = slice(k * 8 // accumulate, (k + 1) * 8 // accumulate)
            h = F.relu(F.linear(tinyfw.tensor(x[sl]), ps[0], ps[1]))
            loss = F.cross_entropy(F.linear(h, ps[2], ps[3]), tinyfw.tensor(y[sl])) / accumulate
            scaler.scale(loss).backward()
        if i in INJECT:
            with tinyfw.no_grad():
                ps[0].grad[0, 0] = INJECT[i]
        if clip is not None:
            scaler.unscale_(opt)
            tinyfw.optim.clip_grad_norm_(ps, clip)
        before = [to_numpy(p).copy() for p in ps]
        ret = scaler.step(opt)
        skipped = all(np.array_equal(b, to_numpy(p)) for b, p in zip(before, ps))
        scaler.update()
        trace.append((scaler.get_scale(), skipped, ret, [to_numpy(p).copy() for p in ps]))
    return trace


def _torch_run(opt_name, ws, xs, ys, clip=None, accumulate=1, scaler_kw=None):
    tF = torch.nn.functional
    ps = [torch.tensor(w, requires_grad=True) for w in ws]
    opt = getattr(torch.optim, opt_name)(ps, **OPTIMIZERS[opt_name])
    scaler = torch.amp.GradScaler("cpu", **(scaler_kw or {}))
    trace = []
    for i, (x, y) in enumerate(zip(xs, ys)):
        opt.zero_grad()
        for k in range(accumulate):
            sl = slice(k * 8 // accumulate, (k + 1) * 8 // accumulate)
            h = tF.relu(tF.linear(torch.from_numpy(x[sl]), ps[0], ps[1]))
            loss = tF.cross_entropy(tF.linear(h, ps[2], ps[3]), torch.from_numpy(y[sl])) / accumulate
            scaler.scale(loss).backward()
        if i in INJECT:
            with torch.no_grad():
                ps[0].grad[0, 0] = INJECT[i]
        if clip is not None:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(ps, clip)
        before = [p.detach().numpy().copy() for p in ps]
        ret = scaler.step(opt)
        skipped = all(np.array_equal(b, p.detach().numpy()) for b, p in zip(before, ps))
        scaler.update()
        trace.append((scaler.get_scale(), skipped, ret, [p.detach().numpy().copy() for p in ps]))
    return trace


def _compare(mine, theirs):
    for i, (a, b) in enumerate(zip(mine, theirs)):
        assert a[0] == b[0], f"step {i}: scale {a[0]} vs torch {b[0]}"
        assert a[1] == b[1], f"step {i}: skipped {a[1]} vs torch {b[1]}"
        assert a[2] is None and b[2] is None  # step returns optimizer.step()'s None
        for pa, pb in zip(a[3], b[3]):
            np.testing.assert_allclose(pa, pb, rtol=1e-5, atol=1e-6, err_msg=f"step {i}")


@requires_torch
@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_matches_torch_step_by_step(opt_name):
    ws, xs, ys = _data()
    kw = {"init_scale": 2.0 ** 10, "growth_interval": 3}  # growth and backoff both happen
    mine, theirs = (_tinyfw_run(opt_name, ws, xs, ys, scaler_kw=kw),
                    _torch_run(opt_name, ws, xs, ys, scaler_kw=kw))
    _compare(mine, theirs)
    skipped = [i for i, t in enumerate(mine) if t[1]]
    assert skipped == sorted(INJECT)
    assert len({t[0] for t in mine}) > 2  # the scale moved both ways


@requires_torch
def test_defaults_accumulation_and_clipping_match_torch():
    ws, xs, ys = _data(1)
    _compare(_tinyfw_run("SGD", ws, xs, ys, clip=0.5, accumulate=2),
             _torch_run("SGD", ws, xs, ys, clip=0.5, accumulate=2))


def test_defaults_are_torchs():
    s = tinyfw.amp.GradScaler()
    assert s.get_scale() == 65536.0 and s.get_growth_factor() == 2.0
    assert s.get_backoff_factor() == 0.5 and s.get_growth_interval() == 2000
    assert s.is_enabled()


def _one_param_step(scaler, opt, p, grad_value=1.0):
    opt.zero_grad()
    scaler.scale((p * grad_value).sum()).backward()


def test_misuse_is_an_error_naming_it():
    p = tinyfw.randn(3, requires_grad=True)
    opt = tinyfw.optim.SGD([p], lr=0.1)
    s = tinyfw.amp.GradScaler()
    _one_param_step(s, opt, p)
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        s.unscale_(opt)
    s.step(opt)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) is being called after step"):
        s.unscale_(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        s.step(opt)
    s.update()
    with pytest.raises(RuntimeError, match="No inf checks were recorded prior to update"):
        s.update()
    opt.zero_grad()
    with pytest.raises(RuntimeError, match="No inf checks were recorded for this optimizer"):
        s.step(opt)
    with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
        s.step(opt, closure=lambda: None)
    with pytest.raises(TypeError, match="expected a Tensor or a list/tuple"):
        s.scale(1.0)
    with pytest.raises(ValueError, match="growth_factor must be > 1"):
        tinyfw.amp.GradScaler(growth_factor=0.5)


def test_float16_gradients_are_refused_as_in_torch():
    p = tinyfw.randn(3, requires_grad=True, dtype=tinyfw.float16)
    opt = tinyfw.optim.SGD([p], lr=0.1)
    s = tinyfw.amp.GradScaler()
    _one_param_step(s, opt, p)
    with pytest.raises(ValueError, match="unscale float16 gradients"):
        s.step(opt)


def test_scale_of_a_list_and_disabled_pass_through():
    s = tinyfw.amp.GradScaler(init_scale=4.0)
    a, b = tinyfw.tensor(1.5), tinyfw.tensor(2.0)
    out = s.scale([a, (b,)])
    assert out[0].item() == 6.0 and out[1][0].item() == 8.0
    off = tinyfw.amp.GradScaler(enabled=False)
    assert off.scale(a) is a and off.get_scale() == 1.0 and off.state_dict() == {}
    p = tinyfw.tensor([1.0], requires_grad=True)
    opt = tinyfw.optim.SGD([p], lr=0.5)
    (p * 2).sum().backward()
    off.step(opt)
    off.update()
    assert p.item() == 0.0


def test_growth_stops_at_float32_overflow():
    s = tinyfw.amp.GradScaler(init_scale=2.0 ** 127, growth_interval=1)
    p = tinyfw.tensor([1.0], requires_grad=True)
    opt = tinyfw.optim.SGD([p], lr=0.0)
    for _ in range(2):
        opt.zero_grad()
        # every step is clean and would grow the scale past float32's range: it stays
        s.scale(p.sum()).backward()
        s.step(opt)
        s.update()
    assert math.isfinite(s.get_scale()) and s.get_scale() == 2.0 ** 127


def test_checkpoint_resume_is_exact(tmp_path):
    """Train 12 steps in one go, or 5 steps, save model/optimizer/scaler, load into new
    objects and train 7 more: the scale sequence and parameters agree bit for bit."""
    ws, xs, ys = _data(2)

    def build():
        ps = [tinyfw.tensor(w, requires_grad=True) for w in ws]
        return ps, tinyfw.optim.Adam(ps, lr=0.01), tinyfw.amp.GradScaler(
            init_scale=2.0 ** 8, growth_interval=2)

    def train(ps, opt, s, steps):
        out = []
        for i in steps:
            opt.zero_grad()
            h = F.relu(F.linear(tinyfw.tensor(xs[i]), ps[0], ps[1]))
            s.scale(F.cross_entropy(F.linear(h, ps[2], ps[3]), tinyfw.tensor(ys[i]))).backward()
            if i in INJECT:
                with tinyfw.no_grad():
                    ps[0].grad[0, 0] = INJECT[i]
            s.step(opt)
            s.update()
            out.append(s.get_scale())
        return out

    ps, opt, s = build()
    full = train(ps, opt, s, range(STEPS))
    want = [to_numpy(p) for p in ps]
    ps, opt, s = build()
    first = train(ps, opt, s, range(5))
    path = tmp_path / "ckpt.tf"
    tinyfw.save({"params": [p.detach() for p in ps], "opt": opt.state_dict(),
                 "scaler": s.state_dict()}, path)
    ck = tinyfw.load(path)
    ps2, opt2, s2 = build()
    with tinyfw.no_grad():
        for p, q in zip(ps2, ck["params"]):
            p.copy_(q)
    opt2.load_state_dict(ck["opt"])
    s2.load_state_dict(ck["scaler"])
    rest = train(ps2, opt2, s2, range(5, STEPS))
    assert first + rest == full
    for p, w in zip(ps2, want):
        assert np.array_equal(to_numpy(p), w)
    with pytest.raises(RuntimeError, match="source state dict is empty"):
        tinyfw.amp.GradScaler().load_state_dict({})
