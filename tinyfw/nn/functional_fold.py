"""unfold / fold (im2col and its adjoint) and the pixel and channel shuffles.

unfold reads every sliding window of the zero-padded (N, C, H, W) input through one index
op with a fixed position vector (window tap, output position) -> flat padded position, so
its gradient is that op's scatter-add; fold is the same positions written with
accumulation (overlapping windows sum), so unfold and fold are adjoint, as in PyTorch.  The
shuffles are reshape + permute.
"""
from __future__ import annotations

from numbers import Integral

from ..creation import tensor
from ..dtypes import int64
from ..ops._util import Tensor, ensure_tensor
from ..ops.index import index_put
from ..ops.index import pad as _constant_pad
from .functional_conv import ntuple


def _fold_args(kernel_size, dilation, padding, stride, op: str) -> tuple:
    return (ntuple(kernel_size, 2, op, "kernel_size", 1), ntuple(dilation, 2, op, "dilation", 1),
            ntuple(padding, 2, op, "padding", 0), ntuple(stride, 2, op, "stride", 1))


def _blocks(size: tuple, kernel: tuple, dilation: tuple, padding: tuple, stride: tuple,
            op: str) -> tuple:
    out = tuple((size[i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
                for i in range(2))
    if out[0] < 1 or out[1] < 1:
        raise RuntimeError(f"{op}: spatial size {size} with padding {padding} is too small for "
                           f"kernel {kernel} (dilation {dilation}): {out} blocks")
    return out


def _positions(out: tuple, width: int, kernel: tuple, dilation: tuple, stride: tuple,
               device) -> Tensor:
    """Flat padded-plane position of tap (a, b) of block (i, j), in (a, b, i, j) order."""
    pos = [(i * stride[0] + a * dilation[0]) * width + j * stride[1] + b * dilation[1]
           for a in range(kernel[0]) for b in range(kernel[1])
           for i in range(out[0]) for j in range(out[1])]
    return tensor(pos, dtype=int64, device=device)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding blocks of a (N, C, H, W) (or (C, H, W)) input as columns:
    (N, C * kh * kw, L), L = the number of blocks, rows ordered (c, a, b)."""
    op = "unfold"
    x = ensure_tensor(input, op)
    if x.ndim not in (3, 4):
        raise NotImplementedError(f"{op}: only 3-d (C, H, W) or 4-d (N, C, H, W) inputs are "
                                  f"supported, got shape {tuple(x.shape)}")
    unbatched = x.ndim == 3
    if unbatched:
        x = x.unsqueeze(0)
    kernel, dilation, padding, stride = _fold_args(kernel_size, dilation, padding, stride, op)
    n, c, h, w = x.shape
    out = _blocks((h, w), kernel, dilation, padding, stride, op)
    if any(padding):
        x = _constant_pad(x, (padding[1], padding[1], padding[0], padding[0]))
    wp = w + 2 * padding[1]
    idx = _positions(out, wp, kernel, dilation, stride, x.device)
    cols = x.reshape(n, c, -1)[:, :, idx]
    y = cols.reshape(n, c * kernel[0] * kernel[1], out[0] * out[1])
    return y.squeeze(0) if unbatched else y


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """The adjoint of unfold: (N, C * kh * kw, L) (or unbatched) columns summed into a
    (N, C, *output_size) tensor, overlapping blocks added."""
    op = "fold"
    x = ensure_tensor(input, op)
    if x.ndim not in (2, 3):
        raise NotImplementedError(f"{op}: only 2-d (C * kh * kw, L) or 3-d (N, C * kh * kw, L) "
                                  f"inputs are supported, got shape {tuple(x.shape)}")
    unbatched = x.ndim == 2
    if unbatched:
        x = x.unsqueeze(0)
    size = ntuple(output_size, 2, op, "output_size", 0)
    kernel, dilation, padding, stride = _fold_args(kernel_size, dilation, padding, stride, op)
    n, ck, length = x.shape
    k = kernel[0] * kernel[1]
    if ck % k:
        raise RuntimeError(f"{op}: input {tuple(x.shape)}: dim 1 ({ck}) must be divisible by "
                           f"the kernel size product {k} (kernel {kernel})")
    out = _blocks(size, kernel, dilation, padding, stride, op)
    if out[0] * out[1] != length:
        raise RuntimeError(f"{op}: input {tuple(x.shape)} has {length} blocks but output_size "
                           f"{size} with kernel {kernel}, dilation {dilation}, padding {padding}, "
                           f"stride {stride} gives {out[0]} * {out[1]} = {out[0] * out[1]}")
    c = ck // k
    hp, wp = size[0] + 2 * padding[0], size[1] + 2 * padding[1]
    idx = _positions(out, wp, kernel, dilation, stride, x.device)
    plane = x.new_zeros((n, c, hp * wp))
    y = index_put(plane, (slice(None), slice(None), idx), x.reshape(n, c, k * length),
                  accumulate=True).reshape(n, c, hp, wp)
    y = y[:, :, padding[0]:padding[0] + size[0], padding[1]:padding[1] + size[1]]
    return y.squeeze(0) if unbatched else y


def _factor(v, op: str, name: str) -> int:
    if not isinstance(v, Integral) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {v!r}")
    return int(v)


def pixel_shuffle(input, upscale_factor: int) -> Tensor:
    """(*, C * r * r, H, W) -> (*, C, H * r, W * r), r = upscale_factor."""
    op = "pixel_shuffle"
    x = ensure_tensor(input, op)
    r = _factor(upscale_factor, op, "upscale_factor")
    if x.ndim < 3 or x.shape[-3] % (r * r):
        raise RuntimeError(f"{op}: input must be at least 3-d with a channel dim (-3) "
                           f"divisible by upscale_factor ** 2 = {r * r}, got shape "
                           f"{tuple(x.shape)}")
    *lead, c, h, w = x.shape
    m = len(lead)
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    y = y.permute(*range(m), m, m + 3, m + 1, m + 4, m + 2)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor: int) -> Tensor:
    """(*, C, H * r, W * r) -> (*, C * r * r, H, W), r = downscale_factor: the inverse of
    pixel_shuffle."""
    op = "pixel_unshuffle"
    x = ensure_tensor(input, op)
    r = _factor(downscale_factor, op, "downscale_factor")
    if x.ndim < 3 or x.shape[-2] % r or x.shape[-1] % r:
        raise RuntimeError(f"{op}: input must be at least 3-d with height and width divisible "
                           f"by downscale_factor {r}, got shape {tuple(x.shape)}")
    *lead, c, h, w = x.shape
    m = len(lead)
    y = x.reshape(*lead, c, h // r, r, w // r, r)
    y = y.permute(*range(m), m, m + 2, m + 4, m + 1, m + 3)
    return y.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input, groups: int) -> Tensor:
    """(N, C, *) with channels (g, C/g) reordered to (C/g, g) (ShuffleNet's shuffle)."""
    op = "channel_shuffle"
    x = ensure_tensor(input, op)
    g = _factor(groups, op, "groups")
    if x.ndim < 3 or x.shape[1] % g:
        raise RuntimeError(f"{op}: input must be at least 3-d with a channel dim (1) divisible "
                           f"by groups {g}, got shape {tuple(x.shape)}")
    n, c, *rest = x.shape
    return x.reshape(n, g, c // g, *rest).transpose(1, 2).reshape(n, c, *rest)


def native_channel_shuffle(input, groups: int) -> Tensor:
    """channel_shuffle (PyTorch's native entry point of the same op)."""
    return channel_shuffle(input, groups)


__all__ = ["unfold", "fold", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
           "native_channel_shuffle"]
