"""tinyfw.nn.utils.prune against torch.nn.utils.prune: the same masks for the same
parameters, successive pruning, global pruning, remove."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw
from tinyfw.nn.utils import prune as P


@pytest.fixture(autouse=True, scope="module")
def _on_the_cpu():
    """Pruning masks are compared with torch's on CPU tensors, whatever device the suite runs on."""
    with tinyfw.device("cpu"):
        yield

torch = pytest.importorskip("torch")
TP = pytest.importorskip("torch.nn.utils.prune")


def _pair(shape, seed):
    """A tinyfw and a torch layer holding the same random weights."""
    w = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    if len(shape) == 4:
        a, b = tinyfw.nn.Conv2d(shape[1], shape[0], shape[2]), torch.nn.Conv2d(shape[1], shape[0], shape[2])
    else:
        a, b = tinyfw.nn.Linear(shape[1], shape[0]), torch.nn.Linear(shape[1], shape[0])
    with tinyfw.no_grad():
        a.weight.copy_(tinyfw.from_numpy(w))
    with torch.no_grad():
        b.weight.copy_(torch.from_numpy(w))
        b.bias.copy_(torch.from_numpy(a.bias.detach().cpu().numpy()))
    return a, b


def _same_mask(a, b, name="weight"):
    np.testing.assert_array_equal(getattr(a, name + "_mask").cpu().numpy(),
                                  getattr(b, name + "_mask").cpu().numpy())


shapes = st.sampled_from([(6, 4, 3, 3), (5, 7), (8, 3, 1, 1), (1, 9)])
amounts = st.one_of(st.floats(0, 1), st.integers(0, 5))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), steps=st.lists(
    st.tuples(st.sampled_from(["l1", "l1s", "l2s"]), amounts, st.integers(0, 1)),
    min_size=1, max_size=3))
def test_masks_equal_torch(shape, seed, steps):
    a, b = _pair(shape, seed)
    for kind, amount, dim in steps:
        n = 1 if kind == "l1s" else 2

        def run(mod, lib):
            if kind == "l1":
                lib.l1_unstructured(mod, "weight", amount)
            else:
                lib.ln_structured(mod, "weight", amount, n, dim)
        try:
            run(b, TP)
        except ValueError:  # more units than are left: both refuse
            with pytest.raises(ValueError, match="amount"):
                run(a, P)
            return
        run(a, P)
        _same_mask(a, b)
    x = np.random.default_rng(seed + 1).standard_normal((2,) + ((shape[1], 5, 5) if len(shape) == 4
                                                              else (shape[1],))).astype(np.float32)
    np.testing.assert_allclose(a(tinyfw.from_numpy(x)).detach().cpu().numpy(),
                               b(torch.from_numpy(x)).detach().cpu().numpy(), rtol=1e-5, atol=1e-5)


def test_reparametrisation_and_remove():
    a, _ = _pair((5, 7), 0)
    P.l1_unstructured(a, "weight", 0.4)
    assert P.is_pruned(a)
    assert set(dict(a.named_parameters())) == {"weight_orig", "bias"}
    assert "weight_mask" in dict(a.named_buffers())
    assert float((a.weight == 0).float().mean().item()) == pytest.approx(14 / 35)
    with tinyfw.no_grad():
        a.weight_orig.add_(1.0)  # the hook recomputes weight before each forward
    a(tinyfw.randn(2, 7))
    assert int((a.weight == 0).sum().item()) == 14
    P.remove(a, "weight")
    assert not P.is_pruned(a) and isinstance(a.weight, tinyfw.nn.Parameter)
    assert set(dict(a.named_parameters())) == {"weight", "bias"}
    with pytest.raises(ValueError, match="not pruned"):
        P.remove(a, "weight")


def test_global_unstructured_equals_torch():
    a1, b1 = _pair((6, 4, 3, 3), 1)
    a2, b2 = _pair((5, 7), 2)
    P.global_unstructured([(a1, "weight"), (a2, "weight")], P.L1Unstructured, amount=0.6)
    TP.global_unstructured([(b1, "weight"), (b2, "weight")], TP.L1Unstructured, amount=0.6)
    _same_mask(a1, b1)
    _same_mask(a2, b2)
    # again, on what is left, then with a layer pruned before: the masks multiply
    P.global_unstructured([(a1, "weight"), (a2, "weight")], P.L1Unstructured, amount=0.5)
    TP.global_unstructured([(b1, "weight"), (b2, "weight")], TP.L1Unstructured, amount=0.5)
    _same_mask(a1, b1)
    _same_mask(a2, b2)
    a3, b3 = _pair((4, 6), 3)
    P.l1_unstructured(a3, "weight", 0.5)
    TP.l1_unstructured(b3, "weight", 0.5)
    P.global_unstructured([(a3, "weight"), (a2, "weight")], P.L1Unstructured, amount=3)
    TP.global_unstructured([(b3, "weight"), (b2, "weight")], TP.L1Unstructured, amount=3)
    _same_mask(a3, b3)
    _same_mask(a2, b2)


def test_bad_amounts_are_refused():
    a, _ = _pair((5, 7), 0)
    with pytest.raises(ValueError, match="amount"):
        P.l1_unstructured(a, "weight", 1.5)
    with pytest.raises(TypeError, match="amount"):
        P.l1_unstructured(a, "weight", "half")
    with pytest.raises(ValueError, match="at least 2"):
        P.ln_structured(a, "bias", 1, 2, 0)
    assert not P.is_pruned(a) and "weight" in dict(a.named_parameters())
