"""multinomial (issue 16): indices drawn from rows of non-negative weights.

The draws are made on the host from the generator's stream (as `rand` and `randperm`
are: one seed gives the same indices on every device) and the int64 result is moved to
the input's device; nothing is drawn on the meta device.  The streams are tinyfw's own,
not PyTorch's: tests check the distributions (tests/test_api_int_sampling.py).

- with replacement: each draw inverts the row's cumulative distribution at a uniform u
  in [0, 1) (categories of weight 0 are never drawn);
- without replacement: the categories with the `num_samples` smallest E_i / w_i, E_i
  independent Exp(1) draws (a race of exponential clocks), in order of arrival — the
  same law as drawing one category at a time in proportion to the weights left.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..backend import backend_for, host
from ..random import Generator, _gen
from ..tensor import register_method
from ._util import Tensor

__all__ = ["multinomial"]


def _check_weights(w: np.ndarray, num_samples: int, replacement: bool) -> None:
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise RuntimeError("multinomial: probability tensor contains either inf, nan or an "
                           "element < 0")
    if np.any(w.sum(axis=1) <= 0):
        raise RuntimeError("multinomial: invalid distribution (sum of probabilities <= 0)")
    if not replacement and np.any((w > 0).sum(axis=1) < num_samples):
        raise RuntimeError("multinomial: invalid distribution (with replacement=False, not "
                           "enough non-zero categories to sample)")


def _draw(w: np.ndarray, num_samples: int, replacement: bool, rng) -> np.ndarray:
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
    with np.errstate(divide="ignore"):
        keys = np.where(w > 0, e / np.where(w > 0, w, 1.0), np.inf)
    return np.argsort(keys, axis=1, kind="stable")[:, :num_samples].astype(np.int64)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator: Generator | None = None) -> Tensor:
    """int64 indices of `num_samples` categories drawn from each row of `input` (1-d or
    2-d, non-negative float weights, not necessarily normalised), with or without
    replacement; shape (num_samples,) or (rows, num_samples)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial: input must be a Tensor, got {type(input).__name__}")
    x = input
    if x.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: input must be 1-d or 2-d, got {x.ndim}-d")
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"multinomial: input must be floating point, got {x.dtype.name}")
    if not host.is_integer(num_samples) or num_samples <= 0:
        raise RuntimeError(f"multinomial: num_samples must be a positive int, got {num_samples!r}")
    n = x.shape[-1]
    if n == 0:
        raise RuntimeError("multinomial: the input has no categories")
    if not replacement and num_samples > n:
        raise RuntimeError(f"multinomial: cannot sample {num_samples} > {n} categories "
                           "without replacement")
    shape = (num_samples,) if x.ndim == 1 else (x.shape[0], num_samples)
    B = backend_for(x.device)
    if x.is_meta:
        return Tensor._make(B.empty(shape, _dt.int64.np))
    w = np.asarray(x.detach().to(_dt.float64)._host(), np.float64).reshape(-1, n)
    _check_weights(w, num_samples, replacement)
    idx = _draw(w, int(num_samples), bool(replacement), _gen(generator))
    return Tensor._make(B.from_host(np.ascontiguousarray(idx.reshape(shape))))


register_method("multinomial", multinomial)
