"""tinyfw.optim.lr_scheduler against torch.optim.lr_scheduler.

Both frameworks get the same optimizer (two parameter groups with different learning
rates), the same scheduler arguments and the same number of steps (more than a full
cycle); the learning rates from ``get_last_lr()``, the groups' ``lr`` and, for OneCycleLR,
the cycled ``momentum`` / ``betas`` must agree EXACTLY at every step: the schedulers use
PyTorch's formulas in PyTorch's order of operations, so every float64 rounding is the same.
Then: state_dict round trips through JSON (resuming mid-schedule continues the identical
sequence), and bad arguments raise errors that name the problem.
"""
from __future__ import annotations

import json
import warnings
from typing import Any, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinyfw
from tinyfw import optim
from tinyfw.optim import lr_scheduler as L

from helpers import requires_torch, torch

TL = torch.optim.lr_scheduler if torch is not None else None
LRS = (0.1, 0.03)
Builder = Callable[[Any, Any], Any]  # (scheduler module, optimizer) -> scheduler


# -- the two frameworks side by side ------------------------------------------------------
def _tf_opt(kind: str = "sgd", lrs=LRS, extra: dict | None = None, **kw):
    groups = [{"params": [tinyfw.zeros(n, requires_grad=True)], "lr": lr, **(extra or {})}
              for n, lr in zip((3, 2), lrs)]
    cls = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW,
           "adagrad": optim.Adagrad}[kind]
    return cls(groups, **kw)


def _th_opt(kind: str = "sgd", lrs=LRS, extra: dict | None = None, **kw):
    groups = [{"params": [torch.zeros(n, requires_grad=True)], "lr": lr, **(extra or {})}
              for n, lr in zip((3, 2), lrs)]
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "adagrad": torch.optim.Adagrad}[kind]
    return cls(groups, **kw)


def _snap(opt, sched) -> tuple:
    """Everything a scheduler sets: its last lrs, the groups' lrs and momentum/betas."""
    groups = opt.param_groups
    return (tuple(sched.get_last_lr()), tuple(g["lr"] for g in groups),
            tuple(g.get("momentum") for g in groups),
            tuple(tuple(g["betas"]) if "betas" in g else None for g in groups))


def _trace(opt, sched, n: int, metrics=None, epochs=None) -> list:
    """Snapshots after construction and after each of n steps; an exception ends the
    trace with ('raised', type, message)."""
    out = [_snap(opt, sched)]
    for i in range(n):
        opt.step()  # no gradients: a no-op, but PyTorch wants it before sched.step()
        try:
            if metrics is not None:
                sched.step(metrics[i])
            elif epochs is not None:
                sched.step(epochs[i])
            else:
                sched.step()
        except Exception as e:  # noqa: BLE001 - the error itself is what is compared
            out.append(("raised", type(e), str(e)))
            break
        out.append(_snap(opt, sched))
    return out


def _both(build: Builder, n: int, kind: str = "sgd", opt_kw: dict | None = None,
          extra: dict | None = None, metrics=None, epochs=None) -> tuple[list, list]:
    """Build the scheduler in both frameworks and trace n steps of each."""
    opt_kw = opt_kw or {}
    of, ot = _tf_opt(kind, extra=extra, **opt_kw), _th_opt(kind, extra=extra, **opt_kw)
    traces = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's deprecation warning for step(epoch)
        for mod, opt in ((L, of), (TL, ot)):
            try:
                sched = build(mod, opt)
            except Exception as e:  # noqa: BLE001 - compared like errors in steps
                traces.append([("raised", type(e), str(e))])
                continue
            traces.append(_trace(opt, sched, n, metrics, epochs))
    return traces[0], traces[1]


def _assert_same(tf: list, th: list) -> None:
    """Exact equality step by step (errors compared by type), with the first difference
    reported."""
    for i, (a, b) in enumerate(zip(tf, th)):
        if a and a[0] == "raised" or b and b[0] == "raised":
            assert a[:2] == b[:2], f"step {i}: tinyfw {a} vs torch {b}"
            continue
        assert a == b, f"step {i}: tinyfw {a}\n      vs torch  {b}"
    assert len(tf) == len(th), f"tinyfw traced {len(tf)} steps, torch {len(th)}"


def _check(build: Builder, n: int, **kw) -> list:
    tf, th = _both(build, n, **kw)
    _assert_same(tf, th)
    return tf


# -- each scheduler, fixed configurations --------------------------------------------------
class _Warm:
    """A callable object with state (LambdaLR saves its __dict__ in state_dict)."""

    def __init__(self, k: int):
        self.k = k

    def __call__(self, e: int) -> float:
        return min(1.0, (e + 1) / self.k) * 0.95 ** e


CASES: dict[str, Builder] = {
    "lambda_one": lambda M, o: M.LambdaLR(o, lambda e: 0.9 ** e + 0.01 * e),
    "lambda_per_group": lambda M, o: M.LambdaLR(o, [_Warm(4), lambda e: 1.0 / (1 + e)]),
    "step": lambda M, o: M.StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda M, o: M.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3),
    "exponential": lambda M, o: M.ExponentialLR(o, gamma=0.87),
    "cosine": lambda M, o: M.CosineAnnealingLR(o, T_max=7),
    "cosine_eta_min": lambda M, o: M.CosineAnnealingLR(o, T_max=5, eta_min=0.004),
    "linear_warmup": lambda M, o: M.LinearLR(o, start_factor=0.1, total_iters=6),
    "linear_decay": lambda M, o: M.LinearLR(o, start_factor=1.0, end_factor=0.05,
                                            total_iters=9),
    "linear_default": lambda M, o: M.LinearLR(o),
    "seq_warmup_cosine": lambda M, o: M.SequentialLR(
        o, [M.LinearLR(o, start_factor=0.2, total_iters=4),
            M.CosineAnnealingLR(o, T_max=8, eta_min=1e-3)], milestones=[4]),
    "seq_three": lambda M, o: M.SequentialLR(
        o, [M.ExponentialLR(o, gamma=0.9), M.StepLR(o, 2, gamma=0.7),
            M.MultiStepLR(o, [3, 4], gamma=0.5)], milestones=[3, 10]),
    "seq_lambda_linear": lambda M, o: M.SequentialLR(
        o, [M.LambdaLR(o, lambda e: 0.5 + e), M.LinearLR(o, 1.0, 0.1, total_iters=5)],
        milestones=[2]),
    "seq_nested": lambda M, o: M.SequentialLR(
        o, [M.SequentialLR(o, [M.LinearLR(o, 0.5, total_iters=2), M.ExponentialLR(o, 0.8)],
                           milestones=[2]),
            M.CosineAnnealingLR(o, T_max=6)], milestones=[5]),
    "seq_single": lambda M, o: M.SequentialLR(o, [M.StepLR(o, 2, 0.5)], milestones=[]),
}


@requires_torch
@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch(name):
    trace = _check(CASES[name], 30)
    assert len({s[1] for s in trace}) > 2, "the schedule never changed the lr"
    assert all(s[0] == s[1] for s in trace), "get_last_lr() differs from the groups' lr"


@requires_torch
def test_cosine_past_t_max_continues_the_cosine():
    # past T_max the lr climbs back up to initial_lr at 2*T_max (PyTorch's chainable form)
    trace = _check(lambda M, o: M.CosineAnnealingLR(o, T_max=4, eta_min=0.01), 20)
    assert trace[4][1] == pytest.approx((0.01, 0.01), abs=1e-15)
    assert trace[8][1] == pytest.approx(LRS, rel=1e-12)


@requires_torch
def test_chained_schedulers_multiply():
    def build(M, o):
        return [M.StepLR(o, 3, 0.5), M.ExponentialLR(o, 0.9)]

    traces = []
    for mod, opt in ((L, _tf_opt()), (TL, _th_opt())):
        scheds = build(mod, opt)
        out = []
        for _ in range(12):
            opt.step()
            for s in scheds:
                s.step()
            out.append(tuple(g["lr"] for g in opt.param_groups))
        traces.append(out)
    assert traces[0] == traces[1]


@requires_torch
@pytest.mark.parametrize("name", ["step", "multistep", "exponential", "cosine_eta_min",
                                  "linear_warmup", "linear_decay"])
def test_step_with_epoch_uses_the_closed_form(name):
    epochs = [0, 3, 7, 2, 10, 11, 25, 1]
    _check(CASES[name], len(epochs), epochs=epochs)


@requires_torch
@pytest.mark.parametrize("name", ["step", "multistep", "exponential", "cosine_eta_min",
                                  "linear_warmup"])
def test_construct_with_last_epoch_resumes_like_torch(name):
    def build(M, o):
        sched = CASES[name](M, o)  # rebuilt below with last_epoch, as a checkpoint would
        for g, lr in zip(o.param_groups, LRS):
            g["lr"] = lr * 0.5
        args = {k: getattr(sched, k) for k in ("step_size", "gamma", "T_max", "eta_min",
                                              "start_factor", "end_factor", "total_iters")
                if hasattr(sched, k)}
        if hasattr(sched, "milestones"):
            args["milestones"] = list(sched.milestones.elements())
        return type(sched)(o, last_epoch=4, **args)

    _check(build, 15)


@requires_torch
def test_last_epoch_without_initial_lr_is_a_key_error():
    with pytest.raises(KeyError, match=r"initial_lr.*param_groups\[0\]"):
        L.StepLR(_tf_opt(), 2, last_epoch=3)


# -- hypothesis: random hyperparameters ----------------------------------------------------
gammas = st.floats(0.05, 0.99)


@requires_torch
@given(step_size=st.integers(1, 6), gamma=gammas)
def test_steplr_random(step_size, gamma):
    _check(lambda M, o: M.StepLR(o, step_size, gamma), 25)


@requires_torch
@given(milestones=st.lists(st.integers(1, 25), max_size=6).map(sorted), gamma=gammas)
def test_multisteplr_random(milestones, gamma):
    _check(lambda M, o: M.MultiStepLR(o, milestones, gamma), 28)


@requires_torch
@given(gamma=st.floats(0.5, 1.2))
def test_exponentiallr_random(gamma):
    _check(lambda M, o: M.ExponentialLR(o, gamma), 25)


@requires_torch
@given(T_max=st.integers(1, 9), eta_min=st.sampled_from([0.0, 1e-4, 0.01, 0.05]))
def test_cosine_random(T_max, eta_min):
    _check(lambda M, o: M.CosineAnnealingLR(o, T_max, eta_min), 3 * T_max + 3)


@requires_torch
@given(start=st.floats(0.01, 1.0), end=st.floats(0.0, 1.0), total=st.integers(1, 8))
def test_linearlr_random(start, end, total):
    _check(lambda M, o: M.LinearLR(o, start, end, total), total + 5)


@requires_torch
@given(warm=st.integers(1, 6), T_max=st.integers(1, 8), gamma=gammas)
def test_sequential_random(warm, T_max, gamma):
    _check(lambda M, o: M.SequentialLR(
        o, [M.LinearLR(o, 0.25, total_iters=warm), M.CosineAnnealingLR(o, T_max),
            M.ExponentialLR(o, gamma)], milestones=[warm, warm + 2 * T_max]),
        warm + 2 * T_max + 6)


# -- OneCycleLR -----------------------------------------------------------------------------
def _onecycle(total_steps=None, epochs=None, steps_per_epoch=None, **kw) -> Builder:
    return lambda M, o: M.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=total_steps,
                                     epochs=epochs, steps_per_epoch=steps_per_epoch, **kw)


@requires_torch
@pytest.mark.parametrize("kind,opt_kw", [("sgd", {"momentum": 0.9}), ("adam", {}),
                                         ("adamw", {"betas": (0.8, 0.99)})])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_onecycle_matches_torch(kind, opt_kw, anneal, three_phase):
    trace = _check(_onecycle(40, anneal_strategy=anneal, three_phase=three_phase,
                             div_factor=10.0, final_div_factor=100.0, pct_start=0.25),
                   42, kind=kind, opt_kw=opt_kw)
    # 41 lrs (steps 0..40), then the step past total_steps raises
    assert trace[-1][0] == "raised" and len(trace) == 42
    lrs = [s[1][0] for s in trace[:-1]]
    assert lrs[0] == pytest.approx(0.05) and max(lrs) == pytest.approx(0.5)
    col = 2 if kind == "sgd" else 3
    moms = [s[col][0] if kind == "sgd" else s[col][0][0] for s in trace[:-1]]
    assert min(moms) == pytest.approx(0.85) and moms[0] == pytest.approx(0.95)


@requires_torch
def test_onecycle_without_cycle_momentum_leaves_momentum_alone():
    trace = _check(_onecycle(20, cycle_momentum=False), 20, kind="sgd",
                   opt_kw={"momentum": 0.7})
    assert {s[2] for s in trace} == {(0.7, 0.7)}


@requires_torch
def test_onecycle_epochs_times_steps_per_epoch_equals_total_steps():
    a = _check(_onecycle(epochs=4, steps_per_epoch=6), 25, kind="adam")
    b = _check(_onecycle(total_steps=24), 25, kind="adam")
    assert a == b


@requires_torch
def test_onecycle_per_group_momentum_and_adagrad_without_momentum():
    _check(lambda M, o: M.OneCycleLR(o, 0.3, total_steps=15, base_momentum=[0.8, 0.7],
                                     max_momentum=[0.9, 0.99]), 15, kind="sgd",
           opt_kw={"momentum": 0.5})
    _check(lambda M, o: M.OneCycleLR(o, 0.3, total_steps=15, cycle_momentum=False), 15,
           kind="adagrad")


@requires_torch
@given(total=st.integers(3, 60), pct=st.floats(0.05, 0.95), anneal=st.sampled_from(["cos", "linear"]),
       three=st.booleans(), div=st.floats(1.5, 100.0), final_div=st.floats(1.0, 1e5),
       kind=st.sampled_from(["sgd", "adam"]))
def test_onecycle_random(total, pct, anneal, three, div, final_div, kind):
    tf, th = _both(_onecycle(total, pct_start=pct, anneal_strategy=anneal, three_phase=three,
                             div_factor=div, final_div_factor=final_div), total + 1,
                   kind=kind, opt_kw={"momentum": 0.9} if kind == "sgd" else {})
    if th[-1][0] == "raised" and th[-1][1] is ZeroDivisionError:
        # a schedule phase of zero length: PyTorch divides by zero; tinyfw names it
        assert tf[-1][0] == "raised" and tf[-1][1] is ValueError, tf[-1]
        assert "zero length" in tf[-1][2]
        tf, th = tf[:-1], th[:-1]
    _assert_same(tf, th)


def test_onecycle_zero_length_phase_is_named():
    opt = _tf_opt()
    with pytest.raises(ValueError, match=r"OneCycleLR: .*phase 1 .*zero length.*pct_start"):
        L.OneCycleLR(opt, 0.1, total_steps=10, pct_start=0.1)  # phase 1 ends at step 0


# -- ReduceLROnPlateau -----------------------------------------------------------------------
def _plateau_state(s) -> tuple:
    return (s.best, s.num_bad_epochs, s.cooldown_counter, s.last_epoch, s.in_cooldown)


def _plateau_both(kw: dict, metrics: list) -> None:
    of, ot = _tf_opt(), _th_opt()
    sf, stt = L.ReduceLROnPlateau(of, **kw), TL.ReduceLROnPlateau(ot, **kw)
    assert _snap(of, sf) == _snap(ot, stt)
    for i, m in enumerate(metrics):
        sf.step(m)
        stt.step(m)
        assert _snap(of, sf) == _snap(ot, stt), f"step {i} (metric {m})"
        assert _plateau_state(sf) == _plateau_state(stt), f"step {i} (metric {m})"


# falls, then plateaus long enough to trigger every patience/cooldown tested
METRICS = [5.0, 4.0, 3.9999, 3.99, 3.99, 3.99, 3.99, 3.5, 3.6, 3.6, 3.6, 3.6, 3.6, 3.6,
           3.4999, 3.6, 3.6, 3.6, 3.6, 3.6, 3.6, 3.6, 3.6, 3.6, 3.6]


@requires_torch
@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("threshold_mode,threshold", [("rel", 1e-4), ("rel", 0.01),
                                                      ("abs", 1e-4), ("abs", 0.05)])
@pytest.mark.parametrize("patience,cooldown", [(0, 0), (2, 0), (1, 3)])
def test_plateau_matches_torch(mode, threshold_mode, threshold, patience, cooldown):
    metrics = METRICS if mode == "min" else [-m for m in METRICS]
    _plateau_both(dict(mode=mode, threshold_mode=threshold_mode, threshold=threshold,
                       patience=patience, cooldown=cooldown, factor=0.5, min_lr=[1e-3, 0.0]),
                  metrics)


@requires_torch
def test_plateau_min_lr_and_eps_stop_reductions():
    of = _tf_opt()
    _plateau_both(dict(patience=0, factor=0.5, min_lr=0.02), [1.0] * 12)
    # eps: a reduction smaller than eps is skipped altogether
    _plateau_both(dict(patience=0, factor=0.9, eps=0.005), [1.0] * 12)
    # a reduction of exactly eps (0.1 - 0.05, exact in binary) is skipped too: "> eps"
    _plateau_both(dict(patience=0, factor=0.5, eps=0.05), [1.0] * 5)
    s = L.ReduceLROnPlateau(of, patience=0, factor=0.5, min_lr=0.02)
    for _ in range(10):
        s.step(1.0)
    assert s.get_last_lr() == [0.02, 0.02]
    of = _tf_opt()
    s = L.ReduceLROnPlateau(of, patience=0, factor=0.9, eps=0.005)
    for _ in range(30):
        s.step(1.0)
    # 0.1 shrinks until a step would be under eps; 0.03 * 0.1 = 0.003 < eps: never reduced
    assert 0.0478 < s.get_last_lr()[0] < 0.0479 and s.get_last_lr()[1] == 0.03


@requires_torch
@given(mode=st.sampled_from(["min", "max"]), tmode=st.sampled_from(["rel", "abs"]),
       threshold=st.sampled_from([0.0, 1e-4, 0.1]), patience=st.integers(0, 3),
       cooldown=st.integers(0, 3), factor=st.floats(0.1, 0.9),
       min_lr=st.sampled_from([0.0, 0.005, [0.01, 0.001]]),
       metrics=st.lists(st.sampled_from([1.0, 0.9, 0.95, 0.99995, 1.05, -0.5, 0.0]),
                        min_size=5, max_size=30))
def test_plateau_random(mode, tmode, threshold, patience, cooldown, factor, min_lr, metrics):
    _plateau_both(dict(mode=mode, threshold_mode=tmode, threshold=threshold,
                       patience=patience, cooldown=cooldown, factor=factor, min_lr=min_lr),
                  metrics)


def test_plateau_accepts_a_tensor_metric():
    of = _tf_opt()
    s = L.ReduceLROnPlateau(of, patience=0)
    s.step(tinyfw.tensor(2.0))
    s.step(tinyfw.tensor(3.0))
    assert s.get_last_lr() == pytest.approx([0.01, 0.003])


# -- state_dict round trips -------------------------------------------------------------------
RESUMABLE: dict[str, tuple[Builder, str, dict]] = {
    **{k: (CASES[k], "sgd", {}) for k in ("lambda_per_group", "step", "multistep",
                                          "exponential", "cosine_eta_min", "linear_warmup",
                                          "seq_warmup_cosine", "seq_three")},
    "onecycle_sgd": (_onecycle(30, three_phase=True), "sgd", {"momentum": 0.9}),
    "onecycle_adam": (_onecycle(30, anneal_strategy="linear"), "adam", {}),
}


def _run_resumed(build: Builder, kind: str, opt_kw: dict, n: int, k: int,
                 metrics=None) -> list:
    """k steps, checkpoint (the scheduler's state through JSON), fresh objects, resume."""
    opt = _tf_opt(kind, **opt_kw)
    sched = build(L, opt)
    head = _trace(opt, sched, k, metrics)
    opt_sd = opt.state_dict()
    sched_sd = json.loads(json.dumps(sched.state_dict()))
    del opt, sched
    opt = _tf_opt(kind, lrs=(0.7, 0.9), **opt_kw)  # different lrs: must be overwritten
    sched = build(L, opt)  # built BEFORE loading the optimizer, as PyTorch recommends
    opt.load_state_dict(opt_sd)
    sched.load_state_dict(sched_sd)
    tail = _trace(opt, sched, n - k, None if metrics is None else metrics[k:])
    return head + tail[1:]


@pytest.mark.parametrize("name", list(RESUMABLE))
@pytest.mark.parametrize("k", [1, 7, 16])
def test_state_dict_resume_gives_the_same_sequence(name, k):
    build, kind, opt_kw = RESUMABLE[name]
    opt = _tf_opt(kind, **opt_kw)
    straight = _trace(opt, build(L, opt), 28)
    assert _run_resumed(build, kind, opt_kw, 28, k) == straight


@pytest.mark.parametrize("k", [3, 9, 14])
def test_plateau_state_dict_resume(k):
    def build(M, o):
        return M.ReduceLROnPlateau(o, patience=1, cooldown=2, factor=0.5, min_lr=[1e-3, 0.0])

    opt = _tf_opt()
    straight = _trace(opt, build(L, opt), len(METRICS), METRICS)
    assert _run_resumed(build, "sgd", {}, len(METRICS), k, METRICS) == straight


def test_lambda_state_dict_saves_callable_objects_only():
    opt = _tf_opt()
    warm = _Warm(4)
    s = L.LambdaLR(opt, [warm, lambda e: 1.0])
    sd = s.state_dict()
    assert sd["lr_lambdas"] == [{"k": 4}, None] and "optimizer" not in sd
    warm2 = _Warm(1)
    s2 = L.LambdaLR(_tf_opt(), [warm2, lambda e: 1.0])
    s2.load_state_dict(sd)
    assert warm2.k == 4 and sd["lr_lambdas"] == [{"k": 4}, None]  # sd not consumed


@requires_torch
@pytest.mark.parametrize("name", ["step", "multistep", "cosine_eta_min", "seq_three"])
def test_state_dict_keys_match_torch(name):
    sf, stt = CASES[name](L, _tf_opt()), CASES[name](TL, _th_opt())
    torch_only = {"_get_lr_called_within_step"}
    assert set(stt.state_dict()) - torch_only <= set(sf.state_dict())


# -- bad arguments ----------------------------------------------------------------------------
def _err(exc, pattern: str, fn: Callable[[], Any]) -> None:
    with pytest.raises(exc, match=pattern):
        fn()


@pytest.mark.parametrize("exc,pattern,fn", [
    (TypeError, r"StepLR: list is not a tinyfw Optimizer", lambda: L.StepLR([], 2)),
    (ValueError, r"StepLR: step_size must be a positive int, got 0",
     lambda: L.StepLR(_tf_opt(), 0)),
    (ValueError, r"MultiStepLR: milestones must be non-decreasing.*\[5, 3\]",
     lambda: L.MultiStepLR(_tf_opt(), [5, 3])),
    (ValueError, r"MultiStepLR: milestones must be non-negative ints",
     lambda: L.MultiStepLR(_tf_opt(), [2, 3.5])),
    (ValueError, r"CosineAnnealingLR: T_max must be positive, got 0",
     lambda: L.CosineAnnealingLR(_tf_opt(), 0)),
    (ValueError, r"LinearLR: start_factor must be in \(0, 1\], got 0",
     lambda: L.LinearLR(_tf_opt(), start_factor=0)),
    (ValueError, r"LinearLR: end_factor must be in \[0, 1\], got 1.5",
     lambda: L.LinearLR(_tf_opt(), end_factor=1.5)),
    (ValueError, r"LinearLR: total_iters must be a positive int, got 0",
     lambda: L.LinearLR(_tf_opt(), total_iters=0)),
    (ValueError, r"LambdaLR: expected 2 lr_lambdas, got 1",
     lambda: L.LambdaLR(_tf_opt(), [lambda e: 1.0])),
    (TypeError, r"LambdaLR: lr_lambda 0 is not callable",
     lambda: L.LambdaLR(_tf_opt(), 0.5)),
    (ValueError, r"OneCycleLR: define either total_steps or \(epochs and steps_per_epoch\)",
     lambda: L.OneCycleLR(_tf_opt(), 0.1)),
    (ValueError, r"OneCycleLR: define either total_steps or \(epochs and steps_per_epoch\)",
     lambda: L.OneCycleLR(_tf_opt(), 0.1, epochs=3)),
    (ValueError, r"OneCycleLR: expected a positive int total_steps, got 0",
     lambda: L.OneCycleLR(_tf_opt(), 0.1, total_steps=0)),
    (ValueError, r"OneCycleLR: expected a positive int steps_per_epoch, got 2.5",
     lambda: L.OneCycleLR(_tf_opt(), 0.1, epochs=2, steps_per_epoch=2.5)),
    (ValueError, r"OneCycleLR: expected a float pct_start in \[0, 1\], got 1.5",
     lambda: L.OneCycleLR(_tf_opt(), 0.1, total_steps=10, pct_start=1.5)),
    (ValueError, r"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'exp'",
     lambda: L.OneCycleLR(_tf_opt(), 0.1, total_steps=10, anneal_strategy="exp")),
    (ValueError, r"OneCycleLR: expected 2 values for max_lr, got 3",
     lambda: L.OneCycleLR(_tf_opt(), [0.1, 0.2, 0.3], total_steps=10)),
    (ValueError, r"OneCycleLR: cycle_momentum needs an optimizer with momentum or betas",
     lambda: L.OneCycleLR(_tf_opt("adagrad"), 0.1, total_steps=10)),
    (ValueError, r"ReduceLROnPlateau: mode must be 'min' or 'max', got 'avg'",
     lambda: L.ReduceLROnPlateau(_tf_opt(), mode="avg")),
    (ValueError, r"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got 'pct'",
     lambda: L.ReduceLROnPlateau(_tf_opt(), threshold_mode="pct")),
    (ValueError, r"ReduceLROnPlateau: factor must be < 1.0, got 1.0",
     lambda: L.ReduceLROnPlateau(_tf_opt(), factor=1.0)),
    (ValueError, r"ReduceLROnPlateau: expected 2 min_lrs, got 1",
     lambda: L.ReduceLROnPlateau(_tf_opt(), min_lr=[0.1])),
])
def test_bad_arguments(exc, pattern, fn):
    _err(exc, pattern, fn)


def test_onecycle_step_past_total_steps():
    opt = _tf_opt()
    s = L.OneCycleLR(opt, 0.1, total_steps=5)
    for _ in range(5):
        s.step()
    with pytest.raises(ValueError, match=r"OneCycleLR: tried to step 6 times; total_steps is 5"):
        s.step()


def test_sequential_bad_arguments():
    opt, other = _tf_opt(), _tf_opt()
    _err(ValueError, r"SequentialLR: expects at least one scheduler",
         lambda: L.SequentialLR(opt, [], []))
    _err(ValueError, r"SequentialLR: expects 1 milestones for 2 schedulers, got 2",
         lambda: L.SequentialLR(opt, [L.StepLR(opt, 2), L.StepLR(opt, 3)], [2, 4]))
    _err(ValueError, r"SequentialLR: milestones must be increasing.*\[6, 6\]",
         lambda: L.SequentialLR(opt, [L.StepLR(opt, 2)] * 3, [6, 6]))
    _err(ValueError, r"SequentialLR: milestones must be increasing.*\[6, 2\]",
         lambda: L.SequentialLR(opt, [L.StepLR(opt, 2)] * 3, [6, 2]))
    _err(ValueError, r"SequentialLR: scheduler 1 is a ReduceLROnPlateau",
         lambda: L.SequentialLR(opt, [L.StepLR(opt, 2), L.ReduceLROnPlateau(opt)], [3]))
    _err(ValueError, r"SequentialLR: scheduler 0 \(StepLR\) belongs to a different optimizer",
         lambda: L.SequentialLR(opt, [L.StepLR(other, 2)], []))
    s = L.SequentialLR(opt, [L.StepLR(opt, 2)], [])
    _err(TypeError, r"SequentialLR.step\(\) takes no epoch", lambda: s.step(3))


def test_plateau_group_added_with_per_group_min_lr():
    opt = _tf_opt()
    s = L.ReduceLROnPlateau(opt, patience=0, min_lr=[0.0, 0.0])
    opt.add_param_group({"params": [tinyfw.zeros(1, requires_grad=True)], "lr": 0.5})
    s.step(1.0)
    _err(RuntimeError, r"ReduceLROnPlateau: the optimizer now has 3 param groups but 2 "
         "min_lrs", lambda: s.step(2.0))
