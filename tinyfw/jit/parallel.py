"""Inter-op parallelism at run time: the branches of a parallel region run at once.

The scheduling pass (``passes/interop.py``) replaces a set of independent branches of a
graph by one node whose kernel is a `ParallelRegion`; each branch is a small graph of its
own with its own generated executor (and its own arena).  A call runs one branch on the
calling thread and hands the others to a small persistent pool, each branch with its share
of the intra-op (OpenMP) threads, set per thread through ``_C._set_local_num_threads``: two
branches at 2 threads run 1 + 1, never 2 + 2 on two cores.

Correctness, whatever the timing:
- a branch hands back only the values it produced; branches share no buffer (each has its
  own arena; values from outside are never written in place), so they cannot race;
- the caller waits for every branch before it returns or raises; an exception raised in a
  branch is re-raised on the calling thread, the same object, with a note naming the op
  and the branch (the first branch's error wins when several fail);
- a task nobody has started yet is taken back by the caller (``_Task.claim``): a region
  called from several Python threads at once, or from inside a branch, never waits on a
  busy pool, so it cannot deadlock;
- inside a branch, or when the kernels have one thread (``tinyfw.get_num_threads()``), a
  region runs its branches in order on the calling thread.
"""
from __future__ import annotations

import os
import re
import threading
from collections import deque

from ..backend.cpu import _C

# how many branches may run at once (the calling thread + the pool's workers)
DEFAULT_WORKERS = 2

_tls = threading.local()  # .depth: > 0 while this thread runs a branch


def workers() -> int:
    """Branches run at once at most: ``$TINYFW_INTEROP_WORKERS`` or 2."""
    env = os.environ.get("TINYFW_INTEROP_WORKERS")
    if env is None:
        return DEFAULT_WORKERS
    try:
        n = int(env)
    except ValueError:
        raise ValueError(f"TINYFW_INTEROP_WORKERS: expected an integer, got {env!r}") from None
    if n < 1:
        raise ValueError(f"TINYFW_INTEROP_WORKERS: expected at least 1, got {n}")
    return n


def supported() -> bool:
    """True when the C++ kernels can take a per-thread thread count (the pool needs it)."""
    return _C is not None and hasattr(_C, "_set_local_num_threads")


def split_threads(nt: int, costs: list) -> list:
    """Intra-op threads per branch: `nt` shared in proportion to the branches' costs, at
    least one each (more than `nt` in all only when there are more branches than threads)."""
    k = len(costs)
    if nt <= k:
        return [1] * k
    total = float(sum(costs)) or 1.0
    ts = [max(1, round(nt * c / total)) for c in costs]
    while sum(ts) > nt:
        j = max(range(k), key=lambda i: (ts[i] > 1, ts[i]))
        ts[j] -= 1
    while sum(ts) < nt:
        j = max(range(k), key=lambda i: costs[i] / ts[i])
        ts[j] += 1
    return ts


class _Task:
    """One branch handed to the pool; whoever claims it first (a worker or the caller) runs it."""

    __slots__ = ("run", "threads", "result", "error", "done", "_lock", "_claimed")

    def __init__(self, run, threads: int) -> None:
        self.run, self.threads = run, threads
        self.result = self.error = None
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._claimed = False

    def claim(self) -> bool:
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def execute(self) -> None:
        try:
            self.result = _run_branch(self.run, self.threads)
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            self.error = e
        finally:
            self.run = None  # the branch's arguments die with it
            self.done.set()


class _Pool:
    """Persistent daemon workers taking tasks from one queue (started on first use)."""

    def __init__(self) -> None:
        self._queue: deque = deque()
        self._cv = threading.Condition()
        self._threads: list = []

    def submit(self, task: _Task, want: int) -> None:
        with self._cv:
            while len(self._threads) < want:
                t = threading.Thread(target=self._work, name=f"tinyfw-interop-{len(self._threads)}",
                                     daemon=True)
                t.start()
                self._threads.append(t)
            self._queue.append(task)
            self._cv.notify()

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                task = self._queue.popleft()
            if task.claim():
                task.execute()


_pool = _Pool()


def _reset_after_fork() -> None:
    # a forked child has none of the parent's workers, and the queue's lock may have been
    # held by one of them at the fork: start afresh
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_reset_after_fork)


def _run_branch(run, threads: int):
    """Run one branch's executor on this thread with `threads` intra-op threads."""
    prev = _C._set_local_num_threads(threads) if threads else None
    _tls.depth = getattr(_tls, "depth", 0) + 1
    try:
        return run()
    finally:
        _tls.depth -= 1
        if prev is not None:
            _C._set_local_num_threads(prev)


_CALL = re.compile(r"\b([fk])(\d+)\(")


def _failed_op(exc: BaseException, branch) -> str:
    """The op of `branch` whose line of the generated executor raised `exc`."""
    tb, line = exc.__traceback__, None
    while tb is not None:  # the innermost frame of the generated function
        if tb.tb_frame.f_code.co_filename == "<tinyfw.jit graph>" \
                and tb.tb_frame.f_globals.get("_tfjit_branch") is branch:
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is not None:
        src = branch.run.source.split("\n")
        m = _CALL.search(src[line - 1]) if 0 < line <= len(src) else None
        if m is not None:
            return branch.graph.nodes[int(m.group(2))].op
    return "?"


class Branch:
    """One branch of a region: its graph, its executor, where its arguments come from."""

    def __init__(self, graph, run, arg_index: list, cost_us: float) -> None:
        self.graph = graph
        self.run = run              # executor.build(graph, ...) of the branch
        self.arg_index = arg_index  # per argument of the branch: index among the region's inputs
        self.cost_us = cost_us      # estimated time at one thread
        run.owned.__globals__["_tfjit_branch"] = self  # lets _failed_op find the branch

    def describe(self) -> str:
        """Its ops in order, shortened: ``Matmul, Tanh, Matmul (3 nodes, ~1.2 ms)``."""
        ops = [n.op for n in self.graph.nodes]
        shown = ", ".join(ops[:6]) + (", ..." if len(ops) > 6 else "")
        return f"{shown} ({len(ops)} node{'s' * (len(ops) != 1)}, ~{_fmt_us(self.cost_us)})"


def _fmt_us(us: float) -> str:
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} us"


class ParallelRegion:
    """The kernel of a region node: ``region(*inputs) -> outputs of every branch, in order``.

    `force` runs the branches concurrently even when the kernels have one thread (tests).
    ``last_threads`` records the split of the last concurrent call (None: ran in order).
    """

    accepts_out = False

    def __init__(self, branches: list, force: bool = False, fresh: bool = False) -> None:
        self.branches = branches
        self.force = force
        self.in_order = False  # run the branches in order whatever the threads (timing)
        self.fresh = fresh  # every output is a buffer of its own (memory_plan may reuse it)
        self.last_threads: list | None = None

    def plan(self, nt: int | None = None) -> list | None:
        """Threads per branch for a call now (None: run in order on the calling thread)."""
        if self.in_order or not supported() or getattr(_tls, "depth", 0) > 0 or workers() < 2:
            return None
        nt = _C.get_num_threads() if nt is None else nt
        if nt < 2 and not self.force:
            return None
        return split_threads(nt, [b.cost_us for b in self.branches])

    def __call__(self, *arrays):
        threads = self.plan()
        self.last_threads = threads
        runs = [_bind(b, arrays) for b in self.branches]
        del arrays
        if threads is None:
            results = []
            for j, (b, r) in enumerate(zip(self.branches, runs)):
                try:
                    results.append(r())
                except BaseException as e:
                    e.add_note(f"jit: raised by op {_failed_op(e, b)} in branch {j} of a "
                               "parallel region (run in order)")
                    raise
            return tuple(v for res in results for v in res)
        tasks = [_Task(r, t) for r, t in zip(runs[:-1], threads[:-1])]
        del runs[:-1]
        for t in tasks:
            _pool.submit(t, workers() - 1)
        mine = _Task(runs.pop(), threads[-1])
        mine.claim()
        mine.execute()
        for t in tasks:  # run a task no worker has started (busy pool, nested call) here
            if t.claim():
                t.execute()
            t.done.wait()
        done = tasks + [mine]
        for j, t in enumerate(done):
            if t.error is not None:
                e = t.error
                for other in done[j + 1:]:
                    other.error = None
                e.add_note(f"jit: raised by op {_failed_op(e, self.branches[j])} in branch {j} "
                           f"of a parallel region ({len(done)} branches, threads {threads})")
                raise e
        return tuple(v for t in done for v in t.result)


def _bind(branch: Branch, arrays: tuple):
    """A no-argument call of the branch's executor that owns its arguments."""
    args = [arrays[i] for i in branch.arg_index]
    owned = branch.run.owned
    return lambda: owned(args)
