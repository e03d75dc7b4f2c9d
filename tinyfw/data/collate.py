"""`default_collate`: turn a list of samples into a batch.

Tensors and numpy arrays are stacked along a new first dim; Python ints become an int64
tensor, floats a float64 tensor, bools a bool tensor (PyTorch's rules); strings stay a
list; dicts, namedtuples and sequences are collated field by field (sequences come back
as lists, as in PyTorch).

Batches are made with tinyfw ops (``tinyfw.stack``), so samples on a device give a batch
on that device; numpy samples and Python numbers give CPU tensors (move them with
``.to(device)`` in the training loop, as in PyTorch).
"""
from __future__ import annotations

import collections.abc
from typing import Any

import numpy as np

from ..creation import as_tensor, tensor
from ..ops.index import stack
from ..tensor import Tensor


def default_collate(batch: list) -> Any:
    """Collate a list of samples (see module doc)."""
    if len(batch) == 0:
        raise ValueError("default_collate: received an empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        shapes = {tuple(t.shape) for t in batch}
        if len(shapes) != 1:
            raise RuntimeError(f"default_collate: tensors in a batch must have equal shapes, got "
                               f"{sorted(shapes)}; pass a collate_fn that pads them")
        return stack([t.detach() for t in batch])  # on the samples' device
    if isinstance(elem, np.ndarray):
        return as_tensor(np.stack(batch), device="cpu")
    if isinstance(elem, (bool, np.bool_)):
        return tensor(batch, dtype="bool", device="cpu")
    if isinstance(elem, (int, np.integer)):
        return tensor(batch, dtype="int64", device="cpu")
    if isinstance(elem, (float, np.floating)):
        return tensor(batch, dtype="float64", device="cpu")
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        n = len(elem)
        if any(len(s) != n for s in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of "
                               "equal size")
        return [default_collate(list(s)) for s in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, "
                    f"dicts or lists; found {type(elem).__name__}")


def default_convert(sample: Any) -> Any:
    """Used when batch_size is None: numpy arrays become (CPU) tensors sharing their memory,
    the rest is unchanged."""
    if isinstance(sample, np.ndarray):
        return as_tensor(sample, device="cpu")
    if isinstance(sample, dict):
        return {k: default_convert(v) for k, v in sample.items()}
    if isinstance(sample, tuple) and not hasattr(sample, "_fields"):
        return tuple(default_convert(v) for v in sample)
    if isinstance(sample, list):
        return [default_convert(v) for v in sample]
    return sample
