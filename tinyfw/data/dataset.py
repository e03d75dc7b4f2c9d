"""Datasets: the map-style `Dataset` protocol, `TensorDataset`, `Subset`, `ConcatDataset`
and `random_split`."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .. import dtypes as _dt
from ..creation import tensor
from ..random import Generator, _gen
from ..tensor import Tensor


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__(i)`` and ``__len__``."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are the i-th rows of the given tensors (all with the same first dim)."""

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}, "
                                "expected a Tensor")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-d; every tensor needs a "
                                 "first (sample) dimension")
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError("TensorDataset: size mismatch between tensors: first dims "
                             f"{[t.shape[0] for t in tensors]}")
        self.tensors = tuple(tensors)

    def __getitem__(self, index: int) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def _collated(self, indices: list) -> list:
        """What ``default_collate([self[i] for i in indices])`` gives (a list of batched
        tensors, each on its tensor's device), by one index_select per tensor instead of
        one view per sample and a stack: the DataLoader's path for this class."""
        out = []
        for t in self.tensors:
            idx = tensor(indices, dtype=_dt.int64, device=t.device)
            out.append(t.detach().index_select(0, idx))
        return out


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, index: int) -> Any:
        if isinstance(index, (list, tuple)):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Several datasets one after another."""

    def __init__(self, datasets: Sequence[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]))

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"ConcatDataset: index {index} out of range for length {n}")
        d = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = 0 if d == 0 else int(self.cumulative_sizes[d - 1])
        return self.datasets[d][index - start]


def random_split(dataset: Dataset, lengths: Sequence[int | float],
                 generator: Generator | None = None) -> list[Subset]:
    """Split `dataset` into non-overlapping random subsets of the given lengths (or
    fractions summing to 1, remainders spread round-robin as PyTorch does)."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1):
        if any(not 0 <= f <= 1 for f in lengths):
            raise ValueError(f"random_split: fractions must be in [0, 1], got {lengths}")
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(lengths)}) does not equal "
                         f"the length of the dataset ({n})")
    perm = _gen(generator).permutation(n)
    out, start = [], 0
    for k in lengths:
        out.append(Subset(dataset, perm[start:start + k].tolist()))
        start += k
    return out
