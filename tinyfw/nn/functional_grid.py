"""``grid_sample`` (bilinear, nearest, bicubic; zeros/border/reflection padding; 4-d and 5-d
input) and ``affine_grid``, composed from tinyfw ops with PyTorch's coordinate rules
(GridSampler.h: unnormalize, clip, reflect).

Each output point reads K taps (2 per dim bilinear, 1 nearest, 4 bicubic): their flat
input indices are computed without gradient, their weights are functions of the grid, so
autograd gives both the input's gradient (gather's scatter-add) and the grid's (through the
weights), and second derivatives, on every backend.
"""
from __future__ import annotations

import math
from numbers import Integral

from .. import dtypes as _dt
from ..backend.resample_tables import CUBIC_A, affine_base
from ..creation import tensor
from ..ops._util import Tensor, ensure_tensor
from ..ops.elementwise import where
from ..ops.index import gather
from ..ops.nn import check_float


def _unnormalize(c: Tensor, size: int, align_corners: bool) -> Tensor:
    if align_corners:
        return (c + 1) / 2 * (size - 1)
    return ((c + 1) * size - 1) / 2


def _clip(c: Tensor, size: int) -> Tensor:
    return c.clamp(0, size - 1)


def _reflect(c: Tensor, twice_low: int, twice_high: int) -> Tensor:
    """Reflect c into [twice_low / 2, twice_high / 2] (PyTorch's reflect_coordinates)."""
    if twice_low == twice_high:
        return c * 0
    lo, span = twice_low / 2, (twice_high - twice_low) / 2
    c = (c - lo).abs()
    flips = (c / span).detach().floor()
    extra = c - flips * span
    even = flips.remainder(2) == 0
    return where(even, extra + lo, span - extra + lo)


def _coordinates(c: Tensor, size: int, padding_mode: str, align_corners: bool) -> Tensor:
    if padding_mode == "border":
        return _clip(c, size)
    if padding_mode == "reflection":
        c = _reflect(c, 0, 2 * (size - 1)) if align_corners else _reflect(c, -1, 2 * size - 1)
        return _clip(c, size)
    return c


def _cubic(t: Tensor) -> list:
    a = CUBIC_A

    def near(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _taps(c: Tensor, size: int, mode: str, padding_mode: str, align_corners: bool) -> list:
    """[(integer tap position (float tensor, no grad), weight)] along one dim."""
    src = _unnormalize(c, size, align_corners)
    if mode == "bicubic":
        i0 = src.detach().clamp(-4, size + 3).floor()
        ws = _cubic(src - i0)
        return [(_coordinates(i0 + (k - 1), size, padding_mode, align_corners), ws[k])
                for k in range(4)]
    src = _coordinates(src, size, padding_mode, align_corners)
    if mode == "nearest":
        # weight 1 with a zero derivative: the grid gets a zero gradient, as PyTorch's
        return [(src.detach().clamp(-2, size + 1).round(), src * 0 + 1)]
    i0 = src.detach().clamp(-2, size + 1).floor()
    return [(i0, (i0 + 1) - src), (i0 + 1, src - i0)]


def grid_sample(input, grid, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool | None = None) -> Tensor:
    """Sample (N, C, H, W) input at grid (N, Ho, Wo, 2) points (x, y in [-1, 1]), or
    (N, C, D, H, W) input at grid (N, Do, Ho, Wo, 3) points (x, y, z)."""
    op = "grid_sample"
    x, g = ensure_tensor(input, op), ensure_tensor(grid, op)
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"{op}: mode must be 'bilinear', 'nearest' or 'bicubic', got {mode!r}")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"{op}: padding_mode must be 'zeros', 'border' or 'reflection', got "
                         f"{padding_mode!r}")
    check_float(x, op)
    check_float(g, op)
    if x.dtype is not g.dtype:
        raise RuntimeError(f"{op}: input ({x.dtype.name}) and grid ({g.dtype.name}) must have "
                           "the same dtype")
    if x.ndim not in (4, 5):
        raise RuntimeError(f"{op}: expected a 4-d or 5-d input, got shape {tuple(x.shape)}")
    n = x.ndim - 2
    if g.ndim != x.ndim or g.shape[-1] != n or g.shape[0] != x.shape[0]:
        raise RuntimeError(f"{op}: grid of shape {tuple(g.shape)} does not fit input "
                           f"{tuple(x.shape)}: expected (N, *out, {n}) with N = {x.shape[0]}")
    if mode == "bicubic" and n != 2:
        raise RuntimeError(f"{op}: bicubic interpolation only supports 4-d input")
    if any(s == 0 for s in x.shape[2:]):
        raise RuntimeError(f"{op}: input {tuple(x.shape)} has an empty spatial dim")
    align = bool(align_corners)
    nb, c = x.shape[:2]
    sizes = tuple(x.shape[2:])
    out = tuple(g.shape[1:-1])
    p = math.prod(out)
    gf = g.reshape(nb, p, n)
    # spatial dim d (D, H, W order) reads grid component n - 1 - d (x is W)
    per_dim = [_taps(gf[:, :, n - 1 - d], sizes[d], mode, padding_mode, align)
               for d in range(n)]
    index, weight, valid = None, None, None
    for d in range(n):
        stride = math.prod(sizes[d + 1:])
        pos = [t for t, _ in per_dim[d]]
        ok = [(t >= 0) & (t <= sizes[d] - 1) for t in pos]
        flat = [t.clamp(0, sizes[d] - 1).to(_dt.int64) * stride for t in pos]
        ws = [w for _, w in per_dim[d]]
        if index is None:
            index, valid, weight = flat, ok, ws
        else:  # the product of the taps so far and this dim's, this dim innermost
            index = [a + b for a in index for b in flat]
            valid = [a & b for a in valid for b in ok]
            weight = [a * b for a in weight for b in ws]
    k = len(index)
    idx = _stack(index)  # (N, P, K)
    vals = gather(x.reshape(nb, c, math.prod(sizes)), 2,
                  idx.reshape(nb, 1, p * k).expand(nb, c, p * k)).reshape(nb, c, p, k)
    ok = _stack(valid).unsqueeze(1)
    w = _stack(weight).unsqueeze(1)
    y = where(ok, vals * w, 0.0).sum(-1)
    return y.reshape(nb, c, *out)


def _stack(ts: list) -> Tensor:
    from ..ops.index import stack
    return stack(ts, -1)


def affine_grid(theta, size, align_corners: bool | None = None) -> Tensor:
    """Sampling grid (N, H, W, 2) (or (N, D, H, W, 3)) of the affine maps theta (N, 2, 3)
    (or (N, 3, 4)) for an output of `size` (N, C, H, W) (or (N, C, D, H, W))."""
    op = "affine_grid"
    th = ensure_tensor(theta, op)
    if not th.dtype.is_floating_point:
        raise ValueError(f"{op}: expected theta to have floating point type, got "
                         f"{th.dtype.name}")
    size = tuple(size)
    if not all(isinstance(s, Integral) for s in size):
        raise TypeError(f"{op}: size must be ints, got {size}")
    if len(size) not in (4, 5):
        raise NotImplementedError(f"{op}: only supports 4D and 5D sizes, for 2D and 3D affine "
                                  f"transforms, respectively. Got size {size}")
    n = len(size) - 2
    if th.ndim != 3 or tuple(th.shape) != (size[0], n, n + 1):
        raise ValueError(f"{op}: expected a batch of {n}D affine matrices of shape "
                         f"Nx{n}x{n + 1} for size {size}, got {tuple(th.shape)}")
    if min(size) <= 0:
        raise ValueError(f"{op}: expected non-zero, positive output size, got {size}")
    spatial = size[2:]
    b = tensor(affine_base(spatial, bool(align_corners)), dtype=th.dtype, device=th.device)
    grid = b @ th.mT
    return grid.reshape(size[0], *spatial, n)


__all__ = ["grid_sample", "affine_grid"]
