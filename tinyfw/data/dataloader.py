"""`DataLoader`: batches from a dataset, optionally loaded by worker processes.

With ``num_workers > 0`` the main process still owns the sampler: it hands batch k's
indices to worker ``k % num_workers`` and yields results strictly in order k = 0, 1, ...,
so the batches are exactly those of ``num_workers=0`` (same seed, same order).  Each
worker keeps up to `prefetch_factor` batches in flight.  While waiting, the main process
watches every worker: one that dies (killed, crashed, out of memory, exited), even while
sending a batch, raises a RuntimeError naming it and its exit code or signal instead of
hanging; an exception inside a worker is re-raised, when its batch is due, with the
worker's traceback.  Workers exit by themselves when the main process dies
(see `_worker`).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from multiprocessing.connection import wait as _wait_any
from typing import Callable, Iterator

from ..random import Generator, _gen
from ._worker import WorkerInfo, fetch, get_worker_info, unpack, worker_loop
from .collate import default_collate, default_convert
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "WorkerInfo", "get_worker_info"]

# the main process wakes this often while waiting for a batch, to apply `timeout`
_POLL_S = 0.1
# how long closing waits for workers to exit after each step (ask, SIGTERM, SIGKILL)
_JOIN_S = 1.0


class DataLoader:
    """Iterate over `dataset` in batches (PyTorch's DataLoader arguments).

    shuffle uses `generator` (or the global tinyfw generator), so ``tinyfw.manual_seed``
    fixes the order.  collate_fn defaults to `default_collate`; batch_size=None yields
    single samples.  num_workers > 0 loads batches in worker processes (see module doc);
    `multiprocessing_context` picks 'fork' (default where available) or 'spawn'; `timeout`
    (seconds, 0 = none) bounds the wait for one batch.

    Devices: batches are where the samples are (a TensorDataset on a device gives batches
    on it); move CPU batches with ``.to(device)`` in the loop, as in PyTorch.
    `pin_memory=True` puts each batch's CPU tensors in page-locked (pinned) host memory
    when a CUDA device is available (`tinyfw.cuda.pin_memory`): their ``.to('cuda')``
    copies are then asynchronous DMA transfers.  Without CUDA it does nothing.
    `pin_memory_device` is accepted for PyTorch compatibility.
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
        self.pin_memory = bool(pin_memory)
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
        it = self._single(base_seed) if self.num_workers == 0 else _MultiIter(self, base_seed)
        if self.pin_memory:
            from .. import cuda

            if cuda.is_available():
                return map(cuda.pin_memory, it)
        return it

    def _single(self, base_seed: int) -> Iterator:
        for idx in self._index_iter():
            yield fetch(self.dataset, idx, self.collate_fn, self._auto_collation)


class _MultiIter:
    """The iterator of a DataLoader with worker processes.

    Batch k is loaded by worker ``k % num_workers`` and each worker answers its tasks in
    order on its own pipe, so batch k is the next message on that pipe.  Every wait is
    bounded: it watches the pipe and every worker's exit at once and wakes each `_POLL_S`
    to apply `timeout`.
    """

    def __init__(self, loader: DataLoader, base_seed: int):
        self.loader = loader
        self.owner = os.getpid()
        self.index_qs: list = []
        self.conns: list = []
        self.workers: list = []
        self.closed = False
        method = loader.multiprocessing_context
        ctx = mp.get_context(method)
        # PR_SET_PDEATHSIG follows the thread that starts a worker: only the main thread
        # lives as long as the process (see _worker's module doc)
        deathsig = threading.current_thread() is threading.main_thread()
        try:
            for wid in range(loader.num_workers):
                iq = ctx.Queue()
                reader, writer = ctx.Pipe(duplex=False)
                w = ctx.Process(target=worker_loop, daemon=True,
                                name=f"tinyfw-dataloader-{wid}",
                                args=(wid, loader.num_workers, base_seed + wid, loader.dataset,
                                      loader.collate_fn, loader._auto_collation, iq, writer,
                                      loader.worker_init_fn, self.owner, method, deathsig))
                self.index_qs.append(iq)
                self.conns.append(reader)
                w.start()
                self.workers.append(w)
                # the worker now holds the only write end (made before the next worker
                # is forked, so no other process inherits it): its death reads as EOF
                writer.close()
        except BaseException:
            self.close()
            raise
        self.indices = loader._index_iter()
        self.sent = 0
        self.next_k = 0
        self.exhausted = False
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
        k, data, err = self._receive(self.next_k % len(self.workers))
        if err is not None:
            self._raise_worker_error(err, k)
        if k != self.next_k:  # cannot happen unless a worker's pipe was corrupted
            self.close()
            raise RuntimeError(f"DataLoader: expected batch {self.next_k} from worker "
                               f"{self.next_k % len(self.workers)}, got batch {k}")
        self.next_k += 1
        self._dispatch()
        return unpack(data)

    def _receive(self, wid: int) -> tuple:
        """The next message of worker `wid`, or an error if any worker dies first or the
        loader's timeout passes."""
        conn = self.conns[wid]
        watch = [conn] + [w.sentinel for w in self.workers]
        start = time.monotonic()
        while True:
            ready = _wait_any(watch, timeout=_POLL_S)
            if conn in ready:
                try:
                    return conn.recv()
                except (EOFError, OSError):  # it exited, maybe halfway through a message
                    self._raise_dead(wid)
            for j, w in enumerate(self.workers):
                if w.sentinel in ready:
                    self._raise_dead(j)
            if self.loader.timeout and time.monotonic() - start > self.loader.timeout:
                self.close()
                raise RuntimeError(f"DataLoader timed out after {self.loader.timeout} s "
                                   f"waiting for batch {self.next_k}")

    def _raise_worker_error(self, err: tuple, k: int) -> None:
        self.close()
        wid, kind, tb = err
        where = "in worker_init_fn" if k < 0 else f"while loading batch {k}"
        raise RuntimeError(f"DataLoader worker {wid} raised {kind} {where}. Original "
                           f"traceback:\n{tb}")

    def _raise_dead(self, wid: int) -> None:
        """Raise for worker `wid`, which has exited: the error it reported before exiting
        (worker_init_fn failed), else how it ended."""
        conn, w = self.conns[wid], self.workers[wid]
        try:
            while conn.poll(0):
                k, _, err = conn.recv()
                if err is not None:
                    self._raise_worker_error(err, k)
        except (EOFError, OSError):
            pass
        w.join(timeout=_JOIN_S)
        code = w.exitcode
        if code is None:
            how = "closed its result pipe while still running"
        elif code < 0:
            how = f"was killed by signal {-code} ({_signal_name(-code)})"
        else:
            how = f"exited with code {code}"
        self.close()
        raise RuntimeError(f"DataLoader worker {wid} (pid {w.pid}) {how} unexpectedly while "
                           f"batch {self.next_k} was pending; if it was killed for memory, "
                           "lower batch_size or num_workers")

    def close(self) -> None:
        """Stop the workers (at the end of the epoch, on error, or on deletion): ask them
        to exit, then SIGTERM, then SIGKILL, each step waiting at most `_JOIN_S`."""
        if self.closed or os.getpid() != self.owner:  # not in a forked copy
            return
        self.closed = True
        for q in self.index_qs:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        for stop in (None, "terminate", "kill"):
            alive = [w for w in self.workers if w.is_alive()]
            if stop is not None:
                for w in alive:
                    getattr(w, stop)()
            deadline = time.monotonic() + _JOIN_S
            for w in alive:
                w.join(timeout=max(0.0, deadline - time.monotonic()))
        for c in self.conns:
            c.close()
        for q in self.index_qs:
            q.cancel_join_thread()
            q.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return "unknown signal"
