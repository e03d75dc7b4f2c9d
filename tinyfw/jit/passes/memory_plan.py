"""Memory planning: liveness of intermediate buffers, an arena for fused kernels' outputs.

Every intermediate is freed right after its last use (the executor deletes it); buffers
written by our own fused kernels that never leave the call are placed in an arena of
preallocated arrays, one slot reused by values whose lifetimes do not overlap, so that a
replay allocates (and page-faults) nothing for them.  Views extend the life of the buffer
they alias; a buffer reachable from a graph output (directly or through views) escapes
and is never an arena slot.

In-place: a fused kernel whose input dies at that kernel (no later reader of it or of a
view of it), was freshly allocated by an op of this graph, and has the output's shape and
dtype writes its output over that input (``graph.arena[out.id] = ("inplace", input)``);
elementwise kernels read element i of every operand before writing element i, so this is
safe, and the gradient of relu/GELU backward then costs no new buffer.  Arguments (values
saved by the forward, which a retained graph may replay) are never overwritten.

Kernel nodes whose ``kernel.fresh`` is true (the layer-norm kernels) count as fresh
producers like the ops whose Function sets ``fresh_output``.  The arguments of the
generated function are freed at their last use when the caller hands them over
(executor's ``run.owned``), which these byte counts do not model.

Reported: ``intermediate_bytes`` (every intermediate held at once, as if nothing were
freed), ``peak_bytes`` (the most live at any point under this plan) and ``arena_bytes``.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph

def fresh_op(n) -> bool:
    """True when op node `n` (not a kernel) always returns a newly allocated array, never
    an input or a view of one (its Function's ``fresh_output``), so overwriting its output
    cannot clobber another value."""
    return n.kernel is None and n.fn is not None and n.fn.fresh_output


def _fresh(n) -> bool:
    return n is not None and not n.is_view and (
        (n.kernel is not None and (getattr(n.kernel, "accepts_out", False)
                                   or getattr(n.kernel, "fresh", False))
         or getattr(n.kernel, "epi", None) is not None)
        or fresh_op(n))


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
    inplace = 0
    slot_of: dict = {}  # value id -> the arena slot holding its buffer
    for i, n in enumerate(graph.nodes):
        taken: set = set()
        for v in n.outputs:
            if v.id not in sizes:
                continue
            r = root[v.id]
            # (an escaping output may take a dying buffer: unlike an arena slot, that buffer
            # is new in every call)
            if enable and getattr(n.kernel, "accepts_out", False):
                src = next((w for w in n.inputs if w.id not in taken and root.get(w.id) == w.id
                            and _fresh(w.producer) and last.get(w.id) == i
                            and w.id not in escaping and tuple(w.shape) == tuple(v.shape)
                            and np.dtype(w.dtype) == np.dtype(v.dtype)), None)
                if src is not None:
                    taken.add(src.id)
                    arena[v.id] = ("inplace", src)
                    stop = last.get(r, i)
                    # bytes move from the input (its free at i is cancelled) to the output
                    frees.setdefault(i, []).append(-sizes[v.id])
                    frees.setdefault(stop, []).append(sizes[v.id])
                    # the output takes over the input's buffer: when that is an arena
                    # slot, the slot stays busy until the output's last use
                    slot = slot_of.get(src.id)
                    if slot is not None:
                        slot[1] = max(slot[1], stop)
                        slot_of[v.id] = slot
                    inplace += 1
                    continue
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
                slot_of[v.id] = slot
        peak = max(peak, live)
        for b in frees.pop(i, []):
            live -= b
    graph.arena = arena
    return {"intermediate_bytes": int(sum(sizes.values())), "peak_bytes": int(peak),
            "arena_bytes": int(arena_bytes),
            "arena_slots": sum(1 for a in arena.values() if type(a) is not tuple),
            "reused": reused, "inplace": inplace}
