"""The resampling primitive behind ``interpolate`` (nearest, linear, bicubic along one dim
at a time): a fixed-tap weighted gather along the middle axis of a (B, L, I) array, and
its adjoint.  Separable 2-d/3-d resampling is this primitive once per spatial dim, W
first: the nesting h0 * (w0 * x + w1 * x) + h1 * (...) of PyTorch's kernels."""
from __future__ import annotations

import numpy as np

from .ref_cast import up as _up

__all__ = ["resample_axis", "resample_axis_backward"]


# 0 * inf is NaN and inf - inf too, as in PyTorch's kernels: the IEEE result is the answer
@np.errstate(invalid="ignore", over="ignore")
def resample_axis(x, index, weight):
    """y[b, o, i] = sum over taps t, in order, of weight[o, t] * x[b, index[o, t], i];
    x (B, L, I), index int64 (O, T) in [0, L) or -1 for an absent tap (windows of unequal
    lengths: adaptive pooling), weight (O, T) -> y (B, O, I)."""
    x32 = _up(x)
    w = weight.astype(x32.dtype, copy=False)
    y = None
    for t in range(index.shape[1]):
        i = index[:, t]
        term = w[None, :, t, None] * x32[:, np.maximum(i, 0), :]
        term = np.where((i >= 0)[None, :, None], term, x32.dtype.type(0))
        y = term if y is None else y + term
    if y is None:
        y = np.zeros((x.shape[0], 0, x.shape[2]), x32.dtype)
    return np.ascontiguousarray(y).astype(x.dtype, copy=False)


@np.errstate(invalid="ignore", over="ignore")
def resample_axis_backward(g, index, weight, in_size: int):
    """The adjoint of resample_axis: gx[b, index[o, t], i] += weight[o, t] * g[b, o, i]
    (absent taps add nothing); g (B, O, I) -> gx (B, in_size, I)."""
    g32 = _up(g)
    w = weight.astype(g32.dtype, copy=False)
    gx = np.zeros((g.shape[0], in_size + 1, g.shape[2]), g32.dtype)  # the extra row: index -1
    for t in range(index.shape[1]):
        np.add.at(gx, (slice(None), np.where(index[:, t] >= 0, index[:, t], in_size)),
                  w[None, :, t, None] * g32)
    return np.ascontiguousarray(gx[:, :in_size]).astype(g.dtype, copy=False)
