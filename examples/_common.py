"""Shared by the examples: the digits data split, mini-batches, evaluation, progress and
plots.  Each piece uses the library's own helper (tinyfw.data, tinyfw.metrics,
tinyfw.plot) when that is installed, so the examples show the intended API."""
from __future__ import annotations

import os
import time
from typing import Iterator

import numpy as np

import tinyfw
import tinyfw.nn as nn


def digits_split(seed: int = 0, test_fraction: float = 0.2):
    """scikit-learn's 8x8 digits (1797 images, offline) as float32 tensors in [0, 1]:
    (x_train, y_train, x_test, y_test), images shaped (N, 1, 8, 8), a fixed seeded
    stratification-free hold-out split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    perm = tinyfw.randperm(len(y), generator=tinyfw.Generator(seed)).numpy()
    n_test = int(round(len(y) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    return (tinyfw.tensor(x[train]), tinyfw.tensor(y[train]), tinyfw.tensor(x[test]),
            tinyfw.tensor(y[test]))


def batches(x: tinyfw.Tensor, y: tinyfw.Tensor, batch_size: int, shuffle: bool,
            generator: tinyfw.Generator | None = None) -> Iterator[tuple]:
    """Mini-batches (x, y); shuffled with the tinyfw generator when asked."""
    n = x.shape[0]
    order = tinyfw.randperm(n, generator=generator) if shuffle else tinyfw.arange(n)
    for i in range(0, n, batch_size):
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]


@tinyfw.no_grad()
def predict(model: nn.Module, x: tinyfw.Tensor, batch_size: int = 512) -> tinyfw.Tensor:
    """Class predictions of `model` (eval mode) for every row of x."""
    was = model.training
    model.eval()
    out = [model(x[i:i + batch_size]).argmax(dim=1) for i in range(0, x.shape[0], batch_size)]
    model.train(was)
    return tinyfw.cat(out)


def accuracy(pred: tinyfw.Tensor, y: tinyfw.Tensor) -> float:
    """Fraction of correct predictions."""
    try:
        from tinyfw.metrics import accuracy as acc
        return float(acc(pred, y))
    except ImportError:
        return float((pred == y).float().mean().item())


def confusion(pred: tinyfw.Tensor, y: tinyfw.Tensor, num_classes: int) -> np.ndarray:
    """The confusion matrix (rows: true class, columns: predicted)."""
    try:
        from tinyfw.metrics import confusion_matrix
        cm = confusion_matrix(y, pred, num_classes=num_classes)
        return cm.numpy() if isinstance(cm, tinyfw.Tensor) else np.asarray(cm)
    except ImportError:
        cm = np.zeros((num_classes, num_classes), np.int64)
        np.add.at(cm, (y.numpy(), pred.numpy()), 1)
        return cm


def progress(iterable, total: int, desc: str, disable: bool = False):
    """A tqdm bar (written to stderr)."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, disable=disable,
                dynamic_ncols=True, mininterval=0.2)


def num_parameters(model: nn.Module) -> int:
    """The number of scalar parameters."""
    return sum(p.numel() for p in model.parameters())


def save_curves(history: dict, path: str, title: str) -> None:
    """Loss and accuracy per epoch as a two-panel PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, ax in zip(("loss", "accuracy"), axes):
        for name, values in history.items():
            if name.endswith(key):
                ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_confusion(cm: np.ndarray, path: str, title: str) -> None:
    """A confusion-matrix heatmap PNG with the counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(cm.shape[1]))
    ax.set_yticks(range(cm.shape[0]))
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def ensure_dir(path: str) -> str:
    """Create the directory (and parents) if needed; returns it."""
    os.makedirs(path, exist_ok=True)
    return path


class Timer:
    """Wall-clock seconds since creation."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0
