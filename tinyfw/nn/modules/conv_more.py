"""Conv1d, Conv3d, ConvTranspose1d/2d/3d and the lazy convolutions (in_channels taken from
the first input).  Conv2d itself is in ``conv.py``.

Initialised as PyTorch: kaiming_uniform_(a=sqrt(5)) weight and U(-1/sqrt(fan_in),
1/sqrt(fan_in)) bias, fan_in = weight.shape[1] * prod(kernel) (for the transposed
convolutions that is out_channels / groups * prod(kernel), PyTorch's choice too).
"""
from __future__ import annotations

import math

from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..functional_conv import mode_padding, ntuple, transposed_size
from .linear import _empty
from .module import Module

_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """The common part of Conv1d/Conv3d and the transposed convolutions."""
    _nd = 1
    _transposed = False
    _functional = None  # F.conv1d, F.conv3d, F.conv_transpose{1,2,3}d

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None, output_padding=0):
        super().__init__()
        op, n = type(self).__name__, self._nd
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{op}: in_channels={in_channels} and out_channels={out_channels} "
                             f"must both be divisible by groups={groups}")
        if padding_mode not in _MODES:
            raise ValueError(f"{op}: padding_mode must be one of {_MODES}, got {padding_mode!r}")
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f"{op}: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = ntuple(kernel_size, n, op, "kernel_size", 1)
        self.stride = ntuple(stride, n, op, "stride", 1)
        self.dilation = ntuple(dilation, n, op, "dilation", 1)
        self.output_padding = ntuple(output_padding, n, op, "output_padding", 0)
        if isinstance(padding, str) and not self._transposed:
            if padding not in ("same", "valid"):
                raise ValueError(f"{op}: padding string must be 'same' or 'valid', got "
                                 f"{padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided "
                                 f"convolutions (stride={self.stride})")
            self.padding = padding
        else:
            self.padding = ntuple(padding, n, op, "padding", 0)
        self.padding_mode = padding_mode
        self.weight = _empty(*self._weight_shape(in_channels), dtype=dtype, device=device)
        if bias:
            self.bias = _empty(out_channels, dtype=dtype, device=device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _weight_shape(self, in_channels: int) -> tuple:
        if self._transposed:
            return (in_channels, self.out_channels // self.groups) + self.kernel_size
        return (self.out_channels, in_channels // self.groups) + self.kernel_size

    def reset_parameters(self) -> None:
        """Re-draw the weights with the default initialisation."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        """The convolution of `input` with the layer's weight and bias."""
        f = type(self)._functional
        if self.padding_mode != "zeros":
            x = F.pad(input, mode_padding(self.padding, self.kernel_size, self.dilation),
                      mode=self.padding_mode)
            return f(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return f(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                 self.groups)

    def extra_repr(self) -> str:
        n = self._nd
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-d convolution over (N, C, L) (or (C, L)) inputs, weight (out, in/groups, k)."""
    _nd, _functional = 1, staticmethod(F.conv1d)


class Conv3d(_ConvNd):
    """3-d convolution over (N, C, D, H, W) (or unbatched) inputs, weight
    (out, in/groups, kd, kh, kw)."""
    _nd, _functional = 3, staticmethod(F.conv3d)


class _ConvTransposeNd(_ConvNd):
    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, output_padding)

    def _output_padding(self, input: Tensor, output_size) -> tuple:
        """output_padding that gives `output_size` (PyTorch's rule: between the smallest
        output and stride - 1 more)."""
        if output_size is None:
            return self.output_padding
        op, n = type(self).__name__, self._nd
        size = list(output_size)[-n:] if len(output_size) > n else list(output_size)
        if len(size) != n:
            raise ValueError(f"{op}: output_size must have {n} or {n + 2} elements, got "
                             f"{output_size!r}")
        out = []
        for i in range(n):
            lo = transposed_size(input.shape[input.ndim - n + i], self.kernel_size[i],
                                 self.stride[i], self.padding[i], 0, self.dilation[i])
            if not lo <= size[i] < lo + self.stride[i]:
                raise ValueError(f"{op}: requested output size {size} is not reachable: dim "
                                 f"{i} must be in [{lo}, {lo + self.stride[i] - 1}]")
            out.append(size[i] - lo)
        return tuple(out)

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        """The transposed convolution; `output_size` picks among the sizes a stride > 1
        leaves open."""
        return type(self)._functional(input, self.weight, self.bias, self.stride, self.padding,
                                      self._output_padding(input, output_size), self.groups,
                                      self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-d convolution (the input gradient of Conv1d); weight
    (in, out/groups, k)."""
    _nd, _functional = 1, staticmethod(F.conv_transpose1d)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-d convolution (the input gradient of Conv2d); weight
    (in, out/groups, kh, kw)."""
    _nd, _functional = 2, staticmethod(F.conv_transpose2d)


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-d convolution (the input gradient of Conv3d); weight
    (in, out/groups, kd, kh, kw)."""
    _nd, _functional = 3, staticmethod(F.conv_transpose3d)


__all__ = ["Conv1d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
