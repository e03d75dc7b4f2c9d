"""Process lifetime of DataLoader workers (issue 14, item 6).

- Workers exit by themselves soon after the main process is SIGKILLed: idle ones (they
  check on their parent), busy ones (PR_SET_PDEATHSIG on Linux), and those of a loader
  iterated from another thread (the parent check; the kernel's signal is not used there
  since it follows the starting thread).
- A worker that dies in any way makes the main process raise an error naming the worker
  and how it ended, never hang: killed while sending a batch, exited with a code,
  worker_init_fn raised, a batch that cannot be pickled.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

from tinyfw.data import DataLoader, Dataset, get_worker_info

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
linux_only = pytest.mark.skipif(not os.path.isdir("/proc/self"),
                                reason="reads process states from /proc (Linux)")


@contextmanager
def no_hang(seconds: float):
    """Fail instead of blocking forever (SIGALRM interrupts a blocking read)."""
    def boom(*_):
        raise TimeoutError(f"still blocked after {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- the main process is killed -------------------------------------------------------------
_MAIN = r"""
import os, sys, threading, time
from tinyfw.data import DataLoader, Dataset

BUSY = sys.argv[1] == "busy"


class Pids(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if BUSY and i >= 2:  # the worker is inside __getitem__ when the main dies
            time.sleep(60)
        return os.getpid()


def run():
    it = iter(DataLoader(Pids(), batch_size=1, num_workers=2))
    print(*sorted({int(next(it)) for _ in range(2)}), flush=True)
    time.sleep(60)


if sys.argv[2] == "thread":
    threading.Thread(target=run, daemon=True).start()
    time.sleep(60)
else:
    run()
"""


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/pid/stat (start time), or None once the process has exited
    (gone, or a zombie nobody has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


@linux_only
@pytest.mark.parametrize("busy,where", [("idle", "main"), ("busy", "main"), ("idle", "thread")])
def test_workers_exit_soon_after_the_main_process_is_killed(busy, where):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    main = subprocess.Popen([sys.executable, "-c", _MAIN, busy, where], env=env,
                            stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        ready, _, _ = select.select([main.stdout], [], [], 30)
        assert ready, "the main process did not report its workers within 30 s"
        pids = [int(p) for p in main.stdout.readline().split()]
        assert len(pids) == 2 and main.pid not in pids
        started = {p: _start_time(p) for p in pids}
        assert all(started.values()), "the workers should be running before the kill"
        time.sleep(0.2)  # let the workers settle into waiting (idle) or sleeping (busy)
        main.send_signal(signal.SIGKILL)
        main.wait()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            alive = [p for p in pids if _start_time(p) == started[p]]
            if not alive:
                break
            time.sleep(0.05)
        assert not alive, f"workers {alive} outlived the killed main process by 5 s"
    finally:
        if main.poll() is None:
            main.kill()
            main.wait()
        for p in pids:  # never leave an orphan behind, even when the test fails
            if _start_time(p) is not None:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        main.stdout.close()


class _Range(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return i


def test_workers_outlive_the_thread_that_started_them():
    """PR_SET_PDEATHSIG fires when the forking *thread* exits: a loader started in a
    short-lived thread must keep its workers."""
    box = {}
    t = threading.Thread(target=lambda: box.update(it=iter(DataLoader(_Range(), num_workers=2))))
    t.start()
    t.join()
    time.sleep(0.3)
    with no_hang(20):
        assert [int(b) for b in box["it"]] == list(range(6))


# -- a worker dies while the main process waits ------------------------------------------------
class _KilledWhileSending(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        if get_worker_info() is not None and i == 0:
            # killed once its 4 MB batch fills the pipe: half a message is in flight
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGKILL)).start()
            return np.zeros(1 << 20, np.float32)
        return np.zeros(1, np.float32)


def test_worker_killed_halfway_through_a_batch_is_an_error_not_a_hang():
    it = iter(DataLoader(_KilledWhileSending(), batch_size=None, num_workers=1))
    it.workers[0].join(timeout=10)  # the main reads nothing until the worker is dead
    assert it.workers[0].exitcode == -signal.SIGKILL
    with no_hang(8), pytest.raises(RuntimeError,
                                   match=r"worker 0 \(pid \d+\) was killed by signal 9"):
        next(it)


class _Exits(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 3 and get_worker_info() is not None:
            os._exit(3)
        return i


def test_worker_that_exits_names_its_exit_code():
    with no_hang(8), pytest.raises(RuntimeError, match=r"worker 1 \(pid \d+\) exited with "
                                                       r"code 3 unexpectedly"):
        list(DataLoader(_Exits(), batch_size=1, num_workers=2))


def _init_fails_in_worker_1(wid: int) -> None:
    if wid == 1:
        raise ValueError("worker 1 cannot open its database")


def test_failing_worker_init_fn_is_reraised():
    with no_hang(8), pytest.raises(RuntimeError, match=r"(?s)worker 1 raised worker_init_fn "
                                                       r"in worker_init_fn.*cannot open"):
        list(DataLoader(_Range(), num_workers=2, worker_init_fn=_init_fails_in_worker_1))


class _FailsAt3(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 3:
            raise KeyError("sample 3 is broken")
        return i


def test_worker_errors_are_raised_when_their_batch_is_due():
    got = []
    with no_hang(8), pytest.raises(RuntimeError, match=r"(?s)worker 1 raised KeyError while "
                                                       r"loading batch 3.*sample 3 is broken"):
        for b in DataLoader(_FailsAt3(), num_workers=2, prefetch_factor=4):
            got.append(int(b))
    assert got == [0, 1, 2]  # the batches before it, in order


def test_unpicklable_batch_is_an_error_not_a_hang():
    loader = DataLoader(_Range(), batch_size=None, num_workers=1,
                        collate_fn=lambda i: (lambda: i))  # a lambda cannot be pickled
    with no_hang(8), pytest.raises(RuntimeError, match="batch 0 could not be sent to the main"):
        next(iter(loader))


def test_breaking_out_early_stops_the_workers_promptly():
    it = iter(DataLoader(_Range(), num_workers=3))
    assert int(next(it)) == 0
    workers = list(it.workers)
    start = time.monotonic()
    it.close()
    assert time.monotonic() - start < 1.5
    assert all(not w.is_alive() and w.exitcode == 0 for w in workers)
