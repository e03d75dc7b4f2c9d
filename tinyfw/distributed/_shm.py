"""The shm backend: collectives between processes of one machine over a shared segment.

All-reduce is the bandwidth-optimal ring: a reduce-scatter (n - 1 steps, each rank adds
the chunk its left neighbour sends to its own and passes the sum on) then an all-gather
(n - 1 steps, the reduced chunks travel once round the ring), so each rank moves
2 (n - 1) / n of the buffer whatever n is.  The buffer is cut into blocks of n slots; each
block runs the whole ring, and a rank goes on to the next block while its neighbour still
works on this one (the pipes hold `nslots` messages), which pipelines the steps.

The reduction is the C++ kernels of the cpu backend, with the GIL released: a floating
sum or average is `sum_into` (one pass; float16/bfloat16 computed in float32 and rounded
once per step; an average divides at the last step, in the same pass); integer sums and
max/min use `add`/`maximum`/`minimum` and a copy back; every copy into or out of a slot
is `copy_`.  The sum of each segment is accumulated in one fixed ring order and then copied
to everyone, so every rank ends with the same bits.
"""
from __future__ import annotations

import numpy as np

from ..backend import cpu as _K
from ._kernels import FLOATS, sum_into
from ._segment import DistributedError, Segment

ALL_REDUCE, BROADCAST, ALL_GATHER, REDUCE_SCATTER, P2P = 1, 2, 3, 4, 5
_NAMES = {ALL_REDUCE: "all_reduce", BROADCAST: "broadcast", ALL_GATHER: "all_gather",
          REDUCE_SCATTER: "reduce_scatter", P2P: "send/recv"}
_REDUCE = {"sum": _K.add, "avg": _K.add, "max": _K.maximum, "min": _K.minimum}


def _fused(op: str, dtype) -> bool:
    """Whether op on dtype is one `sum_into` pass (floating sums and averages)."""
    return op in ("sum", "avg") and dtype in FLOATS


def _accumulate(out: np.ndarray, mine: np.ndarray, inc: np.ndarray, op: str,
                divisor: float = 1.0) -> None:
    """out <- op(mine, inc), divided by `divisor` for an average (out may be mine), by the
    C++ kernels: one pass for floating sums and averages."""
    if _fused(op, mine.dtype):
        sum_into([out], [mine, inc], divisor)
    elif divisor != 1.0:  # all_reduce refuses AVG of integers before it gets here
        raise TypeError(f"all_reduce: cannot average {mine.dtype.name} values")
    else:
        _K.copy_(out, _REDUCE[op](mine, inc))


class ShmGroup:
    """A process group whose ranks share one machine's memory."""

    backend = "shm"

    def __init__(self, rank: int, world: int, path: str, timeout: float, nslots: int,
                 slot_bytes: int, heartbeat_limit: float) -> None:
        self.rank, self.world = rank, world
        self.seg = Segment(path, rank, world, nslots, slot_bytes, timeout, heartbeat_limit)
        self._sent = [0] * world
        self._got = [0] * world

    def close(self) -> None:
        """Leave the group (peers still waiting for this rank raise)."""
        self.seg.close()

    def barrier(self) -> None:
        """Wait until every rank has called barrier as many times as this one."""
        self.seg.barrier()

    # -- messages -----------------------------------------------------------------------
    def _send(self, dst: int, chunk: np.ndarray, kind: int, seq: int, fill=None) -> None:
        """Send `chunk` to `dst`; with `fill`, the message is written by fill(slot) instead
        of copied from chunk (which then only gives its dtype and size)."""
        k = self._sent[dst]
        self.seg.reserve(dst, k, _NAMES[kind])
        if chunk.size:
            slot = self.seg.slot(self.rank, dst, k, chunk.dtype, chunk.size)
            if fill is None:
                _K.copy_(slot, chunk)
            else:
                fill(slot)
        self.seg.publish(dst, k, kind, seq, chunk.nbytes)
        self._sent[dst] = k + 1

    def _recv(self, src: int, dtype, count: int, kind: int, seq: int) -> np.ndarray:
        """Message from `src`, as a view of its slot; call _release(src) when read."""
        k = self._got[src]
        got = self.seg.arrive(src, k, _NAMES[kind])
        want = (kind, seq, count * np.dtype(dtype).itemsize)
        if got != want:
            raise DistributedError(
                f"{_NAMES[kind]}: rank {src} sent a message for {_NAMES.get(got[0], got[0])} "
                f"#{got[1]} of {got[2]} bytes, rank {self.rank} expected {_NAMES[kind]} "
                f"#{seq} of {want[2]} bytes: the ranks called different collectives or "
                "passed tensors of different sizes", rank=src)
        return self.seg.slot(src, self.rank, k, dtype, count)

    def _release(self, src: int) -> None:
        self.seg.consume(src, self._got[src])
        self._got[src] += 1

    # -- the ring -----------------------------------------------------------------------
    def _reduce_scatter_ring(self, segs: list, op: str, owned: int, dst, gather: bool,
                             kind: int, seq: int) -> None:
        """Reduce segs[j] over the ranks into `dst` where j = `owned` (dst None: into
        segs[owned]); with `gather` the reduced segment is also sent on, starting the
        all-gather.  The segments are scratch: partial sums are written into them."""
        n, r = self.world, self.rank
        right, left = (r + 1) % n, (r - 1) % n
        # step s receives segment owned - 2 - s (the last one: `owned`), so the first
        # send is the segment the right neighbour receives first: its owned - 2 = owned - 1
        self._send(right, segs[(owned - 1) % n], kind, seq)
        for s in range(n - 1):
            j = (owned - 2 - s) % n
            mine = segs[j]
            inc = self._recv(left, mine.dtype, mine.size, kind, seq)
            last = s == n - 2
            # the partial sum lands in segs[j]; the last one (averaged) in dst when given
            out = dst if last and dst is not None else mine
            divisor = float(n) if last and op == "avg" else 1.0
            if (not last or gather) and _fused(op, mine.dtype) and self.seg.nslots > 1:
                # the sum written into the message slot in the same pass as into `out`
                # (copying `out` into the slot afterwards read it all again).  The slot is
                # reserved before `inc` is released: with one slot per pipe two ranks
                # would each wait for the other's release, with two or more the slot
                # waited for is one the neighbour has already released.
                self._send(right, out, kind, seq,
                           fill=lambda slot: sum_into([out, slot], [mine, inc], divisor))
                self._release(left)
                continue
            if mine.size:
                _accumulate(out, mine, inc, op, divisor)
            self._release(left)
            if not last or gather:
                self._send(right, out, kind, seq)

    def _all_gather_ring(self, segs: list, owned: int, kind: int, seq: int,
                         start: bool) -> None:
        """Every rank's segs[j] reaches every rank, rank r holding segs[owned(r)] where
        owned(r) = (r + c) % n; with `start` this rank first sends its own segment."""
        n, r = self.world, self.rank
        right, left = (r + 1) % n, (r - 1) % n
        if start:
            self._send(right, segs[owned], kind, seq)
        for s in range(n - 1):
            j = (owned - 1 - s) % n
            inc = self._recv(left, segs[j].dtype, segs[j].size, kind, seq)
            if inc.size:
                _K.copy_(segs[j], inc)
            # released before passing it on (sent from the copy): a ring of ranks that each
            # hold their message while waiting for a free slot deadlocked with one slot
            self._release(left)
            if s < n - 2:
                self._send(right, segs[j], kind, seq)

    def _chunk(self, itemsize: int) -> int:
        return max(1, self.seg.slot_bytes // itemsize)

    # -- collectives on flat, contiguous numpy arrays -----------------------------------
    def all_reduce(self, a: np.ndarray, op: str, seq: int) -> None:
        """a <- op over the ranks of a (in place)."""
        n, r = self.world, self.rank
        if n == 1:
            return
        block = n * self._chunk(a.itemsize)
        for b0 in range(0, a.size, block):
            blen = min(block, a.size - b0)
            cut = [b0 + blen * i // n for i in range(n + 1)]
            segs = [a[cut[i]:cut[i + 1]] for i in range(n)]
            # rank r ends the reduce-scatter owning segment r + 1, then the all-gather
            self._reduce_scatter_ring(segs, op, (r + 1) % n, None, True, ALL_REDUCE, seq)
            self._all_gather_ring(segs, (r + 1) % n, ALL_REDUCE, seq, start=False)

    def reduce_scatter(self, out: np.ndarray, inp: np.ndarray, op: str, seq: int) -> None:
        """out <- op over the ranks of segment `rank` of inp (n equal segments)."""
        n, m = self.world, out.size
        if n == 1:
            _K.copy_(out, inp)
            return
        c = self._chunk(out.itemsize)
        for c0 in range(0, m, c):
            c1 = min(c0 + c, m)
            segs = [inp[i * m + c0:i * m + c1] for i in range(n)]
            self._reduce_scatter_ring(segs, op, self.rank, out[c0:c1], False,
                                      REDUCE_SCATTER, seq)

    def all_gather(self, out: np.ndarray, inp: np.ndarray, seq: int) -> None:
        """Segment i of out <- inp of rank i."""
        n, m = self.world, inp.size
        if m:
            _K.copy_(out[self.rank * m:(self.rank + 1) * m], inp)
        if n == 1:
            return
        c = self._chunk(out.itemsize)
        for c0 in range(0, max(m, 1), c):
            c1 = min(c0 + c, m)
            segs = [out[i * m + c0:i * m + c1] for i in range(n)]
            self._all_gather_ring(segs, self.rank, ALL_GATHER, seq, start=True)

    def broadcast(self, a: np.ndarray, src: int, seq: int) -> None:
        """a <- a of rank `src`: a pipelined chain src -> src + 1 -> ... round the ring."""
        n, r = self.world, self.rank
        if n == 1:
            return
        pos = (r - src) % n
        right, left = (r + 1) % n, (r - 1) % n
        c = self._chunk(a.itemsize)
        for c0 in range(0, max(a.size, 1), c):
            chunk = a[c0:c0 + c]
            if pos == 0:
                self._send(right, chunk, BROADCAST, seq)
                continue
            inc = self._recv(left, a.dtype, chunk.size, BROADCAST, seq)
            if chunk.size:
                _K.copy_(chunk, inc)
            if pos < n - 1:
                self._send(right, inc, BROADCAST, seq)
            self._release(left)

    def send(self, a: np.ndarray, dst: int, tag: int) -> None:
        """Send a to rank dst (matched by a recv there with the same tag)."""
        c = self._chunk(a.itemsize)
        for c0 in range(0, max(a.size, 1), c):
            self._send(dst, a[c0:c0 + c], P2P, tag)

    def recv(self, a: np.ndarray, src: int, tag: int) -> None:
        """a <- what rank src sends with the same tag."""
        c = self._chunk(a.itemsize)
        for c0 in range(0, max(a.size, 1), c):
            chunk = a[c0:c0 + c]
            inc = self._recv(src, a.dtype, chunk.size, P2P, tag)
            if chunk.size:
                _K.copy_(chunk, inc)
            self._release(src)
