"""Lazy convolutions: in_channels is read from the first input (PyTorch's LazyModuleMixin).

Until that first call the layer's ``weight`` and ``bias`` are ``None`` placeholders
(PyTorch holds ``UninitializedParameter`` objects there; tinyfw has no tensor without
storage outside the meta device), ``in_channels`` is 0 and ``has_uninitialized_params()``
is True.  The first forward creates the parameters with the constructor's dtype and device,
draws them with the layer's ``reset_parameters`` and turns the object into its concrete
class (``cls_to_become``: LazyConv2d becomes Conv2d), as PyTorch does.
"""
from __future__ import annotations

from ...tensor import Tensor
from .conv import Conv2d
from .conv_more import Conv1d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import _empty


class _LazyConvMixin:
    """Mixed in before the concrete class; `cls_to_become` is that class."""
    cls_to_become = None

    def _lazy_setup(self, groups: int, bias: bool, dtype, device) -> None:
        # the concrete __init__ ran with in_channels=groups (a valid stand-in): drop what
        # it drew and keep how to make the real parameters
        self._lazy_factory = (bool(bias), dtype, device)
        self.in_channels = 0
        self.weight = None
        self.bias = None

    def has_uninitialized_params(self) -> bool:
        """True until the first forward has created the parameters."""
        return self.weight is None

    def initialize_parameters(self, input: Tensor) -> None:
        """Create the parameters for `input`'s channel count and become `cls_to_become`."""
        op = type(self).__name__
        n = len(self.kernel_size)
        if input.ndim not in (n + 1, n + 2):
            raise RuntimeError(f"{op}: expected a {n + 1}-d or {n + 2}-d input to infer "
                               f"in_channels from, got shape {tuple(input.shape)}")
        c = input.shape[0 if input.ndim == n + 1 else 1]
        if c == 0 or c % self.groups:
            raise ValueError(f"{op}: the input's {c} channels (shape {tuple(input.shape)}) "
                             f"must be a positive multiple of groups={self.groups}")
        bias, dtype, device = self._lazy_factory
        transposed = isinstance(self, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d))
        shape = ((c, self.out_channels // self.groups) if transposed
                 else (self.out_channels, c // self.groups)) + tuple(self.kernel_size)
        self.in_channels = c
        self.weight = _empty(*shape, dtype=dtype, device=device)
        if bias:
            self.bias = _empty(self.out_channels, dtype=dtype, device=device)
        del self._lazy_factory
        self.__class__ = self.cls_to_become
        self.reset_parameters()

    def forward(self, input: Tensor, *args, **kwargs) -> Tensor:
        """The first call creates the parameters, then runs the concrete layer."""
        self.initialize_parameters(input)
        return self.forward(input, *args, **kwargs)

    def reset_parameters(self) -> None:
        """Nothing to draw before the first call (the parameters do not exist yet)."""
        if not self.has_uninitialized_params():
            self.cls_to_become.reset_parameters(self)


def _lazy(concrete, transposed: bool):
    if transposed:
        def __init__(self, out_channels: int, kernel_size, stride=1, padding=0,
                     output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                     padding_mode: str = "zeros", device=None, dtype=None):
            concrete.__init__(self, groups, out_channels, kernel_size, stride, padding,
                              output_padding, groups, bias, dilation, padding_mode, device,
                              dtype)
            self._lazy_setup(groups, bias, dtype, device)
    else:
        def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                     groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                     device=None, dtype=None):
            concrete.__init__(self, groups, out_channels, kernel_size, stride, padding,
                              dilation, groups, bias, padding_mode, device, dtype)
            self._lazy_setup(groups, bias, dtype, device)
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
