"""Progress bars and a small training loop for examples and labs.

`progress(iterable, ...)` is a tqdm bar (it falls back to a plain iterator when tqdm is
missing or `disable=True`).  `fit` runs the usual loop and shows, per epoch, a bar with
the running loss and the throughput in samples/s::

    history = tinyfw.utils.fit(model, loss_fn, optimizer, train_loader, epochs=10,
                               val_loader=test_loader, scheduler=sched)
    history["train_loss"], history["val_acc"]     # one value per epoch

Each batch from the loader must be ``(inputs, targets)``; the model is called as
``model(inputs)``.  Batches are moved to the model's device (that of its first parameter,
or `device=` when given), so a model moved with ``model.to(device)`` trains on CPU
loaders as it is.  A scheduler is stepped once per epoch, or once per batch when
``scheduler_per_batch=True`` (OneCycleLR).  ReduceLROnPlateau is stepped with the
validation loss (or the training loss without a validation loader).

Mixed precision: ``amp="bf16"`` runs the forward and the loss under
``tinyfw.autocast(dtype=bfloat16)``; ``amp="fp16"`` under float16 autocast with a
``tinyfw.amp.GradScaler`` (pass ``grad_scaler=`` to keep its state across calls or in a
checkpoint).  Validation runs under the same autocast.  docs/amp.md.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from ..autograd.function import no_grad
from ..creation import as_tensor
from ..device import as_device
from ..tensor import Tensor


def progress(iterable: Iterable, desc: str | None = None, total: int | None = None,
             disable: bool = False, unit: str = "it", leave: bool = True):
    """Wrap `iterable` in a tqdm progress bar (or return it unchanged if disabled or
    tqdm is not installed)."""
    if disable:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the bar is a convenience, never a requirement
        return iterable
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, dynamic_ncols=True)


def _batch_size(x: Any) -> int:
    return int(x.shape[0]) if hasattr(x, "shape") and len(x.shape) else 1


def _device(model, device):
    """Where batches go: `device`, else the model's first parameter's device (None: leave
    them where they are)."""
    if device is not None:
        return as_device(device)
    params = getattr(model, "parameters", None)
    p = next(iter(params()), None) if callable(params) else None
    return None if p is None else p.device


def _to(x: Any, device) -> Any:
    return x.to(device) if device is not None and isinstance(x, Tensor) else x


def _correct(out: Tensor, y: Any) -> int:
    """How many rows of scores `out` have their argmax at the integer target (0 when the
    outputs are not class scores for the targets)."""
    t = y if isinstance(y, Tensor) else as_tensor(y, device=out.device)
    if out.ndim != t.ndim + 1:
        return 0
    return int((out.detach().argmax(-1) == t).sum().item())


_AMP = {"bf16": "bfloat16", "fp16": "float16"}


def _autocast(amp: str | None, device):
    """The autocast region of `amp` ('bf16', 'fp16' or None: a disabled one) for the
    device type the batches go to."""
    from .. import dtypes as _dt
    from ..amp import autocast

    if amp is not None and amp not in _AMP:
        raise ValueError(f"amp must be 'bf16', 'fp16' or None, got {amp!r}")
    kind = "cuda" if device is not None and device.type == "cuda" else "cpu"
    return autocast(kind, dtype=_dt.as_dtype(_AMP.get(amp, "bfloat16")),
                    enabled=amp is not None)


def evaluate(model, loss_fn: Callable, loader: Iterable, device=None,
             amp: str | None = None) -> dict[str, float]:
    """Mean loss and accuracy (argmax of the outputs vs integer targets) over `loader`,
    with the model in eval mode and no graph recorded; restores the previous mode.
    Batches are moved to `device` (default: the model's); `amp` as in `fit`."""
    device = _device(model, device)
    region = _autocast(amp, device)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    total, loss_sum, correct = 0, 0.0, 0
    try:
        with no_grad():
            for x, y in loader:
                x, y = _to(x, device), _to(y, device)
                with region:
                    out = model(x)
                    loss = loss_fn(out, y)
                n = _batch_size(x)
                loss_sum += float(loss.item()) * n
                correct += _correct(out, y)
                total += n
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    if total == 0:
        raise ValueError("evaluate: the loader yielded no samples")
    return {"loss": loss_sum / total, "acc": correct / total}


def fit(model, loss_fn: Callable, optimizer, train_loader: Iterable, epochs: int = 1,
        val_loader: Iterable | None = None, scheduler=None, scheduler_per_batch: bool = False,
        clip_grad_norm: float | None = None, show_progress: bool = True,
        log: Callable[[str], None] | None = print, device=None, amp: str | None = None,
        grad_scaler=None) -> dict[str, list[float]]:
    """Train `model` for `epochs` (see module doc); returns the history: train_loss,
    train_acc, samples_per_s and, with a validation loader, val_loss and val_acc (one
    entry per epoch).  `clip_grad_norm` clips the gradients' 2-norm before each step
    (after unscaling them under fp16).  Batches are moved to `device` (default: the
    model's).  `amp`: 'bf16', 'fp16' (with `grad_scaler`, a new GradScaler by default)
    or None (float32)."""
    from ..amp import GradScaler
    from ..optim.clip import clip_grad_norm_
    from ..optim.lr_scheduler import ReduceLROnPlateau

    if epochs < 1:
        raise ValueError(f"fit: epochs must be >= 1, got {epochs}")
    hist: dict[str, list[float]] = {"train_loss": [], "train_acc": [], "samples_per_s": []}
    if val_loader is not None:
        hist["val_loss"], hist["val_acc"] = [], []
    params = [p for g in optimizer.param_groups for p in g["params"]]
    device = _device(model, device)
    region = _autocast(amp, device)
    scaler = grad_scaler if grad_scaler is not None else GradScaler(enabled=amp == "fp16")
    for epoch in range(1, epochs + 1):
        if hasattr(model, "train"):
            model.train()
        total, loss_sum, correct, t0 = 0, 0.0, 0, time.perf_counter()
        try:
            n_batches = len(train_loader)  # type: ignore[arg-type]
        except TypeError:
            n_batches = None
        bar = progress(train_loader, desc=f"epoch {epoch}/{epochs}", total=n_batches,
                       disable=not show_progress, unit="batch")
        for x, y in bar:
            x, y = _to(x, device), _to(y, device)
            optimizer.zero_grad()
            with region:
                out = model(x)
                loss = loss_fn(out, y)
            scaler.scale(loss).backward()
            if clip_grad_norm is not None:
                scaler.unscale_(optimizer)
                clip_grad_norm_(params, clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None and scheduler_per_batch:
                scheduler.step()
            n = _batch_size(x)
            total += n
            loss_sum += float(loss.item()) * n
            correct += _correct(out, y)
            if hasattr(bar, "set_postfix"):
                rate = total / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{loss_sum / total:.4f}", samples_s=f"{rate:,.0f}")
        elapsed = time.perf_counter() - t0
        if total == 0:
            raise ValueError("fit: the training loader yielded no batches")
        hist["train_loss"].append(loss_sum / total)
        hist["train_acc"].append(correct / total)
        hist["samples_per_s"].append(total / elapsed)
        msg = (f"epoch {epoch}: train loss {loss_sum / total:.4f} acc {correct / total:.4f} "
               f"({total / elapsed:,.0f} samples/s)")
        metric = loss_sum / total
        if val_loader is not None:
            v = evaluate(model, loss_fn, val_loader, device, amp)
            hist["val_loss"].append(v["loss"])
            hist["val_acc"].append(v["acc"])
            metric = v["loss"]
            msg += f", val loss {v['loss']:.4f} acc {v['acc']:.4f}"
        if scheduler is not None and not scheduler_per_batch:
            if isinstance(scheduler, ReduceLROnPlateau):
                scheduler.step(metric)
            else:
                scheduler.step()
        if log is not None:
            log(msg)
    return hist
