"""Offline datasets: scikit-learn's digits (the default: ships inside scikit-learn), and
readers for MNIST / Fashion-MNIST IDX files and CIFAR-10 batches that you put on disk.

Nothing is downloaded.  Every parser checks magic numbers, header fields and sizes and
raises `DatasetError` naming the file and where it is expected.

Layouts searched under `root` (the first that has the files wins):

- MNIST / Fashion-MNIST: ``root/``, ``root/<Name>/raw/``, ``root/raw/``; files
  ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
  ``t10k-labels-idx1-ubyte``, each optionally gzipped (``.gz``).
- CIFAR-10: ``root/cifar-10-batches-py/`` or ``root/`` with the python batches
  ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``; or ``root/cifar-10-batches-bin/``
  or ``root/`` with the binary batches ``data_batch_N.bin`` / ``test_batch.bin``.

The python batches are pickles; they are read with an unpickler that only allows the
few numpy functions that rebuild an array and refuses everything else, so a malicious
file cannot run code.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
from typing import Any, Callable

import numpy as np

from ..creation import from_numpy
from ..tensor import Tensor
from .dataset import Dataset, TensorDataset


class DatasetError(RuntimeError):
    """A dataset file is missing, truncated or not in the expected format."""


# -- digits -----------------------------------------------------------------------------
def load_digits(split: str = "train", test_fraction: float = 0.2, seed: int = 0,
                flatten: bool = False) -> TensorDataset:
    """scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), offline.

    Returns a TensorDataset of (image, label): images float32 in [0, 1], shaped
    (N, 1, 8, 8) (or (N, 64) with `flatten`), labels int64.  `split` is 'train', 'test'
    or 'all'; the train/test split is a stratified shuffle fixed by `seed`, so the same
    seed always gives the same split.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"load_digits: split must be 'train', 'test' or 'all', got {split!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"load_digits: test_fraction must be in (0, 1), got {test_fraction}")
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.data.astype(np.float32) / 16.0)
    y = d.target.astype(np.int64)
    if split != "all":
        rng = np.random.default_rng(seed)
        test_idx, train_idx = [], []
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            k = int(round(len(idx) * test_fraction))
            test_idx.append(idx[:k])
            train_idx.append(idx[k:])
        pick = np.sort(np.concatenate(train_idx if split == "train" else test_idx))
        x, y = x[pick], y[pick]
    x = x if flatten else x.reshape(-1, 1, 8, 8)
    return TensorDataset(from_numpy(np.ascontiguousarray(x)), from_numpy(y))


# -- IDX (MNIST, Fashion-MNIST) ------------------------------------------------------------
_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: str) -> bytes:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DatasetError(f"cannot read {path}: {e} (is it a complete, valid file?)") from None


def read_idx(path: str) -> np.ndarray:
    """Parse one IDX file (optionally .gz): big-endian header ``0 0 type ndim``, ndim
    big-endian int32 sizes, then the data."""
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: file too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{path}: bad IDX magic number {data[:4].hex()} (expected 0000xxyy)")
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise DatasetError(f"{path}: unknown IDX data type code 0x{code:02x}")
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: IDX header declares {ndim} dimensions but is truncated")
    dims = tuple(int(v) for v in np.frombuffer(data, ">u4", ndim, 4))
    dt = _IDX_TYPES[code]
    need = int(np.prod(dims)) * dt.itemsize
    have = len(data) - 4 - 4 * ndim
    if have != need:
        raise DatasetError(f"{path}: IDX header says shape {dims} ({need} data bytes) but the "
                           f"file has {have} data bytes (truncated or corrupt)")
    arr = np.frombuffer(data, dt, int(np.prod(dims)), 4 + 4 * ndim).reshape(dims)
    return arr.astype(dt.newbyteorder("=")) if dt.byteorder == ">" else arr.copy()


def _find(root: str, candidates: list[str], names: list[str], what: str, hint: str) -> list[str]:
    """The full paths of `names` (each with or without .gz) in the first candidate dir
    that has them all; otherwise a DatasetError naming what is missing and where."""
    for d in candidates:
        found = []
        for n in names:
            for variant in (n, n + ".gz"):
                if os.path.isfile(os.path.join(d, variant)):
                    found.append(os.path.join(d, variant))
                    break
        if len(found) == len(names):
            return found
    missing = [n for n in names
               if not any(os.path.isfile(os.path.join(d, v)) for d in candidates
                          for v in (n, n + ".gz"))]
    raise DatasetError(f"{what}: file(s) {', '.join(missing) or ', '.join(names)} not found "
                       f"(searched {', '.join(repr(c) for c in candidates)}). {hint}")


class _ImageSet(Dataset):
    """The image datasets' `data`: the file's uint8 pixels are kept as they are (a quarter
    of the memory of int32) until `data` is first read, which makes it an int32 tensor
    of the values 0..255: PyTorch has uint8 here, a dtype tinyfw does not have, and int32
    is the narrowest tinyfw dtype that holds every uint8 value (the rule for unsigned
    tensors in checkpoints too, docs/semantics.md).  From then on, and after `data` is
    assigned, samples are read from that tensor, so changes to it show in the samples."""

    _pixels: np.ndarray | None = None
    _data_tensor: Tensor | None = None

    @property
    def data(self) -> Tensor:
        """The whole split's images, int32 values 0..255 (see the class doc)."""
        if self._data_tensor is None:
            self._data_tensor = from_numpy(self._pixels.astype(np.int32))
            self._pixels = None
        return self._data_tensor

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data_tensor, self._pixels = value, None

    def __len__(self) -> int:
        return len(self._pixels) if self._data_tensor is None else self._data_tensor.shape[0]

    def _image(self, index: int) -> np.ndarray:
        """Image `index` as float32 values in [0, 1] (a host array)."""
        if self._data_tensor is None:
            px = self._pixels[index]
        elif self._data_tensor.device.type == "cpu":
            px = self._data_tensor.numpy()[index]
        else:
            px = self._data_tensor[index].cpu().numpy()
        return px.astype(np.float32) / np.float32(255.0)


class MNIST(_ImageSet):
    """MNIST from local IDX files.  Samples are (image, label): a float32 tensor
    (1, 28, 28) in [0, 1] (then `transform`) and an int (then `target_transform`).
    `data` (int32 values 0..255, N x 28 x 28; uint8 in PyTorch) and `targets` (int64)
    hold the whole split."""

    name = "MNIST"
    classes = [str(i) for i in range(10)]
    source = "http://yann.lecun.com/exdb/mnist/"

    def __init__(self, root: str, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        self.root = os.fspath(root)
        self.train = train
        self.transform, self.target_transform = transform, target_transform
        prefix = "train" if train else "t10k"
        names = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
        dirs = [self.root, os.path.join(self.root, self.name, "raw"),
                os.path.join(self.root, "raw")]
        hint = (f"Put the {self.name} files (gzipped or not; from {self.source}) in "
                f"{os.path.join(self.root, self.name, 'raw')!r} or {self.root!r}.")
        img_path, lbl_path = _find(self.root, dirs, names, self.name, hint)
        images, labels = read_idx(img_path), read_idx(lbl_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DatasetError(f"{img_path}: expected uint8 images of 3 dims (N, rows, cols), "
                               f"got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DatasetError(f"{lbl_path}: expected uint8 labels of 1 dim, got "
                               f"{labels.dtype} {labels.shape}")
        if len(images) != len(labels):
            raise DatasetError(f"{self.name}: {img_path} has {len(images)} images but "
                               f"{lbl_path} has {len(labels)} labels")
        if labels.size and labels.max() >= len(self.classes):
            raise DatasetError(f"{lbl_path}: label {int(labels.max())} out of range 0..9")
        self._pixels = images
        self.targets = from_numpy(labels.astype(np.int64))

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img = from_numpy(self._image(index)[None])
        target = int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): same IDX format and file names as MNIST."""

    name = "FashionMNIST"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    source = "https://github.com/zalandoresearch/fashion-mnist"


# -- CIFAR-10 --------------------------------------------------------------------------------
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; refuses every other global."""

    def __init__(self, f, path: str):
        super().__init__(f, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            import importlib

            return getattr(importlib.import_module(module), name)
        if module == "_codecs" and name == "encode":  # arrays pickled by Python 2
            import codecs

            return codecs.encode
        raise DatasetError(f"{self.path}: refusing to unpickle {module}.{name}; a CIFAR-10 "
                           "batch contains only a dict of numpy arrays and lists (the file is "
                           "not a genuine CIFAR-10 batch)")


def _load_cifar_pickle(path: str) -> tuple[np.ndarray, np.ndarray]:
    raw = _read_bytes(path)
    try:
        obj = _ArrayOnlyUnpickler(io.BytesIO(raw), path).load()
    except DatasetError:
        raise
    except Exception as e:
        raise DatasetError(f"{path}: not a readable CIFAR-10 python batch ({type(e).__name__}: "
                           f"{e})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: expected a dict, got {type(obj).__name__}")
    get = lambda k: obj.get(k.encode(), obj.get(k))  # noqa: E731  (bytes keys from Python 2)
    data, labels = get("data"), get("labels")
    if data is None or labels is None:
        raise DatasetError(f"{path}: missing 'data' or 'labels' entry")
    data = np.asarray(data)
    labels = np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(f"{path}: 'data' must be uint8 of shape (N, 3072), got {data.dtype} "
                           f"{data.shape}")
    if labels.ndim != 1 or len(labels) != len(data):
        raise DatasetError(f"{path}: {len(data)} images but labels of shape {labels.shape}")
    return data, labels.astype(np.int64)


def _load_cifar_bin(path: str) -> tuple[np.ndarray, np.ndarray]:
    raw = np.frombuffer(_read_bytes(path), np.uint8)
    if raw.size == 0 or raw.size % 3073:
        raise DatasetError(f"{path}: size {raw.size} bytes is not a multiple of 3073 (1 label "
                           "byte + 3072 pixel bytes per record): truncated or not a CIFAR-10 "
                           "binary batch")
    rec = raw.reshape(-1, 3073)
    return rec[:, 1:].copy(), rec[:, 0].astype(np.int64)


class CIFAR10(_ImageSet):
    """CIFAR-10 from its local python (or binary) batches.  Samples are (image, label):
    a float32 tensor (3, 32, 32) in [0, 1] (then `transform`) and an int.  `data` holds
    the images as (N, 3, 32, 32) int32 values 0..255 (uint8 in PyTorch), `targets` the
    int64 labels."""

    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
               "ship", "truck"]

    def __init__(self, root: str, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        self.root = os.fspath(root)
        self.train = train
        self.transform, self.target_transform = transform, target_transform
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        py_dirs = [os.path.join(self.root, "cifar-10-batches-py"), self.root]
        bin_dirs = [os.path.join(self.root, "cifar-10-batches-bin"), self.root]
        hint = ("Put the CIFAR-10 python batches (from https://www.cs.toronto.edu/~kriz/"
                f"cifar.html, cifar-10-python.tar.gz extracted) in "
                f"{os.path.join(self.root, 'cifar-10-batches-py')!r}, or the binary batches "
                f"in {os.path.join(self.root, 'cifar-10-batches-bin')!r}.")
        try:
            paths = _find(self.root, py_dirs, names, "CIFAR10", hint)
            loader = _load_cifar_pickle
        except DatasetError:
            paths = _find(self.root, bin_dirs, [n + ".bin" for n in names], "CIFAR10", hint)
            loader = _load_cifar_bin
        parts = [loader(p) for p in paths]
        data = np.concatenate([d for d, _ in parts])
        labels = np.concatenate([lab for _, lab in parts])
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            bad = next(p for p, (_, lab) in zip(paths, parts) if lab.min() < 0 or lab.max() > 9)
            raise DatasetError(f"{bad}: labels must be in 0..9, found {int(labels.max())}")
        self._pixels = data.reshape(-1, 3, 32, 32)
        self.targets = from_numpy(labels)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img = from_numpy(self._image(index))
        target = int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target
