"""tinyfw.data: datasets, samplers and the DataLoader (PyTorch's ``torch.utils.data``
shape), plus offline datasets in `tinyfw.data.datasets`.

    train = tinyfw.data.datasets.load_digits("train")
    loader = tinyfw.data.DataLoader(train, batch_size=64, shuffle=True,
                                    generator=tinyfw.Generator(0))
    for images, labels in loader:
        ...
"""
from . import datasets  # noqa: F401
from .collate import default_collate, default_convert
from .dataloader import DataLoader, WorkerInfo, get_worker_info
from .distributed import DistributedSampler
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                      SubsetRandomSampler)

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "DataLoader",
           "get_worker_info", "WorkerInfo", "Sampler", "SequentialSampler", "RandomSampler",
           "SubsetRandomSampler", "BatchSampler", "DistributedSampler", "default_collate",
           "default_convert", "datasets"]
