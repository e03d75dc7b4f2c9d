"""Pooling layers beyond the 2-d ones of ``pooling.py``: 1-d and 3-d max/avg pooling,
adaptive pooling, max unpooling, power-average pooling and fractional max pooling, thin
wrappers over ``tinyfw.nn.functional`` with PyTorch's constructor arguments."""
from __future__ import annotations

from ...random import Generator
from ...tensor import Tensor
from .. import functional as F
from .module import Module


class _MaxPoolNd(Module):
    _fn = None

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Tensor):
        """max pooling of input (and the indices when return_indices)."""
        return type(self)._fn(input, self.kernel_size, self.stride, self.padding,
                              self.dilation, ceil_mode=self.ceil_mode,
                              return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max over kernel_size windows along the last dim of (N, C, L) or (C, L) input."""
    _fn = staticmethod(F.max_pool1d)


class MaxPool3d(_MaxPoolNd):
    """Max over kernel_size windows of (N, C, D, H, W) or (C, D, H, W) input."""
    _fn = staticmethod(F.max_pool3d)


class AvgPool1d(Module):
    """Mean over kernel_size windows along the last dim."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        """avg_pool1d(input, ...)."""
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool3d(Module):
    """Mean over kernel_size 3-d windows (or the window sum over divisor_override)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: Tensor) -> Tensor:
        """avg_pool3d(input, ...)."""
        return F.avg_pool3d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptiveAvg(Module):
    _fn = None

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        """Adaptive average pooling to output_size."""
        return type(self)._fn(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvg):
    """Average pooling of the last dim to output_size."""
    _fn = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool3d(_AdaptiveAvg):
    """Average pooling of (D, H, W) to output_size (None keeps a size)."""
    _fn = staticmethod(F.adaptive_avg_pool3d)


class _AdaptiveMax(Module):
    _fn = None

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input: Tensor):
        """Adaptive max pooling to output_size (and the indices when return_indices)."""
        return type(self)._fn(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMax):
    """Max over PyTorch's adaptive windows of the last dim."""
    _fn = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMax):
    """Max over PyTorch's adaptive (H, W) windows."""
    _fn = staticmethod(F.adaptive_max_pool2d)


class AdaptiveMaxPool3d(_AdaptiveMax):
    """Max over PyTorch's adaptive (D, H, W) windows."""
    _fn = staticmethod(F.adaptive_max_pool3d)


class _MaxUnpool(Module):
    _fn = None

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding

    def forward(self, input: Tensor, indices: Tensor, output_size=None) -> Tensor:
        """Values placed at their max-pooling indices in a zero output."""
        return type(self)._fn(input, indices, self.kernel_size, self.stride, self.padding,
                              output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpool):
    """Inverse of MaxPool1d (non-maxima become zeros)."""
    _fn = staticmethod(F.max_unpool1d)


class MaxUnpool2d(_MaxUnpool):
    """Inverse of MaxPool2d (non-maxima become zeros)."""
    _fn = staticmethod(F.max_unpool2d)


class MaxUnpool3d(_MaxUnpool):
    """Inverse of MaxPool3d (non-maxima become zeros)."""
    _fn = staticmethod(F.max_unpool3d)


class _LPPool(Module):
    _fn = None

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
        super().__init__()
        self.norm_type, self.kernel_size = norm_type, kernel_size
        self.stride, self.ceil_mode = stride, ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        """Power-average pooling of input."""
        return type(self)._fn(input, float(self.norm_type), self.kernel_size, self.stride,
                              self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPool):
    """(sum over each window of x ** p) ** (1 / p) along the last dim."""
    _fn = staticmethod(F.lp_pool1d)


class LPPool2d(_LPPool):
    """(sum over each (kh, kw) window of x ** p) ** (1 / p)."""
    _fn = staticmethod(F.lp_pool2d)


class LPPool3d(_LPPool):
    """(sum over each (kd, kh, kw) window of x ** p) ** (1 / p)."""
    _fn = staticmethod(F.lp_pool3d)


class _FractionalMaxPool(Module):
    _fn = None
    _n = 2

    def __init__(self, kernel_size, output_size=None, output_ratio=None,
                 return_indices: bool = False, _random_samples=None, *,
                 generator: Generator | None = None):
        super().__init__()
        name = type(self).__name__
        if (output_size is None) == (output_ratio is None):
            raise ValueError(f"{name} requires specifying either an output size, or a pooling "
                             "ratio (not both)")
        if output_ratio is not None:
            ratio = (output_ratio,) * self._n if isinstance(output_ratio, (int, float)) \
                else tuple(output_ratio)
            if not all(0 < r < 1 for r in ratio):
                raise ValueError(f"{name}: output_ratio must be between 0 and 1 (got "
                                 f"{output_ratio})")
        self.kernel_size, self.output_size = kernel_size, output_size
        self.output_ratio, self.return_indices = output_ratio, return_indices
        # a buffer, as PyTorch's (it is in the state dict)
        self.register_buffer("_random_samples", _random_samples)
        self.generator = generator

    def forward(self, input: Tensor):
        """Fractional max pooling (and the indices when return_indices)."""
        return type(self)._fn(input, self.kernel_size, self.output_size, self.output_ratio,
                              self.return_indices, self._random_samples,
                              generator=self.generator)


class FractionalMaxPool2d(_FractionalMaxPool):
    """Max over pseudo-random (kh, kw) windows reaching output_size or input * output_ratio."""
    _fn = staticmethod(F.fractional_max_pool2d)
    _n = 2


class FractionalMaxPool3d(_FractionalMaxPool):
    """Max over pseudo-random (kd, kh, kw) windows."""
    _fn = staticmethod(F.fractional_max_pool3d)
    _n = 3


__all__ = ["MaxPool1d", "MaxPool3d", "AvgPool1d", "AvgPool3d", "AdaptiveAvgPool1d",
           "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
           "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "LPPool1d", "LPPool2d", "LPPool3d",
           "FractionalMaxPool2d", "FractionalMaxPool3d"]
