"""Helpers shared by the 1-d/3-d, adaptive, fractional and unpooling ops
(``functional_pool.py``, ``functional_pool_more.py``): argument normalisation, window
index tables, and max pooling over such a table.

A *window table* (``backend/pool_tables.py``) is an int64 array (P, K) (or (N, C, P, K) when every plane has its own
windows, as fractional pooling) of flat positions into the input's spatial plane
(d * H * W + h * W + w), -1 for a tap that falls on padding.  Max pooling over a table
picks, under no_grad, the first maximum of each window (a NaN counts as the maximum, the
first NaN wins, as the 2-d kernel), then gathers the values at those indices with the
gradient attached: the gradient flows to the argmax exactly as PyTorch's, and every
backend (and second derivatives) come with gather.
"""
from __future__ import annotations

import math
from numbers import Integral

from .. import dtypes as _dt
from ..autograd.function import no_grad
from ..creation import tensor
from ..ops.index import gather
from ..ops.nn import check_float
from ..ops._util import Tensor, ensure_tensor
from ..ops.elementwise import where


def ntuple(v, n: int, op: str, name: str, minimum: int) -> tuple:
    """An int or an n-sequence of ints (a 1-sequence repeats) as a validated n-tuple."""
    t = (v,) * n if isinstance(v, Integral) else tuple(v)
    if len(t) == 1:
        t = t * n
    if len(t) != n or not all(isinstance(i, Integral) for i in t):
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {v!r}")
    if any(i < minimum for i in t):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return tuple(int(i) for i in t)


def spatial_input(input, n: int, op: str, floats: bool = True) -> tuple:
    """(input with a batch dim, whether one was added) for an (C, *S) or (N, C, *S) input
    with n spatial dims."""
    x = ensure_tensor(input, op)
    if floats:
        check_float(x, op)
    if x.ndim not in (n + 1, n + 2):
        names = ", ".join("DHW"[3 - n:])
        raise RuntimeError(f"{op}: expected a {n + 1}-d (C, {names}) or {n + 2}-d (N, C, "
                           f"{names}) input, got shape {tuple(x.shape)}")
    return (x.unsqueeze(0), True) if x.ndim == n + 1 else (x, False)


def out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output length along one dim (ref_nn._pool_out)."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def pool_args(x: Tensor, n: int, kernel_size, stride, padding, dilation, ceil_mode,
              op: str) -> tuple:
    """Validated (kernel, stride, padding, dilation, output sizes) of an n-d pooling."""
    kernel = ntuple(kernel_size, n, op, "kernel_size", 1)
    empty = stride is None or (not isinstance(stride, Integral) and len(stride) == 0)
    stride = kernel if empty else ntuple(stride, n, op, "stride", 1)
    padding = ntuple(padding, n, op, "padding", 0)
    dilation = ntuple(dilation, n, op, "dilation", 1)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding {padding} must be at most half of the kernel size "
                         f"{kernel}")
    sizes = tuple(x.shape[2:])
    out = tuple(out_size(sizes[i], kernel[i], stride[i], padding[i], dilation[i],
                         bool(ceil_mode)) for i in range(n))
    if any(o < 1 for o in out):
        raise RuntimeError(f"{op}: input {tuple(x.shape)} is too small for kernel {kernel} "
                           f"(dilation {dilation}, padding {padding}): the output would be "
                           f"{out}")
    return kernel, stride, padding, dilation, out


def max_by_table(x: Tensor, table, out: tuple) -> tuple:
    """(values, int64 flat indices) of max pooling batched x (N, C, *S) over a window table
    (a host table (P, K) from backend/pool_tables.py, or an int64 tensor (N, C, P, K));
    outputs (N, C, *out)."""
    n, c = x.shape[:2]
    flat = x.reshape(n, c, math.prod(x.shape[2:]))
    t = table if isinstance(table, Tensor) else tensor(table, device=x.device)
    p, k = t.shape[-2:]
    with no_grad():
        t = t.expand(n, c, p, k)
        valid = t >= 0
        vals = gather(flat.detach(), 2, t.clamp(min=0).reshape(n, c, p * k)).reshape(n, c, p, k)
        vals = where(valid, vals, float("-inf"))
        m = vals.amax(-1, keepdim=True)
        hit = valid & ((vals == m) | vals.isnan())
        first = hit.to(_dt.int64).argmax(-1, keepdim=True)
        idx = gather(t, 3, first).reshape(n, c, p)
    y = gather(flat, 2, idx)
    return y.reshape(n, c, *out), idx.reshape(n, c, *out)


def finish(y, unbatched: bool):
    """Drop the added batch dim of one tensor or of each tensor of a tuple."""
    if not unbatched:
        return y
    if isinstance(y, tuple):
        return tuple(t.squeeze(0) for t in y)
    return y.squeeze(0)
