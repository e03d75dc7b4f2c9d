"""3-d convolution primitives of the reference backend (NCDHW), in plain numpy.

The same contract as conv2d in ``ref_nn.py``, one spatial dim more: cross-correlation
without bias, zero padding on both sides, groups and dilation; the two backward passes
are its adjoints.  ``tinyfw/ops/nn_conv_more.py`` builds the Functions (conv3d and
conv_transpose3d) on these three; ``csrc/conv3d.cpp`` is held to them.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .ref_cast import up as _up

__all__ = ["conv3d", "conv3d_backward_input", "conv3d_backward_weight"]


def _out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _padded(x, padding: tuple):
    if not any(padding):
        return x
    return np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in padding))


def _windows(xp, kernel: tuple, stride: tuple, dilation: tuple, out: tuple):
    """Read-only view (N, C, OD, OH, OW, kd, kh, kw) of the windows of padded input xp."""
    sn, sc, *sp = xp.strides
    return as_strided(xp, xp.shape[:2] + tuple(out) + tuple(kernel),
                      (sn, sc) + tuple(s * t for s, t in zip(sp, stride))
                      + tuple(s * d for s, d in zip(sp, dilation)), writeable=False)


def conv3d(x, w, stride: tuple, padding: tuple, dilation: tuple, groups: int):
    """y[n, o, i, j, k] = sum_{c, a, b, e} w[o, c, a, b, e] *
    xpad[n, g*C/G + c, i*sd + a*dd, j*sh + b*dh, k*sw + e*dw] for o in group g;
    x (N, C, D, H, W), w (O, C/groups, kd, kh, kw)."""
    x32, w32 = _up(x), _up(w)
    n = x.shape[0]
    o, cg, *kernel = w.shape
    out = tuple(_out(x.shape[2 + i], kernel[i], stride[i], padding[i], dilation[i])
                for i in range(3))
    cols = _windows(_padded(x32, padding), kernel, stride, dilation, out).reshape(
        (n, groups, cg) + out + tuple(kernel))
    wg = w32.reshape((groups, o // groups, cg) + tuple(kernel))
    y = np.einsum("ngcdhwabe,gocabe->ngodhw", cols, wg, optimize=True)
    return y.reshape((n, o) + out).astype(x.dtype, copy=False)


def conv3d_backward_input(g, w, x_shape: tuple, stride: tuple, padding: tuple,
                          dilation: tuple, groups: int):
    """Gradient of conv3d w.r.t. its input (shape x_shape), given g = dL/dy: every tap
    (a, b, e) sends w[:, :, a, b, e]^T g back to the input positions it read."""
    g32, w32 = _up(g), _up(w)
    n, c = x_shape[:2]
    o, cg, *kernel = w.shape
    out = g.shape[2:]
    gx = np.zeros((n, c) + tuple(s + 2 * p for s, p in zip(x_shape[2:], padding)), g32.dtype)
    gg = g32.reshape((n, groups, o // groups) + tuple(out))
    wg = w32.reshape((groups, o // groups, cg) + tuple(kernel))
    for tap in np.ndindex(*kernel):
        part = np.einsum("ngodhw,goc->ngcdhw", gg, wg[(Ellipsis,) + tap], optimize=True)
        where = tuple(slice(t * d, t * d + s * (m - 1) + 1, s)
                      for t, d, s, m in zip(tap, dilation, stride, out))
        gx[(slice(None), slice(None)) + where] += part.reshape((n, c) + tuple(out))
    crop = tuple(slice(p, p + s) for p, s in zip(padding, x_shape[2:]))
    gx = gx[(slice(None), slice(None)) + crop]
    return np.ascontiguousarray(gx).astype(g.dtype, copy=False)


def conv3d_backward_weight(g, x, w_shape: tuple, stride: tuple, padding: tuple,
                           dilation: tuple, groups: int):
    """Gradient of conv3d w.r.t. its weight (shape w_shape), given g = dL/dy:
    gw[o, c, a, b, e] = sum_{n, i, j, k} g[n, o, i, j, k] * (the input tap conv3d read)."""
    g32, x32 = _up(g), _up(x)
    n = x.shape[0]
    o, cg, *kernel = w_shape
    out = tuple(g.shape[2:])
    cols = _windows(_padded(x32, padding), kernel, stride, dilation, out).reshape(
        (n, groups, cg) + out + tuple(kernel))
    gg = g32.reshape((n, groups, o // groups) + out)
    gw = np.einsum("ngodhw,ngcdhwabe->gocabe", gg, cols, optimize=True)
    return gw.reshape(w_shape).astype(g.dtype, copy=False)
