"""Host-side index tables of the pooling ops (``tinyfw/nn/_pool_util.py``,
``functional_pool*.py``): numpy on plain Python sizes, turned into tensors by the callers.

A *window table* is an int64 array (P, K) (or (N, C, P, K)) of flat positions into the
input's spatial plane (d * H * W + h * W + w), -1 for a tap on padding.
"""
from __future__ import annotations

import math

import numpy as np


def combine_taps(per_dim: list, sizes: tuple) -> np.ndarray:
    """Window table (P, K) from per-dim (positions (O_d, K_d), valid (O_d, K_d)) pairs: the
    product of the per-dim windows, flattened in row-major (d, h, w) order."""
    n = len(per_dim)
    flat = np.zeros((1,) * (2 * n), np.int64)
    ok = np.ones((1,) * (2 * n), bool)
    for d, (pos, valid) in enumerate(per_dim):
        shape = [1] * (2 * n)
        shape[d], shape[n + d] = pos.shape
        flat = flat + pos.reshape(shape) * math.prod(sizes[d + 1:])
        ok = ok & valid.reshape(shape)
    return np.where(ok, flat, -1).reshape(math.prod(flat.shape[:n]), -1)


def strided_table(sizes: tuple, kernel, stride, padding, dilation, out) -> np.ndarray:
    """Window table of a strided, padded, dilated n-d pooling."""
    per_dim = []
    for d in range(len(sizes)):
        pos = (np.arange(out[d])[:, None] * stride[d] - padding[d]
               + np.arange(kernel[d])[None, :] * dilation[d])
        per_dim.append((pos, (pos >= 0) & (pos < sizes[d])))
    return combine_taps(per_dim, sizes)


def adaptive_bounds(size: int, out: int) -> tuple:
    """PyTorch's adaptive windows along one dim: [floor(i*size/out), ceil((i+1)*size/out))."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def adaptive_table(sizes: tuple, out: tuple) -> np.ndarray:
    """Window table of an adaptive pooling (windows padded to the longest with -1)."""
    per_dim = []
    for s, o in zip(sizes, out):
        lo, hi = adaptive_bounds(s, o)
        pos = lo[:, None] + np.arange(int((hi - lo).max()))[None, :]
        per_dim.append((pos, pos < hi[:, None]))
    return combine_taps(per_dim, sizes)


def adaptive_mean_taps(size: int, out: int) -> tuple:
    """(index, weight) taps of the adaptive windows along one dim for ResampleAxis: window
    i's positions (-1 pads the shorter windows: absent taps), weight 1 / its length."""
    lo, hi = adaptive_bounds(size, out)
    pos = lo[:, None] + np.arange(int((hi - lo).max()) if out else 1)[None, :]
    inside = pos < hi[:, None]
    return np.where(inside, pos, -1), np.where(inside, 1.0 / (hi - lo)[:, None], 0.0)


def _avg_length(size: int, k: int, s: int, p: int, out: int, count_include_pad: bool):
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def avg_divisor(sizes: tuple, kernel, stride, padding, out, count_include_pad: bool,
                divisor_override) -> np.ndarray:
    """float64 divisor per output position of n-d average pooling: divisor_override, or the
    product of PyTorch's per-dim window lengths (cut at size + padding, and without
    count_include_pad at the input's edges)."""
    if divisor_override is not None:
        return np.full(tuple(out), float(divisor_override))
    div = np.ones((), np.float64)
    for d in range(len(sizes)):
        length = _avg_length(sizes[d], kernel[d], stride[d], padding[d], out[d],
                             count_include_pad).astype(np.float64)
        div = np.multiply.outer(div, length)
    return div


def _fractional_starts(u: np.ndarray, size: int, out: int, k: int) -> np.ndarray:
    """Window starts (..., out) for samples u (...) in u's float type, as PyTorch's
    generate_intervals: int((i + u) * a) - int(u * a), a = (size - k) / (out - 1), the last
    window at size - k."""
    t = u.dtype.type
    starts = np.empty(u.shape + (out,), np.int64)
    if out > 1:
        alpha = t(size - k) / t(out - 1)
        i = np.arange(out - 1).astype(u.dtype)
        starts[..., :-1] = (((i + u[..., None]) * alpha).astype(np.int64)  # C's truncation
                            - (u[..., None] * alpha).astype(np.int64))
    starts[..., -1] = size - k
    return starts


def fractional_table(samples, dtype_name: str, sizes: tuple, out: tuple,
                     kernel: tuple) -> np.ndarray:
    """Per-plane window table (N, C, P, K) of fractional max pooling from the host samples
    (N, C, n), computed in the input's float type (`dtype_name`)."""
    u = np.asarray(samples).astype(np.dtype(dtype_name))
    nb, c, n = u.shape
    flat = np.zeros((nb, c) + (1,) * (2 * n), np.int64)
    for d in range(n):
        # PyTorch's 2-d kernel reads sample 0 for W and 1 for H; the 3-d one 0 for T, 1 for
        # H, 2 for W
        col = (1 - d) if n == 2 else d
        pos = _fractional_starts(u[:, :, col], sizes[d], out[d], kernel[d])[..., None] \
            + np.arange(kernel[d])
        shape = [nb, c] + [1] * (2 * n)
        shape[2 + d], shape[2 + n + d] = out[d], kernel[d]
        flat = flat + pos.reshape(shape) * math.prod(sizes[d + 1:])
    return flat.reshape(nb, c, math.prod(out), math.prod(kernel))
