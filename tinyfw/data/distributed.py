"""DistributedSampler: each rank of a data-parallel job reads its own share of a dataset."""
from __future__ import annotations

from typing import Iterator

from ..random import Generator
from .sampler import Sampler


class DistributedSampler(Sampler):
    """Indices of `dataset` for one of `num_replicas` ranks, as PyTorch's sampler.

    Every epoch the indices 0..len-1 (a permutation from ``seed + epoch`` when `shuffle`;
    call ``set_epoch`` before each epoch, or every epoch repeats the same order) are made a
    multiple of `num_replicas` long, by repeating the first ones (padding) or, with
    `drop_last`, by dropping the tail; rank r takes positions r, r + num_replicas, ...  So
    the ranks' shares are disjoint and each has ``len(self)`` indices, and all ranks must use
    the same seed.  `num_replicas`/`rank` default to the default process group's.
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from .. import distributed as dist

            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "tinyfw.distributed.init_process_group() first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive int, got "
                             f"{num_replicas!r}")
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank!r}, rank should be in "
                             f"the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last = shuffle, int(seed), drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = (n - num_replicas) // num_replicas + 1 if n >= num_replicas \
                else 0
        else:
            self.num_samples = -(-n // num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use the order of `epoch` (seed + epoch) on the next iteration."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = Generator(self.seed + self.epoch).np.permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            pad = self.total_size - n
            if pad > 0 and indices:
                indices += (indices * -(-pad // n))[:pad]  # wrap round as often as needed
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples
