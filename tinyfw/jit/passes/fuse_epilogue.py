"""Epilogue fusion: matmul / conv2d (ops whose Function sets ``epilogue_producer``)
followed by an elementwise group (bias, activation, residual ...) runs as one node whose
elementwise part writes in place into the product's buffer, so the product is never
stored twice and the epilogue allocates nothing.

Fires when the product's output is read only by one fused elementwise node, is not a
graph output, has the group's shape and the dtype of the group's first output.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..executor import _Ctx


class EpilogueKernel:
    """Product then fused elementwise kernel, its first output written over the product."""

    accepts_out = False

    def __init__(self, fn, attrs: dict, backend, n_prod_inputs: int, pos: int, epi) -> None:
        self.fn, self.attrs, self.B = fn, attrs, backend
        self.n, self.pos, self.epi = n_prod_inputs, pos, epi

    def __call__(self, *arrays, out=None) -> tuple:
        m = self.fn.forward(_Ctx(), self.B, *arrays[:self.n], **self.attrs)
        if type(m) is not np.ndarray or not m.flags.c_contiguous or not m.flags.writeable:
            m = np.ascontiguousarray(m)
        rest = list(arrays[self.n:])
        rest.insert(self.pos, m)
        return self.epi(*rest, out=(m,) + (None,) * (len(self.epi.out_dtypes) - 1))

    def describe(self) -> str:
        """'Matmul -> Add+Relu ...' for explain()."""
        return f"{self.fn.__name__} -> {self.epi.describe()}"


def run(graph: Graph, backend) -> dict:
    """Merge each eligible product into the fused node that consumes it."""
    consumers = graph.consumers()
    out_ids = {v.id for v in graph.outputs}
    # a backward graph's inputs are saved forward values: their producer is a node of the
    # forward graph, which this graph cannot run
    here = {id(n) for n in graph.nodes}
    merged: dict = {}  # id(product node) -> fused replacement (placed at the fused node)
    drop: set = set()
    groups = []
    for n in graph.nodes:
        if n.kernel is None or not hasattr(n.kernel, "out_dtypes") or not n.kernel.compiled:
            continue
        for pos, v in enumerate(n.inputs):
            p = v.producer
            if p is None or id(p) not in here or p.kernel is not None \
                    or not p.fn.epilogue_producer or id(p) in drop or v.id in out_ids:
                continue
            users = consumers.get(v.id, [])
            if len(users) != 1 or users[0] is not n:
                continue
            if tuple(v.shape) != tuple(n.kernel.shape) or \
                    np.dtype(v.dtype) != n.kernel.out_dtypes[0]:
                continue
            kern = EpilogueKernel(p.fn, p.attrs, backend, len(p.inputs), pos, n.kernel)
            ins = list(p.inputs) + [w for k, w in enumerate(n.inputs) if k != pos]
            fused = Node(f"{p.op}+{n.op}", None, ins, {}, list(n.outputs), kern)
            for w in fused.outputs:
                w.producer = fused
            merged[id(n)] = fused
            drop.add(id(p))
            groups.append(kern.describe())
            break
    graph.nodes = [merged.get(id(n), n) for n in graph.nodes if id(n) not in drop]
    return {"groups": groups, "epilogues": len(groups)}
