"""Report figures as PNG files (matplotlib with the Agg backend: no display needed).

    tinyfw.plot.confusion_matrix_png(cm, "cm.png", class_names=[...])
    tinyfw.plot.curves_png({"train loss": losses, "test acc": accs}, "curves.png")
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix_png(cm: Any, path: str | os.PathLike,
                         class_names: Sequence[str] | None = None, normalize: bool = False,
                         title: str = "Confusion matrix") -> str:
    """Save a heatmap of confusion matrix `cm` (rows: true class, columns: predicted),
    annotated with counts (or row fractions with `normalize`); returns the path."""
    from .tensor import Tensor

    a = np.asarray(cm.detach().cpu().numpy() if isinstance(cm, Tensor) else cm, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"confusion_matrix_png: expected a square matrix, got shape {a.shape}")
    k = a.shape[0]
    if class_names is not None and len(class_names) != k:
        raise ValueError(f"confusion_matrix_png: {len(class_names)} class names for {k} classes")
    if normalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            a = np.nan_to_num(a / a.sum(axis=1, keepdims=True))
    plt = _pyplot()
    size = max(4.0, 0.5 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(a, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names), default=0) > 3 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 30:
        hi = a.max() if a.size else 0
        for i in range(k):
            for j in range(k):
                txt = f"{a[i, j]:.2f}" if normalize else f"{int(a[i, j])}"
                ax.text(j, i, txt, ha="center", va="center", fontsize=8,
                        color="white" if a[i, j] > hi / 2 else "black")
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=120)
    plt.close(fig)
    return os.fspath(path)


def curves_png(series: Mapping[str, Sequence[float]], path: str | os.PathLike,
               xlabel: str = "epoch", title: str = "Training curves") -> str:
    """Save line plots of named series (e.g. losses and accuracies per epoch); names
    containing 'acc' go on a second panel so both scales stay readable.  Returns the path."""
    if not series:
        raise ValueError("curves_png: no series given")
    acc = {k: v for k, v in series.items() if "acc" in k.lower()}
    other = {k: v for k, v in series.items() if k not in acc}
    panels = [p for p in (other, acc) if p]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for name, values in panel.items():
            v = [float(x) for x in values]
            ax.plot(range(1, len(v) + 1), v, marker="o" if len(v) <= 30 else None, label=name)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0][0].set_title(title)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=120)
    plt.close(fig)
    return os.fspath(path)
