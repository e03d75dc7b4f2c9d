"""1-d and 3-d pooling, the ``*_with_indices`` forms, adaptive max/avg pooling in 1, 2 and 3
dims, and power-average (Lp) pooling, with PyTorch's names, arguments and semantics.

1-d max/avg pooling run the 2-d kernels on an (N, C, 1, L) view.  3-d average pooling is
separable: window sums over (H, W) with the 2-d kernel (divisor 1), then over D, divided
once by the product of the per-dim divisors (PyTorch's divisor is that product).  3-d and
adaptive max pooling use a window table (``_pool_util``): indices as PyTorch's (flat in
the spatial plane), the gradient flowing to them.  Adaptive average pooling is one window
mean per dim on interpolate's ResampleAxis op (taps = the window, weights 1 / length).
"""
from __future__ import annotations

from numbers import Integral

from ..creation import tensor
from ..ops._util import Tensor, ensure_tensor
from ..ops.elementwise import relu
from ..ops.nn_conv import avg_pool2d_raw, max_pool2d_indices
from ..ops.resample import resample_dim
from ..backend.pool_tables import adaptive_mean_taps, adaptive_table, avg_divisor, strided_table
from ._pool_util import finish, max_by_table, ntuple, pool_args, spatial_input


# -- max pooling -------------------------------------------------------------------------------
def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False) -> tuple:
    """(values, int64 indices) of 1-d max pooling of (C, L) or (N, C, L) input."""
    op = "max_pool1d"
    x, unbatched = spatial_input(input, 1, op)
    k, s, p, d, _ = pool_args(x, 1, kernel_size, stride, padding, dilation, ceil_mode, op)
    y, idx = max_pool2d_indices(x.unsqueeze(2), (1, k[0]), (1, s[0]), (0, p[0]), (1, d[0]),
                                bool(ceil_mode))
    return finish((y.squeeze(2), idx.squeeze(2)), unbatched)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over kernel_size windows along the last dim (padding counts as -inf); with
    return_indices also the position of each maximum."""
    out = max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return out if return_indices else out[0]


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False) -> tuple:
    """(values, int64 indices h * W + w) of 2-d max pooling."""
    from .functional import max_pool2d
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False) -> tuple:
    """(values, int64 indices d * H * W + h * W + w) of 3-d max pooling of (C, D, H, W) or
    (N, C, D, H, W) input."""
    op = "max_pool3d"
    x, unbatched = spatial_input(input, 3, op)
    k, s, p, d, out = pool_args(x, 3, kernel_size, stride, padding, dilation, ceil_mode, op)
    table = strided_table(tuple(x.shape[2:]), k, s, p, d, out)
    return finish(max_by_table(x, table, out), unbatched)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over kernel_size 3-d windows; with return_indices also the flat positions."""
    out = max_pool3d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return out if return_indices else out[0]


# -- average pooling ---------------------------------------------------------------------------
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over kernel_size windows along the last dim (zero padding, counted in the
    divisor when count_include_pad)."""
    op = "avg_pool1d"
    x, unbatched = spatial_input(input, 1, op)
    k, s, p, _, _ = pool_args(x, 1, kernel_size, stride, padding, 1, ceil_mode, op)
    y = avg_pool2d_raw(x.unsqueeze(2), (1, k[0]), (1, s[0]), (0, p[0]), bool(ceil_mode),
                       bool(count_include_pad), None)
    return finish(y.squeeze(2), unbatched)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over kernel_size 3-d windows (zero padding), or the window sum over
    divisor_override."""
    op = "avg_pool3d"
    x, unbatched = spatial_input(input, 3, op)
    k, s, p, _, out = pool_args(x, 3, kernel_size, stride, padding, 1, ceil_mode, op)
    if divisor_override is not None:
        if not isinstance(divisor_override, Integral) or divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be a non-zero int, got "
                             f"{divisor_override!r}")
    n, c, dd, h, w = x.shape
    if dd < k[0] or h < k[1] or w < k[2]:  # PyTorch's avg_pool3d refuses these (not 1-d/2-d)
        raise RuntimeError(f"{op}: input image (D, H, W) = {(dd, h, w)} is smaller than the "
                           f"kernel size {k}")
    ceil = bool(ceil_mode)
    # window sums over (H, W), then over D: both with the 2-d kernel, divisor 1
    hw = avg_pool2d_raw(x.reshape(n * c * dd, 1, h, w), k[1:], s[1:], p[1:], ceil, True, 1)
    hw = hw.reshape(n, c, dd, out[1] * out[2]).transpose(2, 3)
    sums = avg_pool2d_raw(hw.reshape(n * c, 1, out[1] * out[2], dd), (1, k[0]), (1, s[0]),
                          (0, p[0]), ceil, True, 1)
    sums = sums.reshape(n, c, out[1], out[2], out[0]).permute(0, 1, 4, 2, 3)
    div = avg_divisor(tuple(x.shape[2:]), k, s, p, out, bool(count_include_pad),
                      divisor_override)
    y = sums / tensor(div, dtype=x.dtype, device=x.device)
    return finish(y, unbatched)


# -- adaptive pooling --------------------------------------------------------------------------
def _adaptive_sizes(x: Tensor, n: int, output_size, op: str) -> tuple:
    """Output sizes from an int or an n-tuple whose None entries keep the input's size."""
    sizes = (output_size,) * n if isinstance(output_size, Integral) or output_size is None \
        else tuple(output_size)
    if len(sizes) == 1 and n > 1:
        sizes = sizes * n
    if len(sizes) != n:
        raise ValueError(f"{op}: output_size must be an int or a tuple of {n}, got "
                         f"{output_size!r}")
    sizes = tuple(x.shape[2 + i] if v is None else int(v) for i, v in enumerate(sizes))
    if any(v < 1 for v in sizes) or any(v == 0 for v in x.shape[2:]):
        raise RuntimeError(f"{op}: cannot pool input {tuple(x.shape)} to size {sizes}")
    return sizes


def _adaptive_avg(input, output_size, n: int, op: str) -> Tensor:
    """Separable: a window mean along each spatial dim, the last first (a NaN or inf stays
    inside the windows that hold it, which an averaging matmul would not do)."""
    x, unbatched = spatial_input(input, n, op)
    out = _adaptive_sizes(x, n, output_size, op)
    y = x
    for d in reversed(range(n)):
        y = resample_dim(y, 2 + d, *adaptive_mean_taps(x.shape[2 + d], out[d]))
    return finish(y, unbatched)


def adaptive_avg_pool1d(input, output_size) -> Tensor:
    """Average pooling of (C, L) or (N, C, L) input to length output_size."""
    return _adaptive_avg(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """Average pooling of (C, H, W) or (N, C, H, W) input to output_size (an int or a pair
    whose None entries keep that size)."""
    return _adaptive_avg(input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(input, output_size) -> Tensor:
    """Average pooling of (C, D, H, W) or (N, C, D, H, W) input to output_size (an int or a
    triple whose None entries keep that size)."""
    return _adaptive_avg(input, output_size, 3, "adaptive_avg_pool3d")


def _adaptive_max(input, output_size, n: int, op: str) -> tuple:
    x, unbatched = spatial_input(input, n, op)
    out = _adaptive_sizes(x, n, output_size, op)
    table = adaptive_table(tuple(x.shape[2:]), out)
    return finish(max_by_table(x, table, out), unbatched)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices: bool = False) -> tuple:
    """(values, indices) of adaptive 1-d max pooling."""
    return _adaptive_max(input, output_size, 1, "adaptive_max_pool1d")


def adaptive_max_pool2d_with_indices(input, output_size, return_indices: bool = False) -> tuple:
    """(values, indices h * W + w) of adaptive 2-d max pooling."""
    return _adaptive_max(input, output_size, 2, "adaptive_max_pool2d")


def adaptive_max_pool3d_with_indices(input, output_size, return_indices: bool = False) -> tuple:
    """(values, indices d * H * W + h * W + w) of adaptive 3-d max pooling."""
    return _adaptive_max(input, output_size, 3, "adaptive_max_pool3d")


def adaptive_max_pool1d(input, output_size, return_indices: bool = False):
    """Max over PyTorch's adaptive windows along the last dim."""
    out = adaptive_max_pool1d_with_indices(input, output_size)
    return out if return_indices else out[0]


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """Max over PyTorch's adaptive (H, W) windows (None in output_size keeps a size)."""
    out = adaptive_max_pool2d_with_indices(input, output_size)
    return out if return_indices else out[0]


def adaptive_max_pool3d(input, output_size, return_indices: bool = False):
    """Max over PyTorch's adaptive (D, H, W) windows (None in output_size keeps a size)."""
    out = adaptive_max_pool3d_with_indices(input, output_size)
    return out if return_indices else out[0]


# -- power-average pooling ---------------------------------------------------------------------
def _lp(out: Tensor, norm_type: float, count: int) -> Tensor:
    # PyTorch's formula: (sign(s) * relu(|s|) * count) ** (1 / p) with s the window mean of x**p
    return (out.sign() * relu(out.abs()) * count).pow(1.0 / norm_type)


def lp_pool1d(input, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
    """(sum over each window of x ** norm_type) ** (1 / norm_type) along the last dim."""
    (k,) = ntuple(kernel_size, 1, "lp_pool1d", "kernel_size", 1)
    x = ensure_tensor(input, "lp_pool1d")
    out = avg_pool1d(x.pow(norm_type), k, stride, 0, ceil_mode)
    return _lp(out, norm_type, k)


def lp_pool2d(input, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
    """(sum over each (kh, kw) window of x ** norm_type) ** (1 / norm_type)."""
    from .functional import avg_pool2d
    kh, kw = ntuple(kernel_size, 2, "lp_pool2d", "kernel_size", 1)
    x = ensure_tensor(input, "lp_pool2d")
    out = avg_pool2d(x.pow(norm_type), (kh, kw), stride, 0, ceil_mode)
    return _lp(out, norm_type, kh * kw)


def lp_pool3d(input, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
    """(sum over each (kd, kh, kw) window of x ** norm_type) ** (1 / norm_type)."""
    kd, kh, kw = ntuple(kernel_size, 3, "lp_pool3d", "kernel_size", 1)
    x = ensure_tensor(input, "lp_pool3d")
    out = avg_pool3d(x.pow(norm_type), (kd, kh, kw), stride, 0, ceil_mode)
    return _lp(out, norm_type, kd * kh * kw)


__all__ = ["max_pool1d", "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d",
           "max_pool3d_with_indices", "avg_pool1d", "avg_pool3d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "adaptive_max_pool3d", "adaptive_max_pool1d_with_indices",
           "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d_with_indices",
           "lp_pool1d", "lp_pool2d", "lp_pool3d"]
