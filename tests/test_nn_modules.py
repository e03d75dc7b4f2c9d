"""Module mechanics: registration, walking, state dicts, hooks, modes, dtype, repr, init."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import tinyfw
import tinyfw.nn as nn
from tinyfw.nn import init

from helpers import assert_close, npy, requires_torch, torch


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.register_buffer("steps", tinyfw.zeros((), dtype=tinyfw.int64))
        self.register_buffer("scratch", tinyfw.zeros(2), persistent=False)
        self.scale = nn.Parameter(tinyfw.ones(4))

    def forward(self, x):
        return self.act(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Block()
        self.b = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
        self.shared = self.a.fc  # the same module twice: listed once
        self.head = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        return self.head(self.b(self.a(x)))


def test_named_parameters_recursive_prefixes_no_duplicates():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["a.scale", "a.fc.weight", "a.fc.bias", "b.0.weight", "b.0.bias",
                     "head.weight"]
    assert len(list(net.parameters())) == 6
    assert [n for n, _ in net.named_parameters(recurse=False)] == []
    assert all(p.requires_grad and isinstance(p, nn.Parameter) for p in net.parameters())
    assert [n for n, _ in net.named_buffers()] == ["a.steps", "a.scratch"]
    assert [n for n, _ in net.named_children()] == ["a", "b", "shared", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "a", "a.fc", "a.act", "b", "b.0", "b.1",
                                                    "head"]
    assert net.get_submodule("b.0") is net.b[0]
    assert net.get_parameter("a.fc.bias") is net.a.fc.bias
    with pytest.raises(AttributeError, match="no sub-module 'zz'"):
        net.get_submodule("a.zz")


def test_attribute_rules():
    m = Block()
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'scale'"):
        m.scale = tinyfw.ones(4)
    m.scale = None
    assert "scale" in m._parameters and m.scale is None
    with pytest.raises(TypeError, match="cannot assign 'int' as buffer 'steps'"):
        m.steps = 3
    del m.fc
    assert "fc" not in m._modules
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        m.nope

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tinyfw.ones(1))

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Early()


def test_state_dict_keys_persistent_and_round_trip():
    tinyfw.manual_seed(0)
    net = Net()
    sd = net.state_dict()
    # as PyTorch: a module reachable under two names appears under both
    assert list(sd) == ["a.scale", "a.steps", "a.fc.weight", "a.fc.bias", "b.0.weight",
                        "b.0.bias", "shared.weight", "shared.bias", "head.weight"]
    assert not any(v.requires_grad for v in sd.values())
    # the state dict shares memory with the module (as PyTorch's)
    with tinyfw.no_grad():
        sd["head.weight"].add_(1.0)
        assert_close(net.head.weight, sd["head.weight"], rtol=0, atol=0)
        net.head.weight.sub_(1.0)
    tinyfw.manual_seed(1)
    other = Net()
    assert not np.allclose(npy(other.head.weight), npy(net.head.weight))
    res = other.load_state_dict({k: v.clone() for k, v in sd.items()})
    assert res.missing_keys == [] and res.unexpected_keys == []
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(npy(v), npy(sd[k]))
    x = tinyfw.randn(5, 3)
    np.testing.assert_array_equal(npy(other(x)), npy(net(x)))
    # numpy arrays are accepted too (the way weights come over from torch)
    other.load_state_dict({k: npy(v).copy() for k, v in sd.items()})


def test_load_state_dict_errors_are_clear_and_atomic():
    net = Net()
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    before = npy(net.head.weight).copy()
    bad = dict(sd)
    del bad["a.fc.bias"]
    bad["extra.weight"] = tinyfw.zeros(1)
    bad["head.weight"] = tinyfw.zeros(3, 3)
    with pytest.raises(RuntimeError) as e:
        net.load_state_dict(bad)
    msg = str(e.value)
    assert "Error(s) in loading state_dict for Net" in msg
    assert 'Missing key(s) in state_dict: "a.fc.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    assert "size mismatch for head.weight: copying a param with shape (3, 3)" in msg
    assert "current model is (2, 4)" in msg
    np.testing.assert_array_equal(npy(net.head.weight), before)
    # non-strict: key differences reported, shapes still enforced
    partial = {k: v for k, v in sd.items() if k != "a.fc.bias"}
    partial["extra"] = tinyfw.zeros(1)
    res = net.load_state_dict(partial, strict=False)
    assert res.missing_keys == ["a.fc.bias"] and res.unexpected_keys == ["extra"]
    with pytest.raises(RuntimeError, match="size mismatch"):
        net.load_state_dict({"head.weight": tinyfw.zeros(1)}, strict=False)


def test_load_state_dict_keeps_parameter_identity_and_dtype():
    m = nn.Linear(2, 2)
    w = m.weight
    m.load_state_dict({"weight": tinyfw.ones(2, 2, dtype=tinyfw.float64), "bias": tinyfw.zeros(2)})
    assert m.weight is w and m.weight.dtype is tinyfw.float32
    np.testing.assert_array_equal(npy(m.weight), np.ones((2, 2), np.float32))


def test_zero_grad_train_eval_requires_grad_apply():
    net = Net()
    net(tinyfw.randn(2, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not npy(p.grad).any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.training and all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.index("Linear") < seen.index("Block")


def test_to_dtype_keeps_parameters_and_int_buffers():
    net = Net()
    p = net.head.weight
    net.to(tinyfw.float64)
    assert net.head.weight is p and p.dtype is tinyfw.float64
    assert net.a.steps.dtype is tinyfw.int64
    out = net(tinyfw.randn(2, 3, dtype=tinyfw.float64))
    assert out.dtype is tinyfw.float64
    net.float()
    assert all(q.dtype is tinyfw.float32 for q in net.parameters())
    with pytest.raises(TypeError, match="only floating-point"):
        net.to(tinyfw.int32)


def test_forward_hooks_and_pre_hooks_with_removable_handles():
    m = nn.Linear(3, 2)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: calls.append("pre") or (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append("post") or out + 1)
    x = tinyfw.randn(4, 3)
    y = m(x)
    assert calls == ["pre", "post"]
    expected = npy(m.bias) + 1
    np.testing.assert_allclose(npy(y), np.broadcast_to(expected, (4, 2)), rtol=1e-6)
    h1.remove()
    h2.remove()
    h2.remove()  # removing twice is harmless
    calls.clear()
    y = m(x)
    assert calls == []
    with m.register_forward_hook(lambda mod, args, out: calls.append(out.shape)):
        m(x)
    m(x)
    assert calls == [(4, 2)]


def test_sequential_modulelist_moduledict():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(s) == 3 and isinstance(s[-1], nn.Linear)
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[0] is s[1]
    assert [n for n, _ in sub.named_parameters()] == ["2.weight", "2.bias"]  # keys kept
    s.append(nn.Sigmoid())
    assert len(s) == 4 and s(tinyfw.randn(5, 2)).shape == (5, 1)
    with pytest.raises(IndexError, match="out of range"):
        s[7]
    from collections import OrderedDict
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert named.fc is named[0]
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    ml.append(nn.Linear(2, 1))
    assert len(ml) == 4 and len(list(ml.parameters())) == 8 and isinstance(ml[1:], nn.ModuleList)
    del ml[0]
    assert [n for n, _ in ml.named_children()] == ["0", "1", "2"]
    md = nn.ModuleDict({"enc": nn.Linear(2, 2), "dec": nn.Linear(2, 2)})
    assert list(md) == ["enc", "dec"] and "enc" in md and len(md) == 2
    with pytest.raises(KeyError, match="no module named 'zz'"):
        md["zz"]
    assert md.pop("enc") is not None and list(md.keys()) == ["dec"]


def test_deepcopy_gives_independent_parameters():
    net = Net()
    twin = copy.deepcopy(net)
    assert isinstance(twin.head.weight, nn.Parameter) and twin.head.weight.requires_grad
    with tinyfw.no_grad():
        twin.head.weight.fill_(0.0)
    assert npy(net.head.weight).any()
    assert twin.shared is twin.a.fc  # sharing is preserved


def test_parameter():
    p = nn.Parameter(tinyfw.ones(2))
    assert p.requires_grad and p.is_leaf and isinstance(p, tinyfw.Tensor)
    assert repr(p).startswith("Parameter containing:\ntensor(")
    q = nn.Parameter(tinyfw.ones(2), requires_grad=False)
    assert not q.requires_grad
    assert type(p * 2) is tinyfw.Tensor
    with pytest.raises(TypeError, match="expected a Tensor"):
        nn.Parameter([1.0])


@requires_torch
def test_repr_matches_pytorch():
    pairs = [
        (nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                       nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25),
                       nn.Linear(8, 10, bias=False), nn.LogSoftmax(dim=1)),
         torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                             torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                             torch.nn.Dropout(0.25), torch.nn.Linear(8, 10, bias=False),
                             torch.nn.LogSoftmax(dim=1))),
        (nn.LayerNorm(4), torch.nn.LayerNorm(4)),
        (nn.Embedding(10, 3, padding_idx=0), torch.nn.Embedding(10, 3, padding_idx=0)),
        (nn.LSTM(3, 4, num_layers=2, batch_first=True),
         torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)),
        (nn.GELU(approximate="tanh"), torch.nn.GELU(approximate="tanh")),
        (nn.Conv2d(4, 8, (3, 5), stride=2, groups=2, bias=False, dilation=2),
         torch.nn.Conv2d(4, 8, (3, 5), stride=2, groups=2, bias=False, dilation=2)),
        (nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (nn.Unflatten(1, (2, 3)), torch.nn.Unflatten(1, (2, 3))),
        (nn.ModuleDict({"a": nn.Linear(1, 1)}), torch.nn.ModuleDict({"a": torch.nn.Linear(1, 1)})),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)


def test_custom_extra_repr_nesting():
    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Sequential(nn.Linear(1, 2))

        def extra_repr(self):
            return "k=1"

    assert repr(Wrap()) == ("Wrap(\n  k=1\n  (inner): Sequential(\n    (0): Linear(in_features=1, "
                            "out_features=2, bias=True)\n  )\n)")


# -- init -------------------------------------------------------------------------------
@requires_torch
@pytest.mark.parametrize("nl,param", [("linear", None), ("conv2d", None), ("sigmoid", None),
                                      ("tanh", None), ("relu", None), ("leaky_relu", None),
                                      ("leaky_relu", 0.2), ("selu", None)])
def test_calculate_gain_matches_pytorch(nl, param):
    assert math.isclose(init.calculate_gain(nl, param), torch.nn.init.calculate_gain(nl, param))


def _bound_and_std(fn, shape, **kw):
    t = tinyfw.empty(*shape)
    fn(t, **kw)
    a = npy(t).astype(np.float64)
    return np.abs(a).max(), a.std()


@pytest.mark.parametrize("shape", [(64, 32), (32, 16, 3, 3)])
def test_initialiser_statistics(shape):
    fan_in = shape[1] * int(np.prod(shape[2:]))
    fan_out = shape[0] * int(np.prod(shape[2:]))
    n = int(np.prod(shape))
    tol = 4 / math.sqrt(n)  # relative sampling error of a std estimate, with margin
    b = math.sqrt(6 / (fan_in + fan_out))
    mx, sd = _bound_and_std(init.xavier_uniform_, shape)
    assert mx <= b and abs(sd / (b / math.sqrt(3)) - 1) < tol
    mx, sd = _bound_and_std(init.xavier_normal_, shape, gain=2.0)
    assert abs(sd / (2 * math.sqrt(2 / (fan_in + fan_out))) - 1) < tol
    b = math.sqrt(2) * math.sqrt(3 / fan_in)
    mx, sd = _bound_and_std(init.kaiming_uniform_, shape, nonlinearity="relu")
    assert mx <= b and abs(sd / (b / math.sqrt(3)) - 1) < tol
    mx, sd = _bound_and_std(init.kaiming_normal_, shape, mode="fan_out", nonlinearity="relu")
    assert abs(sd / (math.sqrt(2) / math.sqrt(fan_out)) - 1) < tol
    mx, sd = _bound_and_std(init.uniform_, shape, a=-2.0, b=2.0)
    assert mx <= 2.0 and abs(sd / (4 / math.sqrt(12)) - 1) < tol
    mx, sd = _bound_and_std(init.normal_, shape, std=0.5)
    assert abs(sd / 0.5 - 1) < tol
    mx, _ = _bound_and_std(init.trunc_normal_, shape, std=1.0, a=-0.5, b=0.5)
    assert mx <= 0.5


def test_init_fill_and_errors_and_determinism():
    t = tinyfw.empty(3, 2)
    np.testing.assert_array_equal(npy(init.ones_(t)), 1)
    np.testing.assert_array_equal(npy(init.zeros_(t)), 0)
    np.testing.assert_array_equal(npy(init.constant_(t, 0.5)), 0.5)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(tinyfw.empty(3))
    with pytest.raises(ValueError, match="mode 'fan' is not supported"):
        init.kaiming_uniform_(tinyfw.empty(3, 3), mode="fan")
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")
    # parameters that require grad are filled without recording a graph
    p = nn.Parameter(tinyfw.empty(2, 2))
    init.normal_(p)
    assert p.grad_fn is None and p.requires_grad
    tinyfw.manual_seed(7)
    a = npy(nn.Linear(5, 3).weight)
    tinyfw.manual_seed(7)
    b = npy(nn.Linear(5, 3).weight)
    np.testing.assert_array_equal(a, b)
    g = tinyfw.Generator(3)
    c = npy(init.uniform_(tinyfw.empty(4), generator=g))
    d = npy(init.uniform_(tinyfw.empty(4), generator=tinyfw.Generator(3)))
    np.testing.assert_array_equal(c, d)


def test_default_layer_initialisation_bounds():
    tinyfw.manual_seed(0)
    lin = nn.Linear(50, 40)
    k = 1 / math.sqrt(50)
    assert np.abs(npy(lin.weight)).max() <= k and np.abs(npy(lin.bias)).max() <= k
    assert np.abs(npy(lin.weight)).max() > 0.9 * k  # the whole range is used
    conv = nn.Conv2d(4, 6, 3)
    k = 1 / math.sqrt(4 * 9)
    assert np.abs(npy(conv.weight)).max() <= k and np.abs(npy(conv.bias)).max() <= k
    lstm = nn.LSTM(3, 16)
    k = 1 / math.sqrt(16)
    assert all(np.abs(npy(p)).max() <= k for p in lstm.parameters())
    emb = nn.Embedding(100, 20, padding_idx=3)
    assert not npy(emb.weight)[3].any() and abs(npy(emb.weight).std() - 1) < 0.1
    bn = nn.BatchNorm1d(3)
    np.testing.assert_array_equal(npy(bn.weight), 1)
    np.testing.assert_array_equal(npy(bn.bias), 0)


def test_nn_utils_vector_round_trip():
    net = Net()
    v = nn.utils.parameters_to_vector(net.parameters())
    assert v.shape == (sum(p.numel() for p in net.parameters()),)
    nn.utils.vector_to_parameters(v * 0 + 1, net.parameters())
    assert all((npy(p) == 1).all() for p in net.parameters())
    with pytest.raises(ValueError, match="does not hold"):
        nn.utils.vector_to_parameters(tinyfw.zeros(3), net.parameters())


def test_reassigned_child_and_parameter_keep_their_position():
    # PyTorch keeps the order: a Sequential whose middle layer is replaced still runs it
    # in the middle (it used to move to the end)
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    setattr(seq, "0", nn.Linear(3, 4, bias=False))
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert seq(tinyfw.ones(5, 3)).shape == (5, 2)
    lin = nn.Linear(2, 2)
    lin.weight = nn.Parameter(tinyfw.zeros(2, 2))
    assert list(dict(lin.named_parameters())) == ["weight", "bias"]
