"""Modules and optimizers across devices: Module.to/cpu/to_empty, models built on the meta
device, optimizer state that follows its parameters, and training after Module.to that
agrees bit for bit with the reference kernels on the CPU."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

import tinyfw
import tinyfw.nn as nn
import tinyfw.nn.functional as F
from tinyfw import optim

from helpers import npy

CHECK = tinyfw.device("check")
CPU = tinyfw.device("cpu")


def _net(device=None) -> nn.Module:
    """A small CNN with every kind of state: parameters, float and int64 buffers."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, device=device),
                         nn.BatchNorm2d(4, device=device), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 5 * 5, 3, device=device))


def _state(m: nn.Module) -> dict:
    return {k: npy(v).copy() for k, v in m.state_dict().items()}


@pytest.fixture
def ref_backend():
    """Run CPU tensors on the reference kernels (what the check device runs)."""
    old = tinyfw.get_backend().__name__.rsplit(".", 1)[-1]
    tinyfw.set_backend("ref")
    yield
    tinyfw.set_backend(old)


def test_module_to_moves_parameters_grads_and_buffers_in_place():
    tinyfw.manual_seed(0)
    m = _net("cpu")
    m(tinyfw.randn(2, 1, 5, 5, device="cpu")).sum().backward()
    params, before = list(m.parameters()), _state(m)
    grads = [npy(p.grad).copy() for p in params]
    assert m.to("check") is m
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]  # same objects
    for t in list(m.parameters()) + list(m.buffers()) + [p.grad for p in params]:
        assert t.device == CHECK
    assert m[1].num_batches_tracked.dtype is tinyfw.int64
    for k, v in _state(m).items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(npy(p.grad), g)
    m.cpu()
    assert all(t.device == CPU for t in list(m.parameters()) + list(m.buffers()))
    m.to(tinyfw.zeros(1, dtype=tinyfw.float64, device="check"))  # to(tensor): its device and dtype
    assert m[0].weight.device == CHECK and m[0].weight.dtype is tinyfw.float64
    assert m[1].num_batches_tracked.dtype is tinyfw.int64  # dtype casts floats only
    m.to("cpu", tinyfw.float32)
    assert m[0].weight.device == CPU and m[0].weight.dtype is tinyfw.float32
    with pytest.raises(RuntimeError, match="not available"):
        m.to("check:1")


def test_layers_take_device_and_meta_models_keep_shapes_without_drawing():
    cpu_model = nn.TransformerEncoderLayer(16, 4, 32, device="cpu")
    state = tinyfw.get_rng_state()
    meta_model = nn.TransformerEncoderLayer(16, 4, 32, device="meta")
    assert tinyfw.get_rng_state() == state  # nothing drawn on meta
    shapes = {k: tuple(v.shape) for k, v in cpu_model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in meta_model.state_dict().items()} == shapes
    assert all(t.is_meta for t in meta_model.state_dict().values())
    attention = 4 * 16 * 16 + 4 * 16  # in_proj (3 E x E) and out_proj, with biases
    feed_forward = 2 * 16 * 32 + 32 + 16
    norms = 2 * 2 * 16
    assert sum(p.numel() for p in meta_model.parameters()) == \
        sum(p.numel() for p in cpu_model.parameters()) == attention + feed_forward + norms
    big = nn.Sequential(nn.Embedding(50_000, 1024, device="meta"),
                        nn.LSTM(1024, 1024, num_layers=2, device="meta"),
                        nn.Linear(1024, 50_000, device="meta"))
    n = sum(p.numel() for p in big.parameters())
    assert n == 50_000 * 1024 * 2 + 50_000 + 2 * (4 * 1024 * 2048 + 8 * 1024)
    out, (h, c) = big[1](tinyfw.randn(7, 3, 1024, device="meta"))  # shapes flow through
    assert out.shape == (7, 3, 1024) and h.shape == c.shape == (2, 3, 1024) and out.is_meta
    m = _net("cpu").to("meta")  # moved to meta: shapes stay, data goes
    assert m[4].weight.is_meta and m[4].weight.shape == (3, 100)
    assert m(tinyfw.randn(2, 1, 5, 5, device="meta")).shape == (2, 3)


def test_to_empty_materialises_a_meta_model():
    tinyfw.manual_seed(3)
    real = _net("cpu")
    tinyfw.manual_seed(3)
    lazy = _net("meta")
    params = list(lazy.parameters())
    with pytest.raises(RuntimeError, match="meta device and has no data.*to_empty"):
        lazy.to("cpu")
    assert lazy.to_empty(device="check") is lazy
    assert [id(p) for p in lazy.parameters()] == [id(p) for p in params]
    assert all(t.device == CHECK for t in list(lazy.parameters()) + list(lazy.buffers()))
    assert {k: tuple(v.shape) for k, v in lazy.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in real.state_dict().items()}
    for layer in lazy:  # meta drew nothing, so re-initialising draws what `real` drew
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    for k, v in _state(lazy).items():
        np.testing.assert_array_equal(v, _state(real)[k], err_msg=k)
    lazy2 = _net("meta").to_empty(device="cpu")
    lazy2.load_state_dict(real.state_dict())
    for k, v in _state(lazy2).items():
        np.testing.assert_array_equal(v, _state(real)[k], err_msg=k)


INITS = [("uniform_", dict(a=-2, b=3)), ("normal_", dict(mean=1, std=2)),
         ("trunc_normal_", dict(std=2, a=-1, b=1.5)), ("xavier_uniform_", {}),
         ("xavier_normal_", dict(gain=2)), ("kaiming_uniform_", dict(a=0.1)),
         ("kaiming_normal_", dict(mode="fan_out")), ("constant_", dict(val=0.25)),
         ("zeros_", {}), ("ones_", {})]


@pytest.mark.parametrize("name,kw", INITS, ids=[n for n, _ in INITS])
def test_init_draws_the_same_values_on_every_device_and_nothing_on_meta(name, kw):
    fn = getattr(nn.init, name)
    out = {}
    for dev in ("cpu", "check"):
        tinyfw.manual_seed(4)
        t = tinyfw.empty(6, 5, device=dev)
        assert fn(t, **kw) is t and t.device == tinyfw.device(dev)
        out[dev] = npy(t)
    np.testing.assert_array_equal(out["cpu"], out["check"])
    if name not in ("constant_", "zeros_", "ones_"):
        assert len(np.unique(out["cpu"])) > 20  # really drawn
    state = tinyfw.get_rng_state()
    t = tinyfw.empty(6, 5, device="meta")
    assert fn(t, **kw) is t and t.is_meta and t.shape == (6, 5)
    assert tinyfw.get_rng_state() == state


def _cuda_available() -> bool:
    from tinyfw.backend import cuda

    return not cuda.unavailable(tinyfw.device("cuda"))


@pytest.mark.skipif(_cuda_available(), reason="CUDA is available here: no error to show")
def test_module_cuda_without_a_gpu_is_a_clear_error():
    m = nn.Linear(2, 2, device="cpu")
    with pytest.raises(RuntimeError, match="device 'cuda(:0)?' is not available"):
        m.cuda()
    assert m.weight.device == CPU  # nothing moved


def _train(model, opt, batches, device) -> list:
    losses = []
    for x, y in batches:
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("make_opt", [
    lambda p: optim.Adam(p, lr=1e-2, amsgrad=True),
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    lambda p: optim.RMSprop(p, lr=1e-2, centered=True, momentum=0.5),
    lambda p: optim.Adagrad(p, lr=0.1)], ids=["Adam", "SGD", "RMSprop", "Adagrad"])
def test_training_after_module_to_check_equals_ref_kernels_bit_for_bit(ref_backend, make_opt):
    """The check device runs the reference kernels, so a model moved there (with its
    optimizer made before the move and one step taken) must follow exactly the trajectory
    of the same model trained on the CPU with the reference backend."""
    rng = np.random.default_rng(0)
    batches = [(tinyfw.tensor(rng.standard_normal((6, 1, 5, 5)).astype(np.float32),
                              device="cpu"),
                tinyfw.tensor(rng.integers(0, 3, 6), device="cpu")) for _ in range(6)]
    tinyfw.manual_seed(1)
    a = _net("cpu")
    tinyfw.manual_seed(1)
    b = _net("cpu")
    opt_a, opt_b = make_opt(a.parameters()), make_opt(b.parameters())
    la = _train(a, opt_a, batches, CPU)
    lb = _train(b, opt_b, batches[:1], CPU)
    b.to("check")  # the optimizer keeps its Parameter objects; its state follows them
    lb += _train(b, opt_b, batches[1:], CHECK)
    assert la == lb
    for k, v in _state(b).items():
        np.testing.assert_array_equal(v, _state(a)[k], err_msg=k)
    for p in b.parameters():
        assert all(v.device == (CPU if k == "step" else CHECK)
                   for k, v in opt_b.state[p].items() if isinstance(v, tinyfw.Tensor))


def test_optimizer_state_is_made_on_the_parameters_device_and_loads_there():
    p = nn.Parameter(tinyfw.ones(3, device="check"))
    opt = optim.Adam([p], lr=0.1, amsgrad=True)
    p.grad = tinyfw.full((3,), 0.5, device="check")
    opt.step()
    st = opt.state[p]
    assert {k: v.device.type for k, v in st.items()} == {
        "step": "cpu", "exp_avg": "check", "exp_avg_sq": "check", "max_exp_avg_sq": "check"}
    # a state dict saved from CPU parameters loads onto the check parameters' device
    q = nn.Parameter(tinyfw.ones(3, device="cpu"))
    opt_q = optim.Adam([q], lr=0.1, amsgrad=True)
    q.grad = tinyfw.full((3,), 0.5, device="cpu")
    opt_q.step()
    opt.load_state_dict(opt_q.state_dict())
    assert opt.state[p]["exp_avg"].device == CHECK and opt.state[p]["step"].item() == 1
    with pytest.raises(RuntimeError, match="is on check but its gradient is on cpu"):
        p.grad = tinyfw.zeros(3, device="cpu")
        opt.step()


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_optimizer_state_follows_a_parameter_moved_between_steps(ref_backend, name):
    """Gradients set by hand (no forward needed): three steps on the CPU, Module.to('check'),
    three more; the state moves with the parameter and the result equals six steps on the
    CPU with the reference kernels, bit for bit."""
    kw = {"SGD": dict(lr=0.1, momentum=0.9), "Adam": dict(lr=0.1, amsgrad=True),
          "RMSprop": dict(lr=0.1, centered=True, momentum=0.5), "Adagrad": dict(lr=0.1)}[name]
    grads = [np.random.default_rng(i).standard_normal((2, 3)).astype(np.float32)
             for i in range(6)]
    ref, moved = nn.Linear(3, 2, device="cpu"), nn.Linear(3, 2, device="cpu")
    moved.load_state_dict(ref.state_dict())
    opt_ref = getattr(optim, name)([ref.weight], **kw)
    opt = getattr(optim, name)([moved.weight], **kw)
    for i, g in enumerate(grads):
        if i == 3:
            moved.to("check")
        ref.weight.grad = tinyfw.tensor(g, device="cpu")
        moved.weight.grad = tinyfw.tensor(g, device=moved.weight.device)
        opt_ref.step()
        opt.step()
    assert moved.weight.device == CHECK
    np.testing.assert_array_equal(npy(moved.weight), npy(ref.weight))
    for k, v in opt.state[moved.weight].items():
        if isinstance(v, tinyfw.Tensor):
            assert v.device == (CPU if k == "step" else CHECK), k
            np.testing.assert_array_equal(npy(v), npy(opt_ref.state[ref.weight][k]), err_msg=k)


def test_half_parameters_on_a_device_keep_their_master_copy_there():
    p = nn.Parameter(tinyfw.ones(4, dtype=tinyfw.float16, device="check"))
    opt = optim.SGD([p], lr=1e-3, momentum=0.9)
    for _ in range(3):
        p.grad = tinyfw.full((4,), 1.0, dtype=tinyfw.float16, device="check")
        opt.step()
    master = opt.state[p]["master"]
    assert master.device == CHECK and master.dtype is tinyfw.float32
    np.testing.assert_array_equal(npy(p), npy(master.half()))


def test_nn_and_optim_use_no_numpy():
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tinyfw")
    files = [os.path.join(root, "serialization.py")]
    for pkg in ("nn", "optim"):
        for dirpath, _, names in os.walk(os.path.join(root, pkg)):
            files += [os.path.join(dirpath, n) for n in names if n.endswith(".py")]
    offenders = []
    for path in files:
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                if re.search(r"^\s*(import numpy|from numpy)|\bnp\.", line):
                    offenders.append(f"{os.path.relpath(path, root)}:{i}: {line.strip()}")
    assert not offenders, "numpy outside the backends:\n" + "\n".join(offenders)
