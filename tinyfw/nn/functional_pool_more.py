"""Max unpooling (1, 2, 3-d) and fractional max pooling (2, 3-d), PyTorch's semantics.

max_unpool scatters each value to its flat index in a zero output plane (the gradient is
the gather at those indices).  Fractional max pooling draws one sample u in [0, 1) per
(batch, channel, dim) (from a tinyfw Generator, or PyTorch's ``_random_samples``) and
places window i at int((i + u) * a) - int(u * a), a = (in - k) / (out - 1), the last one
at in - k, computed in the input's float type as PyTorch's kernel; the max over those
windows then runs through a per-plane window table (``_pool_util.max_by_table``).
"""
from __future__ import annotations

import math
from numbers import Real

from .. import dtypes as _dt
from ..creation import rand, tensor, zeros
from ..ops._util import Tensor, ensure_tensor
from ..ops.index import scatter
from ..nn._losses import int_bounds
from ..backend.pool_tables import fractional_table
from ..random import Generator
from ._pool_util import finish, max_by_table, ntuple, spatial_input


# -- max unpooling -----------------------------------------------------------------------------
def _max_unpool(input, indices, kernel_size, stride, padding, output_size, n: int, op: str):
    x, unbatched = spatial_input(input, n, op)
    idx = ensure_tensor(indices, op)
    if idx.dtype.is_floating_point or idx.dtype.name == "bool":
        raise TypeError(f"{op}: indices must be an integer tensor, got {idx.dtype.name}")
    if unbatched:
        idx = idx.unsqueeze(0)
    if tuple(idx.shape) != tuple(x.shape):
        raise RuntimeError(f"{op}: indices of shape {tuple(idx.shape)} must match the input "
                           f"shape {tuple(x.shape)}")
    kernel = ntuple(kernel_size, n, op, "kernel_size", 1)
    stride = kernel if stride is None else ntuple(stride, n, op, "stride", 1)
    padding = ntuple(padding, n, op, "padding", 0)
    default = tuple((x.shape[2 + d] - 1) * stride[d] - 2 * padding[d] + kernel[d]
                    for d in range(n))
    if output_size is None:
        out = default
    else:
        out = tuple(int(v) for v in output_size)
        if len(out) == n + 2:
            out = out[2:]
        if len(out) != n:
            raise ValueError(f"{op}: output_size must have {n} or {n + 2} entries, got "
                             f"{tuple(output_size)}")
        for d in range(n):
            lo, hi = default[d] - stride[d], default[d] + stride[d]
            if not lo < out[d] < hi:
                raise ValueError(f"{op}: invalid output_size {out} (dim {d} must lie between "
                                 f"{lo} and {hi}, exclusive)")
    if any(v < 1 for v in out):
        raise RuntimeError(f"{op}: the output size {out} must be positive")
    plane = math.prod(out)
    bounds = int_bounds(idx)
    if bounds is not None and (bounds[0] < 0 or bounds[1] >= plane):
        bad = bounds[0] if bounds[0] < 0 else bounds[1]
        raise RuntimeError(f"{op}: found an invalid max index {bad} (output volume of size "
                           f"{out} holds {plane} elements)")
    nb, c = x.shape[:2]
    y = zeros(nb, c, plane, dtype=x.dtype, device=x.device)
    m = math.prod(x.shape[2:])
    y = scatter(y, 2, idx.reshape(nb, c, m).to(_dt.int64), x.reshape(nb, c, m))
    return finish(y.reshape(nb, c, *out), unbatched)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """Inverse of max_pool1d: values placed at their indices, zeros elsewhere."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1,
                       "max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """Inverse of max_pool2d: values placed at their flat (h * W + w) indices."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2,
                       "max_unpool2d")


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """Inverse of max_pool3d: values placed at their flat (d * H * W + h * W + w) indices."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3,
                       "max_unpool3d")


# -- fractional max pooling --------------------------------------------------------------------
def _fractional(input, kernel_size, output_size, output_ratio, return_indices, samples,
                generator, n: int, op: str):
    x, unbatched = spatial_input(input, n, op)
    kernel = ntuple(kernel_size, n, op, "kernel_size", 1)
    sizes = tuple(x.shape[2:])
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"{op} requires specifying either an output_size or an "
                             "output_ratio")
        ratio = (output_ratio,) * n if isinstance(output_ratio, Real) else tuple(output_ratio)
        if len(ratio) == 1:
            ratio = ratio * n
        if len(ratio) != n:
            raise ValueError(f"{op}: output_ratio must be a number or a tuple of {n}, got "
                             f"{output_ratio!r}")
        out = tuple(int(s * r) for s, r in zip(sizes, ratio))
    else:
        out = ntuple(output_size, n, op, "output_size", 1)
    for d in range(n):
        # PyTorch's 3-d kernel also refuses out + k - 1 == size (the 2-d one allows it)
        if out[d] + kernel[d] - 1 > sizes[d] - (n == 3):
            raise RuntimeError(f"{op}: kernel size {kernel[d]} is too large for input size "
                               f"{sizes[d]} and output size {out[d]} along spatial dim {d}")
    nb, c = x.shape[:2]
    if samples is None:
        samples = rand(nb, c, n, generator=generator, dtype=x.dtype, device=x.device)
    s = ensure_tensor(samples, op)
    if tuple(s.shape) != (nb, c, n):
        raise RuntimeError(f"{op}: _random_samples must have shape {(nb, c, n)}, got "
                           f"{tuple(s.shape)}")
    tables = fractional_table(s.detach()._host(), x.dtype.name, sizes, out, kernel)
    y, idx = max_by_table(x, tensor(tables, device=x.device), out)
    y, idx = finish((y, idx), unbatched)
    return (y, idx) if return_indices else y


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples=None, *,
                          generator: Generator | None = None):
    """Max over pseudo-random (kh, kw) windows reaching output_size (or input size *
    output_ratio); the samples come from `generator` unless _random_samples (N, C, 2) is
    given."""
    return _fractional(input, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples, generator, 2, "fractional_max_pool2d")


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples=None, *,
                          generator: Generator | None = None):
    """Max over pseudo-random (kd, kh, kw) windows; samples (N, C, 3) as in the 2-d op."""
    return _fractional(input, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples, generator, 3, "fractional_max_pool3d")


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = False, _random_samples=None, *,
                                       generator: Generator | None = None) -> tuple:
    """(values, indices) of fractional_max_pool2d."""
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples, generator=generator)


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = False, _random_samples=None, *,
                                       generator: Generator | None = None) -> tuple:
    """(values, indices) of fractional_max_pool3d."""
    return fractional_max_pool3d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples, generator=generator)


__all__ = ["max_unpool1d", "max_unpool2d", "max_unpool3d", "fractional_max_pool2d",
           "fractional_max_pool3d", "fractional_max_pool2d_with_indices",
           "fractional_max_pool3d_with_indices"]
