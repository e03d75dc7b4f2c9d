"""The worker-process side of `DataLoader`: the loop a worker runs, what travels between
the processes, and how a worker notices that the main process is gone.

A worker reads ``(k, indices)`` tasks from its own index queue and sends
``(k, batch, error)`` back on its own result pipe (from a thread, so that it can load the
next batch meanwhile), of which it holds the only write end: when it dies, even halfway
through a message, the main process reads end-of-file instead of waiting forever.

A worker must not outlive the main process (after ``kill -9`` of the main, orphaned
workers would otherwise wait on their queue forever).  Two mechanisms, as in PyTorch:

- every `_WATCH_S` seconds without a task, and before sending each batch, the worker
  checks that its parent is still the process that started it (an orphan is adopted by
  init or a subreaper, so ``os.getppid()`` changes), and exits if not;
- on Linux, a worker started from the main thread also asks the kernel to SIGKILL it
  when that thread exits (``prctl(PR_SET_PDEATHSIG)``), which reaches a worker that is
  busy in a long ``__getitem__``.  The kernel ties that signal to the *thread* that
  forked the worker, so a loader iterated from another thread relies on the check above
  alone: its workers must not die when a short-lived thread ends.
"""
from __future__ import annotations

import ctypes
import os
import queue
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable

import numpy as np

from ..creation import from_numpy
from ..random import manual_seed
from ..tensor import Tensor
from .collate import default_collate
from .dataset import TensorDataset

# how long an idle worker waits for a task before it checks on its parent: the upper
# bound on how long an idle orphan lives
_WATCH_S = 0.5
# how long a worker whose worker_init_fn failed waits for its report to be written
_FLUSH_S = 5.0
_PR_SET_PDEATHSIG = 1


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


def pack(obj):
    """`obj` with every tensor replaced by its host values and device name."""
    return _map(obj, lambda x: _Packed(x) if isinstance(x, Tensor) else x)


def unpack(obj):
    """The inverse of `pack`: tensors back on their devices."""
    return _map(obj, lambda x: from_numpy(x.a).to(x.device) if isinstance(x, _Packed) else x)


def fetch(dataset, idx, collate, auto_collation: bool):
    """One batch (auto_collation: `idx` is a list of indices) or one sample."""
    if not auto_collation:
        return collate(dataset[idx])
    if collate is default_collate and type(dataset) is TensorDataset:
        return dataset._collated(idx)  # the same batch, without a view per sample
    return collate([dataset[i] for i in idx])


def _parent_watch(main_pid: int, method: str) -> Callable[[], bool]:
    """A function telling whether the process that started this worker is gone."""
    # fork and spawn make the main process our parent: comparing with its pid also
    # catches a main that died before this worker got here; forkserver's workers are
    # children of the fork server, which exits when the main process does
    parent = main_pid if method in ("fork", "spawn") else os.getppid()
    return lambda: os.getppid() != parent


def _die_with_parent_thread() -> None:
    """Linux: have the kernel SIGKILL this process when the thread that started it exits."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGKILL),
                   ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    except (OSError, AttributeError):
        pass  # no prctl: the parent check alone remains


def _payload(wid: int, msg: tuple) -> bytes:
    """`msg` pickled; an unpicklable batch becomes an error naming it."""
    try:
        return ForkingPickler.dumps(msg)
    except Exception as e:
        k = msg[0]
        return ForkingPickler.dumps((k, None, (wid, type(e).__name__, (
            f"batch {k} could not be sent to the main process: {type(e).__name__}: {e}\n"
            "(a batch must be picklable: tensors, numpy arrays, numbers, str, "
            "containers of those)"))))


class _Sender:
    """Writes results to the pipe from a thread, so that the worker loads its next batch
    while the main process has not read the last one yet (up to its prefetch_factor
    tasks, as PyTorch's queue feeder threads allow)."""

    def __init__(self, conn):
        self.conn = conn
        self.pending: queue.SimpleQueue = queue.SimpleQueue()
        self.broken = False  # the main process closed its end or is gone
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (payload := self.pending.get()) is not None:
            try:
                self.conn.send_bytes(payload)
            except OSError:  # BrokenPipeError
                self.broken = True
                return

    def send(self, payload: bytes) -> bool:
        """Queue one result; False once the main process no longer reads."""
        self.pending.put(payload)
        return not self.broken

    def flush(self, timeout: float) -> None:
        """Wait (at most `timeout` s) until everything queued is written."""
        self.pending.put(None)
        self.thread.join(timeout)


def worker_loop(wid: int, num_workers: int, seed: int, dataset, collate, auto_collation: bool,
                index_q, conn, init_fn, main_pid: int, method: str, deathsig: bool) -> None:
    """The body of worker process `wid` (see the module doc)."""
    global _worker_info
    if deathsig:
        _die_with_parent_thread()
    parent_gone = _parent_watch(main_pid, method)
    sender = _Sender(conn)
    try:
        if parent_gone():  # the main process died before prctl could take effect
            return
        _worker_info = WorkerInfo(wid, num_workers, seed, dataset)
        manual_seed(seed)
        np.random.seed(seed & 0xFFFFFFFF)
        if init_fn is not None:
            try:
                init_fn(wid)
            except Exception:
                sender.send(_payload(wid, (-1, None, (wid, "worker_init_fn",
                                                      traceback.format_exc()))))
                sender.flush(_FLUSH_S)  # the main process reads it when it sees us exit
                return
        while True:
            try:
                task = index_q.get(timeout=_WATCH_S)
            except queue.Empty:
                if parent_gone():
                    return
                continue
            except (EOFError, OSError):
                return
            if task is None:
                return
            k, idx = task
            try:
                msg = (k, pack(fetch(dataset, idx, collate, auto_collation)), None)
            except Exception as e:
                msg = (k, None, (wid, type(e).__name__, traceback.format_exc()))
            if parent_gone() or not sender.send(_payload(wid, msg)):
                return
    except KeyboardInterrupt:
        return  # Ctrl-C reaches the whole process group: the main process handles it
    # every other way out (the main process closing, gone, or not reading) wants no more
    # results: the exit ends the sender thread and closes the pipe
