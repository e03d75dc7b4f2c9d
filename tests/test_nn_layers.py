"""Every feed-forward layer and loss module against PyTorch: same weights, same inputs,
outputs and gradients of inputs and parameters."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
import tinyfw.nn as nn

from helpers import assert_close, npy, requires_torch, torch
from nn_oracle import compare, copy_weights

pytestmark = requires_torch
RNG = np.random.default_rng(1234)


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _both(name, *args, **kwargs):
    return getattr(torch.nn, name)(*args, **kwargs), getattr(nn, name)(*args, **kwargs)


@given(lead=st.lists(st.integers(1, 4), min_size=0, max_size=2), fin=st.integers(1, 6),
       fout=st.integers(1, 6), bias=st.booleans())
def test_linear(lead, fin, fout, bias):
    t, f = _both("Linear", fin, fout, bias=bias)
    compare(t, f, [randn(*lead, fin)])


def test_linear_float64_and_shape_error():
    t, f = _both("Linear", 4, 3)
    compare(t.double(), f.double(), [randn(2, 4, dtype=np.float64)], dtype="float64")
    with pytest.raises(RuntimeError, match=r"Linear: input of shape \(2, 5\) does not end in "
                                           r"in_features=4"):
        f(tinyfw.randn(2, 5, dtype=tinyfw.float64))


@pytest.mark.parametrize("cfg", [
    dict(in_channels=3, out_channels=4, kernel_size=3),
    dict(in_channels=2, out_channels=4, kernel_size=(3, 2), stride=2, padding=1, bias=False),
    dict(in_channels=4, out_channels=6, kernel_size=3, groups=2, dilation=2, padding=2),
    dict(in_channels=2, out_channels=3, kernel_size=3, padding="same"),
    dict(in_channels=2, out_channels=3, kernel_size=2, padding="valid", stride=(1, 2)),
])
def test_conv2d(cfg):
    # float64: a weight gradient sums N*H*W products and can cancel to a value far below
    # its terms, where float32 summation order alone moves it by more than 1e-6
    t, f = _both("Conv2d", **cfg)
    compare(t.double(), f.double(), [randn(2, cfg["in_channels"], 7, 6, dtype=np.float64)],
            dtype="float64")
    t, f = _both("Conv2d", **cfg)
    compare(t, f, [randn(2, cfg["in_channels"], 7, 6)], backward=False)


def test_conv2d_unbatched_and_errors():
    t, f = _both("Conv2d", 2, 3, 3)
    compare(t, f, [randn(2, 5, 5)])
    with pytest.raises(RuntimeError, match=r"Conv2d: expected a \(N, 2, H, W\)"):
        f(tinyfw.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="divisible by groups=2"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv2d(3, 4, 3, padding="same", stride=2)


@pytest.mark.parametrize("name,args,kwargs", [
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True)),
    ("MaxPool2d", (2,), dict(dilation=2)),
    ("AvgPool2d", (2,), {}),
    ("AvgPool2d", (3,), dict(stride=2, padding=1, count_include_pad=False, ceil_mode=True)),
    ("AvgPool2d", (2,), dict(divisor_override=3)),
    ("AdaptiveAvgPool2d", ((3, 2),), {}),
    ("AdaptiveAvgPool2d", (1,), {}),
])
def test_pooling(name, args, kwargs):
    t, f = _both(name, *args, **kwargs)
    compare(t, f, [randn(2, 3, 7, 6)])


def test_maxpool_return_indices():
    t, f = _both("MaxPool2d", 2, return_indices=True)
    of, ot = compare(t, f, [randn(1, 2, 4, 4)], backward=False)
    np.testing.assert_array_equal(npy(of[1]), ot[1].numpy())


@pytest.mark.parametrize("name,shape", [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)),
                                        ("BatchNorm2d", (4, 3, 5, 2))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_training_steps_then_eval(name, shape, momentum):
    t, f = _both(name, 3, momentum=momentum)
    with torch.no_grad():  # non-trivial affine parameters
        t.weight.uniform_(0.5, 1.5)
        t.bias.uniform_(-0.5, 0.5)
    copy_weights(t, f)
    for step in range(4):
        x = randn(*shape) * (step + 1) + step
        compare(t, f, [x], copy=False, seed=step)
        for key in ("running_mean", "running_var"):
            assert_close(getattr(f, key), getattr(t, key), msg=key)
        assert f.num_batches_tracked.item() == t.num_batches_tracked.item() == step + 1
    t.eval()
    f.eval()
    compare(t, f, [randn(*shape)], copy=False)
    assert f.num_batches_tracked.item() == 4


def test_batchnorm_without_running_stats_or_affine():
    t, f = _both("BatchNorm2d", 3, affine=False, track_running_stats=False)
    compare(t, f, [randn(4, 3, 2, 2)])
    t.eval()
    f.eval()
    compare(t, f, [randn(4, 3, 2, 2)])  # still batch statistics
    assert list(f.state_dict()) == []
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4D input, got 3D"):
        f(tinyfw.randn(2, 3, 4))
    with pytest.raises(ValueError, match="expected 3 channels"):
        f(tinyfw.randn(2, 4, 4, 4))


@pytest.mark.parametrize("shape,normalized", [((4, 5), 5), ((2, 3, 4), (3, 4))])
@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, True)])
def test_layernorm(shape, normalized, affine, bias):
    t, f = _both("LayerNorm", normalized, elementwise_affine=affine, bias=bias)
    if affine:
        with torch.no_grad():
            t.weight.uniform_(0.5, 1.5)
            if bias:
                t.bias.uniform_(-1, 1)
    compare(t, f, [randn(*shape)])


def test_dropout_p0_p1_eval_and_statistics():
    x = tinyfw.randn(1000, requires_grad=True)
    assert nn.Dropout(0.0)(x) is x
    y = nn.Dropout(1.0)(x)
    assert not npy(y).any()
    d = nn.Dropout(0.3)
    d.eval()
    assert d(x) is x
    d.train()
    tinyfw.manual_seed(0)
    n = 200_000
    big = tinyfw.ones(n, requires_grad=True)
    out = d(big)
    kept = npy(out) != 0
    # Binomial(n, 0.7): 5 standard deviations
    assert abs(kept.mean() - 0.7) < 5 * np.sqrt(0.21 / n)
    np.testing.assert_allclose(npy(out)[kept], 1 / 0.7, rtol=1e-6)
    out.sum().backward()
    np.testing.assert_array_equal(npy(big.grad) != 0, kept)
    tinyfw.manual_seed(0)
    np.testing.assert_array_equal(npy(d(big)), npy(out))  # reproducible with the seed
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding(padding_idx):
    t, f = _both("Embedding", 7, 4, padding_idx=padding_idx)
    idx = np.array([[0, 2, 6], [2, 2, 1]], dtype=np.int64)
    compare(t, f, [idx])
    if padding_idx is not None:
        row = padding_idx % 7
        assert not npy(f.weight.grad)[row].any()
    pre = nn.Embedding.from_pretrained(tinyfw.randn(3, 2))
    assert not pre.weight.requires_grad


@pytest.mark.parametrize("name,args", [("ReLU", ()), ("GELU", ()), ("GELU", ("tanh",)),
                                       ("SiLU", ()), ("Tanh", ()), ("Sigmoid", ()),
                                       ("LeakyReLU", (0.2,)), ("Softmax", (1,)),
                                       ("LogSoftmax", (-1,)), ("Softmax", ()),
                                       ("Identity", ()), ("Flatten", ()),
                                       ("Unflatten", (1, (2, 3)))])
def test_activations_and_shape_layers(name, args):
    t, f = _both(name, *args)
    compare(t, f, [randn(4, 6, 3)])


def test_inplace_activation():
    x = tinyfw.randn(5)
    y = nn.ReLU(inplace=True)(x)
    assert y is x and (npy(x) >= 0).all()


# -- losses -----------------------------------------------------------------------------
def _labels(n, c, shape=None):
    return RNG.integers(0, c, size=shape or (n,)).astype(np.int64)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_and_nll_loss_modules(reduction):
    w = RNG.uniform(0.5, 2, 5).astype(np.float32)
    tgt = _labels(6, 5)
    tgt[1] = -100
    t = torch.nn.CrossEntropyLoss(weight=torch.tensor(w), reduction=reduction,
                                  label_smoothing=0.1)
    f = nn.CrossEntropyLoss(weight=tinyfw.tensor(w), reduction=reduction, label_smoothing=0.1)
    compare(t, f, [randn(6, 5), tgt])
    t = torch.nn.CrossEntropyLoss(reduction=reduction, ignore_index=3)
    f = nn.CrossEntropyLoss(reduction=reduction, ignore_index=3)
    compare(t, f, [randn(4, 5, 3), _labels(4, 5, (4, 3))])
    t = torch.nn.NLLLoss(weight=torch.tensor(w), reduction=reduction)
    f = nn.NLLLoss(weight=tinyfw.tensor(w), reduction=reduction)
    compare(t, f, [np.log(RNG.dirichlet(np.ones(5), 6)).astype(np.float32), _labels(6, 5)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_and_binary_losses(reduction):
    a, b = randn(4, 3), randn(4, 3)
    compare(torch.nn.MSELoss(reduction=reduction), nn.MSELoss(reduction=reduction), [a, b])
    compare(torch.nn.L1Loss(reduction=reduction), nn.L1Loss(reduction=reduction), [a, b])
    p = RNG.uniform(0.05, 0.95, (4, 3)).astype(np.float32)
    y = RNG.integers(0, 2, (4, 3)).astype(np.float32)
    w = RNG.uniform(0.5, 2, 3).astype(np.float32)
    compare(torch.nn.BCELoss(weight=torch.tensor(w), reduction=reduction),
            nn.BCELoss(weight=tinyfw.tensor(w), reduction=reduction), [p, y])
    compare(torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w), reduction=reduction),
            nn.BCEWithLogitsLoss(pos_weight=tinyfw.tensor(w), reduction=reduction), [a * 4, y])


@pytest.mark.parametrize("reduction", ["batchmean", "mean", "sum"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kldiv_loss(reduction, log_target):
    logp = np.log(RNG.dirichlet(np.ones(5), 4)).astype(np.float32)
    q = RNG.dirichlet(np.ones(5), 4).astype(np.float32)
    target = np.log(q) if log_target else q
    compare(torch.nn.KLDivLoss(reduction=reduction, log_target=log_target),
            nn.KLDivLoss(reduction=reduction, log_target=log_target), [logp, target])
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.MSELoss(reduction="batchmean")


@pytest.mark.parametrize("temperature,alpha", [(1.0, 0.5), (4.0, 0.9), (2.0, 0.0), (3.0, 1.0)])
def test_distillation_loss_matches_the_hinton_formula(temperature, alpha):
    s, te, y = randn(8, 10), randn(8, 10) * 3, _labels(8, 10)

    def oracle(st, tt, yt):
        soft = torch.nn.functional.kl_div(torch.log_softmax(st / temperature, 1),
                                          torch.softmax(tt / temperature, 1),
                                          reduction="batchmean")
        return alpha * temperature ** 2 * soft + (1 - alpha) * \
            torch.nn.functional.cross_entropy(st, yt)

    class Oracle(torch.nn.Module):
        def forward(self, st, tt, yt):
            return oracle(st, tt, yt)

    of, _ = compare(Oracle(), nn.DistillationLoss(temperature, alpha), [s, te, y],
                    grad_inputs=[True, False, False])
    # the teacher is a constant: no gradient flows into it
    st_ = tinyfw.tensor(s, requires_grad=True)
    tt_ = tinyfw.tensor(te, requires_grad=True)
    nn.distillation_loss(st_, tt_, tinyfw.tensor(y), temperature, alpha).backward()
    assert tt_.grad is None and st_.grad is not None
    with pytest.raises(ValueError, match="temperature must be positive"):
        nn.DistillationLoss(temperature=0)
    with pytest.raises(ValueError, match="differ in shape"):
        nn.distillation_loss(tinyfw.randn(2, 3), tinyfw.randn(2, 4), tinyfw.tensor([0, 1]))


def test_small_cnn_end_to_end_float64():
    """A composition (conv, BN, pool, dropout(p=0), linear, CE) agrees in float64."""
    def build(m):
        return m.Sequential(m.Conv2d(1, 4, 3, padding=1), m.BatchNorm2d(4), m.ReLU(),
                            m.MaxPool2d(2), m.Flatten(), m.Dropout(0.0), m.Linear(4 * 4 * 4, 5))

    t, f = build(torch.nn).double(), build(nn).double()
    copy_weights(t, f)
    x = randn(3, 1, 8, 8, dtype=np.float64)
    y = _labels(3, 5)

    lt = torch.nn.functional.cross_entropy(t(torch.tensor(x)), torch.tensor(y))
    lf = nn.functional.cross_entropy(f(tinyfw.tensor(x)), tinyfw.tensor(y))
    assert_close(lf, lt, "float64")
    lt.backward()
    lf.backward()
    tp = dict(t.named_parameters())
    for name, p in f.named_parameters():
        assert_close(p.grad, tp[name].grad, "float64", msg=name)
