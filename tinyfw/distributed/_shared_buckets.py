"""DDP's gradient buckets in shared memory (the shm backend): each rank averages its share
of a bucket by reading the other ranks' copies in place, then copies the averaged shares
straight into its ``.grad`` arrays.

The ring all-reduce moves every byte through message slots: for two ranks each rank
copies half the bucket into a slot, adds the half it receives, copies the sum into a slot
again and copies the other sum out, all on top of DDP's copy of the gradients into the
bucket and back.  Here the bucket lives in a region that every rank maps (_arena.py):
a rank copies into its region only the gradient elements that other ranks own, averages
its own share reading its gradients and the others' regions, writing the result into its
gradients and its region (for the others), and copies the others' averaged shares into
its gradients.  For two ranks that is as much memory traffic as DDP's two copies alone.

Per bucket and step t, in the communication thread, after the main thread has staged
the bucket (`stage`) during backward:

    ready[r] = t;  wait until every ready[q] >= t
    share r <- (share r of rank 0's gradients + ... of rank n-1's) / n
    done[r] = t;   for every other share s: wait done[s] >= t, copy it from region s
    read[r] = t    (this rank reads no region of step t any more)

and no rank writes its region for step t + 1 before every read[q] >= t.  The terms are
added in rank order whoever owns the share, so the result is the same bits on every rank
and for every assignment of shares.  A gradient that is not a C-contiguous float array of
the bucket's dtype (a view, None, an unused parameter's zeros) is copied into the region
whole and its average goes to a new array.
"""
from __future__ import annotations

import numpy as np

from ..backend import cpu as _K
from ._arena import Arena
from ._kernels import sum_into

READY, DONE, READ = 0, 1, 2


class SharedBuckets:
    """The regions, shares and protocol of one reducer's buckets (see module doc)."""

    def __init__(self, group, buckets: list) -> None:
        self.rank, self.world = group.rank, group.world
        offsets, off = [], 0
        for b in buckets:
            offsets.append(off)
            off += -(-b.flat.nbytes // 64) * 64  # each bucket on its own cache lines
        self.arena = Arena(group, off, len(buckets))
        n = self.world
        for b, boff in zip(buckets, offsets):
            size, dt = b.flat.size, b.flat.dtype
            b.regions = [self.arena.region(q, boff, dt, size) for q in range(n)]
            b.flat = b.regions[self.rank]  # the copy in writes this rank's region
            b.cuts = [size * s // n for s in range(n + 1)]
            b.pieces = [_pieces(b, b.cuts[s], b.cuts[s + 1]) for s in range(n)]
            # per parameter: its pieces in the shares other ranks own (staged at backward)
            b.foreign = [[] for _ in b.params]
            for s in range(n):
                if s != self.rank:
                    for k, plo, phi, blo in b.pieces[s]:
                        b.foreign[k].append((plo, phi, blo))
        self.step = 0

    def begin_step(self, buckets: list) -> None:
        """A new step: wait until no rank reads any region of the last one."""
        for b in buckets:
            for q in range(self.world):
                if q != self.rank:
                    self.arena.wait(b.index, q, READ, self.step, "DDP (shared buckets)")
        self.step += 1

    def stage(self, b, k: int, grad) -> None:
        """Parameter k of bucket b has its gradient `grad` (an array; None: zeros): put
        what the other ranks need into this rank's region, and choose where the average
        goes (b.dest[k]) and where this rank's own share is read from (b.src[k])."""
        view = b.view(k)
        if grad is None:
            view[...] = 0
        d = private_grad(grad, b.flat.dtype)
        if d is None:
            if grad is not None:
                _K.copy_(view, grad)
            b.src[k], b.dest[k] = None, np.empty(view.shape, b.flat.dtype)
            return
        flat = d.reshape(-1)
        for plo, phi, blo in b.foreign[k]:
            _K.copy_(b.flat[blo:blo + phi - plo], flat[plo:phi])
        b.src[k] = b.dest[k] = d

    def exchange(self, b) -> None:
        """Average bucket b over the ranks into b.dest (see module doc).  Runs in the
        communication thread once every parameter of b is staged."""
        A, me, n, t = self.arena, self.rank, self.world, self.step
        what = f"DDP all-reduce of bucket {b.index}"
        A.post(b.index, READY, t)
        for q in range(n):
            if q != me:
                A.wait(b.index, q, READY, t, what)
        mine = b.regions[me]
        for k, plo, phi, blo in b.pieces[me]:
            span = slice(blo, blo + phi - plo)
            own = mine[span] if b.src[k] is None else b.src[k].reshape(-1)[plo:phi]
            ins = [own if q == me else b.regions[q][span] for q in range(n)]
            sum_into([mine[span], b.dest[k].reshape(-1)[plo:phi]], ins, float(n))
        A.post(b.index, DONE, t)
        for s in range(n):
            if s == me:
                continue
            A.wait(b.index, s, DONE, t, what)
            src = b.regions[s]
            for k, plo, phi, blo in b.pieces[s]:
                _K.copy_(b.dest[k].reshape(-1)[plo:phi], src[blo:blo + phi - plo])
        A.post(b.index, READ, t)


def _pieces(b, lo: int, hi: int) -> list:
    """(parameter k, its first and last+1 element, the bucket element of the first) for
    every parameter of bucket b that meets the bucket's elements [lo, hi)."""
    out = []
    for k, (_, p) in enumerate(b.params):
        p0, p1 = b.offsets[k], b.offsets[k] + p._data.size
        a, z = max(lo, p0), min(hi, p1)
        if a < z:
            out.append((k, a - p0, z - p0, a))
    return out


def private_grad(d, dtype) -> np.ndarray | None:
    """The gradient array d when the average can be written into it in place and read
    from it (C-contiguous, writeable, numpy, of the bucket's dtype), else None."""
    if isinstance(d, np.ndarray) and d.dtype == dtype and d.flags.c_contiguous and \
            d.flags.writeable:
        return d
    return None
