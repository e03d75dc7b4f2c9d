"""Shared memory that every rank of a shm group maps: one data region per rank, and
control lines that only their own rank writes.

DDP's gradient buckets live here (see _shared_buckets.py): a rank reads the other ranks'
regions directly instead of passing the bytes round the ring through message slots.

Layout (one file, created by rank 0 next to the group's segment, unlinked once every rank
has mapped it): a header page (magic, creator's pid, size), then `nlines` x world 64-byte
control lines (line i of rank r at (i * world + r) * 8 words; eight int64 words each, so
no two ranks ever write one cache line), then the regions, `region_bytes` each.
"""
from __future__ import annotations

import mmap
import os
import time

import numpy as np

from ._segment import DistributedError, _unlink

MAGIC = 0x7446_7741_7265_6E61  # "tFwArena"
_LINE_WORDS = 8


class ArenaUnavailable(DistributedError):
    """Rank 0 could not get the arena's memory; every rank raises it (they can fall back
    together)."""


def _round_up(n: int, k: int) -> int:
    return -(-n // k) * k


class Arena:
    """One mapped arena of the shm group `group` (a collective: every rank constructs it,
    in the same order).  Raises DistributedError on every rank when rank 0 cannot get
    the memory (/dev/shm full), so that callers can fall back together."""

    _made = 0  # arenas made by this process: the same count on every rank names the file

    def __init__(self, group, region_bytes: int, nlines: int) -> None:
        from . import ReduceOp, all_reduce
        from ..tensor import Tensor

        seg = group.seg
        self.seg, self.rank, self.world = seg, group.rank, group.world
        Arena._made += 1
        path = f"{seg.path}.arena{Arena._made}"
        self.region_bytes = _round_up(max(region_bytes, 1), 4096)
        self._ctl_words = _round_up(nlines * self.world * _LINE_WORDS * 8, 4096) // 8
        size = 4096 + 8 * self._ctl_words + self.world * self.region_bytes
        failed = np.zeros(1, np.int32)
        if self.rank == 0:
            try:
                self._create(path, size)
            except OSError as e:
                failed[0] = 1
                why = f"{type(e).__name__}: {e}"
        # every rank learns whether rank 0 made it (the peers must not wait for a file
        # that will never come)
        all_reduce(Tensor._make(failed), ReduceOp.MAX)
        if failed[0]:
            if self.rank == 0:
                _unlink(path)
            raise ArenaUnavailable(f"shared buckets: rank 0 could not make a {size} byte "
                                   f"arena in {os.path.dirname(path)}"
                                   + (f" ({why})" if self.rank == 0 else ""), rank=0)
        if self.rank != 0:
            self._open(path, size)
        seg.barrier()  # every rank has mapped it: the name can go
        if self.rank == 0:
            _unlink(path)

    def _create(self, path: str, size: int) -> None:
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # reserve the pages now: a tmpfs that runs out later kills with SIGBUS
            os.posix_fallocate(fd, 0, size)
            self._map(fd, size)
        except OSError:
            os.close(fd)
            _unlink(tmp)
            raise
        os.close(fd)
        self.ctl[1:3] = (os.getpid(), size)
        self.ctl[0] = MAGIC
        os.replace(tmp, path)

    def _open(self, path: str, size: int) -> None:
        seg = self.seg
        creator = int(seg.ctl[seg._rank_word(0, 0)])
        deadline, delay = time.monotonic() + seg.timeout, 0.0005
        while True:
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                fd = -1
            if fd >= 0:
                try:
                    head = np.frombuffer(os.pread(fd, 24, 0), np.int64)
                    if len(head) == 3 and tuple(int(v) for v in head) == (MAGIC, creator, size):
                        self._map(fd, size)
                        return
                finally:
                    os.close(fd)
            seg.check_peer(0, "shared buckets (arena)")
            if time.monotonic() > deadline:
                raise DistributedError(f"shared buckets: rank 0 did not make {path} within "
                                       f"the timeout ({seg.timeout:g} s)", rank=0)
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def _map(self, fd: int, size: int) -> None:
        self._mm = mmap.mmap(fd, size)
        self.ctl = np.frombuffer(self._mm, np.int64, count=512 + self._ctl_words)
        self._data = 4096 + 8 * self._ctl_words

    def region(self, rank: int, offset: int, dtype, count: int) -> np.ndarray:
        """`count` items of `dtype` at byte `offset` of rank `rank`'s region."""
        dtype = np.dtype(dtype)
        if offset + count * dtype.itemsize > self.region_bytes:
            raise ValueError("Arena.region: past the end of the region")
        return np.frombuffer(self._mm, dtype, count,
                             self._data + rank * self.region_bytes + offset)

    def word(self, line: int, rank: int, k: int) -> int:
        """Index in `ctl` of word k of control line `line` of rank `rank`."""
        return 512 + (line * self.world + rank) * _LINE_WORDS + k

    def post(self, line: int, k: int, value: int) -> None:
        """This rank's word k of `line` <- value (its single writer: an aligned store)."""
        self.ctl[self.word(line, self.rank, k)] = value

    def wait(self, line: int, rank: int, k: int, value: int, what: str) -> None:
        """Wait until rank `rank`'s word k of `line` reaches value (liveness checked)."""
        self.seg.wait_ge(self.word(line, rank, k), value, rank, what, ctl=self.ctl)

    def close(self) -> None:
        """Unmap (views still alive keep the mapping until they go)."""
        mm, self._mm = getattr(self, "_mm", None), None
        self.ctl = None
        if mm is not None:
            try:
                mm.close()
            except BufferError:
                pass
