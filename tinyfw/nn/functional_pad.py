"""``pad`` with PyTorch's four modes and negative padding (cropping).

- constant: negative entries crop first (a view), the rest is the constant ``Pad`` op;
- reflect / replicate / circular: each padded dim is one ``index_select`` with a fixed
  index vector (reflection about the edge element, the clamped edge, or the index modulo
  the length), so the gradient is the index op's scatter-add: edge elements read several
  times receive the sum of their reads.  Negative entries crop as in constant mode;
  circular wraps around the cropped tensor (PyTorch's order).
"""
from __future__ import annotations

from numbers import Integral

from ..creation import tensor
from ..dtypes import int64
from ..ops._util import Tensor, ensure_tensor
from ..ops.index import pad as _constant_pad

_MODES = ("constant", "reflect", "replicate", "circular")


def _crop(x: Tensor, dim: int, before: int, after: int, op: str) -> Tensor:
    """x with -before elements dropped at the start of `dim` (when negative) and -after at
    its end."""
    n = x.shape[dim]
    lo, hi = max(0, -before), n - max(0, -after)
    if hi < lo:
        raise RuntimeError(f"{op}: padding ({before}, {after}) of dim {dim} (size {n}) "
                           f"would give a negative size {n + before + after}")
    return x if (lo, hi) == (0, n) else x.narrow(dim, lo, hi - lo)


def _source_index(n: int, before: int, after: int, mode: str) -> list:
    """The source position of every output position j in [-before, n + after)."""
    out = []
    for j in range(-before, n + after):
        if mode == "replicate":
            out.append(min(max(j, 0), n - 1))
        elif mode == "circular":
            out.append(j % n)
        else:  # reflect about the first / last element (the edge itself is not repeated)
            out.append(-j if j < 0 else (2 * (n - 1) - j if j >= n else j))
    return out


def _pad_dim(x: Tensor, dim: int, before: int, after: int, mode: str, op: str) -> Tensor:
    n = x.shape[dim]
    if mode == "circular":
        x = _crop(x, dim, before, after, op)
        n, before, after = x.shape[dim], max(before, 0), max(after, 0)
        if before > n or after > n:
            raise RuntimeError(f"{op}: circular padding ({before}, {after}) of dim {dim} "
                               f"(size {n}) would wrap around more than once")
    elif mode == "reflect" and (before >= n or after >= n):
        raise RuntimeError(f"{op}: reflect padding ({before}, {after}) must be smaller than "
                           f"the size {n} of dim {dim} (input {tuple(x.shape)})")
    if n + before + after < 0:
        raise RuntimeError(f"{op}: padding ({before}, {after}) of dim {dim} (size {n}) would "
                           f"give a negative size {n + before + after}")
    if before == after == 0:
        return x
    idx = tensor(_source_index(n, before, after, mode), dtype=int64, device=x.device)
    return x.index_select(dim, idx)


def pad(input, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad (or, with negative entries, crop) the last len(pad) // 2 dims of `input`;
    `pad` lists (before, after) pairs from the last dim backwards, as
    torch.nn.functional.pad.  mode 'constant' fills with `value` (0 by default) and takes
    any number of dims; 'reflect', 'replicate' and 'circular' pad the last 1, 2 or 3 dims
    of a 2-d/3-d, 3-d/4-d or 4-d/5-d input."""
    op = "pad"
    x = ensure_tensor(input, op)
    if not isinstance(pad, (tuple, list)) or not all(
            isinstance(p, Integral) and not isinstance(p, bool) for p in pad):
        raise TypeError(f"{op}: pad must be a tuple of ints, got {pad!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError(f"{op}: the padding length must be divisible by 2, got {pad}")
    k = len(pad) // 2
    if k > x.ndim:
        raise RuntimeError(f"{op}: {pad} pads {k} dims but the input has {x.ndim} "
                           f"(shape {tuple(x.shape)})")
    if mode not in _MODES:
        raise NotImplementedError(f"{op}: mode must be one of {_MODES}, got {mode!r}")
    pairs = [(x.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]) for i in range(k)]
    if mode == "constant":
        for dim, b, a in pairs:
            x = _crop(x, dim, b, a, op)
        if any(p > 0 for p in pad):
            x = _constant_pad(x, tuple(max(p, 0) for p in pad),
                              value=0.0 if value is None else value)
        return x
    if value is not None and value != 0:
        raise ValueError(f"{op}: mode {mode!r} does not take a value (got {value!r})")
    if k not in (1, 2, 3) or x.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"{op}: mode {mode!r} with padding size {len(pad)} needs a {k + 1}-d or {k + 2}-d "
            f"input, got shape {tuple(x.shape)} (2 values pad the last dim of a 2-d or 3-d "
            f"input, 4 the last 2 dims of 3-d or 4-d, 6 the last 3 dims of 4-d or 5-d)")
    for dim in range(x.ndim - k, x.ndim):
        if x.shape[dim] == 0:
            raise RuntimeError(f"{op}: mode {mode!r} cannot pad the empty dim {dim} of input "
                               f"{tuple(x.shape)}")
    for dim, b, a in pairs:
        x = _pad_dim(x, dim, b, a, mode, op)
    return x


__all__ = ["pad"]
