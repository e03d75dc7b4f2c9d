"""prune.shrink (physical shrinking after structured pruning), prune_channels, the
iterative schedule and the sparsity report: a shrunk model computes what the masked one
computed, with fewer parameters and FLOPs (its speed-up is measured in
benchmarks/bench_quant.py, not in a timed test)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw
import tinyfw.nn as nn
from tinyfw.nn.utils import prune as P
from tinyfw.profiler import model_flops


def _cnn(c1=16, c2=32):
    """The digits CNN's shape (examples/train_digits.py)."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3),
        nn.Linear(c2 * 16, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10))


def _settled(model, x):
    """Running statistics that are not the initial 0/1 (so BN shifts matter), eval mode."""
    model.train()
    with tinyfw.no_grad():
        for _ in range(3):
            model(x * 1.5 + 0.3)
    return model.eval()


def _out(model, x):
    with tinyfw.no_grad():
        return model(x).cpu().numpy().astype(np.float64)


def _nparams(model):
    return sum(p.numel() for p in model.parameters())


def _close(a, b):
    # the folded biases are summed in float64 and rounded once; the masked model adds
    # the same terms in float32 inside its kernels: a few float32 ulps of the output scale
    np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * max(1.0, np.abs(b).max()))


def test_shrunk_digits_cnn_equals_masked_and_is_smaller():
    tinyfw.manual_seed(0)
    x = tinyfw.randn(64, 1, 8, 8)
    model = _settled(_cnn(), x)
    P.prune_channels(model, 0.5)
    masked = _out(model, x)
    n0, f0 = _nparams(model), model_flops(model, (1, 1, 8, 8))
    P.shrink(model)
    assert not P.is_pruned(model)
    _close(_out(model, x), masked)
    assert [model[0].out_channels, model[3].in_channels, model[3].out_channels] == [8, 8, 16]
    assert model[1].num_features == 8 and model[4].num_features == 16
    assert (model[9].in_features, model[9].out_features) == (16 * 16, 32)
    assert model[12].out_features == 10  # the output keeps its width
    # 1*9*8+8 + 2*8 + 8*9*16+16 + 2*16 + 256*32+32 + 32*10+10 (BN weight+bias per channel)
    assert _nparams(model) == 9850 and n0 > 3.5 * _nparams(model)
    assert model_flops(model, (1, 1, 8, 8)) < 0.3 * f0


def test_shrunk_model_trains():
    tinyfw.manual_seed(1)
    x, y = tinyfw.randn(32, 1, 8, 8), tinyfw.randint(0, 10, (32,))
    model = _settled(_cnn(), x)
    P.prune_channels(model, 0.5)
    P.shrink(model).train()
    assert all(p.requires_grad for p in model.parameters())
    opt = tinyfw.optim.SGD(model.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.step()


acts = st.sampled_from([nn.ReLU, nn.GELU, nn.Sigmoid, nn.Tanh, lambda: nn.LeakyReLU(0.2)])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), amount=st.sampled_from([1, 2, 0.5, 0.7]), act=acts,
       bn=st.booleans(), pool=st.booleans(), bias=st.booleans())
def test_constants_of_pruned_channels_fold_exactly(seed, amount, act, bn, pool, bias):
    """Without zero_outputs the pruned channels still emit bias -> BN -> activation: folded
    into the next bias (Linear consumers, an unpadded conv consumer, through Flatten)."""
    tinyfw.manual_seed(seed)
    layers = [nn.Conv2d(3, 6, 3, bias=bias)] + ([nn.BatchNorm2d(6)] if bn else []) + [act()]
    layers += [nn.Conv2d(6, 5, 2, stride=2, bias=bias), act()]
    layers += [nn.AvgPool2d(2)] if pool else []
    layers += [nn.Flatten(), nn.Linear(5 * (1 if pool else 4), 7, bias=bias), act(),
               nn.Linear(7, 4)]
    model = nn.Sequential(*layers)
    x = tinyfw.randn(8, 3, 6, 6)
    _settled(model, x)
    P.prune_channels(model, amount, n=1, zero_outputs=False)
    masked = _out(model, x)
    n0 = _nparams(model)
    P.shrink(model)
    _close(_out(model, x), masked)
    assert _nparams(model) < n0


def test_unfoldable_constant_is_refused_until_zeroed():
    tinyfw.manual_seed(3)
    x = tinyfw.randn(16, 1, 8, 8)
    model = _settled(_cnn(), x)
    P.prune_channels(model, 0.5, zero_outputs=False)
    with pytest.raises(ValueError, match="zero_pruned_channels"):
        P.shrink(model)
    P.zero_pruned_channels(model)
    masked = _out(model, x)
    P.shrink(model)
    _close(_out(model, x), masked)


def test_unread_input_channels_go_too():
    """A consumer that no longer reads a channel (input-channel pruning, dim=1) lets the
    producer drop it, whatever the producer emits there."""
    tinyfw.manual_seed(4)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    x = tinyfw.randn(4, 5)
    P.ln_structured(model[2], "weight", 3, 1, dim=1)
    masked = _out(model, x)
    P.shrink(model)
    assert model[0].out_features == 5 and model[2].in_features == 5
    _close(_out(model, x), masked)


def test_float64_model_stays_float64():
    tinyfw.manual_seed(8)
    f64 = tinyfw.float64
    model = nn.Sequential(nn.Linear(5, 6, dtype=f64), nn.BatchNorm1d(6, dtype=f64), nn.ReLU(),
                          nn.Linear(6, 2, dtype=f64))
    x = tinyfw.randn(9, 5, dtype=tinyfw.float64)
    _settled(model, x)
    P.prune_channels(model, 0.5, zero_outputs=False)
    masked = _out(model, x)
    P.shrink(model)
    assert {p.dtype for p in model.parameters()} == {tinyfw.float64}
    assert model[1].running_mean.dtype == tinyfw.float64
    np.testing.assert_allclose(_out(model, x), masked, rtol=0, atol=1e-12)


def test_every_channel_pruned_is_an_error():
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    P.ln_structured(model[0], "weight", 4, 2, dim=0)
    with pytest.raises(ValueError, match="every channel of layer '0'"):
        P.shrink(model)


def test_nested_sequential_and_untouched_layers():
    tinyfw.manual_seed(5)
    inner = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 6))
    model = nn.Sequential(inner, nn.ReLU(), nn.Linear(6, 2))
    x = tinyfw.randn(3, 6)
    P.prune_channels(model, 0.4)
    masked = _out(model, x)
    P.shrink(model)
    # inside `inner` the hidden layer shrinks; inner's output leaves its Sequential
    assert inner[0].out_features == 6 and inner[2].out_features == 6
    _close(_out(model, x), masked)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_iterative_prune_reaches_the_target(scope):
    tinyfw.manual_seed(6)
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 10))
    rounds = []
    hist = P.iterative_prune(model, 0.9, 4, rounds.append, scope=scope)
    assert rounds == [1, 2, 3, 4]
    assert [h["target"] for h in hist] == pytest.approx(P.sparsity_schedule(0.9, 4))
    for h in hist:  # each round's count is rounded to whole entries
        assert h["sparsity"] == pytest.approx(h["target"], abs=0.01)
    w0 = model[0].weight.detach().cpu().numpy()
    assert np.mean(w0 == 0) == pytest.approx(0.9, abs=0.01 if scope == "layer" else 0.1)


def test_iterative_structured_prune_then_shrink():
    tinyfw.manual_seed(7)
    x = tinyfw.randn(16, 1, 8, 8)
    model = _settled(_cnn(), x)
    hist = P.iterative_prune(model, 0.5, 2, structured=True, schedule="linear")
    assert [h["sparsity"] for h in hist] == pytest.approx([0.25, 0.5], abs=0.02)
    masked = _out(model, x)
    P.shrink(model)
    _close(_out(model, x), masked)
    assert model[0].out_channels == 8 and model[9].out_features == 32


def test_schedule_bad_arguments():
    with pytest.raises(ValueError, match="target"):
        P.sparsity_schedule(1.0, 3)
    with pytest.raises(ValueError, match="rounds"):
        P.sparsity_schedule(0.5, 0)
    with pytest.raises(ValueError, match="kind"):
        P.sparsity_schedule(0.5, 2, "exp")
    assert P.sparsity_schedule(0.8, 2, "cubic") == pytest.approx([0.7, 0.8])


def test_sparsity_report_counts_masked_zeros():
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2, bias=False))
    P.l1_unstructured(model[0], "weight", 8)
    rep = P.sparsity_report(model)
    assert set(rep) == {"0", "2", "total"}
    assert rep["0"]["params"] == 25 and rep["0"]["zeros"] == 8 and rep["0"]["pruned"]
    assert rep["0"]["weight_sparsity"] == pytest.approx(8 / 20)
    assert rep["2"] == {"type": "Linear", "params": 10, "zeros": 0, "sparsity": 0.0,
                        "weight_sparsity": 0.0, "pruned": False}
    assert rep["total"]["params"] == 35 and rep["total"]["zeros"] == 8
    table = str(rep)
    assert "Linear" in table and "32.0%" in table.splitlines()[2] and "22.9%" in table
