"""Asynchronous collectives: a Work handle and the communication thread that runs them.

Collectives of one group run one at a time in the order they were called (every rank
must see the same sequence).  An ``async_op=True`` call is queued for the group's
communication thread and returns at once; a blocking call first waits for the queue to
drain, then runs in the caller's thread (no thread hop for the common case).  The
kernels release the GIL, so a queued all-reduce progresses while the caller computes.
After a collective fails the group is broken: later calls raise that error at once.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable

from ._segment import DistributedError


class Work:
    """The handle of an asynchronous collective (``async_op=True``)."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._error: BaseException | None = None

    def is_completed(self) -> bool:
        """Whether the collective has finished (successfully or not)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the collective finished; re-raise its error in this thread.  With
        `timeout` (seconds) raise a DistributedError if it has not finished by then (the
        collective's own deadline, the group's timeout, still applies)."""
        if not self._done.wait(timeout):
            raise DistributedError(f"Work.wait: the collective did not finish within "
                                   f"{timeout:g} s")
        if self._error is not None:
            raise self._error
        return True

    def exception(self) -> BaseException | None:
        """The error the collective raised, or None."""
        return self._error

    def _finish(self, error: BaseException | None = None) -> None:
        self._error = error
        self._done.set()


def _completed() -> Work:
    w = Work()
    w._finish()
    return w


class Executor:
    """Runs a group's collectives in call order, in a communication thread when async."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._cv = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self.broken: BaseException | None = None

    def _guarded(self, fn: Callable[[], None]) -> None:
        if self.broken is not None:
            raise DistributedError(f"the process group is unusable after an earlier error: "
                                   f"{self.broken}", getattr(self.broken, "rank", None))
        try:
            fn()
        except BaseException as e:  # a half-done collective leaves the pipes out of step
            self.broken = e
            raise

    def submit(self, fn: Callable[[], None]) -> Work:
        """Queue `fn` for the communication thread; return its Work."""
        work = Work()
        with self._cv:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="tinyfw-comm",
                                                 daemon=True)
                self._thread.start()
        self._queue.put((fn, work))
        return work

    def run(self, fn: Callable[[], None]) -> None:
        """Run `fn` now, in this thread, after every queued collective."""
        self.drain()
        self._guarded(fn)

    def drain(self) -> None:
        """Wait until the queue is empty (each collective has its own deadline)."""
        with self._cv:
            while self._pending:
                self._cv.wait()

    def _loop(self) -> None:
        while True:
            fn, work = self._queue.get()
            if fn is None:
                return
            error = None
            try:
                self._guarded(fn)
            except BaseException as e:  # handed to whoever waits on the Work
                error = e
            work._finish(error)
            with self._cv:
                self._pending -= 1
                self._cv.notify_all()

    def stop(self) -> None:
        """Finish the queued collectives, then end the thread."""
        if self._thread is not None:
            self.drain()
            self._queue.put((None, None))
            self._thread.join()
            self._thread = None
