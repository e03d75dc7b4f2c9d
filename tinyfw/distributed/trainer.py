"""The data-parallel trainer: one call trains a model on every rank of the process group.

    # python -m tinyfw.distributed.run --nproc 2 train.py     (or mpiexec -n 2 python train.py)
    dist.init_process_group()                       # no-op choice of backend from the env
    trainer = dist.Trainer(model, optimizer, nn.CrossEntropyLoss(), train_set,
                           val_data=test_set, epochs=10, batch_size=64, amp="bf16",
                           checkpoint="runs/ckpt.tfw")
    history = trainer.fit()                          # the same history on every rank

How the work is split, and why a run can resume on any world size:

- ``batch_size`` is the **global** batch.  Each epoch has one permutation of the dataset,
  drawn from ``(seed, epoch)`` only; global batch k is permutation[kB : (k+1)B] whatever
  the world size, and rank r takes the r-th contiguous slice of it.  Each rank's mean
  loss is weighted by its share of the batch before DistributedDataParallel averages the
  gradients, so the update is the gradient of the global batch's mean loss (the loss
  function must reduce by the mean, the default of tinyfw's losses), as in one process.
- A last global batch with fewer samples than ranks is dropped (every rank must take
  part in each step's all-reduce); ``drop_last=True`` drops any partial last batch.
- Random streams (dropout) are re-seeded at every step from ``(seed, epoch, step, rank)``,
  so a resumed run replays the same masks on the same world size; on another world size
  the masks differ (each rank draws its own), the data order and the arithmetic do not.
- Checkpoints (``checkpoint=path``) are written by rank 0 with tinyfw.save, atomically,
  after each epoch and every ``checkpoint_every`` steps; they hold the model, optimizer,
  GradScaler and scheduler states, the epoch, the step within it and the history.
  ``fit(resume=True)`` continues from the file if it exists.
- Metrics are exact over the whole dataset: each rank's loss sum, sample count and
  confusion matrix are summed across ranks (all_reduce) before accuracy, precision,
  recall and F1 are computed.  The progress bar and the log lines come from rank 0 only.

``amp``: None, "bf16" (autocast to bfloat16) or "fp16" (autocast to float16 with a
GradScaler; the scaler's inf/NaN check sees the all-reduced gradients, so every rank skips
the same steps).  Without an initialised process group the trainer runs in this process
alone (world size 1) with the same semantics.
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Callable

import numpy as np

from .. import metrics as _metrics
from ..autograd.function import no_grad
from ..data.dataloader import DataLoader
from ..dtypes import bfloat16, float16, float64
from ..random import manual_seed
from ..serialization import load, save
from ..utils.progress import _correct, _device, _to, progress

__all__ = ["Trainer"]

_FORMAT = "tinyfw.distributed.Trainer/1"


class _GlobalBatchShard:
    """Index lists of this rank's share of each global batch (see the module doc)."""

    def __init__(self, n: int, batch_size: int, rank: int, world: int, seed: int,
                 shuffle: bool, drop_last: bool):
        self.n, self.batch, self.rank, self.world = n, batch_size, rank, world
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.epoch, self.start = 0, 0

    def _bounds(self) -> list[tuple[int, int]]:
        out = [(lo, min(lo + self.batch, self.n)) for lo in range(0, self.n, self.batch)]
        if out and (out[-1][1] - out[-1][0] < (self.batch if self.drop_last else self.world)):
            out.pop()
        return out

    def __len__(self) -> int:
        return len(self._bounds()) - self.start

    def __iter__(self):
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        for lo, hi in self._bounds()[self.start:]:
            m = hi - lo
            a, b = lo + self.rank * m // self.world, lo + (self.rank + 1) * m // self.world
            yield order[a:b].tolist()


def _world() -> tuple[int, int]:
    from . import get_rank, get_world_size, is_initialized

    return (get_rank(), get_world_size()) if is_initialized() else (0, 1)


def _across_ranks(values, world: int, op: str = "sum") -> np.ndarray:
    """Element-wise sum (or max) of a float64 vector over all ranks (itself at world 1)."""
    values = np.asarray(values, np.float64)
    if world == 1:
        return values
    from . import ReduceOp, all_reduce
    from ..creation import tensor

    t = tensor(values, dtype=float64, device="cpu")  # collectives run on CPU tensors
    all_reduce(t, op=ReduceOp.SUM if op == "sum" else ReduceOp.MAX)
    return t.numpy().copy()


class Trainer:
    """Data-parallel training loop (see the module doc); batches are moved to the model's
    device."""

    def __init__(self, model, optimizer, loss_fn: Callable, train_data, *, epochs: int = 1,
                 batch_size: int = 32, val_data=None, amp: str | None = None,
                 clip_grad_norm: float | None = None, scheduler=None,
                 scheduler_per_batch: bool = False, checkpoint: str | os.PathLike | None = None,
                 checkpoint_every: int | None = None, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = False, num_classes: int | None = None,
                 show_progress: bool = True, log: Callable[[str], None] | None = print,
                 bucket_cap_mb: float = 25.0, num_workers: int = 0):
        if amp not in (None, "bf16", "fp16"):
            raise ValueError(f"Trainer: amp must be None, 'bf16' or 'fp16', got {amp!r}")
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"Trainer: epochs and batch_size must be >= 1, got {epochs} and "
                             f"{batch_size}")
        self.rank, self.world = _world()
        if batch_size < self.world:
            raise ValueError(f"Trainer: the global batch_size ({batch_size}) is smaller than "
                             f"the world size ({self.world}): some ranks would get no samples")
        self.module, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.device = _device(model, None)  # batches are moved where the model is
        self.model = model
        if self.world > 1:
            from ..nn.parallel import DistributedDataParallel
            self.model = DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb)
        self.train_data, self.val_data = train_data, val_data
        self.epochs, self.batch_size, self.seed = epochs, batch_size, seed
        self.amp, self.clip, self.scheduler = amp, clip_grad_norm, scheduler
        self.scheduler_per_batch = scheduler_per_batch
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.checkpoint_every, self.num_classes = checkpoint_every, num_classes
        self.show_progress, self.log = show_progress, log
        self.scaler = None
        if amp == "fp16":
            from ..amp import GradScaler
            self.scaler = GradScaler()
        self.sampler = _GlobalBatchShard(len(train_data), batch_size, self.rank, self.world,
                                         seed, shuffle, drop_last)
        self.loader = DataLoader(train_data, batch_sampler=self.sampler, num_workers=num_workers)
        self.epoch, self.history = 0, {}

    # -- one step --------------------------------------------------------------------------
    def _autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        from ..amp import autocast
        return autocast("cpu", dtype=bfloat16 if self.amp == "bf16" else float16)

    def _step(self, x, y, n_global: int):
        from ..optim.clip import clip_grad_norm_

        n = int(x.shape[0])
        self.optimizer.zero_grad()
        with self._autocast():
            out = self.model(x)
            loss = self.loss_fn(out, y)
        # the global batch's mean loss: each rank's mean weighted by its share (DDP averages)
        scaled = loss * (n * self.world / n_global) if self.world > 1 else loss
        if self.scaler is not None:
            self.scaler.scale(scaled).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            scaled.backward()
        if self.clip is not None:
            clip_grad_norm_(list(self.module.parameters()), self.clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.scheduler is not None and self.scheduler_per_batch:
            self.scheduler.step()
        return out, loss

    def _reseed(self, epoch: int, step: int) -> None:
        manual_seed(int(np.random.SeedSequence([self.seed, epoch, step, self.rank])
                        .generate_state(1, np.uint64)[0] >> 1))

    # -- metrics ---------------------------------------------------------------------------
    def _counts(self, out, y, acc: dict) -> None:
        """Add this batch's sample count, correct count and confusion counts to `acc`."""
        acc["correct"] += _correct(out, y)
        if out.ndim == 2 and y.ndim == 1 and not y.dtype.is_floating_point:
            k = self.num_classes or int(out.shape[1])
            pred = out.detach().argmax(-1).cpu().numpy()
            cm = _metrics.confusion_matrix(y.cpu().numpy(), pred, labels=list(range(k)))
            acc["cm"] = cm if acc["cm"] is None else acc["cm"] + cm

    def _global(self, acc: dict) -> dict[str, float]:
        """Exact dataset-wide metrics from every rank's sums."""
        k = 0 if acc["cm"] is None else acc["cm"].shape[0]
        # a rank without samples has no matrix; it sends zeros of the others' size
        k = int(_across_ranks([k], self.world, "max")[0])
        cm = acc["cm"] if acc["cm"] is not None else np.zeros((k, k))
        tot = _across_ranks(np.concatenate([[acc["loss"], acc["n"], acc["correct"]],
                                            cm.ravel()]), self.world)
        out = {"loss": tot[0] / tot[1], "acc": tot[2] / tot[1], "samples": tot[1]}
        if k:
            p, r, f = _metrics.scores_from_confusion(tot[3:].reshape(k, k), average="macro",
                                                     zero_division=0.0)
            out.update(precision=p, recall=r, f1=f)
        return out

    @staticmethod
    def _fresh() -> dict:
        return {"loss": 0.0, "n": 0, "correct": 0, "cm": None}

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self, epoch: int, step: int) -> dict[str, Any]:
        """Everything a resumed run needs (see the module doc)."""
        return {"format": _FORMAT, "epoch": epoch, "step": step, "seed": self.seed,
                "batch_size": self.batch_size, "model": self.module.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": None if self.scaler is None else self.scaler.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "history": self.history}

    def _save(self, epoch: int, step: int) -> None:
        if self.checkpoint is None:
            return
        if self.rank == 0:
            save(self.state_dict(epoch, step), self.checkpoint)
        if self.world > 1:
            from . import barrier
            barrier()

    def _restore(self) -> tuple[int, int]:
        st = load(self.checkpoint)
        if not isinstance(st, dict) or st.get("format") != _FORMAT:
            raise ValueError(f"Trainer: {self.checkpoint} is not a Trainer checkpoint "
                             f"(format {st.get('format') if isinstance(st, dict) else None!r})")
        if st["batch_size"] != self.batch_size or st["seed"] != self.seed:
            raise ValueError(f"Trainer: {self.checkpoint} was written with batch_size "
                             f"{st['batch_size']} and seed {st['seed']}; this run has "
                             f"{self.batch_size} and {self.seed}: the data order would differ")
        self.module.load_state_dict(st["model"])
        self.optimizer.load_state_dict(st["optimizer"])
        if self.scaler is not None and st["scaler"] is not None:
            self.scaler.load_state_dict(st["scaler"])
        if self.scheduler is not None and st["scheduler"] is not None:
            self.scheduler.load_state_dict(st["scheduler"])
        self.history = {k: list(v) for k, v in st["history"].items()}
        return int(st["epoch"]), int(st["step"])

    # -- loops -----------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict[str, list[float]]:
        """Train for the remaining epochs; returns the history (one entry per epoch of
        train_loss, train_acc, samples_per_s and, with val_data, val_* metrics), the same
        on every rank.  With resume=True and an existing checkpoint file, continue from it."""
        epoch, step = 0, 0
        if resume and self.checkpoint is not None and os.path.exists(self.checkpoint):
            epoch, step = self._restore()
        while epoch < self.epochs:
            self._train_epoch(epoch, step)
            epoch, step = epoch + 1, 0
            self._save(epoch, 0)
        return self.history

    def _train_epoch(self, epoch: int, start: int) -> None:
        self.module.train()
        self.sampler.epoch, self.sampler.start = epoch, start
        acc, t0 = self._fresh(), time.perf_counter()
        bar = progress(self.loader, desc=f"epoch {epoch + 1}/{self.epochs}", total=len(self.loader),
                       disable=not self.show_progress or self.rank != 0, unit="batch")
        step = start
        for x, y in bar:
            x, y = _to(x, self.device), _to(y, self.device)
            n_global = self._global_batch_size(step)
            self._reseed(epoch, step)
            out, loss = self._step(x, y, n_global)
            n = int(x.shape[0])
            acc["loss"] += float(loss.item()) * n
            acc["n"] += n
            self._counts(out, y, acc)
            step += 1
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{acc['loss'] / acc['n']:.4f}")
            if self.checkpoint_every and step % self.checkpoint_every == 0:
                self._save(epoch, step)
        elapsed = time.perf_counter() - t0
        m = self._global(acc)
        self.history.setdefault("samples_per_s", []).append(m.pop("samples") / elapsed)
        self._record("train", m)
        msg = f"epoch {epoch + 1}: train loss {m['loss']:.4f} acc {m['acc']:.4f}"
        metric = m["loss"]
        if self.val_data is not None:
            v = self.evaluate(self.val_data)
            v.pop("samples")
            self._record("val", v)
            metric = v["loss"]
            msg += f", val loss {v['loss']:.4f} acc {v['acc']:.4f}"
            if "f1" in v:
                msg += f" f1 {v['f1']:.4f}"
        if self.scheduler is not None and not self.scheduler_per_batch:
            from ..optim.lr_scheduler import ReduceLROnPlateau
            self.scheduler.step(metric) if isinstance(self.scheduler, ReduceLROnPlateau) \
                else self.scheduler.step()
        if self.log is not None and self.rank == 0:
            self.log(msg)

    def _global_batch_size(self, step: int) -> int:
        lo, hi = self.sampler._bounds()[step]
        return hi - lo

    def _record(self, prefix: str, m: dict) -> None:
        for k, v in m.items():
            self.history.setdefault(f"{prefix}_{k}", []).append(float(v))

    @no_grad()
    def evaluate(self, data, batch_size: int | None = None) -> dict[str, float]:
        """Loss, accuracy, the sample count and (for class scores) macro precision,
        recall and F1 over all of `data`, each rank evaluating a contiguous shard; the same
        result on every rank."""
        was = self.module.training
        self.module.eval()
        n = len(data)
        lo, hi = self.rank * n // self.world, (self.rank + 1) * n // self.world
        bs = batch_size or self.batch_size
        acc = self._fresh()
        shard = [list(range(a, min(a + bs, hi))) for a in range(lo, hi, bs)]
        try:
            for x, y in DataLoader(data, batch_sampler=shard):
                x, y = _to(x, self.device), _to(y, self.device)
                with self._autocast():
                    out = self.module(x)
                    loss = self.loss_fn(out, y)
                acc["loss"] += float(loss.item()) * int(x.shape[0])
                acc["n"] += int(x.shape[0])
                self._counts(out, y, acc)
        finally:
            self.module.train(was)
        return self._global(acc)

