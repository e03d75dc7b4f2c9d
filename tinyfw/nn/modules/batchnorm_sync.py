"""`SyncBatchNorm`: batch normalisation whose statistics are those of the whole global
batch, summed over the ranks of tinyfw.distributed, in training; plain BatchNorm
otherwise (eval, or no process group / one rank).

The sums cross ranks through an all_reduce whose gradient is also all-reduced (a hook on
the summed tensor): every rank's loss depends on every rank's inputs through the shared
mean and variance, so each input's gradient collects the other ranks' terms, as in
PyTorch's SyncBatchNorm.  Every rank must run forward and backward through the layer the
same number of times (collectives pair up in order)."""
from __future__ import annotations

from ... import creation
from ... import dtypes as _dt
from ...autograd.function import no_grad
from ...tensor import Tensor
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, _BatchNorm


def _all_reduced(t: Tensor) -> Tensor:
    from ... import distributed as dist

    out = t.detach().clone()
    dist.all_reduce(out)
    return out


def _global_sum(t: Tensor) -> Tensor:
    """t summed over the ranks; its gradient is summed over the ranks too."""
    frozen = t.detach()
    out = t + (_all_reduced(frozen) - frozen)
    if out.requires_grad:
        out.register_hook(_all_reduced)
    return out


def _world() -> int:
    from ... import distributed as dist

    return dist.get_world_size() if dist.is_initialized() else 1


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation of (N, C, *) inputs over the global batch of every rank.
    process_group must be None (the default group: tinyfw has one group)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None,
                 device=None, dtype=None):
        if process_group is not None:
            raise ValueError("SyncBatchNorm: tinyfw.distributed has one (default) process "
                             "group; pass process_group=None")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = None

    def _check_input(self, input: Tensor) -> None:
        if input.ndim < 2:
            raise ValueError(f"SyncBatchNorm: expected at least 2D input (N, C, *), got "
                             f"{input.ndim}D input of shape {tuple(input.shape)}")
        if input.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm: expected {self.num_features} channels (dim 1), "
                             f"input has shape {tuple(input.shape)}")

    def forward(self, input: Tensor) -> Tensor:
        """Global-batch statistics in training across ranks; else BatchNorm's behaviour."""
        self._check_input(input)
        if not self.training or _world() == 1:
            return super().forward(input)
        c = self.num_features
        dims = (0,) + tuple(range(2, input.ndim))
        shape = (1, c) + (1,) * (input.ndim - 2)
        local = input.numel() // c if c else 0
        count = _all_reduced(creation.full((1,), float(local), dtype=_dt.float64,
                                           device=input.device))
        n = float(count)
        if n <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel over the "
                             f"global batch, got {int(n)}")
        mean = _global_sum(input.sum(dims)) / n
        centred = input - mean.reshape(shape)
        var = _global_sum((centred * centred).sum(dims)) / n
        y = centred * (var.reshape(shape) + self.eps).rsqrt()
        if self.weight is not None:
            y = y * self.weight.reshape(shape)
        if self.bias is not None:
            y = y + self.bias.reshape(shape)
        if self.track_running_stats:
            with no_grad():
                self.num_batches_tracked.add_(1)
                m = (1.0 / float(self.num_batches_tracked)) if self.momentum is None \
                    else self.momentum
                rm, rv = self.running_mean, self.running_var
                rm.copy_(rm * (1 - m) + mean.detach().to(rm.dtype) * m)
                rv.copy_(rv * (1 - m) + (var.detach() * (n / (n - 1))).to(rv.dtype) * m)
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """`module` with every BatchNorm1d/2d/3d (itself or inside it) replaced by a
        SyncBatchNorm holding the same parameters and running statistics."""
        if isinstance(module, (BatchNorm1d, BatchNorm2d, BatchNorm3d)) and \
                not isinstance(module, cls):
            out = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, process_group)
            if module.affine:
                out.weight, out.bias = module.weight, module.bias
            if module.track_running_stats:
                out.running_mean, out.running_var = module.running_mean, module.running_var
                out.num_batches_tracked = module.num_batches_tracked
            out.train(module.training)
            return out
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child, process_group)
        return module
