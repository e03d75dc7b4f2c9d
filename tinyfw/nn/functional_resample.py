"""``interpolate`` (nearest, nearest-exact, linear, bilinear, bicubic, trilinear, area) with
PyTorch's argument rules, output sizes and source-index arithmetic.

Every mode but area is separable: one (index, weight) table per spatial dim, applied by
the ``ResampleAxis`` op (a C++ kernel on the CPU), last dim first, so the arithmetic nests
as PyTorch's kernels do.  The tables come from ``backend/resample_tables.py``, in the
precision PyTorch's CPU kernels use, so the picked indices agree exactly.  Area mode is
adaptive average pooling.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

from ..backend.resample_tables import resample_table
from ..ops._util import Tensor, ensure_tensor
from ..ops.nn import check_float
from ..ops.resample import resample_dim
from .functional_pool import adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def _sizes(x: Tensor, dim: int, size, scale_factor, recompute, op: str) -> tuple:
    """(output sizes, scales passed to the kernel or None per dim)."""
    if size is not None and scale_factor is not None:
        raise ValueError(f"{op}: only one of size or scale_factor should be defined")
    if size is not None:
        if recompute:
            raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an explicit "
                             "size")
        sizes = [size] * dim if isinstance(size, Integral) else list(size)
        if len(sizes) != dim:
            raise ValueError(f"{op}: input and output must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of "
                             f"{list(x.shape[2:])} and output size of {size}")
        if not all(isinstance(v, Integral) for v in sizes):
            raise TypeError(f"{op}: size must be ints, got {size!r}")
        return [int(v) for v in sizes], [None] * dim
    if scale_factor is None:
        raise ValueError(f"{op}: either size or scale_factor should be defined")
    scales = [scale_factor] * dim if isinstance(scale_factor, Real) else list(scale_factor)
    if len(scales) != dim:
        raise ValueError(f"{op}: input and scale_factor must have the same number of spatial "
                         f"dimensions, but got input with spatial dimensions of "
                         f"{list(x.shape[2:])} and scale_factor of shape {scale_factor}")
    scales = [float(s) for s in scales]
    sizes = [math.floor(float(x.shape[2 + i]) * scales[i]) for i in range(dim)]
    return sizes, ([None] * dim if recompute else scales)


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize (N, C, L), (N, C, H, W) or (N, C, D, H, W) input to `size` or by
    `scale_factor`, with PyTorch's modes and source-index rules; antialias=True is not
    supported (NotImplementedError, docs/semantics.md)."""
    op = "interpolate"
    x = ensure_tensor(input, op)
    if mode not in _MODES:
        raise NotImplementedError(f"{op}: mode {mode!r} is not one of {', '.join(_MODES)}")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(f"{op}: align_corners option can only be set with the "
                             "interpolating modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    if x.ndim not in (3, 4, 5):
        raise NotImplementedError(f"{op}: only 3D, 4D and 5D input tensors are supported (got "
                                  f"{x.ndim}D) for the modes: {' | '.join(_MODES)} (got "
                                  f"{mode})")
    dim = x.ndim - 2
    if mode in _DIMS and _DIMS[mode] != dim:
        raise NotImplementedError(f"{op}: got {x.ndim}D input, but {mode} mode needs "
                                  f"{_DIMS[mode] + 2}D input")
    if antialias:
        if not (mode in ("bilinear", "bicubic") and x.ndim == 4):
            raise ValueError(f"{op}: anti-alias option is restricted to bilinear and bicubic "
                             "modes and requires a 4-D tensor as input")
        raise NotImplementedError(f"{op}: antialias=True is not supported by tinyfw")
    check_float(x, op)
    recompute = bool(recompute_scale_factor) or (mode == "area" and size is None)
    sizes, scales = _sizes(x, dim, size, scale_factor, recompute, op)
    if any(s <= 0 for s in sizes):
        raise ValueError(f"{op}: output size {tuple(sizes)} must be positive (input "
                         f"{tuple(x.shape)})")
    if any(v == 0 for v in x.shape[2:]):
        raise RuntimeError(f"{op}: input {tuple(x.shape)} has an empty spatial dim")
    if mode == "area":
        pools = {1: adaptive_avg_pool1d, 2: adaptive_avg_pool2d, 3: adaptive_avg_pool3d}
        return pools[dim](x, tuple(sizes))
    y = x
    for d in reversed(range(dim)):
        index, weight = resample_table(mode, x.shape[2 + d], sizes[d], scales[d], align_corners,
                                       x.dtype.name)
        y = resample_dim(y, 2 + d, index, weight)
    return y


def upsample(input, size=None, scale_factor=None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    """Deprecated alias of interpolate (as PyTorch's)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None) -> Tensor:
    """Deprecated: interpolate(mode='nearest')."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None) -> Tensor:
    """Deprecated: interpolate(mode='bilinear', align_corners=True)."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear"]
