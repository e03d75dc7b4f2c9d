"""Lab 9: data parallelism — the ring all-reduce, and DDP's gradient buckets.

Every rank holds its own gradients; all-reduce leaves each rank with their sum.  The ring
algorithm splits the vector into `world` chunks and passes chunks around the ring of
ranks: a reduce-scatter (world - 1 steps, after which rank r owns the full sum of one
chunk) then an all-gather (world - 1 steps, passing the summed chunks on).  Each rank
sends 2 (world - 1) / world of the vector in all, whatever the number of ranks — the
bandwidth-optimal amount.

Your work: every function below that raises NotImplementedError("TODO ...") (README.md
lists the tasks).  Grade it with: python -m tinyfw.labs grade 9 --src <this folder>
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
    raise NotImplementedError("TODO 9.1: ring_allreduce")


def allreduce_tensor(t) -> None:
    """TASK 9.2 — sum tensor `t` (float64, any shape) over the ranks of tinyfw.distributed,
    in place, with your ring_allreduce over dist.send / dist.recv (send asynchronously:
    every rank sends before it receives)."""
    raise NotImplementedError("TODO 9.2: allreduce_tensor")


def make_buckets(sizes_bytes: list, cap_bytes: int) -> list:
    """TASK 9.3 — group parameters into buckets for all-reduce, in the order their
    gradients become ready (the reverse of `sizes_bytes`' order): fill a bucket with
    parameters while its total stays <= cap_bytes; a parameter larger than the cap gets a
    bucket of its own.  Returns lists of parameter indices."""
    raise NotImplementedError("TODO 9.3: make_buckets")


class BucketedReducer:
    """Averages the gradients of `params` over the ranks during backward: when every
    gradient of a bucket has been accumulated, the bucket is flattened, all-reduced with
    `allreduce(flat) -> summed flat`, divided by `world`, and copied back."""

    def __init__(self, params: list, world: int, allreduce, cap_bytes: int = 1 << 20):
        """TASK 9.4 — build the buckets (make_buckets over the parameters' byte sizes) and
        register a post-accumulate-grad hook on every parameter."""
        raise NotImplementedError("TODO 9.4: __init__")

    def _grad_ready(self, i: int) -> None:
        """TASK 9.4 — mark parameter i ready; once its whole bucket is, reduce it."""
        raise NotImplementedError("TODO 9.4: _grad_ready")

    def _reduce(self, b: int) -> None:
        """TASK 9.4 — flatten the bucket's gradients, all-reduce, divide by world, copy
        back into each .grad."""
        raise NotImplementedError("TODO 9.4: _reduce")
