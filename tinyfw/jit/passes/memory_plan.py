"""Memory planning: liveness of intermediate buffers, an arena for fused kernels' outputs.

Every intermediate is freed right after its last use (the executor deletes it); buffers
written by our own fused kernels that never leave the call are placed in an arena of
preallocated arrays, one slot reused by values whose lifetimes do not overlap, so that a
replay allocates (and page-faults) nothing for them.  Views extend the life of the buffer
they alias; a buffer reachable from a graph output (directly or through views) escapes
and is never an arena slot.

Reported: ``intermediate_bytes`` (every intermediate held at once, as if nothing were
freed), ``peak_bytes`` (the most live at any point under this plan) and ``arena_bytes``.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph


def _roots(graph: Graph) -> dict:
    root: dict = {}
    for n in graph.nodes:
        for v in n.outputs:
            src = n.inputs[0] if n.is_view and n.inputs else None
            root[v.id] = root.get(src.id, src.id) if src is not None else v.id
    return root


def run(graph: Graph, enable: bool = True) -> dict:
    """Plan the arena (when `enable`) and report byte counts; sets ``graph.arena``."""
    root = _roots(graph)
    end = len(graph.nodes)
    last: dict = {}  # root id -> index of the last node reading any alias of it
    for i, n in enumerate(graph.nodes):
        for v in n.inputs:
            if v.id in root:
                r = root[v.id]
                last[r] = max(last.get(r, -1), i)
    escaping = {root[v.id] for v in graph.outputs if v.id in root}
    for r in escaping:
        last[r] = end
    sizes = {v.id: v.nbytes for n in graph.nodes for v in n.outputs
             if not n.is_view}
    # slots: (shape, dtype) -> list of [buffer, free_from_index]
    slots: dict = {}
    arena: dict = {}
    arena_bytes = 0
    reused = 0
    live = peak = 0
    frees: dict = {}
    for i, n in enumerate(graph.nodes):
        for v in n.outputs:
            if v.id not in sizes:
                continue
            r = root[v.id]
            stop = last.get(r, i)
            live += sizes[v.id]
            frees.setdefault(stop, []).append(sizes[v.id])
            if enable and n.kernel is not None and r not in escaping \
                    and getattr(n.kernel, "accepts_out", False):
                key = (tuple(v.shape), np.dtype(v.dtype).str)
                pool = slots.setdefault(key, [])
                slot = next((s for s in pool if s[1] < i), None)
                if slot is None:
                    slot = [np.empty(v.shape, v.dtype), stop]
                    pool.append(slot)
                    arena_bytes += v.nbytes
                else:
                    slot[1] = stop
                    reused += 1
                arena[v.id] = slot[0]
        peak = max(peak, live)
        for b in frees.pop(i, []):
            live -= b
    graph.arena = arena
    return {"intermediate_bytes": int(sum(sizes.values())), "peak_bytes": int(peak),
            "arena_bytes": int(arena_bytes), "arena_slots": len(arena), "reused": reused}
