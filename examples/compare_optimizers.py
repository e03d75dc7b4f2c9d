"""SGD (with momentum), Adam, RMSprop and AdaGrad on the same task — an MLP on the
digits, same initial weights, same batches — with the curves in one plot.

    python examples/compare_optimizers.py            # 10 epochs each
    python examples/compare_optimizers.py --quick    # 2 epochs each, for tests

Writes --out/optimizers.png (training loss and test accuracy per epoch) and prints a table
of final loss/accuracy per optimizer.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tinyfw  # noqa: E402
import tinyfw.nn as nn  # noqa: E402
import tinyfw.nn.functional as F  # noqa: E402
from tinyfw.metrics import accuracy  # noqa: E402
from tinyfw.utils.progress import progress  # noqa: E402
from _common import (Timer, device_arg, digits_loaders, ensure_dir, model_device,  # noqa: E402
                     predict)

OPTIMIZERS = {
    "SGD (momentum 0.9)": lambda p: tinyfw.optim.SGD(p, lr=0.05, momentum=0.9),
    "Adam": lambda p: tinyfw.optim.Adam(p, lr=1e-3),
    "RMSprop": lambda p: tinyfw.optim.RMSprop(p, lr=1e-3),
    "AdaGrad": lambda p: tinyfw.optim.Adagrad(p, lr=0.05),
}


def train(model: nn.Module, opt, epochs: int, batch_size: int, seed: int, name: str,
          quiet: bool) -> dict:
    """Train; returns per-epoch 'loss' and 'accuracy' (test) lists."""
    # a fresh loader with the same seed: every optimizer sees the same batches
    loader, _, _, x_te, y_te = digits_loaders(seed, batch_size)
    hist = {"loss": [], "accuracy": []}
    device = model_device(model)
    for epoch in range(epochs):
        total, seen = 0.0, 0
        for xb, yb in progress(loader, f"{name} {epoch + 1}/{epochs}", len(loader),
                               disable=quiet, leave=False):
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
            seen += xb.shape[0]
        hist["loss"].append(total / seen)
        hist["accuracy"].append(accuracy(y_te, predict(model, x_te)))
    return hist


def plot(results: dict, path: str) -> None:
    """Training loss and test accuracy per epoch, one line per optimizer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, h in results.items():
        epochs = range(1, len(h["loss"]) + 1)
        ax1.plot(epochs, h["loss"], marker="o", label=name)
        ax2.plot(epochs, h["accuracy"], marker="o", label=name)
    ax1.set_yscale("log")
    ax1.set_title("training loss")
    ax2.set_title("test accuracy")
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> dict:
    """Run every optimizer; returns {name: history}."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/optimizers")
    ap.add_argument("--quick", action="store_true", help="2 epochs (smoke test)")
    ap.add_argument("--no-progress", action="store_true")
    device_arg(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs = 2

    tinyfw.manual_seed(args.seed)
    base = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    base.to(args.device)
    results = {}
    for name, make in OPTIMIZERS.items():
        model = copy.deepcopy(base)  # identical starting point
        clock = Timer()
        results[name] = train(model, make(model.parameters()), args.epochs, args.batch_size,
                              args.seed, name, args.no_progress)
        h = results[name]
        print(f"{name:20s} final loss {h['loss'][-1]:.4f}  test accuracy "
              f"{h['accuracy'][-1]:.4f}  ({clock():.1f} s)")
    path = os.path.join(ensure_dir(args.out), "optimizers.png")
    plot(results, path)
    print(f"plot: {path}")
    return results


if __name__ == "__main__":
    main()
