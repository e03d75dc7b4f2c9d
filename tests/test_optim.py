"""Optimizers against torch.optim (100+ steps, identical gradients, every option
combination), the C++ kernels against the numpy reference, param groups, state dicts,
mixed precision and gradient clipping."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tinyfw
from tinyfw import optim
from tinyfw.backend import ref as ref_backend

from helpers import DEVICE, assert_close, npy, requires_torch, torch

STEPS = 120
SHAPES = [(7, 5), (3,)]


def _run_pair(torch_cls, tiny_cls, kwargs, dtype=np.float32, steps=STEPS, seed=0):
    """Run both optimizers on the same parameters with the same gradient sequence."""
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    pt = [torch.tensor(a.copy(), requires_grad=True) for a in p0]
    pf = [tinyfw.tensor(a.copy(), requires_grad=True) for a in p0]
    ot, of = torch_cls(pt, **kwargs), tiny_cls(pf, **kwargs)
    for _ in range(steps):
        for a, b in zip(pt, pf):
            g = rng.standard_normal(a.shape).astype(dtype)
            a.grad = torch.tensor(g.copy())
            b.grad = tinyfw.tensor(g.copy())
        ot.step()
        of.step()
    return pt, pf, ot, of


def _grid(**options):
    keys = list(options)
    return [dict(zip(keys, vals)) for vals in itertools.product(*options.values())]


SGD_GRID = [k for k in _grid(lr=[0.05], momentum=[0.0, 0.9], dampening=[0.0, 0.3],
                             weight_decay=[0.0, 0.01], nesterov=[False, True],
                             maximize=[False, True])
            if not (k["nesterov"] and (k["momentum"] == 0 or k["dampening"] != 0))]
ADAM_GRID = _grid(lr=[0.01], betas=[(0.9, 0.999), (0.3, 0.9)], weight_decay=[0.0, 0.05],
                  amsgrad=[False, True], maximize=[False, True])
RMS_GRID = _grid(lr=[0.01], alpha=[0.99, 0.4], weight_decay=[0.0, 0.05], momentum=[0.0, 0.9],
                 centered=[False, True], maximize=[False, True])
ADAGRAD_GRID = _grid(lr=[0.1], lr_decay=[0.0, 0.01], weight_decay=[0.0, 0.05],
                     initial_accumulator_value=[0.0, 0.1], eps=[1e-10, 1e-3],
                     maximize=[False, True])

CASES = ([("SGD", k) for k in SGD_GRID] + [("Adam", k) for k in ADAM_GRID]
         + [("AdamW", k) for k in ADAM_GRID] + [("RMSprop", k) for k in RMS_GRID]
         + [("Adagrad", k) for k in ADAGRAD_GRID])


def _id(case):
    name, kw = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in kw.items() if k != "lr")


@requires_torch
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_matches_torch_float32(case):
    name, kw = case
    pt, pf, _, _ = _run_pair(getattr(torch.optim, name), getattr(optim, name), kw)
    for a, b in zip(pt, pf):
        # every step rounds to float32 like PyTorch; PyTorch fuses some multiply-adds, so
        # the two may differ by an ulp per step, which 120 steps accumulate to a few ulps
        assert_close(b, a, "float32", rtol=2e-5, atol=1e-5, msg=_id(case))


@requires_torch
@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.05, momentum=0.9, nesterov=True,
                                                  weight_decay=0.01)),
                                     ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
                                     ("AdamW", dict(lr=0.01, weight_decay=0.1)),
                                     ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
                                     ("Adagrad", dict(lr=0.1, lr_decay=0.01))])
def test_matches_torch_float64(name, kw):
    pt, pf, ot, of = _run_pair(getattr(torch.optim, name), getattr(optim, name), kw,
                               dtype=np.float64)
    for a, b in zip(pt, pf):
        assert_close(b, a, "float64", rtol=1e-12, atol=1e-13)
    # the state buffers agree too (same names as PyTorch's)
    st, sf = ot.state_dict()["state"], of.state_dict()["state"]
    assert st.keys() == sf.keys()
    for i in st:
        assert st[i].keys() == sf[i].keys()
        for k in st[i]:
            assert_close(sf[i][k], st[i][k], "float64", rtol=1e-12, atol=1e-13, msg=k)


KERNEL_ARGS = {
    "sgd_step": lambda a: (a["p"], a["g"], a["b1"], 0.1, 0.9, 0.1, 0.01, False, True, False),
    "adam_step": lambda a: (a["p"], a["g"], a["b1"], a["b2"], a["b3"], 3, 0.01, 0.9, 0.999,
                            1e-8, 0.01, True, False, False),
    "rmsprop_step": lambda a: (a["p"], a["g"], a["b2"], a["b1"], a["b3"], 0.01, 0.9, 1e-8,
                               0.01, 0.9, True, True),
    "adagrad_step": lambda a: (a["p"], a["g"], a["b2"], 4, 0.1, 0.01, 0.01, 1e-10, False),
}


@pytest.mark.skipif(not tinyfw.backend.cpu.KERNELS, reason="tinyfw._C is not built")
@pytest.mark.parametrize("kernel", sorted(KERNEL_ARGS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 37, 100_003])  # the last one runs the OpenMP path
def test_cpu_kernel_equals_reference(kernel, dtype, n):
    from tinyfw.backend import cpu

    assert kernel in cpu.KERNELS
    rng = np.random.default_rng(n)
    base = {k: rng.standard_normal(n).astype(dtype) for k in ("p", "g", "b1")}
    base.update({k: np.abs(rng.standard_normal(n)).astype(dtype) for k in ("b2", "b3")})
    a = {k: v.copy() for k, v in base.items()}
    b = {k: v.copy() for k, v in base.items()}
    with np.errstate(invalid="ignore"):  # random buffers may give sqrt(<0): NaN == NaN
        for _ in range(3):
            getattr(cpu, kernel)(*KERNEL_ARGS[kernel](a))
            getattr(ref_backend, kernel)(*KERNEL_ARGS[kernel](b))
    for k in a:  # same operations in the same order, no FMA contraction: bit-identical
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{kernel} buffer {k}")


@pytest.mark.skipif(not tinyfw.backend.cpu.KERNELS, reason="tinyfw._C is not built")
def test_cpu_kernel_rejects_bad_buffers():
    from tinyfw.backend import cpu

    p = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="sgd_step: grad has dtype float64"):
        cpu.sgd_step(p, np.zeros(4), None, 0.1, 0.0, 0.0, 0.0, False, False, False)
    with pytest.raises(ValueError, match="sgd_step: grad has 3 elements but param has 4"):
        cpu.sgd_step(p, np.zeros(3, np.float32), None, 0.1, 0.0, 0.0, 0.0, False, False, False)
    with pytest.raises(ValueError, match="momentum_buf is required"):
        cpu.sgd_step(p, p.copy(), None, 0.1, 0.9, 0.0, 0.0, False, False, False)
    with pytest.raises(ValueError, match="C-contiguous"):
        cpu.adagrad_step(p, np.zeros(8, np.float32)[::2], p.copy(), 1, 0.1, 0, 0, 1e-10, False)
    with pytest.raises(TypeError, match="only float32 and float64"):
        cpu.adagrad_step(np.zeros(4, np.int64), np.zeros(4, np.int64), np.zeros(4, np.int64),
                         1, 0.1, 0, 0, 1e-10, False)


@requires_torch
def test_param_groups_and_add_param_group():
    rng = np.random.default_rng(1)
    a0, b0, c0 = (rng.standard_normal(4).astype(np.float32) for _ in range(3))
    ta, tb, tc = (torch.tensor(x.copy(), requires_grad=True) for x in (a0, b0, c0))
    fa, fb, fc = (tinyfw.tensor(x.copy(), requires_grad=True) for x in (a0, b0, c0))
    ot = torch.optim.SGD([{"params": [ta]}, {"params": [tb], "lr": 0.5, "momentum": 0.5}],
                         lr=0.1, momentum=0.9)
    of = optim.SGD([{"params": [fa]}, {"params": [fb], "lr": 0.5, "momentum": 0.5}],
                   lr=0.1, momentum=0.9)
    for step in range(20):
        if step == 10:
            ot.add_param_group({"params": [tc], "lr": 0.01})
            of.add_param_group({"params": [fc], "lr": 0.01})
        for t, f in ((ta, fa), (tb, fb), (tc, fc)):
            g = rng.standard_normal(4).astype(np.float32)
            t.grad, f.grad = torch.tensor(g.copy()), tinyfw.tensor(g.copy())
        ot.step()
        of.step()
    for t, f in ((ta, fa), (tb, fb), (tc, fc)):
        assert_close(f, t, "float32")
    assert of.param_groups[2]["momentum"] == 0.9  # defaults fill missing keys


def test_group_validation_errors():
    p = tinyfw.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="invalid lr value: -1"):
        optim.Adam([p], lr=-1)
    with pytest.raises(ValueError, match="invalid beta parameter at index 1"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="parameter 0 is a int"):
        optim.SGD([3], lr=0.1)


def test_zero_grad():
    p = tinyfw.ones(3, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    (p * 2).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert p.grad is not None and np.all(npy(p.grad) == 0)
    opt.zero_grad()
    assert p.grad is None
    opt.step()  # no gradient: nothing happens
    assert np.all(npy(p) == 1)


def test_step_under_autograd_and_closure():
    p = tinyfw.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    v0 = p._version[0]

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss) == 5.0
    assert_close(p, np.array([0.8, -1.6], np.float32), "float32")
    assert p._version[0] > v0 and p.grad_fn is None and p.requires_grad


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_state_dict_round_trip_continues_identically(name):
    kw = {"SGD": dict(lr=0.1, momentum=0.9), "Adam": dict(lr=0.01, amsgrad=True),
          "AdamW": dict(lr=0.01), "RMSprop": dict(lr=0.01, momentum=0.9, centered=True),
          "Adagrad": dict(lr=0.1, lr_decay=0.01)}[name]
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(10)]
    p_ref = tinyfw.ones(2, 3, requires_grad=True)
    o_ref = getattr(optim, name)([p_ref], **kw)
    for g in grads:
        p_ref.grad = tinyfw.tensor(g)
        o_ref.step()
    p = tinyfw.ones(2, 3, requires_grad=True)
    o = getattr(optim, name)([p], **kw)
    for g in grads[:5]:
        p.grad = tinyfw.tensor(g)
        o.step()
    sd = o.state_dict()
    p2 = tinyfw.tensor(npy(p), requires_grad=True)
    o2 = getattr(optim, name)([p2], lr=123.0)
    o2.load_state_dict(sd)
    assert o2.param_groups[0]["lr"] == kw["lr"]
    for g in grads[5:]:
        p2.grad = tinyfw.tensor(g)
        o2.step()
    np.testing.assert_array_equal(npy(p2), npy(p_ref))


def test_load_state_dict_mismatch_errors():
    a, b = tinyfw.zeros(2, requires_grad=True), tinyfw.zeros(3, requires_grad=True)
    o = optim.Adam([a, b])
    a.grad, b.grad = tinyfw.ones(2), tinyfw.ones(3)
    o.step()
    with pytest.raises(ValueError, match="group 0 has 2 parameters, the optimizer's has 1"):
        optim.Adam([a]).load_state_dict(o.state_dict())
    with pytest.raises(ValueError, match="has shape \\(2,\\) but its parameter has shape \\(3,\\)"):
        optim.Adam([b, a]).load_state_dict(o.state_dict())


@requires_torch
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mixed_precision_master_weights(dtype):
    """A half parameter follows the float32 trajectory (through its master copy) rounded
    once per step; updating it directly in half would stall on tiny updates."""
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal(64).astype(np.float32)
    half = getattr(tinyfw, dtype)
    ph = tinyfw.tensor(p0).to(half).requires_grad_()
    p32 = tinyfw.tensor(npy(ph.float()), requires_grad=True)
    oh, o32 = optim.Adam([ph], lr=1e-4), optim.Adam([p32], lr=1e-4)
    for _ in range(30):
        g = rng.standard_normal(64).astype(np.float32)
        ph.grad = tinyfw.tensor(g).to(half)
        p32.grad = tinyfw.tensor(npy(ph.grad.float()))
        oh.step()
        o32.step()
    assert ph.dtype is half
    master = oh.state[ph]["master"]
    np.testing.assert_array_equal(npy(master), npy(p32))
    np.testing.assert_array_equal(npy(ph.float()), npy(p32.to(half).float()))
    assert oh.state[ph]["exp_avg"].dtype is tinyfw.float32
    assert not np.array_equal(npy(ph.float()), npy(tinyfw.tensor(p0).to(half).float()))


@requires_torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(7)
    gs = [rng.standard_normal(s).astype(np.float32) for s in ((4, 3), (5,), ())]
    pt = [torch.zeros(g.shape, requires_grad=True) for g in gs]
    pf = [tinyfw.zeros(*g.shape, requires_grad=True) for g in gs]
    for a, b, g in zip(pt, pf, gs):
        a.grad, b.grad = torch.tensor(g.copy()), tinyfw.tensor(g.copy())
    nt = torch.nn.utils.clip_grad_norm_(pt, max_norm, norm_type)
    nf = optim.clip_grad_norm_(pf, max_norm, norm_type)
    assert_close(nf, nt, "float32")
    for a, b in zip(pt, pf):
        assert_close(b.grad, a.grad, "float32")


def test_clip_grad_norm_nonfinite_and_value():
    p = tinyfw.zeros(3, requires_grad=True)
    p.grad = tinyfw.tensor([1.0, float("inf"), 2.0])
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm .* non-finite"):
        optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    p.grad = tinyfw.tensor([-3.0, 0.5, 2.0])
    optim.clip_grad_value_([p], 1.0)
    assert p.grad.tolist() == [-1.0, 0.5, 1.0]


@requires_torch
def test_clip_grad_value_matches_torch():
    g = np.random.default_rng(8).standard_normal((6, 6)).astype(np.float32)
    a, b = torch.zeros(6, 6, requires_grad=True), tinyfw.zeros(6, 6, requires_grad=True)
    a.grad, b.grad = torch.tensor(g.copy()), tinyfw.tensor(g.copy())
    torch.nn.utils.clip_grad_value_([a], 0.3)
    optim.clip_grad_value_([b], 0.3)
    assert_close(b.grad, a.grad, "float32", rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
def test_optimizers_run_on_each_backend(backend):
    old = tinyfw.get_backend().__name__.rsplit(".", 1)[-1]
    tinyfw.set_backend(backend)
    try:
        p = tinyfw.tensor([3.0, -4.0], requires_grad=True)
        opt = optim.Adam([p], lr=0.3)
        for _ in range(200):
            opt.zero_grad()
            (p * p).sum().backward()
            opt.step()
        assert np.abs(npy(p)).max() < 0.05
    finally:
        tinyfw.set_backend(old)
