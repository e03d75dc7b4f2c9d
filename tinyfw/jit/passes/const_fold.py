"""Constant folding: a node whose inputs are all constants is run once, at compile time."""
from __future__ import annotations

import numpy as np

from ...backend import is_array

from ..ir import Graph, _Ctx

MAX_FOLD_ELEMENTS = 1 << 20  # bigger results would cost more memory than they save time


def run(graph: Graph, backend) -> dict:
    """Fold constant nodes with the active backend (so folded values equal eager's)."""
    folded = 0
    kept = []
    for n in graph.nodes:
        if (n.fn is None or n.kernel is not None or not n.inputs
                or any(v.kind != "const" for v in n.inputs)
                or any(np.prod(v.shape, dtype=np.int64) > MAX_FOLD_ELEMENTS
                       for v in n.outputs)):
            kept.append(n)
            continue
        ctx = _Ctx()
        # host constants (eager's 0-d CPU tensors) join the device's op there
        out = n.call_forward(backend, [backend.from_host(v.data) if type(v.data) is np.ndarray
                                       else v.data for v in n.inputs], ctx)
        outs = (out if type(out) is tuple else (out,)) + tuple(
            getattr(ctx, name) for name in n.ctx_outputs)
        for v, a in zip(n.outputs, outs):
            v.kind, v.producer, v.data = "const", None, a if is_array(a) else np.asarray(a)
        folded += 1
    graph.nodes = kept
    return {"folded": folded}
