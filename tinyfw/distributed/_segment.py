"""The shared-memory segment of one shm process group: control words, one pipe per
ordered pair of ranks, and waits that never hang.

Layout (one file in /dev/shm, mapped by every rank):

- a header page: magic, version, world size, slots per pipe, slot size, creator's pid;
- one 128-byte block per rank: pid, state (joined / left), heartbeat (CLOCK_MONOTONIC ns,
  which all processes of one machine share), barrier count;
- one 1 KiB control block per pipe (src, dst): the sender's ``head`` (messages written)
  and per-slot metadata in the first cache lines, the receiver's ``tail`` (messages
  consumed) in the last, so the two sides never write the same cache line;
- the pipes' data: ``nslots`` slots of ``slot_bytes`` each.

A message is one slot.  The sender waits until ``head - tail < nslots``, writes the data
and the metadata, then advances ``head``; the receiver waits until ``head`` passes its
count, reads, then advances ``tail``.  Each counter has a single writer and is an aligned
int64, so its store is atomic; x86's total store order makes the data visible before the
counter that publishes it (on a weaker memory model this needs fences).

Every wait spins briefly, then yields and sleeps with backoff (two ranks may share a
core), and every ~50 ms checks the peer it waits for: a pid that is gone or a zombie, a
rank that left the group, or a heartbeat older than the heartbeat limit raise a
DistributedError naming that rank; so does the group's timeout.
"""
from __future__ import annotations

import mmap
import os
import threading
import time

import numpy as np

from ._kernels import wait_word_ge

MAGIC = 0x7446_7753_686D_3031  # "tFwShm01"
JOINED, LEFT = 1, 2
_RANK_WORDS = 16      # 128 bytes per rank block
_PIPE_WORDS = 128     # 1 KiB per pipe control block
_TAIL = 120           # the receiver's word in a pipe block (byte 960: its own cache line)
_META = 8             # per-slot metadata (kind, seq, nbytes) from word 8 on
MAX_SLOTS = 32        # 8 + 3 * 32 < 120
# how long a wait yields the core before it starts to sleep (TINYFW_SHM_YIELD_US)
YIELD_S = float(os.environ.get("TINYFW_SHM_YIELD_US", 5000)) * 1e-6


class DistributedError(RuntimeError):
    """A collective could not complete: a peer died, left, hung or disagreed.  ``rank``
    is the peer's rank when one is to blame (None otherwise)."""

    def __init__(self, message: str, rank: int | None = None) -> None:
        super().__init__(message)
        self.rank = rank


def shm_dir() -> str:
    """Where segments live: /dev/shm (a tmpfs) when present."""
    return "/dev/shm" if os.path.isdir("/dev/shm") else os.environ.get("TMPDIR", "/tmp")


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (dead, not yet reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X")
    except (OSError, ValueError):
        return True  # no /proc: trust kill(0)


class Segment:
    """One mapped segment; `rank` is this process's rank in it."""

    def __init__(self, path: str, rank: int, world: int, nslots: int, slot_bytes: int,
                 timeout: float, heartbeat_limit: float) -> None:
        self.path, self.rank, self.world = path, rank, world
        self.timeout, self.heartbeat_limit = timeout, heartbeat_limit
        deadline = time.monotonic() + timeout
        if rank == 0:
            self._create(nslots, slot_bytes)
        else:
            self._open(world, deadline)
        self._join()
        self._closed = threading.Event()
        self._hb = threading.Thread(target=self._heartbeat, name="tinyfw-heartbeat", daemon=True)
        self._hb.start()
        # every rank waits for every other to join: after that nobody opens the file again
        for r in range(world):
            self.wait_ge(self._rank_word(r, 1), JOINED, r, "init_process_group (join)",
                         deadline=deadline, check_state=False)
        if rank == 0:
            _unlink(path)  # mapped by all: nothing can leak from here on

    # -- creation and joining -------------------------------------------------------------
    def _size(self, nslots: int, slot_bytes: int) -> int:
        self.nslots, self.slot_bytes = nslots, slot_bytes
        w = self.world
        self._rank_base = 4096 // 8
        self._pipe_base = self._rank_base + w * _RANK_WORDS
        ctl_bytes = 8 * (self._pipe_base + w * w * _PIPE_WORDS)
        self._data_base = -(-ctl_bytes // 4096) * 4096
        return self._data_base + w * w * nslots * slot_bytes

    def _map(self, fd: int, size: int) -> None:
        self._mm = mmap.mmap(fd, size)
        self.ctl = np.frombuffer(self._mm, np.int64, count=self._data_base // 8)
        self._bytes = np.frombuffer(self._mm, np.uint8)

    def _create(self, nslots: int, slot_bytes: int) -> None:
        size = self._size(nslots, slot_bytes)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            self._map(fd, size)
        finally:
            os.close(fd)
        self.ctl[:6] = (0, 1, self.world, nslots, slot_bytes, os.getpid())
        self.ctl[0] = MAGIC  # last: a joiner that sees it sees the rest
        os.replace(tmp, self.path)  # atomic: joiners never see a half-made segment

    def _open(self, world: int, deadline: float) -> None:
        delay = 0.001
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR)
            except FileNotFoundError:
                fd = -1
            if fd >= 0:
                try:
                    head = np.frombuffer(os.pread(fd, 48, 0), np.int64)
                    if head[0] == MAGIC and pid_alive(int(head[5])):
                        if head[2] != world:
                            raise DistributedError(
                                f"init_process_group: the segment {self.path} was made for "
                                f"world size {int(head[2])}, this rank has {world}")
                        size = self._size(int(head[3]), int(head[4]))
                        self._map(fd, size)
                        return
                finally:
                    os.close(fd)
            # not there yet, or left over by a run whose rank 0 is dead: rank 0 replaces it
            if time.monotonic() > deadline:
                raise DistributedError(
                    f"init_process_group: rank 0 did not create the segment {self.path} "
                    f"within the timeout ({self.timeout:g} s)", rank=0)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _rank_word(self, r: int, k: int) -> int:
        return self._rank_base + r * _RANK_WORDS + k

    def _join(self) -> None:
        me = self._rank_word(self.rank, 0)
        old_pid, old_state = int(self.ctl[me]), int(self.ctl[me + 1])
        if old_state == JOINED and old_pid != os.getpid() and pid_alive(old_pid):
            raise DistributedError(f"init_process_group: rank {self.rank} already joined by "
                                   f"pid {old_pid}; two processes were given the same RANK")
        self.ctl[me] = os.getpid()
        self.ctl[me + 2] = time.monotonic_ns()
        self.ctl[me + 1] = JOINED

    def _heartbeat(self) -> None:
        word = self._rank_word(self.rank, 2)
        while not self._closed.wait(0.2):
            self.ctl[word] = time.monotonic_ns()

    def close(self) -> None:
        """Mark this rank as gone (peers waiting for it raise), stop the heartbeat, unmap."""
        if getattr(self, "_mm", None) is None:
            return
        self.ctl[self._rank_word(self.rank, 1)] = LEFT
        self._closed.set()
        if self._hb is not threading.current_thread():
            self._hb.join()  # it writes into the mapping: stop it before unmapping
        if self.rank == 0:
            _unlink(self.path)
        self.ctl = self._bytes = None
        try:
            self._mm.close()
        except BufferError:  # a view is still alive somewhere: the GC unmaps it later
            pass
        self._mm = None

    # -- waiting ---------------------------------------------------------------------------
    def _trouble(self, r: int, check_state: bool) -> str | None:
        """What is wrong with rank r (None: nothing seen)."""
        base = self._rank_word(r, 0)
        pid, state, beat = (int(v) for v in self.ctl[base:base + 3])
        if pid and not pid_alive(pid):
            return f"rank {r} (pid {pid}) died"
        if check_state and state == LEFT:
            return (f"rank {r} (pid {pid}) left the process group (it exited or called "
                    "destroy_process_group)")
        age = (time.monotonic_ns() - beat) / 1e9
        if pid and beat and age > self.heartbeat_limit:
            return f"rank {r} (pid {pid}) is not responding: its heartbeat is {age:.1f} s old"
        return None

    def check_peer(self, r: int, what: str, check_state: bool = True) -> None:
        """Raise a DistributedError if rank `r` died, left or stopped beating.  A rank that
        died is blamed first: in a ring the neighbour of a dead rank raises and leaves, and
        the rank waiting for that neighbour should name the cause, not the messenger."""
        trouble = self._trouble(r, check_state)
        if trouble is None:
            return
        for q in range(self.world):
            if q not in (r, self.rank) and "died" in (self._trouble(q, False) or ""):
                raise DistributedError(f"{what}: {self._trouble(q, False)} (rank {self.rank} "
                                       f"was waiting for rank {r}: {trouble})", rank=q)
        raise DistributedError(f"{what}: {trouble} while rank {self.rank} waited for it",
                               rank=r)

    def wait_ge(self, word: int, value: int, peer: int, what: str,
                deadline: float | None = None, check_state: bool = True,
                ctl: np.ndarray | None = None) -> None:
        """Wait until ctl[word] >= value, where `peer` is the rank that advances it; `ctl`
        is this segment's control words unless another shared array is given."""
        ctl = self.ctl if ctl is None else ctl
        if ctl[word] >= value:
            return
        start = time.monotonic()
        if deadline is None:
            deadline = start + self.timeout
        while True:
            # polls, yields the core for the first YIELD_S seconds (the peer may be waiting
            # for it: 2 vCPUs here run both ranks and more), then sleeps with backoff up to
            # 0.2 ms so that an idle wait costs no CPU; in C++ with the GIL released, so
            # that this process's other thread runs meanwhile (a Python loop here starved
            # it); every 50 ms, the peer's health and the deadline
            left = YIELD_S - (time.monotonic() - start)
            if wait_word_ge(ctl, word, value, 0.05, max(left, 0.0)):
                return
            self.check_peer(peer, what, check_state)
            if time.monotonic() > deadline:
                raise DistributedError(
                    f"{what}: timed out after {self.timeout:g} s waiting for rank {peer} "
                    f"(pid {int(self.ctl[self._rank_word(peer, 0)])}, alive)", rank=peer)

    # -- pipes -----------------------------------------------------------------------------
    def _pipe(self, src: int, dst: int) -> int:
        return self._pipe_base + (src * self.world + dst) * _PIPE_WORDS

    def slot(self, src: int, dst: int, k: int, dtype, count: int) -> np.ndarray:
        """Message k's slot of pipe src -> dst as `count` elements of `dtype`."""
        off = (self._data_base + ((src * self.world + dst) * self.nslots + k % self.nslots)
               * self.slot_bytes)
        return self._bytes[off:off + count * np.dtype(dtype).itemsize].view(dtype)

    def head(self, src: int, dst: int) -> int:
        """Messages written into pipe src -> dst so far."""
        return int(self.ctl[self._pipe(src, dst)])

    def tail(self, src: int, dst: int) -> int:
        """Messages consumed from pipe src -> dst so far."""
        return int(self.ctl[self._pipe(src, dst) + _TAIL])

    def reserve(self, dst: int, k: int, what: str) -> None:
        """Wait until message k to `dst` has a free slot (dst consumed message k - nslots)."""
        self.wait_ge(self._pipe(self.rank, dst) + _TAIL, k - self.nslots + 1, dst, what)

    def publish(self, dst: int, k: int, kind: int, seq: int, nbytes: int) -> None:
        """Message k to `dst` is written: its metadata, then the head that publishes it."""
        p = self._pipe(self.rank, dst)
        m = p + _META + 3 * (k % self.nslots)
        self.ctl[m:m + 3] = (kind, seq, nbytes)
        self.ctl[p] = k + 1

    def arrive(self, src: int, k: int, what: str) -> tuple:
        """Wait for message k from `src`; return its (kind, seq, nbytes)."""
        p = self._pipe(src, self.rank)
        self.wait_ge(p, k + 1, src, what)
        m = p + _META + 3 * (k % self.nslots)
        return tuple(int(v) for v in self.ctl[m:m + 3])

    def consume(self, src: int, k: int) -> None:
        """Message k from `src` was read: its slot is free again."""
        self.ctl[self._pipe(src, self.rank) + _TAIL] = k + 1

    # -- barrier ---------------------------------------------------------------------------
    def barrier(self) -> None:
        """Every rank has reached its n-th barrier."""
        w = self._rank_word(self.rank, 3)
        n = int(self.ctl[w]) + 1
        self.ctl[w] = n
        for r in range(self.world):
            if r != self.rank:
                self.wait_ge(self._rank_word(r, 3), n, r, "barrier")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
