"""Issue 16: lazy modules (LazyLinear, LazyBatchNorm1d/2d/3d, LazyInstanceNorm1d/2d/3d):
the first input fixes the sizes, the parameters keep their identity (an optimizer made
before still trains them), load_state_dict materialises them, and the module becomes its
ordinary class — as in PyTorch."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinyfw
from helpers import npy, requires_torch, torch
from nn_oracle import compare


def test_lazy_linear_infers_in_features_and_keeps_parameter_identity():
    m = tinyfw.nn.LazyLinear(3)
    assert isinstance(m.weight, tinyfw.nn.UninitializedParameter)
    assert m.has_uninitialized_params()
    opt = tinyfw.optim.SGD(m.parameters(), lr=0.1)
    w = m.weight
    m(tinyfw.randn(4, 5)).sum().backward()
    assert type(m) is tinyfw.nn.Linear and m.in_features == 5
    assert m.weight is w and type(w) is tinyfw.nn.Parameter and tuple(w.shape) == (3, 5)
    bound = 1 / math.sqrt(5)  # Linear's kaiming_uniform_(a=sqrt(5)) bound, and the bias's
    assert np.abs(npy(w)).max() <= bound and np.abs(npy(m.bias)).max() <= bound
    before = npy(w).copy()
    opt.step()
    assert not np.array_equal(before, npy(m.weight))


@requires_torch
def test_lazy_linear_state_dict_and_outputs_match_torch():
    tm, fm = torch.nn.LazyLinear(4).double(), tinyfw.nn.LazyLinear(4, dtype=tinyfw.float64)
    x = np.random.default_rng(0).standard_normal((3, 6))
    tm(torch.from_numpy(x))
    fm(tinyfw.tensor(x))
    assert list(fm.state_dict()) == list(tm.state_dict())
    compare(tm, fm, [x], dtype="float64")


def test_load_state_dict_materialises_a_lazy_module():
    src = tinyfw.nn.Linear(7, 3)
    m = tinyfw.nn.LazyLinear(3)
    m.load_state_dict(src.state_dict())
    assert type(m) is tinyfw.nn.Linear and m.in_features == 7
    assert np.array_equal(npy(m.weight), npy(src.weight))
    bn = tinyfw.nn.LazyBatchNorm1d()
    bn.load_state_dict(tinyfw.nn.BatchNorm1d(5).state_dict())
    assert type(bn) is tinyfw.nn.BatchNorm1d and bn.num_features == 5


@requires_torch
@pytest.mark.parametrize("name,shape", [("LazyBatchNorm1d", (4, 3, 5)), ("LazyBatchNorm2d", (2, 3, 4, 4)),
                                        ("LazyBatchNorm3d", (2, 3, 2, 2, 3)),
                                        ("LazyInstanceNorm1d", (2, 3, 6)),
                                        ("LazyInstanceNorm2d", (2, 3, 4, 3)),
                                        ("LazyInstanceNorm3d", (2, 3, 2, 3, 2))])
def test_lazy_norms_become_their_class_and_match_torch(name, shape):
    tm = getattr(torch.nn, name)().double()
    fm = getattr(tinyfw.nn, name)(dtype=tinyfw.float64)
    x = np.random.default_rng(1).standard_normal(shape)
    yt = tm(torch.from_numpy(x))
    yf = fm(tinyfw.tensor(x))
    assert type(fm).__name__ == type(tm).__name__ == name[4:]
    np.testing.assert_allclose(npy(yf), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert list(fm.state_dict()) == list(tm.state_dict())
    compare(tm, fm, [x], dtype="float64")


def test_lazy_instance_norm_takes_channels_of_an_unbatched_input():
    m = tinyfw.nn.LazyInstanceNorm1d(affine=True)
    m(tinyfw.randn(4, 6))
    assert m.num_features == 4 and tuple(m.weight.shape) == (4,)


def test_lazy_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least one dimension"):
        tinyfw.nn.LazyLinear(3)(tinyfw.tensor(1.0))
    with pytest.raises(ValueError, match="no channel dimension"):
        tinyfw.nn.LazyBatchNorm1d()(tinyfw.randn(3))
