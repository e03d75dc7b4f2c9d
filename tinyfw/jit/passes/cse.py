"""Common-subexpression elimination: one node per (op, inputs, attributes)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph


def freeze(a):
    """A hashable key for an attribute value; arrays and unknown objects by identity."""
    if isinstance(a, (tuple, list)):
        return (type(a).__name__,) + tuple(freeze(x) for x in a)
    if isinstance(a, dict):
        return ("dict",) + tuple(sorted((k, freeze(v)) for k, v in a.items()))
    if isinstance(a, slice):
        return ("slice", a.start, a.stop, a.step)
    if isinstance(a, np.ndarray):
        return ("array", id(a))
    if isinstance(a, float) and a != a:
        return ("nan",)
    try:
        hash(a)
    except TypeError:
        return ("id", id(a))
    return (type(a).__name__, a)


def _const_key(v):
    # small constants with equal contents are the same value (scalars made per call site)
    a = v.data
    if isinstance(a, np.ndarray) and a.size <= 16:
        return ("const", a.dtype.str, a.shape, a.tobytes())
    return ("leaf", v.id)


def run(graph: Graph) -> dict:
    """Merge duplicate nodes (and duplicate small constants); returns how many went."""
    seen: dict = {}
    consts: dict = {}
    removed = 0
    # equal small constants first, so that x*2 and x*2 from two call sites match
    for v in graph.leaves():
        if v.kind == "const":
            k = _const_key(v)
            if k in consts and consts[k] is not v:
                graph.replace_all_uses(v, consts[k])
            else:
                consts.setdefault(k, v)
    kept = []
    for n in graph.nodes:
        if n.kernel is not None or n.fn is None:
            kept.append(n)
            continue
        key = (n.fn, tuple(v.id for v in n.inputs), freeze(n.attrs))
        prev = seen.get(key)
        if prev is None:
            seen[key] = n
            kept.append(n)
            continue
        for old, new in zip(n.outputs, prev.outputs):
            graph.replace_all_uses(old, new)
        removed += 1
    graph.nodes = kept
    return {"removed": removed}
