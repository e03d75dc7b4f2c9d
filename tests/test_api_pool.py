"""Issue 16, pooling: 1-d/3-d max and avg pooling, *_with_indices, adaptive pooling, Lp
pooling, max unpooling and fractional max pooling against PyTorch (forward, backward,
float64/float32), float64 gradcheck, and the active backend against ref (op_table)."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from op_table import KINDS, OpCase, case_id, check, normal, unary
from helpers import torch

TF = torch.nn.functional if torch is not None else None


def _tf(name):
    return lambda *a, **k: getattr(F, name)(*a, **k)


def _th(name):
    return lambda *a, **k: getattr(TF, name)(*a, **k)


def both(name: str, inputs, *args, terms: int = 1, **kwargs) -> OpCase:
    """OpCase of F.<name>(x, *args, **kwargs) against torch's."""
    label = f"{name}{args}{kwargs}" if (args or kwargs) else name
    return OpCase(label, lambda *x: getattr(F, name)(*x, *args, **kwargs),
                  lambda *x: getattr(TF, name)(*x, *args, **kwargs), inputs, terms=terms)


def unpool_inputs(n: int, shape: tuple, k: int):
    """Pooled values and valid, distinct indices of a k-window pooling of `shape` (one per
    window, picked at random inside it, as max pooling would)."""
    def make(rng, dtype):
        nb, c = shape[:2]
        sp = shape[2:]
        out = tuple(s // k for s in sp)
        vals = rng.standard_normal((nb, c) + out).astype(dtype)
        grids = np.meshgrid(*[np.arange(o) for o in out], indexing="ij")
        flat = np.zeros((nb, c) + out, np.int64)
        for d in range(n):
            pos = grids[d] * k + rng.integers(0, k, (nb, c) + out)
            flat = flat * sp[d] + pos
        return [vals, flat]
    return make


def frac_inputs(shape: tuple, n: int):
    def make(rng, dtype):
        return [rng.standard_normal(shape).astype(dtype),
                rng.random((shape[0], shape[1], n)).astype(dtype)]
    return make


X1, X2, X3 = normal((2, 3, 11)), normal((2, 3, 7, 9)), normal((2, 2, 5, 6, 7))
POS1, POS2 = unary(2, 3, 11, low=0.2, high=2.0), unary(2, 3, 7, 9, low=0.2, high=2.0)
POS3 = unary(2, 2, 5, 6, 7, low=0.2, high=2.0)

CASES = [
    both("max_pool1d", X1, 3), both("max_pool1d", X1, 3, 2, 1, 2, True, True),
    both("max_pool1d", normal((3, 10)), 4, 3, 2),
    both("max_pool1d_with_indices", X1, 2, 1),
    both("max_pool2d_with_indices", X2, (2, 3), (2, 1), (1, 1), 1, True),
    both("max_pool3d", X3, 2), both("max_pool3d", X3, 3, 2, 1, (1, 2, 1), True, True),
    both("max_pool3d", normal((2, 4, 5, 6)), (2, 3, 2), (1, 2, 2), (1, 1, 0)),
    both("max_pool3d_with_indices", X3, (3, 2, 2), 2, 0, 1, True),
    both("avg_pool1d", X1, 3), both("avg_pool1d", X1, 4, 3, 2, True, False),
    both("avg_pool1d", normal((3, 10)), 3, 2, 1, False, True),
    both("avg_pool3d", X3, 2), both("avg_pool3d", X3, (3, 2, 3), (2, 1, 2), (1, 1, 0), True),
    both("avg_pool3d", X3, 3, 2, 1, True, False),
    both("avg_pool3d", X3, (2, 3, 2), 1, (1, 1, 1), False, True, 5),
    both("avg_pool3d", normal((2, 4, 5, 6)), 2, 1, 1, True, False),
    both("adaptive_avg_pool1d", X1, 4), both("adaptive_avg_pool1d", normal((3, 5)), 8),
    both("adaptive_avg_pool3d", X3, (2, None, 4)), both("adaptive_avg_pool3d", X3, 3),
    both("adaptive_avg_pool3d", normal((2, 3, 4, 5)), (5, 2, 7)),
    both("adaptive_max_pool1d", X1, 4, True), both("adaptive_max_pool1d", normal((3, 5)), 3),
    both("adaptive_max_pool2d", X2, (3, None), True), both("adaptive_max_pool2d", X2, 4),
    both("adaptive_max_pool3d", X3, (2, 4, 5), True),
    both("adaptive_max_pool3d", normal((2, 4, 5, 6)), (3, None, 4)),
    both("adaptive_max_pool1d_with_indices", X1, 5),
    both("adaptive_max_pool2d_with_indices", X2, (2, 5)),
    both("adaptive_max_pool3d_with_indices", X3, 2),
    both("lp_pool1d", POS1, 2.0, 3, 2), both("lp_pool1d", X1, 1.0, 4, None, True),
    both("lp_pool2d", POS2, 3.0, (2, 3)), both("lp_pool2d", POS2, 2.0, 2, 1, True),
    both("lp_pool3d", POS3, 2.0, 2), both("lp_pool3d", POS3, 1.5, (2, 3, 2), 1, True),
    OpCase("max_unpool1d", _tf("max_unpool1d"), _th("max_unpool1d"),
           lambda rng, dt: unpool_inputs(1, (2, 3, 8), 2)(rng, dt) + [2]),
    OpCase("max_unpool2d", _tf("max_unpool2d"), _th("max_unpool2d"),
           lambda rng, dt: unpool_inputs(2, (2, 3, 6, 8), 2)(rng, dt) + [2]),
    OpCase("max_unpool2d_size", lambda x, i: F.max_unpool2d(x, i, 2, output_size=(7, 9)),
           lambda x, i: TF.max_unpool2d(x, i, 2, output_size=(7, 9)),
           unpool_inputs(2, (2, 3, 6, 8), 2)),
    OpCase("max_unpool3d", _tf("max_unpool3d"), _th("max_unpool3d"),
           lambda rng, dt: unpool_inputs(3, (2, 2, 4, 6, 4), 2)(rng, dt) + [2]),
    OpCase("max_unpool3d_unbatched", lambda x, i: F.max_unpool3d(x[0], i[0], 2, 2, 0),
           lambda x, i: TF.max_unpool3d(x[0], i[0], 2, 2, 0), unpool_inputs(3, (1, 2, 4, 4, 6), 2)),
    OpCase("fractional_max_pool2d",
           lambda x, s: F.fractional_max_pool2d(x, (2, 3), (4, 5), return_indices=True,
                                                _random_samples=s),
           lambda x, s: TF.fractional_max_pool2d(x, (2, 3), (4, 5), return_indices=True, _random_samples=s),
           frac_inputs((2, 3, 7, 9), 2), frozen=(1,)),
    OpCase("fractional_max_pool2d_ratio",
           lambda x, s: F.fractional_max_pool2d_with_indices(x, 2, output_ratio=(0.5, 0.5),
                                                             _random_samples=s),
           lambda x, s: TF.fractional_max_pool2d_with_indices(x, 2, output_ratio=(0.5, 0.5),
                                                              _random_samples=s),
           frac_inputs((2, 3, 8, 9), 2), frozen=(1,)),
    OpCase("fractional_max_pool3d",
           lambda x, s: F.fractional_max_pool3d(x, (2, 3, 2), output_ratio=(0.6, 0.5, 0.7),
                                                return_indices=True, _random_samples=s),
           lambda x, s: TF.fractional_max_pool3d(x, (2, 3, 2), output_ratio=(0.6, 0.5, 0.7),
                                                 return_indices=True, _random_samples=s),
           frac_inputs((2, 2, 5, 6, 7), 3), frozen=(1,)),
    OpCase("fractional_max_pool3d_unbatched",
           lambda x, s: F.fractional_max_pool3d_with_indices(x[0], 2, 3, _random_samples=s[:1]),
           lambda x, s: TF.fractional_max_pool3d_with_indices(x[0], 2, 3,
                                                              _random_samples=s[:1]),
           frac_inputs((1, 2, 5, 6, 7), 3), frozen=(1,)),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_op(case, kind):
    check(case, kind)


def test_second_derivatives_of_the_composed_pools():
    """The pools are compositions (gather, the 2-d kernels' adjoint Functions, matmul): their
    gradients are differentiable again."""
    rng = np.random.default_rng(3)
    for fn, shape in ((lambda x: F.max_pool3d(x, 2, 1, 1) ** 2, (1, 2, 3, 4, 3)),
                      (lambda x: F.avg_pool3d(x, 2, 1, 1, True, False) ** 2, (1, 2, 3, 4, 3)),
                      (lambda x: F.adaptive_max_pool2d(x, 3) ** 2, (1, 2, 5, 4)),
                      (lambda x: F.lp_pool1d(x, 2.0, 2) ** 2, (1, 2, 6))):
        x = tinyfw.tensor(rng.uniform(0.5, 2.0, shape), requires_grad=True)
        assert tinyfw.gradgradcheck(fn, [x])
