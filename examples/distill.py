"""Knowledge distillation on the digits (Hinton et al., 2015): a CNN teacher, then a
small MLP student trained twice — on the labels alone, and with the distillation loss
(temperature-softened teacher probabilities + labels).  Reports parameter counts and
test accuracies.

    python examples/distill.py            # teacher 10 epochs, students 15 epochs
    python examples/distill.py --quick    # a few epochs, for tests
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tinyfw  # noqa: E402
import tinyfw.nn as nn  # noqa: E402
import tinyfw.nn.functional as F  # noqa: E402
from tinyfw.metrics import accuracy  # noqa: E402
from tinyfw.utils.progress import progress  # noqa: E402
from _common import (Timer, device_arg, digits_loaders, model_device,  # noqa: E402
                     num_parameters, predict)
from train_digits import make_model  # noqa: E402


def student() -> nn.Module:
    """A tiny MLP: 64 -> 16 -> 10."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


def fit(model: nn.Module, epochs: int, lr: float, seed: int, name: str, quiet: bool,
        teacher: nn.Module | None = None, temperature: float = 4.0,
        alpha: float = 0.7) -> float:
    """Train with cross-entropy, or with the distillation loss when a teacher is given;
    returns the test accuracy.  The split is always that of seed 0; `seed` orders the
    batches."""
    loader, _, _, x_te, y_te = digits_loaders(0, 64, shuffle_seed=seed)
    opt = tinyfw.optim.Adam(model.parameters(), lr=lr)
    device = model_device(model)
    loss_fn = nn.DistillationLoss(temperature, alpha)
    if teacher is not None:
        teacher.eval()
    for epoch in range(epochs):
        for xb, yb in progress(loader, f"{name} {epoch + 1}/{epochs}", len(loader),
                               disable=quiet, leave=False):
            xb, yb = xb.to(device), yb.to(device)
            logits = model(xb)
            if teacher is None:
                loss = F.cross_entropy(logits, yb)
            else:
                with tinyfw.no_grad():
                    soft = teacher(xb)
                loss = loss_fn(logits, soft, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return accuracy(y_te, predict(model, x_te))


def main(argv=None) -> dict:
    """Teacher, student from labels, distilled student; returns their accuracies."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teacher-epochs", type=int, default=10)
    ap.add_argument("--student-epochs", type=int, default=15)
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="2 + 3 epochs (smoke test)")
    ap.add_argument("--no-progress", action="store_true")
    device_arg(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.teacher_epochs, args.student_epochs = 2, 3

    clock = Timer()
    tinyfw.manual_seed(args.seed)
    teacher = make_model("cnn").to(args.device)
    acc_t = fit(teacher, args.teacher_epochs, 2e-3, args.seed + 1, "teacher",
                args.no_progress)
    tinyfw.manual_seed(args.seed + 2)
    plain = student().to(args.device)
    tinyfw.manual_seed(args.seed + 2)  # the same initial student weights
    distilled = student().to(args.device)
    acc_s = fit(plain, args.student_epochs, 5e-3, args.seed + 3, "student", args.no_progress)
    acc_d = fit(distilled, args.student_epochs, 5e-3, args.seed + 3, "distilled",
                args.no_progress, teacher, args.temperature, args.alpha)
    rows = [("teacher (CNN)", teacher, acc_t), ("student, labels only", plain, acc_s),
            (f"student, distilled (T={args.temperature:g}, alpha={args.alpha:g})", distilled,
             acc_d)]
    print(f"{'model':45s} {'parameters':>10s} {'KiB':>7s} {'test acc':>9s}")
    for name, m, acc in rows:
        n = num_parameters(m)
        print(f"{name:45s} {n:10,d} {n * 4 / 1024:7.1f} {acc:9.4f}")
    print(f"student is {num_parameters(teacher) / num_parameters(plain):.1f}x smaller "
          f"({clock():.1f} s)")
    return {"teacher": acc_t, "student": acc_s, "distilled": acc_d}


if __name__ == "__main__":
    main()
