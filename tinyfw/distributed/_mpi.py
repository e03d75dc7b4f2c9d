"""The mpi backend: collectives through mpi4py (any MPI; the PyPI ``mpich`` wheel here),
for processes on many machines started by ``mpiexec``.

Every collective is MPI's nonblocking form (Iallreduce, Ibcast, ...) polled with a
deadline, so a peer that never arrives raises a DistributedError after the group's
timeout instead of hanging (MPI cannot say which rank is missing; MPICH's launcher also
kills the whole job when one process dies).  MPI has no standard float16/bfloat16
type: those are reduced in float32 and rounded once at the end (more accurate than the
shm ring, which rounds after each step).
"""
from __future__ import annotations

import time

import numpy as np

from ..backend import cpu as _K
from ._segment import DistributedError

_HALF = ("float16", "bfloat16")


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError("init_process_group(backend='mpi') needs mpi4py and an MPI "
                           "library: pip install mpi4py mpich") from e
    return MPI


class MpiGroup:
    """A process group over MPI_COMM_WORLD."""

    backend = "mpi"

    def __init__(self, timeout: float) -> None:
        MPI = _mpi()
        self.MPI, self.comm, self.timeout = MPI, MPI.COMM_WORLD, timeout
        self.rank, self.world = self.comm.Get_rank(), self.comm.Get_size()
        self._ops = {"sum": MPI.SUM, "avg": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    def close(self) -> None:
        """Nothing to release: MPI_Finalize runs at exit (mpi4py's atexit)."""

    def _wait(self, req, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.0
        while not req.Test():
            if time.monotonic() > deadline:
                raise DistributedError(f"{what}: timed out after {self.timeout:g} s (mpi "
                                       f"backend, rank {self.rank} of {self.world}: a peer "
                                       "did not take part; MPI does not say which)")
            time.sleep(delay)
            delay = min(delay * 2 or 0.00002, 0.0005)

    def barrier(self) -> None:
        """Wait until every rank has called barrier."""
        self._wait(self.comm.Ibarrier(), "barrier")

    def all_reduce(self, a: np.ndarray, op: str, seq: int) -> None:
        """a <- op over the ranks of a (in place)."""
        work = a.astype(np.float32) if a.dtype.name in _HALF else a
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, work, self._ops[op]), "all_reduce")
        if op == "avg":
            work = _K.div(work, np.array(self.world, work.dtype))
        if work is not a:
            _K.copy_(a, work)

    def reduce_scatter(self, out: np.ndarray, inp: np.ndarray, op: str, seq: int) -> None:
        """out <- op over the ranks of segment `rank` of inp."""
        half = out.dtype.name in _HALF
        src = inp.astype(np.float32) if half else inp
        dst = np.empty(out.shape, np.float32) if half else out
        self._wait(self.comm.Ireduce_scatter_block(src, dst, self._ops[op]), "reduce_scatter")
        if op == "avg":
            dst = _K.div(dst, np.array(self.world, dst.dtype))
        if dst is not out:
            _K.copy_(out, dst)

    # data movement needs no arithmetic: half types travel as their raw 16-bit patterns
    @staticmethod
    def _raw(a: np.ndarray) -> np.ndarray:
        return a.view(np.uint16) if a.dtype.name in _HALF else a.view(np.uint8) \
            if a.dtype == np.bool_ else a

    def all_gather(self, out: np.ndarray, inp: np.ndarray, seq: int) -> None:
        """Segment i of out <- inp of rank i."""
        self._wait(self.comm.Iallgather(self._raw(inp), self._raw(out)), "all_gather")

    def broadcast(self, a: np.ndarray, src: int, seq: int) -> None:
        """a <- a of rank src."""
        self._wait(self.comm.Ibcast(self._raw(a), root=src), "broadcast")

    def send(self, a: np.ndarray, dst: int, tag: int) -> None:
        """Send a to rank dst."""
        self._wait(self.comm.Isend(self._raw(a), dest=dst, tag=tag), "send")

    def recv(self, a: np.ndarray, src: int, tag: int) -> None:
        """a <- what rank src sends with this tag."""
        self._wait(self.comm.Irecv(self._raw(a), source=src, tag=tag), "recv")
