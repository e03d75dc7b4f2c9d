"""tinyfw.nn.functional: softmax family, losses, activations, embedding, one_hot,
normalize, dropout — against PyTorch, gradcheck/gradgradcheck in float64, and errors.
(Convolution/pooling: test_functional_conv.py; norms: test_functional_norm.py.)"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
import tinyfw.nn.functional as F
from helpers import npy, requires_torch, torch
from nn_check import arrays, compare, leaves

if torch is not None:
    import torch.nn.functional as TF

DTYPES = ["float32", "float64"]
shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)


# -- softmax family ------------------------------------------------------------------------
@requires_torch
@given(shape=shapes, data=st.data(), dtype=st.sampled_from(DTYPES), transposed=st.booleans(),
       fn=st.sampled_from(["softmax", "log_softmax", "softmin"]))
def test_softmax_family_matches_torch(shape, data, dtype, transposed, fn):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = arrays(np.random.default_rng(len(shape)), shape, dtype, transposed)
    compare(lambda x: getattr(F, fn)(x, dim), lambda x: getattr(TF, fn)(x, dim), [a], dtype,
            terms=shape[dim])


@requires_torch
def test_softmax_dtype_argument_and_extreme_values():
    a = np.array([[1000.0, 0.0, -1000.0], [-np.inf, 0.0, 1.0]], np.float32)
    out = F.softmax(tinyfw.tensor(a), 1, dtype=tinyfw.float64)
    assert out.dtype is tinyfw.float64
    ref = TF.softmax(torch.tensor(a), 1, dtype=torch.float64)
    np.testing.assert_allclose(npy(out), npy(ref), rtol=1e-12)
    ls = F.log_softmax(tinyfw.tensor(a), 1)
    np.testing.assert_allclose(npy(ls), TF.log_softmax(torch.tensor(a), 1).numpy(), rtol=1e-6)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax, F.softmin])
def test_softmax_family_gradgradcheck(fn):
    (x,) = leaves(np.random.default_rng(0), (3, 4))
    assert tinyfw.gradcheck(lambda t: fn(t, 1), [x])
    assert tinyfw.gradgradcheck(lambda t: fn(t, 0), [x])


# -- cross-entropy / nll ----------------------------------------------------------------------
@st.composite
def class_problems(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    extra = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    target = rng.integers(0, c, (n,) + extra)
    ignore = draw(st.sampled_from([-100, 0, 2]))
    if draw(st.booleans()):
        target.reshape(-1)[0] = ignore  # at least one ignored entry
    return {"n": n, "c": c, "extra": extra, "target": target, "ignore": ignore, "rng": rng,
            "weighted": draw(st.booleans()),
            "reduction": draw(st.sampled_from(["none", "mean", "sum"]))}


@requires_torch
@given(p=class_problems(), dtype=st.sampled_from(DTYPES),
       smoothing=st.sampled_from([0.0, 0.25]))
def test_cross_entropy_class_indices_matches_torch(p, dtype, smoothing):
    x = arrays(p["rng"], (p["n"], p["c"]) + p["extra"], dtype)
    w = p["rng"].random(p["c"]).astype(dtype) + 0.1 if p["weighted"] else None
    kw = {"ignore_index": p["ignore"], "reduction": p["reduction"], "label_smoothing": smoothing}

    compare(lambda x, t, w: F.cross_entropy(x, t, weight=w, **kw),
            lambda x, t, w: TF.cross_entropy(x, t, weight=w, **kw),
            [x, p["target"], w], dtype, terms=x.size, frozen=(2,))


@requires_torch
@given(p=class_problems(), dtype=st.sampled_from(DTYPES))
def test_nll_loss_matches_torch(p, dtype):
    x = arrays(p["rng"], (p["n"], p["c"]) + p["extra"], dtype)
    w = p["rng"].random(p["c"]).astype(dtype) + 0.1 if p["weighted"] else None
    kw = {"ignore_index": p["ignore"], "reduction": p["reduction"]}
    compare(lambda x, t, w: F.nll_loss(x, t, weight=w, **kw),
            lambda x, t, w: TF.nll_loss(x, t, weight=w, **kw),
            [x, p["target"], w], dtype, terms=x.size, frozen=(2,))


@requires_torch
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_probability_targets(reduction, weighted):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 2))
    t = rng.random((3, 4, 2))
    t /= t.sum(1, keepdims=True)
    w = rng.random(4) + 0.5 if weighted else None
    compare(lambda x, t, w: F.cross_entropy(x, t, w, reduction=reduction, label_smoothing=0.1),
            lambda x, t, w: TF.cross_entropy(x, t, w, reduction=reduction, label_smoothing=0.1),
            [x, t, w], frozen=(1, 2))


@requires_torch
def test_cross_entropy_unbatched_and_all_ignored():
    x = np.random.default_rng(2).standard_normal(5)
    compare(lambda x, t: F.cross_entropy(x, t), lambda x, t: TF.cross_entropy(x, t),
            [x, np.array(3)])
    out = F.cross_entropy(tinyfw.zeros(2, 3), tinyfw.tensor([-100, -100]))
    assert np.isnan(out.item())


def test_cross_entropy_gradgradcheck():
    rng = np.random.default_rng(3)
    x, w = leaves(rng, (4, 3), (3,))
    w = w.detach().abs() + 0.5
    t = tinyfw.tensor([0, 2, -100, 1])
    assert tinyfw.gradcheck(lambda x: F.cross_entropy(x, t, w, label_smoothing=0.2), [x])
    assert tinyfw.gradgradcheck(
        lambda x: F.cross_entropy(x, t, w, label_smoothing=0.2, reduction="none"), [x])
    assert tinyfw.gradgradcheck(lambda x: F.nll_loss(F.log_softmax(x, 1), t), [x])


def test_cross_entropy_third_order_is_finite():
    # the backward of the backward is built from tinyfw ops, so it differentiates again
    (x,) = leaves(np.random.default_rng(4), (2, 3))
    t = tinyfw.tensor([1, 0])
    (g,) = tinyfw.autograd.grad(F.cross_entropy(x, t), x, create_graph=True)
    (gg,) = tinyfw.autograd.grad((g * g).sum(), x, create_graph=True)
    (ggg,) = tinyfw.autograd.grad(gg.sum(), x)
    assert np.isfinite(npy(ggg)).all()


# -- regression and binary losses -------------------------------------------------------------
LOSSES = {
    "mse_loss": ({}, {}),
    "l1_loss": ({}, {}),
    "smooth_l1_loss": ({"beta": 0.5}, {"beta": 0.5}),
    "smooth_l1_loss_beta0": ({"beta": 0.0}, {"beta": 0.0}),
}


@requires_torch
@given(shape=shapes, dtype=st.sampled_from(DTYPES), name=st.sampled_from(sorted(LOSSES)),
       reduction=st.sampled_from(["none", "mean", "sum"]), transposed=st.booleans())
def test_pointwise_losses_match_torch(shape, dtype, name, reduction, transposed):
    rng = np.random.default_rng(len(shape))
    x, t = arrays(rng, shape, dtype, transposed), arrays(rng, shape, dtype)
    kw, tkw = LOSSES[name]
    fn = name.replace("_beta0", "")
    compare(lambda x, t: getattr(F, fn)(x, t, reduction=reduction, **kw),
            lambda x, t: getattr(TF, fn)(x, t, reduction=reduction, **tkw),
            [x, t], dtype, terms=x.size)


@requires_torch
@given(shape=shapes, dtype=st.sampled_from(DTYPES), weighted=st.booleans(),
       reduction=st.sampled_from(["none", "mean", "sum"]))
def test_binary_cross_entropy_matches_torch(shape, dtype, weighted, reduction):
    rng = np.random.default_rng(len(shape))
    x = rng.uniform(0.02, 0.98, shape).astype(dtype)
    t = rng.random(shape).astype(dtype)
    w = rng.random(shape[-1:]).astype(dtype) if weighted else None
    compare(lambda x, t, w: F.binary_cross_entropy(x, t, w, reduction=reduction),
            lambda x, t, w: TF.binary_cross_entropy(x, t, w, reduction=reduction),
            [x, t, w], dtype, terms=x.size, frozen=(1, 2))


@requires_torch
@given(shape=shapes, dtype=st.sampled_from(DTYPES), weighted=st.booleans(),
       pos=st.booleans(), reduction=st.sampled_from(["none", "mean", "sum"]))
def test_bce_with_logits_matches_torch(shape, dtype, weighted, pos, reduction):
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 30).astype(dtype)  # far into both tails
    t = rng.random(shape).astype(dtype)
    w = rng.random(shape[-1:]).astype(dtype) if weighted else None
    pw = rng.random(shape[-1:]).astype(dtype) * 3 if pos else None
    compare(lambda x, t, w, pw: F.binary_cross_entropy_with_logits(
                x, t, w, reduction=reduction, pos_weight=pw),
            lambda x, t, w, pw: TF.binary_cross_entropy_with_logits(
                x, t, w, reduction=reduction, pos_weight=pw),
            [x, t, w, pw], dtype, terms=x.size, frozen=(2, 3))


@requires_torch
def test_bce_with_logits_gradient_at_zero():
    compare(lambda x, t: F.binary_cross_entropy_with_logits(x, t),
            lambda x, t: TF.binary_cross_entropy_with_logits(x, t),
            [np.zeros(3), np.array([0.0, 0.5, 1.0])])


@requires_torch
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    rng = np.random.default_rng(5)
    x = np.log(rng.dirichlet(np.ones(4), 3))
    t = rng.dirichlet(np.ones(4), 3)
    if log_target:
        t = np.log(t + 0.1)
    compare(lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target),
            lambda x, t: TF.kl_div(x, t, reduction=reduction, log_target=log_target),
            [x, t])
    if not log_target:
        t[0, 1] = 0.0  # 0 * log 0 counts as 0 (PyTorch's target gradient there is NaN)
        compare(lambda x, t: F.kl_div(x, t, reduction=reduction),
                lambda x, t: TF.kl_div(x, t, reduction=reduction), [x, t], frozen=(1,))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "kl_div",
                                  "binary_cross_entropy_with_logits"])
def test_losses_gradgradcheck(name):
    rng = np.random.default_rng(6)
    x, t = leaves(rng, (2, 3), (2, 3))
    if name in ("binary_cross_entropy_with_logits", "kl_div"):
        t = t.detach().sigmoid()  # probabilities
    fn = getattr(F, name)
    assert tinyfw.gradcheck(lambda x: fn(x, t), [x])
    assert tinyfw.gradgradcheck(lambda x: fn(x, t, reduction="sum"), [x])


def test_binary_cross_entropy_gradcheck():
    rng = np.random.default_rng(7)
    x = tinyfw.tensor(rng.uniform(0.1, 0.9, (2, 3)), requires_grad=True)
    t = tinyfw.tensor(rng.random((2, 3)))
    assert tinyfw.gradcheck(lambda x: F.binary_cross_entropy(x, t), [x])
    assert tinyfw.gradgradcheck(lambda x: F.binary_cross_entropy(x, t), [x])


# -- activations ----------------------------------------------------------------------------------
ACTIVATIONS = {
    "hardtanh": (lambda m: (lambda x: m.hardtanh(x, -0.5, 0.8))),
    "relu6": (lambda m: (lambda x: m.relu6(x * 4))),
    "elu": (lambda m: (lambda x: m.elu(x * 40, 0.7))),
    "logsigmoid": (lambda m: (lambda x: m.logsigmoid(x * 40))),
    "relu": (lambda m: m.relu), "gelu": (lambda m: m.gelu), "silu": (lambda m: m.silu),
    "sigmoid": (lambda m: m.sigmoid), "tanh": (lambda m: m.tanh),
    "leaky_relu": (lambda m: (lambda x: m.leaky_relu(x, 0.2))),
    "softplus": (lambda m: m.softplus),
}


@requires_torch
@given(shape=shapes, dtype=st.sampled_from(DTYPES), name=st.sampled_from(sorted(ACTIVATIONS)),
       transposed=st.booleans())
def test_activations_match_torch(shape, dtype, name, transposed):
    a = arrays(np.random.default_rng(len(shape)), shape, dtype, transposed)
    make = ACTIVATIONS[name]
    compare(make(F), make(TF), [a], dtype, terms=4)


@pytest.mark.parametrize("name", ["hardtanh", "relu6", "elu", "logsigmoid"])
def test_new_activations_gradgradcheck(name):
    (x,) = leaves(np.random.default_rng(8), (2, 5))
    fn = ACTIVATIONS[name](F)
    assert tinyfw.gradcheck(fn, [x])
    assert tinyfw.gradgradcheck(fn, [x])


# -- embedding, one_hot, normalize, linear, pad ----------------------------------------------------
@requires_torch
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch(padding_idx):
    rng = np.random.default_rng(9)
    w = rng.standard_normal((5, 3))
    idx = np.array([[0, 2, 4], [2, 2, 1]])
    compare(lambda i, w: F.embedding(i, w, padding_idx),
            lambda i, w: TF.embedding(i, w, padding_idx), [idx, w])


def test_embedding_padding_row_gets_no_gradient():
    w = tinyfw.randn(4, 2, requires_grad=True)
    F.embedding(tinyfw.tensor([1, 1, 3]), w, padding_idx=1).sum().backward()
    np.testing.assert_array_equal(npy(w.grad), [[0, 0], [0, 0], [0, 0], [1, 1]])


@requires_torch
def test_one_hot_and_normalize_match_torch():
    idx = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(npy(F.one_hot(tinyfw.tensor(idx))),
                                  TF.one_hot(torch.tensor(idx)).numpy())
    out = F.one_hot(tinyfw.tensor(idx), 6)
    assert out.dtype is tinyfw.int64 and out.shape == (2, 2, 6)
    rng = np.random.default_rng(10)
    for p, dim in [(2.0, 1), (1.0, 0), (3.0, -1)]:
        compare(lambda x: F.normalize(x, p, dim), lambda x: TF.normalize(x, p, dim),
                [rng.standard_normal((3, 4))])
    z = np.zeros((2, 3))
    compare(lambda x: F.normalize(x), lambda x: TF.normalize(x), [z])


def test_normalize_and_embedding_gradcheck():
    rng = np.random.default_rng(11)
    x, w = leaves(rng, (3, 4), (5, 2))
    assert tinyfw.gradgradcheck(lambda x: F.normalize(x, dim=1), [x])
    assert tinyfw.gradgradcheck(lambda w: F.embedding(tinyfw.tensor([4, 0, 4]), w), [w])


def test_reexports_are_the_core_ops():
    from tinyfw.nn import functional_pad
    from tinyfw.ops import elementwise, linalg

    assert F.relu is elementwise.relu and F.gelu is elementwise.gelu
    assert F.linear is linalg.linear and F.tanh is elementwise.tanh
    # every pad mode; constant padding runs ops.index.pad (tests/test_api_conv_pad.py)
    assert F.pad is functional_pad.pad


# -- dropout ----------------------------------------------------------------------------------------
def test_dropout_ref_primitive_is_numpy_pcg64():
    from tinyfw.backend import ref

    x = np.ones((6, 7), np.float32)
    y, mask = ref.dropout(x, 0.3, 12345)
    u = np.random.Generator(np.random.PCG64(12345)).random((6, 7))
    np.testing.assert_array_equal(mask, u >= 0.3)
    np.testing.assert_array_equal(y, np.where(u >= 0.3, np.float32(1 / 0.7), 0))


def test_dropout_is_seeded_scaled_and_differentiable():
    x = tinyfw.randn(40, 50, requires_grad=True)
    tinyfw.manual_seed(3)
    a = F.dropout(x, 0.4)
    tinyfw.manual_seed(3)
    b = F.dropout(x, 0.4)
    np.testing.assert_array_equal(npy(a), npy(b))
    kept = npy(a) != 0
    assert 0.5 < kept.mean() < 0.7
    np.testing.assert_allclose(npy(a)[kept], npy(x)[kept] / 0.6,
                               rtol=1e-6)
    a.sum().backward()
    np.testing.assert_allclose(npy(x.grad), kept / 0.6, rtol=1e-6)
    g = tinyfw.Generator(7)
    c = F.dropout(x, 0.4, generator=g)
    d = F.dropout(x, 0.4, generator=tinyfw.Generator(7))
    np.testing.assert_array_equal(npy(c), npy(d))


def test_dropout_edge_cases():
    x = tinyfw.randn(3, 4)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(npy(F.dropout(x, 1.0)), np.zeros((3, 4), np.float32))
    y = x.clone()
    out = F.dropout(y, 0.5, inplace=True)
    assert out is y


def test_dropout_gradgradcheck():
    (x,) = leaves(np.random.default_rng(12), (3, 3))
    assert tinyfw.gradgradcheck(lambda x: F.dropout(x, 0.3, generator=tinyfw.Generator(1)), [x])


# -- errors --------------------------------------------------------------------------------------------
def _t(*shape, dtype=None):
    return tinyfw.zeros(*shape, dtype=dtype)


ERRORS = [
    (lambda: F.cross_entropy(_t(2, 5), tinyfw.tensor([7, 0])), IndexError,
     "cross_entropy: target 7 is out of range for 5 classes"),
    (lambda: F.cross_entropy(_t(2, 5), tinyfw.tensor([-1, 0])), IndexError, "target -1"),
    (lambda: F.cross_entropy(_t(2, 5), tinyfw.tensor([1.0, 0.0])), RuntimeError,
     "probability target must have the input's shape"),
    (lambda: F.cross_entropy(_t(2, 5), tinyfw.tensor([1, 0, 2])), RuntimeError,
     "needs a target of shape (2,)"),
    (lambda: F.cross_entropy(_t(2, 5, dtype=tinyfw.int64), tinyfw.tensor([1, 0])), TypeError,
     "must be a floating-point tensor, got int64"),
    (lambda: F.cross_entropy(_t(2, 5), tinyfw.tensor([1, 0]), weight=_t(4)), RuntimeError,
     "weight must have shape (5,)"),
    (lambda: F.cross_entropy(_t(2, 5), tinyfw.tensor([1, 0]), reduction="avg"), ValueError,
     "'avg' is not a valid value for reduction"),
    (lambda: F.cross_entropy(_t(2, 5), tinyfw.tensor([1, 0]), label_smoothing=1.5), ValueError,
     "label_smoothing must be in [0, 1]"),
    (lambda: F.cross_entropy(_t(2, 5), tinyfw.tensor([True, False])), TypeError,
     "must be an integer tensor, got bool"),
    (lambda: F.nll_loss(_t(2, 3), tinyfw.tensor([3, 0])), IndexError,
     "nll_loss: target 3 is out of range for 3 classes"),
    (lambda: F.nll_loss(_t(3), tinyfw.tensor([0])), RuntimeError, "needs a target of shape ()"),
    (lambda: F.binary_cross_entropy(tinyfw.tensor([0.5, 1.5]), tinyfw.tensor([0.0, 1.0])),
     ValueError, "must lie in [0, 1]"),
    (lambda: F.binary_cross_entropy(_t(2), _t(3)), ValueError, "target shape (3,) differs"),
    (lambda: F.binary_cross_entropy_with_logits(_t(2, 2), _t(2)), ValueError,
     "target shape (2,) differs from input shape (2, 2)"),
    (lambda: F.mse_loss(_t(2, dtype=tinyfw.int64), _t(2)), TypeError, "mse_loss: input must be"),
    (lambda: F.kl_div(_t(2), _t(2), reduction="batch"), ValueError, "'batch' is not a valid"),
    (lambda: F.smooth_l1_loss(_t(2), _t(2), beta=-1.0), ValueError, "beta must be non-negative"),
    (lambda: F.softmax(_t(2, 3), 2), IndexError, "softmax: dim 2 is out of range"),
    (lambda: F.log_softmax(_t(2, 3), -3), IndexError, "log_softmax: dim -3 is out of range"),
    (lambda: F.embedding(tinyfw.tensor([5]), _t(5, 2)), IndexError,
     "embedding: index 5 is out of range for 5 embeddings"),
    (lambda: F.embedding(tinyfw.tensor([0.0]), _t(5, 2)), TypeError, "indices must be an integer"),
    (lambda: F.embedding(tinyfw.tensor([0]), _t(5)), RuntimeError, "weight must be 2-d"),
    (lambda: F.embedding(tinyfw.tensor([0]), _t(5, 2), sparse=True), ValueError,
     "sparse gradients"),
    (lambda: F.one_hot(tinyfw.tensor([0, 4]), 3), RuntimeError,
     "class value 4 is not smaller than num_classes 3"),
    (lambda: F.one_hot(tinyfw.tensor([-1])), RuntimeError, "must be non-negative"),
    (lambda: F.one_hot(tinyfw.tensor([0.0])), TypeError, "only int64 index tensors"),
    (lambda: F.dropout(_t(2), 1.5), ValueError, "between 0 and 1, got 1.5"),
    (lambda: F.dropout(_t(2, dtype=tinyfw.int64), 0.5), TypeError, "dropout: input must be"),
    (lambda: F.hardtanh(_t(2), 1.0, -1.0), ValueError, "min_val 1.0 is greater than max_val"),
    (lambda: F.normalize(_t(2, dtype=tinyfw.int64)), TypeError, "normalize: input must be"),
]


@pytest.mark.parametrize("call,exc,msg", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors(call, exc, msg):
    with pytest.raises(exc) as info:
        call()
    assert msg in str(info.value)


@requires_torch
@pytest.mark.parametrize("backend", ["ref", "cpu"])
def test_empty_batch_pooling_and_empty_softmax_dim(backend):
    """Size-0 dims go through the kernels like any other size, as in PyTorch."""
    prev = tinyfw.get_backend().__name__.rsplit(".", 1)[-1]
    tinyfw.set_backend(backend)
    try:
        x = tinyfw.randn(0, 3, 8, 8, requires_grad=True)
        y = F.max_pool2d(x, 2)
        y.sum().backward()
        ty = torch.nn.functional.max_pool2d(torch.zeros(0, 3, 8, 8), 2)
        assert y.shape == tuple(ty.shape) and x.grad.shape == x.shape
        z = tinyfw.randn(3, 0)
        assert F.softmax(z, 1).shape == (3, 0) and F.log_softmax(z, 1).shape == (3, 0)
        lse = z.logsumexp(1)
        assert lse.tolist() == torch.zeros(3, 0).logsumexp(1).tolist() == [float("-inf")] * 3
    finally:
        tinyfw.set_backend(prev)
