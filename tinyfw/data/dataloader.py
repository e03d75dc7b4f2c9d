"""`DataLoader`: batches from a dataset, optionally loaded by worker processes.

With ``num_workers > 0`` the main process still owns the sampler: it hands batch k's
indices to worker ``k % num_workers`` and yields results strictly in order k = 0, 1, ...,
so the batches are exactly those of ``num_workers=0`` (same seed, same order).  Each
worker keeps up to `prefetch_factor` batches in flight.  While waiting, the main process
polls the workers: one that died (killed, crashed, out of memory) raises a RuntimeError
naming it and its exit code instead of hanging, and an exception inside a worker is
re-raised in the main process with the worker's traceback.
"""
from __future__ import annotations

import multiprocessing as mp
import queue
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from ..creation import from_numpy
from ..random import Generator, _gen, manual_seed
from ..tensor import Tensor
from .collate import default_collate, default_convert
from .dataset import TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

_POLL_S = 0.1


@dataclass
class WorkerInfo:
    """What `get_worker_info()` returns inside a worker process."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """Inside a DataLoader worker: its id, the worker count, its seed and its copy of the
    dataset; None in the main process."""
    return _worker_info


class _Packed:
    """A tensor on its way between processes: its host values and its device travel."""

    __slots__ = ("a", "device")

    def __init__(self, t: Tensor):
        self.a = t.detach().cpu().numpy()
        self.device = str(t.device)


def _map(obj: Any, f) -> Any:
    r = f(obj)
    if r is not obj:
        return r
    if isinstance(obj, dict):
        return {k: _map(v, f) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map(v, f) for v in obj]
    if isinstance(obj, tuple):
        vals = [_map(v, f) for v in obj]
        return type(obj)(*vals) if hasattr(obj, "_fields") else tuple(vals)
    return obj


def _pack(obj):
    return _map(obj, lambda x: _Packed(x) if isinstance(x, Tensor) else x)


def _unpack(obj):
    return _map(obj, lambda x: from_numpy(x.a).to(x.device) if isinstance(x, _Packed) else x)


def _fetch(dataset, idx, collate, auto_collation: bool):
    """One batch (auto_collation: `idx` is a list of indices) or one sample."""
    if not auto_collation:
        return collate(dataset[idx])
    if collate is default_collate and type(dataset) is TensorDataset:
        return dataset._collated(idx)  # the same batch, without a view per sample
    return collate([dataset[i] for i in idx])


def _worker_loop(wid: int, num_workers: int, seed: int, dataset, collate, auto_collation: bool,
                 index_q, result_q, init_fn) -> None:
    global _worker_info
    _worker_info = WorkerInfo(wid, num_workers, seed, dataset)
    manual_seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    try:
        if init_fn is not None:
            init_fn(wid)
    except Exception:
        result_q.put((-1, None, (wid, "worker_init_fn", traceback.format_exc())))
        return
    while True:
        try:
            task = index_q.get()
        except (KeyboardInterrupt, EOFError):
            return
        if task is None:
            return
        k, idx = task
        try:
            out = _fetch(dataset, idx, collate, auto_collation)
            result_q.put((k, _pack(out), None))
        except Exception as e:
            result_q.put((k, None, (wid, type(e).__name__, traceback.format_exc())))


class DataLoader:
    """Iterate over `dataset` in batches (PyTorch's DataLoader arguments).

    shuffle uses `generator` (or the global tinyfw generator), so ``tinyfw.manual_seed``
    fixes the order.  collate_fn defaults to `default_collate`; batch_size=None yields
    single samples.  num_workers > 0 loads batches in worker processes (see module doc);
    `multiprocessing_context` picks 'fork' (default where available) or 'spawn'; `timeout`
    (seconds, 0 = none) bounds the wait for one batch.

    Devices: batches are where the samples are (a TensorDataset on a device gives batches
    on it); move CPU batches with ``.to(device)`` in the loop, as in PyTorch.
    `pin_memory` (and `pin_memory_device`) are accepted and do nothing: tinyfw's CPU
    memory is ordinary pageable memory and host-to-device copies are synchronous, so
    there is nothing to pin for yet.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False,
                 sampler: Sampler | None = None, batch_sampler: Sampler | None = None,
                 num_workers: int = 0, collate_fn: Callable | None = None,
                 drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context: str | None = None,
                 generator: Generator | None = None, prefetch_factor: int | None = None,
                 pin_memory: bool = False, pin_memory_device: str = ""):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative int, got "
                             f"{num_workers}")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout must be >= 0, got {timeout}")
        if prefetch_factor is not None and num_workers == 0:
            raise ValueError("DataLoader: prefetch_factor is only used with num_workers > 0")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is "
                             "mutually exclusive with drop_last")
        if sampler is None:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.prefetch_factor = 2 if prefetch_factor is None and num_workers else prefetch_factor
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self.pin_memory = bool(pin_memory)  # a no-op, see the class doc
        self.pin_memory_device = pin_memory_device
        if multiprocessing_context is None:
            multiprocessing_context = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        self.multiprocessing_context = multiprocessing_context
        self._auto_collation = batch_sampler is not None
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn

    def __len__(self) -> int:
        return len(self.batch_sampler if self._auto_collation else self.sampler)

    def _index_iter(self) -> Iterator:
        return iter(self.batch_sampler if self._auto_collation else self.sampler)

    def __iter__(self) -> Iterator:
        # drawn in both modes so that the sampler's random stream is the same with and
        # without workers (PyTorch does the same)
        base_seed = int(_gen(self.generator).integers(0, 1 << 62))
        if self.num_workers == 0:
            return self._single(base_seed)
        return _MultiIter(self, base_seed)

    def _single(self, base_seed: int) -> Iterator:
        for idx in self._index_iter():
            yield _fetch(self.dataset, idx, self.collate_fn, self._auto_collation)


class _MultiIter:
    """The iterator of a DataLoader with worker processes."""

    def __init__(self, loader: DataLoader, base_seed: int):
        self.loader = loader
        ctx = mp.get_context(loader.multiprocessing_context)
        self.result_q = ctx.Queue()
        self.index_qs = []
        self.workers = []
        for wid in range(loader.num_workers):
            iq = ctx.Queue()
            w = ctx.Process(target=_worker_loop, daemon=True, name=f"tinyfw-dataloader-{wid}",
                            args=(wid, loader.num_workers, base_seed + wid, loader.dataset,
                                  loader.collate_fn, loader._auto_collation, iq,
                                  self.result_q, loader.worker_init_fn))
            w.start()
            self.index_qs.append(iq)
            self.workers.append(w)
        self.indices = loader._index_iter()
        self.sent = 0
        self.next_k = 0
        self.buffer: dict[int, Any] = {}
        self.exhausted = False
        self.closed = False
        for _ in range(loader.prefetch_factor * loader.num_workers):
            self._dispatch()

    def _dispatch(self) -> None:
        if self.exhausted:
            return
        try:
            idx = next(self.indices)
        except StopIteration:
            self.exhausted = True
            return
        self.index_qs[self.sent % len(self.workers)].put((self.sent, idx))
        self.sent += 1

    def __iter__(self):
        return self

    def __next__(self):
        if self.closed:
            raise StopIteration
        if self.next_k >= self.sent and self.exhausted:
            self.close()
            raise StopIteration
        start = time.monotonic()
        while self.next_k not in self.buffer:
            try:
                k, data, err = self.result_q.get(timeout=_POLL_S)
            except queue.Empty:
                self._check_workers()
                if self.loader.timeout and time.monotonic() - start > self.loader.timeout:
                    self.close()
                    raise RuntimeError(f"DataLoader timed out after {self.loader.timeout} s "
                                       f"waiting for batch {self.next_k}") from None
                continue
            if err is not None:
                self.close()
                wid, kind, tb = err
                raise RuntimeError(f"DataLoader worker {wid} raised {kind} while loading "
                                   f"batch {k}. Original traceback:\n{tb}")
            self.buffer[k] = data
        data = self.buffer.pop(self.next_k)
        self.next_k += 1
        self._dispatch()
        return _unpack(data)

    def _check_workers(self) -> None:
        for wid, w in enumerate(self.workers):
            if not w.is_alive():
                code = w.exitcode
                how = (f"was killed by signal {-code}" if code is not None and code < 0
                       else f"exited with code {code}")
                self.close()
                raise RuntimeError(f"DataLoader worker {wid} (pid {w.pid}) {how} unexpectedly "
                                   f"while batch {self.next_k} was pending; if it was killed "
                                   "for memory, lower batch_size or num_workers")

    def close(self) -> None:
        """Stop the workers (called at the end of the epoch, on error, or on deletion)."""
        if self.closed:
            return
        self.closed = True
        for q in self.index_qs:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        for w in self.workers:
            w.join(timeout=1.0)
            if w.is_alive():
                w.terminate()
                w.join(timeout=1.0)
        for q in self.index_qs + [self.result_q]:
            q.cancel_join_thread()
            q.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
