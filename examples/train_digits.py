"""Train a CNN (or an MLP) on scikit-learn's 8x8 digits — tinyfw's "hello world".

    python examples/train_digits.py                 # CNN, ~99% test accuracy
    python examples/train_digits.py --model mlp
    python examples/train_digits.py --quick         # 2 epochs, for tests
    python examples/train_digits.py --device cuda   # on a GPU (model and batches moved)
    python examples/train_digits.py --amp bf16      # mixed precision (fp16: + GradScaler)
    python examples/train_digits.py --nproc 2       # data-parallel, 2 processes

Runs offline (the digits ship with scikit-learn), holds out 20% as a test set with a
fixed seed, trains with Adam (cosine learning-rate decay) showing a tqdm bar (loss, samples/s), then writes to --out:
the checkpoint (tinyfw.save of model + optimizer state), loss/accuracy curves and the
test confusion matrix as PNGs.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tinyfw  # noqa: E402
import tinyfw.nn as nn  # noqa: E402
import tinyfw.nn.functional as F  # noqa: E402
from tinyfw.metrics import accuracy, confusion_matrix  # noqa: E402
from tinyfw.plot import confusion_matrix_png, curves_png  # noqa: E402
from tinyfw.utils.progress import progress  # noqa: E402
from _common import (Timer, amp_arg, amp_tools, device_arg, digits_loaders,  # noqa: E402
                     ensure_dir, in_distributed_run, nproc_arg, num_parameters, predict,
                     relaunch, require_cpu_for_parallel)


def make_model(kind: str) -> nn.Module:
    """The CNN (two 3x3 convs with BatchNorm, a max-pool, dropout, two linear layers) or
    a 2-hidden-layer MLP."""
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),                       # 8x8 -> 4x4
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(64, 10))
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(),
                             nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    raise ValueError(f"unknown model {kind!r} (cnn or mlp)")


def main(argv=None) -> float:
    """Train, evaluate, save artifacts; returns the test accuracy."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/digits")
    ap.add_argument("--quick", action="store_true", help="2 epochs (smoke test)")
    ap.add_argument("--no-progress", action="store_true")
    device_arg(ap)
    amp_arg(ap)
    nproc_arg(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs = 2
    if args.nproc > 1 or in_distributed_run():
        require_cpu_for_parallel(args.device)
    relaunch(args.nproc, os.path.abspath(__file__), argv)
    if in_distributed_run():
        return train_parallel(args)

    device = tinyfw.device(args.device)
    tinyfw.manual_seed(args.seed)
    loader, x_tr, y_tr, x_te, y_te = digits_loaders(args.seed, args.batch_size)
    model = make_model(args.model).to(device)
    opt = tinyfw.optim.Adam(model.parameters(), lr=args.lr)
    region, scaler = amp_tools(args.amp, device)
    # cosine decay to zero: large steps early, a settled model at the end
    sched = tinyfw.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    print(f"{args.model}: {num_parameters(model):,} parameters on {device}; {x_tr.shape[0]} "
          f"train / {x_te.shape[0]} test images")

    history = {"train loss": [], "train accuracy": [], "test accuracy": []}
    clock = Timer()
    for epoch in range(1, args.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        bar = progress(loader, f"epoch {epoch}/{args.epochs}", len(loader),
                       disable=args.no_progress, unit="batch", leave=False)
        t_epoch = Timer()
        for xb, yb in bar:
            xb, yb = xb.to(device), yb.to(device)
            with region:
                loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total += loss.item() * xb.shape[0]
            seen += xb.shape[0]
            if not args.no_progress:
                bar.set_postfix(loss=f"{total / seen:.4f}", samples_s=f"{seen / t_epoch():.0f}")
        sched.step()
        with region:
            train_acc = accuracy(y_tr, predict(model, x_tr))
            test_acc = accuracy(y_te, predict(model, x_te))
        history["train loss"].append(total / seen)
        history["train accuracy"].append(train_acc)
        history["test accuracy"].append(test_acc)
        print(f"epoch {epoch:2d}  loss {total / seen:.4f}  train acc {train_acc:.4f}  "
              f"test acc {test_acc:.4f}  ({seen / t_epoch():.0f} samples/s)")

    out = ensure_dir(args.out)
    ckpt = os.path.join(out, f"digits_{args.model}.tinyfw")
    tinyfw.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                 "epoch": args.epochs}, ckpt)
    restored = make_model(args.model).to(device)
    restored.load_state_dict(tinyfw.load(ckpt)["model"])  # tensors come back on `device`
    with region:
        pred = predict(restored, x_te)
    test_acc = accuracy(y_te, pred)
    curves_png(history, os.path.join(out, f"curves_{args.model}.png"),
               title=f"digits {args.model}")
    confusion_matrix_png(confusion_matrix(y_te, pred, num_classes=10),
                         os.path.join(out, f"confusion_{args.model}.png"),
                         title=f"digits {args.model}: test accuracy {test_acc:.4f}")
    print(f"checkpoint: {ckpt}")
    print(f"final test accuracy: {test_acc:.4f}  (trained in {clock():.1f} s)")
    return test_acc


def train_parallel(args) -> float:
    """The same training in every worker of a distributed run, through
    tinyfw.distributed.Trainer (global batch --batch-size split over the ranks, metrics
    over the whole test set); rank 0 reports and writes the checkpoint and curves."""
    import tinyfw.distributed as dist
    from tinyfw.data import TensorDataset

    dist.init_process_group()
    try:
        tinyfw.manual_seed(args.seed)  # every rank builds the same model; DDP checks it
        _, x_tr, y_tr, x_te, y_te = digits_loaders(args.seed, args.batch_size)
        model = make_model(args.model).to("cpu")
        opt = tinyfw.optim.Adam(model.parameters(), lr=args.lr)
        sched = tinyfw.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
        rank0 = dist.get_rank() == 0
        out = ensure_dir(args.out) if rank0 else args.out
        trainer = dist.Trainer(model, opt, nn.CrossEntropyLoss(), TensorDataset(x_tr, y_tr),
                               val_data=TensorDataset(x_te, y_te), epochs=args.epochs,
                               batch_size=args.batch_size, amp=args.amp, scheduler=sched,
                               seed=args.seed, show_progress=not args.no_progress,
                               checkpoint=os.path.join(out, f"digits_{args.model}_ddp.tinyfw"))
        if rank0:
            print(f"{args.model}: {num_parameters(model):,} parameters, "
                  f"{dist.get_world_size()} data-parallel workers ({dist.get_backend()}); "
                  f"{x_tr.shape[0]} train / {x_te.shape[0]} test images")
        clock = Timer()
        hist = trainer.fit()
        test_acc = hist["val_acc"][-1]
        if rank0:
            curves_png({"train loss": hist["train_loss"], "train accuracy": hist["train_acc"],
                        "test accuracy": hist["val_acc"]},
                       os.path.join(out, f"curves_{args.model}_ddp.png"),
                       title=f"digits {args.model}, {dist.get_world_size()} workers")
            print(f"final test accuracy: {test_acc:.4f}  (trained in {clock():.1f} s)")
        return test_acc
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
