"""Lab 9: data parallelism — the ring all-reduce, and DDP's gradient buckets.

Every rank holds its own gradients; all-reduce leaves each rank with their sum.  The ring
algorithm splits the vector into `world` chunks and passes chunks around the ring of
ranks: a reduce-scatter (world - 1 steps, after which rank r owns the full sum of one
chunk) then an all-gather (world - 1 steps, passing the summed chunks on).  Each rank
sends 2 (world - 1) / world of the vector in all, whatever the number of ranks — the
bandwidth-optimal amount.
"""
from __future__ import annotations

import numpy as np


def chunk_bounds(n: int, world: int) -> list:
    """The [start, stop) of each of `world` chunks of a length-n vector (given: the first
    n % world chunks are one longer, as numpy.array_split)."""
    base, extra = divmod(n, world)
    out, start = [], 0
    for c in range(world):
        stop = start + base + (1 if c < extra else 0)
        out.append((start, stop))
        start = stop
    return out


def ring_allreduce(rank: int, world: int, data: np.ndarray, send, recv) -> np.ndarray:
    """TASK 9.1 — the sum over ranks of `data` (1-d), by the ring: at each step send one
    chunk to rank + 1 with send(dst, array) (it does not block) and receive one from
    rank - 1 with recv(src) -> array.  Reduce-scatter step s sends chunk (rank - s) % world
    and adds the received chunk (rank - s - 1) % world; all-gather step s sends chunk
    (rank + 1 - s) % world and stores the received chunk (rank - s) % world."""
    out = np.array(data, dtype=np.float64, copy=True)
    if world == 1:
        return out
    bounds = chunk_bounds(out.size, world)
    right, left = (rank + 1) % world, (rank - 1) % world
    for s in range(world - 1):
        a, b = bounds[(rank - s) % world]
        send(right, out[a:b].copy())
        a, b = bounds[(rank - s - 1) % world]
        out[a:b] += recv(left)
    for s in range(world - 1):
        a, b = bounds[(rank + 1 - s) % world]
        send(right, out[a:b].copy())
        a, b = bounds[(rank - s) % world]
        out[a:b] = recv(left)
    return out


def allreduce_tensor(t) -> None:
    """TASK 9.2 — sum tensor `t` (float64, any shape) over the ranks of tinyfw.distributed,
    in place, with your ring_allreduce over dist.send / dist.recv (send asynchronously:
    every rank sends before it receives)."""
    import tinyfw
    import tinyfw.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    pending = []

    def send(dst, arr):
        pending.append(dist.send(tinyfw.tensor(arr), dst, async_op=True))

    def recv(src):
        size = recv.sizes.pop(0)
        buf = tinyfw.zeros(size, dtype=tinyfw.float64)
        dist.recv(buf, src)
        return buf.numpy()

    flat = t.detach().numpy().reshape(-1)
    bounds = chunk_bounds(flat.size, world)
    # the chunk sizes this rank receives, in order (the same schedule as ring_allreduce)
    recv.sizes = [bounds[(rank - s - 1) % world][1] - bounds[(rank - s - 1) % world][0]
                  for s in range(world - 1)]
    recv.sizes += [bounds[(rank - s) % world][1] - bounds[(rank - s) % world][0]
                   for s in range(world - 1)]
    total = ring_allreduce(rank, world, flat, send, recv)
    for work in pending:
        work.wait()
    with tinyfw.no_grad():
        t.copy_(tinyfw.tensor(total.reshape(t.shape), dtype=t.dtype))


def make_buckets(sizes_bytes: list, cap_bytes: int) -> list:
    """TASK 9.3 — group parameters into buckets for all-reduce, in the order their
    gradients become ready (the reverse of `sizes_bytes`' order): fill a bucket with
    parameters while its total stays <= cap_bytes; a parameter larger than the cap gets a
    bucket of its own.  Returns lists of parameter indices."""
    buckets, current, used = [], [], 0
    for i in reversed(range(len(sizes_bytes))):
        size = sizes_bytes[i]
        if current and used + size > cap_bytes:
            buckets.append(current)
            current, used = [], 0
        current.append(i)
        used += size
    if current:
        buckets.append(current)
    return buckets


class BucketedReducer:
    """Averages the gradients of `params` over the ranks during backward: when every
    gradient of a bucket has been accumulated, the bucket is flattened, all-reduced with
    `allreduce(flat) -> summed flat`, divided by `world`, and copied back."""

    def __init__(self, params: list, world: int, allreduce, cap_bytes: int = 1 << 20):
        """TASK 9.4 — build the buckets (make_buckets over the parameters' byte sizes) and
        register a post-accumulate-grad hook on every parameter."""
        self.params, self.world, self.allreduce = list(params), world, allreduce
        sizes = [p.numel() * p.element_size() for p in self.params]
        self.buckets = make_buckets(sizes, cap_bytes)
        self.bucket_of = {i: b for b, members in enumerate(self.buckets) for i in members}
        self.ready = [set() for _ in self.buckets]
        for i, p in enumerate(self.params):
            p.register_post_accumulate_grad_hook(lambda p, i=i: self._grad_ready(i))

    def _grad_ready(self, i: int) -> None:
        """TASK 9.4 — mark parameter i ready; once its whole bucket is, reduce it."""
        b = self.bucket_of[i]
        self.ready[b].add(i)
        if len(self.ready[b]) == len(self.buckets[b]):
            self._reduce(b)
            self.ready[b] = set()

    def _reduce(self, b: int) -> None:
        """TASK 9.4 — flatten the bucket's gradients, all-reduce, divide by world, copy
        back into each .grad."""
        import tinyfw

        members = [self.params[i] for i in self.buckets[b]]
        flat = np.concatenate([p.grad.detach().numpy().reshape(-1) for p in members])
        total = np.asarray(self.allreduce(flat)) / self.world
        start = 0
        with tinyfw.no_grad():
            for p in members:
                n = p.numel()
                p.grad.copy_(tinyfw.tensor(total[start:start + n].reshape(tuple(p.shape)),
                                           dtype=p.grad.dtype))
                start += n
