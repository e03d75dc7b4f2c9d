"""The gradient reducer behind DistributedDataParallel: buckets, autograd hooks, overlap.

Parameters are grouped into buckets (in reverse registration order, roughly the order
backward produces their gradients; the first bucket is at most 1 MiB so communication
starts early, the others up to `bucket_cap_mb`).  Each bucket owns one flat buffer.

- At forward, the graph is walked from the outputs to count the edges that reach each
  parameter: a parameter used twice gets two gradients, and its gradient is complete after
  the second.  Parameters with no edge are unused in this step.
- During backward, a post-accumulate-grad hook counts each parameter down; when it hits
  zero the accumulated ``.grad`` (with any earlier no_sync steps) is copied into the
  bucket, and a bucket whose parameters are all in is handed to the communication thread
  as an asynchronous all_reduce (AVG), while backward goes on computing.  Buckets start in
  bucket order, the same on every rank, whatever order the hooks fire in.
- At the end of backward (an engine callback) the remaining buckets start, all are
  waited for, and the averaged gradients are written back into ``.grad``.

With ``compression="bf16"`` float32 gradients travel and are averaged as bfloat16 (half
the bytes; the sum is computed in float32 and rounded at each ring step).

On the shm backend the buckets live in memory that every rank maps, and a bucket is
averaged there as soon as it is complete, by the thread running backward, the result
going straight into ``.grad`` (_shared_buckets.py).  The ring all-reduce of a private
bucket on the communication thread remains for MPI, bf16 compression,
gradient_as_bucket_view, when /dev/shm has no room, and with TINYFW_DDP_SHARED=0.
"""
from __future__ import annotations

import os
import time
import warnings

import numpy as np

from ..autograd.engine import queue_callback
from ..backend import cpu as _K
from ..autograd.function import Function
from ..dtypes import bfloat16 as _bf16
from . import ReduceOp, _group, all_reduce, broadcast
from ._arena import ArenaUnavailable
from ._shared_buckets import SharedBuckets

_FIRST_BUCKET = 1 << 20


class _Exchanged:
    """A shared-bucket exchange run at once, with its times (a completed Work's face)."""

    def __init__(self, run) -> None:
        self.start_time = time.perf_counter()
        run()
        self.end_time = time.perf_counter()

    def wait(self) -> bool:
        return True


def _tensor(a: np.ndarray):
    from ..tensor import Tensor

    return Tensor._make(a)


def broadcast_coalesced(tensors: list, src: int = 0) -> None:
    """Broadcast tensors from `src` in one message per dtype (a flat staging buffer)."""
    by_dtype: dict = {}
    for t in tensors:
        by_dtype.setdefault(t._data.dtype, []).append(t)
    for dtype, ts in by_dtype.items():
        flat = np.empty(sum(t._data.size for t in ts), dtype)
        off = 0
        for t in ts:
            _K.copy_(flat[off:off + t._data.size].reshape(t._data.shape), t._data)
            off += t._data.size
        broadcast(_tensor(flat), src)
        off = 0
        for t in ts:
            _K.copy_(t._data, flat[off:off + t._data.size].reshape(t._data.shape))
            t._version[0] += 1
            off += t._data.size


class _Bucket:
    def __init__(self, index: int, params: list, dtype) -> None:
        self.index, self.params = index, params
        self.offsets, off = [], 0
        for _, p in params:
            self.offsets.append(off)
            off += p._data.size
        self.flat = np.zeros(off, dtype)
        self.pending = 0
        self.work = None

    def view(self, k: int) -> np.ndarray:
        p = self.params[k][1]
        return self.flat[self.offsets[k]:self.offsets[k] + p._data.size].reshape(p._data.shape)


class Reducer:
    """Averages the gradients of `params` over the default group's ranks (see module doc)."""

    def __init__(self, params: list, bucket_cap_mb: float, find_unused_parameters: bool,
                 gradient_as_bucket_view: bool, compression: str | None) -> None:
        if compression not in (None, "bf16"):
            raise ValueError(f"DistributedDataParallel: compression must be None or 'bf16', "
                             f"got {compression!r}")
        self.find_unused = find_unused_parameters
        self.as_view = gradient_as_bucket_view and compression is None
        self.params = params  # [(name, Parameter)] requiring grad
        self.index = {id(p): i for i, (_, p) in enumerate(params)}
        self.buckets: list = []
        self.where: list = [None] * len(params)  # param index -> (bucket, position)
        cap, first = bucket_cap_mb * (1 << 20), True
        current, size, cur_dtype = [], 0, None
        for i in reversed(range(len(params))):
            p = params[i][1]
            dt = p._data.dtype
            if compression == "bf16" and dt == np.float32:
                dt = np.dtype(_bf16.np)
            limit = min(cap, _FIRST_BUCKET) if first else cap
            if current and (dt != cur_dtype or size >= limit):
                self._add_bucket(current, cur_dtype)
                current, size, first = [], 0, False
            current.append(i)
            size += p._data.size * dt.itemsize
            cur_dtype = dt
        if current:
            self._add_bucket(current, cur_dtype)
        self.shared = None
        if self._can_share(compression):
            try:
                self.shared = SharedBuckets(_group(), self.buckets)
            except ArenaUnavailable as e:  # every rank gets it: all fall back together
                warnings.warn(f"DistributedDataParallel: {e}; averaging through the ring "
                              "instead", RuntimeWarning, stacklevel=3)
        self.handles = [p.register_post_accumulate_grad_hook(self._hook(i))
                        for i, (_, p) in enumerate(params)]
        self.armed = False
        self.remaining = [0] * len(params)
        self.unused_globally: set = set()

    def _can_share(self, compression) -> bool:
        g = _group()
        return (g.backend == "shm" and g.world > 1 and compression is None and
                not self.as_view and os.environ.get("TINYFW_DDP_SHARED", "1") != "0")

    def _add_bucket(self, indices: list, dtype) -> None:
        b = _Bucket(len(self.buckets), [self.params[i] for i in indices], dtype)
        for k, i in enumerate(indices):
            self.where[i] = (b, k)
        self.buckets.append(b)

    # -- forward: what will backward deliver? ------------------------------------------
    def prepare(self, outputs: list) -> None:
        """Arm the reducer for the backward of `outputs` (this forward's tensors)."""
        counts = [0] * len(self.params)
        seen, stack = set(), [t.grad_fn for t in outputs if t.grad_fn is not None]
        if not stack:
            self.armed = False  # nothing to differentiate (eval, no_grad)
            return
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            for nxt in node.next:
                if nxt is None:
                    continue
                if isinstance(nxt, Function):
                    stack.append(nxt)
                else:
                    i = self.index.get(id(nxt))
                    if i is not None:
                        counts[i] += 1
        unused = [i for i, c in enumerate(counts) if c == 0]
        if unused and not self.find_unused:
            names = [self.params[i][0] for i in unused]
            raise RuntimeError(f"DistributedDataParallel: parameters {names} were not used to "
                               "compute the output of this forward, so their gradients would "
                               "never arrive; pass find_unused_parameters=True")
        self.unused_globally = set()
        if self.find_unused:
            # which parameters no rank used: their .grad stays as it is (None), as in one
            # process; those some rank used are averaged with zeros from the others
            used = np.array([c > 0 for c in counts], np.int32)
            all_reduce(_tensor(used), ReduceOp.MAX)
            self.unused_globally = {i for i in range(len(counts)) if not used[i]}
        self.remaining = counts
        if self.shared is not None:
            self.shared.begin_step(self.buckets)  # before anything is written to a region
        for b in self.buckets:
            b.pending, b.work = len(b.params), None
            b.src, b.dest = [None] * len(b.params), [None] * len(b.params)
        self.next_launch, self.finalizing, self.armed = 0, False, True
        for i in unused:
            self._ready(i)

    # -- backward ----------------------------------------------------------------------
    def _hook(self, i: int):
        def hook(p) -> None:
            if not self.armed:
                return
            if not self.finalizing:
                self.finalizing = True
                queue_callback(self._finish)
            self.remaining[i] -= 1
            if self.remaining[i] == 0:
                self._ready(i)
        return hook

    def _ready(self, i: int) -> None:
        b, k = self.where[i]
        g = self.params[i][1]._grad
        unused = g is None or i in self.unused_globally
        if self.shared is not None:
            self.shared.stage(b, k, None if unused else g._data)
        elif unused:
            b.view(k)[...] = 0
        else:
            _K.copy_(b.view(k), g._data)
        b.pending -= 1
        while self.next_launch < len(self.buckets) and \
                self.buckets[self.next_launch].pending == 0:
            nb = self.buckets[self.next_launch]
            nb.queued = time.perf_counter()  # for traces
            if self.shared is None:
                nb.work = all_reduce(_tensor(nb.flat), ReduceOp.AVG, async_op=True)
            else:
                # in this thread, now: a Python communication thread waits for the GIL
                # while backward holds it, and with one core per rank its work only
                # competes with backward's (measured slower than exchanging here)
                nb.work = _Exchanged(lambda nb=nb: self.shared.exchange(nb))
            self.next_launch += 1

    def _finish(self) -> None:
        self.backward_end = time.perf_counter()  # for traces: buckets' Work times vs this
        self.armed = False
        for i, left in enumerate(self.remaining):
            if left > 0:  # an edge that delivered no gradient (None): the grad is complete
                self.remaining[i] = 0
                self._ready(i)
        for b in self.buckets:
            b.work.wait()
            for k, (_, p) in enumerate(b.params):
                if self.index[id(p)] in self.unused_globally:
                    continue
                if self.shared is not None:  # the average is in b.dest[k] already
                    if p._grad is None or p._grad._data is not b.dest[k]:
                        p._grad = _tensor(b.dest[k])
                    continue
                red = b.view(k)
                if self.as_view:
                    p._grad = _tensor(red)
                elif p._grad is None or red.dtype != p._data.dtype:
                    out = np.empty(p._data.shape, p._data.dtype)
                    _K.copy_(out, red)
                    p._grad = _tensor(out)
                else:
                    _K.copy_(p._grad._data, red)

    def remove(self) -> None:
        """Unregister the hooks."""
        for h in self.handles:
            h.remove()

