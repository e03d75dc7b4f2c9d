"""The resampling primitive behind ``interpolate`` (nearest, linear, bicubic along one dim
at a time): a fixed-tap weighted gather along the middle axis of a (B, L, I) array, and
its adjoint.  Separable 2-d/3-d resampling is this primitive once per spatial dim, W
first: the nesting h0 * (w0 * x + w1 * x) + h1 * (...) of PyTorch's kernels."""
from __future__ import annotations

import numpy as np

from .ref_cast import up as _up

__all__ = ["resample_axis", "resample_axis_backward"]


def resample_axis(x, index, weight):
    """y[b, o, i] = sum over taps t, in order, of weight[o, t] * x[b, index[o, t], i];
    x (B, L, I), index int64 (O, T) in [0, L), weight (O, T) -> y (B, O, I)."""
    x32 = _up(x)
    w = weight.astype(x32.dtype, copy=False)
    y = w[None, :, 0, None] * x32[:, index[:, 0], :]
    for t in range(1, index.shape[1]):
        y = y + w[None, :, t, None] * x32[:, index[:, t], :]
    return np.ascontiguousarray(y).astype(x.dtype, copy=False)


def resample_axis_backward(g, index, weight, in_size: int):
    """The adjoint of resample_axis: gx[b, index[o, t], i] += weight[o, t] * g[b, o, i];
    g (B, O, I) -> gx (B, in_size, I)."""
    g32 = _up(g)
    w = weight.astype(g32.dtype, copy=False)
    gx = np.zeros((g.shape[0], in_size, g.shape[2]), g32.dtype)
    for t in range(index.shape[1]):
        np.add.at(gx, (slice(None), index[:, t]), w[None, :, t, None] * g32)
    return gx.astype(g.dtype, copy=False)
