"""Issue 16 dropout variants (tinyfw/nn/functional_dropout.py, nn/modules/dropout_more.py).

The streams are tinyfw's, so the tests check the structure of the masks (whole channels
zeroed, the kept ones scaled by 1/(1-p) exactly, the gradient equal to the mask), the
identities (eval, p=0, empty), p=1, and statistics whose false-failure probability is
stated; PyTorch gives the alpha-dropout constants (its outputs on a zero input)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tinyfw
import tinyfw.nn as nn
import tinyfw.nn.functional as F
from helpers import npy, requires_torch, torch

TH = torch.nn.functional if torch is not None else None

# (fn, batched shape, unbatched shape or None)
CHANNEL = [("dropout1d", (3, 5, 4), (5, 4)), ("dropout2d", (3, 5, 2, 3), None),
           ("dropout3d", (2, 5, 2, 2, 3), (5, 2, 2, 3))]


def _gen(seed: int) -> tinyfw.Generator:
    return tinyfw.Generator().manual_seed(seed)


def _channels_dropped(x: np.ndarray, y: np.ndarray, p: float, dtype) -> np.ndarray:
    """Per (n, c) channel of (N, C, ...): True if zeroed, after asserting the others are
    x * fl(1 / (1 - p)) exactly."""
    scale = np.array(1.0 / (1.0 - p), dtype=dtype)
    flat_x = x.reshape(x.shape[0], x.shape[1], -1)
    flat_y = y.reshape(flat_x.shape)
    dropped = np.all(flat_y == 0, axis=2)
    kept = np.all(flat_y == flat_x * scale, axis=2)
    assert np.all(dropped ^ kept), "a channel is neither zeroed nor scaled as a whole"
    return dropped


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,batched,unbatched", CHANNEL, ids=[c[0] for c in CHANNEL])
def test_whole_channels_and_gradient(name, batched, unbatched, dtype):
    p = 0.4
    for shape in (batched, unbatched):
        if shape is None:
            continue
        a = np.random.default_rng(0).uniform(0.5, 2.0, shape).astype(dtype)  # no zeros
        x = tinyfw.tensor(a, requires_grad=True)
        y = getattr(F, name)(x, p, generator=_gen(1))
        assert y.dtype == x.dtype and tuple(y.shape) == shape
        a4 = a if shape == batched else a[None]
        y4 = npy(y) if shape == batched else npy(y)[None]
        _channels_dropped(a4, y4, p, dtype)
        y.sum().backward()  # the gradient is the mask times the scale
        np.testing.assert_array_equal(npy(x.grad) * a, npy(y))


@pytest.mark.parametrize("name,batched,unbatched", CHANNEL, ids=[c[0] for c in CHANNEL])
def test_channel_drop_rate(name, batched, unbatched):
    """20000 channels dropped with p = 0.3: the fraction is off by more than 5 standard
    deviations (5 * sqrt(p(1-p)/n) = 0.016) with probability < 6e-7."""
    p, n = 0.3, 20000
    shape = (n // 4, 4) + batched[2:]
    x = tinyfw.ones(*shape)
    y = getattr(F, name)(x, p, generator=_gen(2))
    frac = _channels_dropped(np.ones(shape), npy(y), p, np.float32).mean()
    assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("name", ["dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
                                  "feature_alpha_dropout"])
def test_identities(name):
    shape = {"dropout1d": (2, 3, 4), "dropout2d": (2, 3, 2, 2)}.get(name, (2, 3, 2, 2, 2))
    x = tinyfw.randn(*shape)
    fn = getattr(F, name)
    assert fn(x, 0.5, training=False) is x
    assert fn(x, 0.0, training=True) is x
    e = tinyfw.zeros(0, *shape[1:])
    assert fn(e, 0.5, training=True) is e
    y = fn(x, 1.0, training=True)
    assert np.all(npy(y) == 0) and tuple(y.shape) == shape


@pytest.mark.parametrize("name", ["dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
                                  "feature_alpha_dropout"])
def test_inplace(name):
    shape = {"dropout1d": (2, 3, 4), "dropout2d": (2, 3, 2, 2)}.get(name, (2, 3, 2, 2, 2))
    x = tinyfw.ones(*shape)
    y = getattr(F, name)(x, 0.5, True, True, generator=_gen(3))
    assert y is x and x._version[0] > 0 and not np.all(npy(x) == 1)
    leaf = tinyfw.ones(*shape, requires_grad=True)
    z = leaf * 1
    getattr(F, name)(z, 0.5, True, True, generator=_gen(3)).sum().backward()
    assert leaf.grad is not None


def test_dropout2d_3d_input_warns_and_drops_channels_of_n_c_l():
    x = tinyfw.ones(40, 30, 5)
    with pytest.warns(UserWarning, match="dropout2d: a 3-d input is treated as"):
        y = F.dropout2d(x, 0.5, generator=_gen(4))
    _channels_dropped(np.ones((40, 30, 5)), npy(y), 0.5, np.float32)


def test_dropout3d_other_ranks_warn_and_get_a_batch_dim():
    x = tinyfw.ones(30, 4, 5)  # PyTorch adds a batch dim: channels are dim 0 here
    with pytest.warns(UserWarning, match="dropout3d: received a 3-d input"):
        y = F.dropout3d(x, 0.5, generator=_gen(5))
    _channels_dropped(np.ones((1, 30, 20)), npy(y).reshape(1, 30, 20), 0.5, np.float32)


ERRORS = [
    (lambda: F.dropout1d(tinyfw.ones(2, 3, 4, 5)), RuntimeError, "dropout1d: expected a 2-d"),
    (lambda: F.dropout2d(tinyfw.ones(2, 3, 4, 5), p=1.5), ValueError, "dropout2d: dropout "),
    (lambda: F.alpha_dropout(tinyfw.ones(3), p=-0.1, training=True), ValueError,
     "alpha_dropout: dropout probability"),
    (lambda: F.feature_alpha_dropout(tinyfw.ones(3), 0.5, True), RuntimeError,
     "feature_alpha_dropout: feature dropout needs at least 2 dims"),
    (lambda: F.dropout3d(tinyfw.tensor([[[[1, 2]]]])), TypeError, "dropout3d"),
    (lambda: nn.Dropout2d(p=2.0), ValueError, "Dropout2d: dropout probability"),
]


@pytest.mark.parametrize("k", range(len(ERRORS)))
def test_errors(k):
    fn, exc, msg = ERRORS[k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(exc, match=msg):
            fn()


# -- alpha dropout -----------------------------------------------------------------------
@requires_torch
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_alpha_dropout_constants_match_torch(p):
    """On a zero input the output takes two values: the kept a * alpha' * p and the dropped
    -a * alpha' * (1 - p); PyTorch's and tinyfw's agree to float64 rounding."""
    y = npy(F.alpha_dropout(tinyfw.zeros(4000, dtype=tinyfw.float64), p, True,
                            generator=_gen(6)))
    yt = TH.alpha_dropout(torch.zeros(4000, dtype=torch.float64), p, True).numpy()
    ours, theirs = np.unique(y), np.unique(yt)
    assert len(ours) == len(theirs) == 2
    np.testing.assert_allclose(ours, theirs, rtol=4e-16)


@pytest.mark.parametrize("feature", [False, True])
def test_alpha_dropout_structure_and_moments(feature):
    """Kept elements are a * x + b, dropped ones the constant; for x ~ N(0, 1) the output
    keeps mean 0 and variance 1 (the point of alpha dropout).  With n = 200000 samples
    the mean is off by 6 standard errors (6 / sqrt(n)) and the variance by 6 * sqrt(m4 / n)
    with probability < 2e-9 each."""
    p, alpha = 0.2, 1.7580993408473766
    a_ = 1 / math.sqrt((alpha ** 2 * p + 1) * (1 - p))
    rng = np.random.default_rng(7)
    shape = (2000, 100) if not feature else (1000, 200, 1)
    x = rng.standard_normal(shape)
    fn = F.feature_alpha_dropout if feature else F.alpha_dropout
    xt = tinyfw.tensor(x, requires_grad=True)
    y = fn(xt, p, True, generator=_gen(8))
    yv = npy(y)
    dropped_value = -alpha * a_ * (1 - p)
    kept = np.abs(yv - (a_ * x + alpha * a_ * p)) <= 1e-12
    dropped = np.abs(yv - dropped_value) <= 1e-12
    assert np.all(kept | dropped)
    if feature:
        assert np.all(dropped.all(2) | ~dropped.any(2))
    n = yv.size
    assert abs(yv.mean()) < 6 / math.sqrt(n)
    m4 = np.mean((yv - yv.mean()) ** 4)
    assert abs(yv.var() - 1) < 6 * math.sqrt(m4 / n)
    y.sum().backward()
    np.testing.assert_allclose(npy(xt.grad), np.where(kept, a_, 0.0), rtol=1e-15)


# -- modules --------------------------------------------------------------------------------
MODULES = [("Dropout1d", (2, 3, 4)), ("Dropout2d", (2, 3, 2, 2)), ("Dropout3d", (2, 3, 2, 2, 2)),
           ("AlphaDropout", (4, 5)), ("FeatureAlphaDropout", (2, 3, 2))]


@requires_torch
@pytest.mark.parametrize("name,shape", MODULES, ids=[m[0] for m in MODULES])
def test_modules(name, shape):
    m, mt = getattr(nn, name)(0.3), getattr(torch.nn, name)(0.3)
    assert repr(m) == repr(mt)
    x = tinyfw.ones(*shape)
    m.eval()
    assert m(x) is x
    m.train()
    y = npy(m(x))
    assert y.shape == shape and len(np.unique(y)) <= 2
    mi = getattr(nn, name)(0.3, inplace=True)
    assert repr(mi) == repr(getattr(torch.nn, name)(0.3, inplace=True))
