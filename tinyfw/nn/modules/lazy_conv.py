"""Lazy convolutions: in_channels is read from the first input (PyTorch's LazyModuleMixin,
tinyfw/nn/modules/lazy.py).

Until the first call (or a load_state_dict) ``weight`` and ``bias`` are
`UninitializedParameter`s and ``in_channels`` is 0; the first forward materialises them
for the input's channel count, draws them with the layer's ``reset_parameters`` and turns
the object into its concrete class (``cls_to_become``: LazyConv2d becomes Conv2d).
"""
from __future__ import annotations

from ...tensor import Tensor
from .conv import Conv2d
from .conv_more import Conv1d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .lazy import LazyModuleMixin, UninitializedParameter

_TRANSPOSED = (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)


class _LazyConvMixin(LazyModuleMixin):
    """Mixed in before the concrete class; `cls_to_become` is that class."""

    def _lazy_setup(self, bias: bool, dtype, device) -> None:
        # the concrete __init__ ran with in_channels=groups (a valid stand-in): its
        # parameters become placeholders
        self.in_channels = 0
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        """The concrete layer's initialisation, once the parameters exist."""
        if not self.has_uninitialized_params():
            self.cls_to_become.reset_parameters(self)

    def initialize_parameters(self, input: Tensor, *args, **kwargs) -> None:
        """Materialise the parameters for `input`'s channel count."""
        op = type(self).__name__
        n = len(self.kernel_size)
        if input.ndim not in (n + 1, n + 2):
            raise RuntimeError(f"{op}: expected a {n + 1}-d or {n + 2}-d input to infer "
                               f"in_channels from, got shape {tuple(input.shape)}")
        c = input.shape[0 if input.ndim == n + 1 else 1]
        if c == 0 or c % self.groups:
            raise ValueError(f"{op}: the input's {c} channels (shape {tuple(input.shape)}) "
                             f"must be a positive multiple of groups={self.groups}")
        transposed = isinstance(self, _TRANSPOSED)
        shape = ((c, self.out_channels // self.groups) if transposed
                 else (self.out_channels, c // self.groups)) + tuple(self.kernel_size)
        self.in_channels = c
        self.weight.materialize(shape)
        if isinstance(self.bias, UninitializedParameter):
            self.bias.materialize((self.out_channels,))
        self.reset_parameters()

    def _sync_sizes(self) -> None:
        w = self.weight
        self.in_channels = w.shape[0] if isinstance(self, _TRANSPOSED) else w.shape[1] * self.groups


def _lazy(concrete, transposed: bool):
    if transposed:
        def __init__(self, out_channels: int, kernel_size, stride=1, padding=0,
                     output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                     padding_mode: str = "zeros", device=None, dtype=None):
            concrete.__init__(self, groups, out_channels, kernel_size, stride, padding,
                              output_padding, groups, bias, dilation, padding_mode, device,
                              dtype)
            self._lazy_setup(bias, dtype, device)
    else:
        def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                     groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                     device=None, dtype=None):
            concrete.__init__(self, groups, out_channels, kernel_size, stride, padding,
                              dilation, groups, bias, padding_mode, device, dtype)
            self._lazy_setup(bias, dtype, device)
    name = "Lazy" + concrete.__name__
    doc = (f"{concrete.__name__} whose in_channels is the channel count of its first input "
           f"(the parameters are created by the first call).")
    return type(name, (_LazyConvMixin, concrete),
                {"__init__": __init__, "cls_to_become": concrete, "__doc__": doc,
                 "__module__": __name__})


LazyConv1d = _lazy(Conv1d, False)
LazyConv2d = _lazy(Conv2d, False)
LazyConv3d = _lazy(Conv3d, False)
LazyConvTranspose1d = _lazy(ConvTranspose1d, True)
LazyConvTranspose2d = _lazy(ConvTranspose2d, True)
LazyConvTranspose3d = _lazy(ConvTranspose3d, True)

__all__ = ["LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
           "LazyConvTranspose2d", "LazyConvTranspose3d"]
