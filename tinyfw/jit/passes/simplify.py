"""Algebraic simplification: x*1, x/1, x+0, x-0 (ops declaring a ``unit``), double
permute, reshape of reshape.

An identity is only removed when the op would not change the shape or dtype of x (a
broadcasting ``x * ones(4, 1)`` is not an identity), and never for an integer constant
multiplying a float (the dtype check covers it).
"""
from __future__ import annotations

import numpy as np

from ...ops import shape as S
from ..ir import Graph

_RESHAPES = (S.View, S.ReshapeCopy)


def _all_equal(v, x: float) -> bool:
    return v.kind == "const" and isinstance(v.data, np.ndarray) and v.data.size <= 1 << 16 \
        and v.data.dtype.kind in "fiub" and bool(np.all(v.data == x))


def _identity_operand(n):
    """The operand the node passes through unchanged (its op's ``unit`` on the other
    side), or None."""
    unit = getattr(n.fn, "unit", None)
    if unit is None or len(n.inputs) != 2:
        return None
    a, b = n.inputs
    out = n.outputs[0]
    cands = [(a, b)] + ([(b, a)] if n.fn.commutative else [])
    for x, c in cands:
        if _all_equal(c, unit) and x.shape == out.shape and x.dtype == out.dtype:
            return x
    return None


def run(graph: Graph) -> dict:
    """Rewrite in place; dead producers are left for DCE.  Returns counts per rule."""
    stats = {"identity": 0, "permute": 0, "reshape": 0}
    for n in list(graph.nodes):
        x = _identity_operand(n)
        if x is not None:
            graph.replace_all_uses(n.outputs[0], x)
            stats["identity"] += 1
            continue
        if n.fn is S.Permute and n.inputs[0].producer is not None \
                and n.inputs[0].producer.fn is S.Permute:
            inner = n.inputs[0].producer
            d1, d2 = inner.attrs["dims"], n.attrs["dims"]
            dims = tuple(d1[j] for j in d2)
            stats["permute"] += 1
            if dims == tuple(range(len(dims))):
                graph.replace_all_uses(n.outputs[0], inner.inputs[0])
            else:
                n.inputs, n.attrs = [inner.inputs[0]], {"dims": dims}
            continue
        if n.fn in _RESHAPES and n.inputs[0].producer is not None \
                and n.inputs[0].producer.fn in _RESHAPES:
            inner = n.inputs[0].producer
            src = inner.inputs[0]
            stats["reshape"] += 1
            if tuple(src.shape) == tuple(n.outputs[0].shape) and n.fn is S.View \
                    and inner.fn is S.View:
                graph.replace_all_uses(n.outputs[0], src)
            else:
                # a view of a view is a view; any copy in the chain makes it a copy
                n.fn = S.View if (n.fn is S.View and inner.fn is S.View) else S.ReshapeCopy
                n.op = n.fn.__name__
                n.inputs = [src]
    return stats
