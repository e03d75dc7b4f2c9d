"""DistributedDataParallel: one model replica per process, gradients averaged over ranks.

    dist.init_process_group()
    model = DistributedDataParallel(model)     # rank 0's parameters and buffers everywhere
    for x, y in loader:                        # each rank its own shard (DistributedSampler)
        opt.zero_grad()
        loss_fn(model(x), y).backward()        # gradients averaged while backward runs
        opt.step()                             # same update on every rank

Every rank takes the same optimizer step on the gradient of the mean loss over the
union of the ranks' batches (for a mean-reduced loss and equal per-rank batches: the
same as one process on the global batch).  The reduction is asynchronous and bucketed
(see ``tinyfw/distributed/_reducer.py``).  One forward per backward; with a single
process the wrapper only calls the module.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from ...autograd.function import is_grad_enabled
from ...tensor import Tensor
from ..modules.module import Module


def _tensors(out) -> list:
    """The tensors in a forward's output (nested tuples, lists and dicts)."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _tensors(o)]
    return []


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training over the default process group.

    `bucket_cap_mb`: the size of a gradient bucket (one asynchronous all-reduce; the first
    bucket is at most 1 MiB).  `find_unused_parameters`: allow parameters that this
    forward does not use (an error otherwise, naming them); parameters no rank used keep
    their ``.grad``.  `broadcast_buffers`: copy rank 0's buffers (BatchNorm statistics) to
    every rank before each forward.  `gradient_as_bucket_view`: ``.grad`` becomes a view of
    the bucket (no copy back).  `compression`: None, or ``"bf16"`` to send float32
    gradients as bfloat16.
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25.0,
                 find_unused_parameters: bool = False, broadcast_buffers: bool = True,
                 gradient_as_bucket_view: bool = False, compression: str | None = None) -> None:
        super().__init__()
        from ... import distributed as dist
        from ...distributed._reducer import Reducer, broadcast_coalesced

        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected an nn.Module, got "
                            f"{type(module).__name__}")
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: call "
                               "tinyfw.distributed.init_process_group() first")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got "
                             f"{bucket_cap_mb}")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self._sync = True
        self._world = dist.get_world_size()
        self.__dict__["_reducer"] = None
        self.__dict__["_broadcast"] = broadcast_coalesced
        if self._world == 1:
            return  # nothing to average: forward is the module's
        for name, p in module.named_parameters():
            if p.device.type != "cpu":
                raise ValueError(f"DistributedDataParallel: parameter {name!r} is on "
                                 f"'{p.device}'; collectives run on CPU tensors")
        broadcast_coalesced(list(module.parameters()) + list(module.buffers()))
        params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self.__dict__["_reducer"] = Reducer(params, bucket_cap_mb, find_unused_parameters,
                                            gradient_as_bucket_view, compression)

    def forward(self, *args, **kwargs):
        if self._reducer is None:
            return self.module(*args, **kwargs)
        if self.broadcast_buffers:
            bufs = list(self.module.buffers())
            if bufs:
                self._broadcast(bufs)
        out = self.module(*args, **kwargs)
        if self._sync and is_grad_enabled():
            self._reducer.prepare(_tensors(out))
        else:
            self._reducer.armed = False  # no_sync: gradients accumulate locally
        return out

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward passes of forwards run inside accumulate ``.grad`` locally; the first
        synchronised backward after it averages the accumulated sum."""
        prev, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = prev
