"""Host-side numpy helpers of the issue-16 ops (tinyfw/ops stays numpy-free,
tests/test_layering.py): the finite range of a float dtype, PyTorch's linspace bin
edges, and multinomial's draws from a generator's stream."""
from __future__ import annotations

import ml_dtypes
import numpy as np

from .. import dtypes as _dt


def finite_range(dtype: _dt.DType) -> tuple:
    """(lowest, largest) finite values of a floating dtype, as Python floats."""
    info = ml_dtypes.finfo(dtype.np)
    return float(info.min), float(info.max)


def linspace_edges(lo: float, hi: float, n: int, dtype: _dt.DType) -> np.ndarray:
    """n + 1 bin edges from lo to hi in `dtype` (float32 or float64), PyTorch's linspace
    formula: the first half start + step * i, the second end - step * (n - i), in the
    dtype's arithmetic."""
    calc = dtype.np.type
    start, end = np.asarray(lo, dtype.np), np.asarray(hi, dtype.np)
    steps = n + 1
    step = (end - start) / calc(n)
    i = np.arange(steps)
    with np.errstate(over="ignore"):
        e = np.where(i < steps // 2, start + step * i.astype(calc),
                     end - step * (steps - 1 - i).astype(calc))
    return e.astype(dtype.np)


def multinomial_draws(weights: np.ndarray, num_samples: int, replacement: bool, rng) -> np.ndarray:
    """int64 (rows, num_samples) category indices drawn from each row of non-negative
    `weights` (float64, rows x categories), after checking them (RuntimeError naming
    multinomial and the problem).

    - with replacement: each draw inverts the row's cumulative distribution at a uniform
      u in [0, 1) (categories of weight 0 are never drawn);
    - without replacement: the categories with the num_samples smallest E_i / w_i, E_i
      independent Exp(1) draws (a race of exponential clocks), in order of arrival: the
      same law as drawing one category at a time in proportion to the weights left.
    """
    w = weights
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise RuntimeError("multinomial: probability tensor contains either inf, nan or an "
                           "element < 0")
    if np.any(w.sum(axis=1) <= 0):
        raise RuntimeError("multinomial: invalid distribution (sum of probabilities <= 0)")
    if not replacement and np.any((w > 0).sum(axis=1) < num_samples):
        raise RuntimeError("multinomial: invalid distribution (with replacement=False, not "
                           "enough non-zero categories to sample)")
    rows, n = w.shape
    if rows == 0:
        return np.zeros((0, num_samples), np.int64)
    if replacement:
        cdf = np.cumsum(w, axis=1)
        cdf /= cdf[:, -1:]  # the last entry exactly 1, so every u in [0, 1) finds a bin
        u = rng.random((rows, num_samples))
        idx = np.stack([np.searchsorted(cdf[r], u[r], side="right") for r in range(rows)])
        return np.minimum(idx, n - 1).astype(np.int64)
    e = rng.standard_exponential((rows, n))
    keys = np.where(w > 0, e / np.where(w > 0, w, 1.0), np.inf)
    return np.argsort(keys, axis=1, kind="stable")[:, :num_samples].astype(np.int64)
