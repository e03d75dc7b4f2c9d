"""Dropout variants of ``tinyfw.nn.functional`` (issue 16): channel-wise dropout
(``dropout1d``/``2d``/``3d``) and SELU's alpha dropout (``alpha_dropout``,
``feature_alpha_dropout``), PyTorch's arguments and semantics.

The masks are drawn in float64 on the host from `generator` (tinyfw's default generator
when None), as ``bernoulli``; the mask is a constant of the graph, so the gradient is the
mask times the scale, as PyTorch's.  The streams are tinyfw's, not PyTorch's: tests check
the structure of the masks and their statistics, not the values.
"""
from __future__ import annotations

import math
import warnings

from .. import dtypes as _dt
from ..autograd.function import no_grad
from ..creation import rand
from ..ops._util import Tensor, ensure_tensor
from ..ops.inplace import _inplace
from ..ops.nn import check_float
from ..random import Generator

# SELU's alpha * scale: the value that alpha dropout's dropped units take, before the affine
_ALPHA_PRIME = 1.7580993408473766


def _check_p(p: float, op: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _keep_mask(x: Tensor, shape: tuple, p: float, generator) -> Tensor:
    """1 with probability 1 - p, else 0, of `shape` (broadcastable to x), in x's dtype."""
    with no_grad():
        u = rand(shape, generator=generator, dtype=_dt.float64, device=x.device)
        return (u >= p).to(x.dtype)


def _feature_shape(x: Tensor, op: str) -> tuple:
    if x.ndim < 2:
        raise RuntimeError(f"{op}: feature dropout needs at least 2 dims (N, C, ...), got "
                           f"shape {tuple(x.shape)}")
    return tuple(x.shape[:2]) + (1,) * (x.ndim - 2)


def _finish(x: Tensor, fn, inplace: bool, op: str) -> Tensor:
    """fn(x), or fn written into x (ops/inplace.py: from a clone when autograd records)."""
    return _inplace(fn, op)(x) if inplace else fn(x)


def _feature_dropout(x: Tensor, p: float, training: bool, inplace: bool, generator,
                     op: str) -> Tensor:
    """Zero whole channels (dim 1 of an (N, C, ...) input) with probability p, scale the
    kept ones by 1 / (1 - p)."""
    _check_p(p, op)
    check_float(x, op)
    if not training or p == 0.0 or x.numel() == 0:
        return x
    if p == 1.0:
        return _finish(x, lambda t: t * 0.0, inplace, op)
    mask = _keep_mask(x, _feature_shape(x, op), p, generator) * (1.0 / (1.0 - p))
    return _finish(x, lambda t: t * mask, inplace, op)


def _spatial(input, p: float, training: bool, inplace: bool, generator, spatial: int,
             op: str) -> Tensor:
    _check_p(p, op)
    x = ensure_tensor(input, op)
    batched = x.ndim == spatial + 2
    if not batched and x.ndim != spatial + 1:
        if spatial == 1:
            raise RuntimeError(f"{op}: expected a 2-d (C, L) or 3-d (N, C, L) input, got shape "
                               f"{tuple(x.shape)}")
        # PyTorch warns and goes on: dropout2d takes dims 0 and 1 as N and C, dropout3d
        # adds a batch dim to anything that is not 5-d
        warnings.warn(f"{op}: received a {x.ndim}-d input; channel-wise dropout expects "
                      f"{spatial + 1}-d or {spatial + 2}-d inputs", stacklevel=3)
        batched = spatial == 2
    if spatial == 2 and x.ndim == 3:
        # PyTorch's historical choice: a 3-d input is (N, C, L), not an unbatched (C, H, W)
        warnings.warn(f"{op}: a 3-d input is treated as (N, C, L) (channel-wise 1-d dropout), "
                      "as PyTorch does; use dropout1d to say so", stacklevel=3)
        batched = True
    if batched:
        return _feature_dropout(x, p, training, inplace, generator, op)
    if not training or p == 0.0 or x.numel() == 0:
        return x

    def fn(t: Tensor) -> Tensor:
        return _feature_dropout(t.unsqueeze(0), p, training, False, generator, op).squeeze(0)
    return _finish(x, fn, inplace, op)


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator: Generator | None = None) -> Tensor:
    """Zero whole channels of an (N, C, L) or (C, L) input with probability p; the kept
    ones are scaled by 1 / (1 - p)."""
    return _spatial(input, p, training, inplace, generator, 1, "dropout1d")


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator: Generator | None = None) -> Tensor:
    """Zero whole channels of an (N, C, H, W) input with probability p (a 3-d input is
    (N, C, L), as PyTorch's); the kept ones are scaled by 1 / (1 - p)."""
    return _spatial(input, p, training, inplace, generator, 2, "dropout2d")


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator: Generator | None = None) -> Tensor:
    """Zero whole channels of an (N, C, D, H, W) or (C, D, H, W) input with probability p;
    the kept ones are scaled by 1 / (1 - p)."""
    return _spatial(input, p, training, inplace, generator, 3, "dropout3d")


def _alpha(input, p: float, training: bool, inplace: bool, generator, feature: bool,
           op: str) -> Tensor:
    """a * (x * keep + alpha' * (keep - 1)) + a * alpha' * p with a = 1 / sqrt((alpha'**2 p
    + 1)(1 - p)): dropped units take SELU's negative saturation, and the affine keeps a
    zero-mean unit-variance input so (Klambauer et al. 2017)."""
    _check_p(p, op)
    x = ensure_tensor(input, op)
    check_float(x, op)
    if not training or p == 0.0 or x.numel() == 0:
        return x
    if p == 1.0:
        return _finish(x, lambda t: t * 0.0, inplace, op)
    shape = _feature_shape(x, op) if feature else tuple(x.shape)
    a = 1.0 / math.sqrt((_ALPHA_PRIME ** 2 * p + 1) * (1 - p))
    keep = _keep_mask(x, shape, p, generator)
    shift = (keep - 1) * (_ALPHA_PRIME * a) + _ALPHA_PRIME * a * p
    return _finish(x, lambda t: t * (keep * a) + shift, inplace, op)


def alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False, *,
                  generator: Generator | None = None) -> Tensor:
    """Alpha dropout (for SELU networks): elements dropped with probability p take SELU's
    negative saturation, then an affine map restores the input's mean and variance."""
    return _alpha(input, p, training, inplace, generator, False, "alpha_dropout")


def feature_alpha_dropout(input, p: float = 0.5, training: bool = False,
                          inplace: bool = False, *,
                          generator: Generator | None = None) -> Tensor:
    """alpha_dropout with whole channels (dim 1 of (N, C, ...)) dropped together."""
    return _alpha(input, p, training, inplace, generator, True, "feature_alpha_dropout")


__all__ = ["dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]
