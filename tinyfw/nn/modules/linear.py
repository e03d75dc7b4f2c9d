"""Linear layers and shape helpers: `Linear`, `Identity`, `Flatten`, `Unflatten`."""
from __future__ import annotations

import math

from ... import creation
from ...ops.linalg import linear
from ...tensor import Tensor
from .. import init
from .module import Module, Parameter


def _empty(*shape, dtype=None, device=None) -> Parameter:
    """A new parameter of `shape` (filled by the layer's reset_parameters)."""
    return Parameter(creation.empty(*shape, dtype=dtype, device=device))


class Identity(Module):
    """Returns its input unchanged (a placeholder; ignores constructor arguments)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        """input itself."""
        return input


class Linear(Module):
    """y = x @ weight.T + bias, with weight (out_features, in_features).

    Initialised as PyTorch does: weight by kaiming_uniform_(a=sqrt(5)) (i.e. U(-k, k) with
    k = 1/sqrt(in_features)), bias U(-k, k)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear: features must be non-negative, got in_features="
                             f"{in_features}, out_features={out_features}")
        self.in_features = in_features
        self.out_features = out_features
        self.weight = _empty(out_features, in_features, dtype=dtype, device=device)
        if bias:
            self.bias = _empty(out_features, dtype=dtype, device=device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the weights with the default initialisation."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        """Apply the affine map to the last dimension."""
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise RuntimeError(f"Linear: input of shape {tuple(input.shape)} does not end in "
                               f"in_features={self.in_features}")
        return linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Flatten dimensions start_dim..end_dim into one (default: all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        """The flattened input."""
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension `dim` into `unflattened_size`."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        """The unflattened input."""
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
