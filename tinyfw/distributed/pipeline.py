"""Pipeline (model) parallelism: an ``nn.Sequential`` split across the ranks, GPipe schedule.

    pipe = dist.Pipeline(model, chunks=4)            # every rank builds the same model
    opt = tinyfw.optim.SGD(pipe.parameters(), lr=0.1)  # each rank updates its own stage
    loss = pipe.train_step(x, y, loss_fn)            # x is read on rank 0, y on the last
    opt.step()

Rank r keeps the layers ``balance[r]`` consecutive layers (an even split by default) and
drops the rest.  A step splits the batch into ``chunks`` micro-batches; every micro-batch
runs forward through the stages, activations sent from rank r to r + 1, then every
micro-batch runs backward in reverse order, the gradients of the activations sent from
r + 1 back to r (GPipe: all forwards, then all backwards; the parameter gradients
accumulate across micro-batches).  Each micro-batch's loss is weighted by its share of the
batch, so the gradients are those of the whole batch's mean loss, as in one process.

Tensors travel with the process group's send/recv: a fixed-size int64 header (dtype and
shape) and then the values, so a stage needs to know nothing about its neighbour's shapes.
"""
from __future__ import annotations

from typing import Callable

from .. import dtypes as _dt
from ..creation import empty, tensor
from ..device import get_default_device
from ..nn.modules.container import Sequential
from ..tensor import Tensor

__all__ = ["Pipeline"]

_MAX_DIMS = 8


def _send(t: Tensor, dst: int) -> None:
    from . import send

    if t.ndim > _MAX_DIMS:
        raise ValueError(f"Pipeline: activations of more than {_MAX_DIMS} dims cannot be sent "
                         f"(got shape {tuple(t.shape)})")
    header = [_dt.ALL.index(t.dtype), t.ndim, *t.shape] + [0] * (_MAX_DIMS - t.ndim)
    # collectives run on CPU tensors: a stage on another device sends through the host
    send(tensor(header, dtype=_dt.int64, device="cpu"), dst)
    send(t.detach().cpu().contiguous(), dst)


def _recv(src: int, device) -> Tensor:
    from . import recv

    header = empty((_MAX_DIMS + 2,), dtype=_dt.int64, device="cpu")
    recv(header, src)
    h = [int(v) for v in header.tolist()]
    out = empty(tuple(h[2:2 + h[1]]), dtype=_dt.ALL[h[0]], device="cpu")
    recv(out, src)
    return out.to(device)


def _split_even(n_layers: int, world: int) -> list[int]:
    if n_layers < world:
        raise ValueError(f"Pipeline: {n_layers} layers cannot be split over {world} ranks")
    return [n_layers // world + (1 if r < n_layers % world else 0) for r in range(world)]


class Pipeline:
    """This rank's stage of an nn.Sequential split across the process group (module doc)."""

    def __init__(self, model: Sequential, chunks: int = 4, balance: list[int] | None = None):
        from . import get_rank, get_world_size, is_initialized

        if not isinstance(model, Sequential):
            raise TypeError(f"Pipeline: the model must be an nn.Sequential, got "
                            f"{type(model).__name__}")
        if chunks < 1:
            raise ValueError(f"Pipeline: chunks must be >= 1, got {chunks}")
        self.rank, self.world = (get_rank(), get_world_size()) if is_initialized() else (0, 1)
        layers = list(model.children())
        balance = _split_even(len(layers), self.world) if balance is None else list(balance)
        if len(balance) != self.world or sum(balance) != len(layers) or min(balance) < 1:
            raise ValueError(f"Pipeline: balance {balance} must give each of the {self.world} "
                             f"ranks at least one of the {len(layers)} layers")
        start = sum(balance[:self.rank])
        self.layers = range(start, start + balance[self.rank])  # indices into the model
        self.stage = Sequential(*layers[start:start + balance[self.rank]])
        self.chunks = chunks
        first_param = next(iter(self.stage.parameters()), None)
        self.device = first_param.device if first_param is not None else get_default_device()
        self.first, self.last = self.rank == 0, self.rank == self.world - 1

    def parameters(self):
        """This rank's parameters (give them to this rank's optimizer)."""
        return self.stage.parameters()

    def train(self, mode: bool = True) -> "Pipeline":
        """Set this rank's stage to training (or evaluation) mode."""
        self.stage.train(mode)
        return self

    def eval(self) -> "Pipeline":
        """Set this rank's stage to evaluation mode."""
        return self.train(False)

    def _micro(self, t: Tensor | None) -> list:
        n = int(t.shape[0])
        if n < self.chunks:
            raise ValueError(f"Pipeline: a batch of {n} cannot be split into {self.chunks} "
                             f"micro-batches")
        bounds = [n * i // self.chunks for i in range(self.chunks + 1)]
        return [t[bounds[i]:bounds[i + 1]] for i in range(self.chunks)]

    def _input(self, x_chunk) -> Tensor:
        if self.first:
            return x_chunk
        return _recv(self.rank - 1, self.device).requires_grad_()

    def train_step(self, x: Tensor | None, y: Tensor | None, loss_fn: Callable) -> float:
        """Forward and backward of one batch (x used on rank 0, y on the last rank; pass
        None elsewhere); leaves the gradients in this stage's parameters and returns the
        batch's mean loss on every rank."""
        from . import broadcast

        xs = self._micro(x) if self.first else [None] * self.chunks
        ys = self._micro(y) if self.last else [None] * self.chunks
        n = int(y.shape[0]) if self.last else 0
        ins, outs, losses = [], [], []
        for i in range(self.chunks):  # all forwards
            inp = self._input(xs[i])
            out = self.stage(inp)
            ins.append(inp)
            if self.last:
                share = int(ys[i].shape[0]) / n
                outs.append(loss_fn(out, ys[i]) * share)
                losses.append(float(outs[-1].item()))
            else:
                _send(out, self.rank + 1)
                outs.append(out)
        for i in reversed(range(self.chunks)):  # all backwards, last micro-batch first
            if self.last:
                outs[i].backward()
            else:
                outs[i].backward(_recv(self.rank + 1, self.device))
            if not self.first:
                g = ins[i].grad
                _send(g if g is not None else ins[i].detach() * 0, self.rank - 1)
        total = tensor([sum(losses)], dtype=_dt.float64, device="cpu")
        if self.world > 1:
            broadcast(total, src=self.world - 1)
        return float(total.item())

    def __call__(self, x: Tensor | None) -> Tensor | None:
        """Forward only (whole batch, no micro-batches): the output on the last rank, None
        on the others."""
        inp = x if self.first else _recv(self.rank - 1, self.device)
        out = self.stage(inp)
        if self.last:
            return out
        _send(out, self.rank + 1)
        return None
