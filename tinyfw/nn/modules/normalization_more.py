"""More normalisation layers: `GroupNorm`, `InstanceNorm1d/2d/3d`, `RMSNorm`,
`LocalResponseNorm`, `CrossMapLRN2d` (functional forms in nn/functional_norm.py)."""
from __future__ import annotations

import numbers

from ...tensor import Tensor
from .. import functional_norm as FN
from .. import init
from .linear import _empty
from .module import Module
from .normalization import _BatchNorm


class GroupNorm(Module):
    """group_norm over num_groups groups of channels; per-channel weight 1 and bias 0
    (affine)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels {num_channels} must be divisible by "
                             f"num_groups {num_groups}")
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        if affine:
            self.weight = _empty(num_channels, dtype=dtype, device=device)
            self.bias = _empty(num_channels, dtype=dtype, device=device)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight 1, bias 0."""
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        """group_norm(input, num_groups, weight, bias, eps)."""
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected input (N, {self.num_channels}, *), got "
                             f"{tuple(input.shape)}")
        return FN.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _InstanceNorm(_BatchNorm):
    """Shared by InstanceNorm1d/2d/3d: batch-norm's parameters and buffers, PyTorch's
    defaults (affine=False, track_running_stats=False), an unbatched input accepted."""

    _batched_dims = 3

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        """Instance statistics in training or without running stats, else the running ones."""
        name = type(self).__name__
        b = self._batched_dims
        if input.ndim not in (b - 1, b):
            raise ValueError(f"{name}: expected {b - 1}D (unbatched) or {b}D (batched) input, "
                             f"got {input.ndim}D input of shape {tuple(input.shape)}")
        unbatched = input.ndim == b - 1
        x = input.unsqueeze(0) if unbatched else input
        if x.shape[1] != self.num_features and self.affine:
            raise ValueError(f"{name}: expected input's size at dim={int(not unbatched)} to "
                             f"match num_features ({self.num_features}), but got: "
                             f"{x.shape[1]}")
        use_input_stats = self.training or not self.track_running_stats
        factor = 0.1 if self.momentum is None else self.momentum
        y = FN.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             use_input_stats, factor, self.eps)
        return y.squeeze(0) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or unbatched (C, L) inputs."""

    _batched_dims = 3


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or unbatched (C, H, W) inputs."""

    _batched_dims = 4


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) or unbatched (C, D, H, W) inputs."""

    _batched_dims = 5


class RMSNorm(Module):
    """rms_norm over the trailing normalized_shape dims, elementwise weight 1 initially."""

    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = _empty(*self.normalized_shape, dtype=dtype, device=device)
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight 1."""
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        """rms_norm(x, normalized_shape, weight, eps)."""
        return FN.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class LocalResponseNorm(Module):
    """local_response_norm across channels."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input: Tensor) -> Tensor:
        """local_response_norm(input, size, alpha, beta, k)."""
        return FN.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class CrossMapLRN2d(LocalResponseNorm):
    """The legacy cross-channel LRN of (N, C, H, W) inputs (FN.cross_map_lrn2d)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1):
        super().__init__(size, alpha, beta, k)

    def forward(self, input: Tensor) -> Tensor:
        """cross_map_lrn2d(input, size, alpha, beta, k)."""
        return FN.cross_map_lrn2d(input, self.size, self.alpha, self.beta, self.k)
