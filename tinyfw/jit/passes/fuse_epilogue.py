"""Epilogue fusion: matmul / conv2d (ops whose Function sets ``epilogue_producer``)
followed by an elementwise group (bias, activation, residual ...) runs as one node whose
elementwise part writes in place into the product's buffer, so the product is never
stored twice and the epilogue allocates nothing.

Fires when the product's output is read only by one fused elementwise node, is not a
graph output, has the group's shape and the dtype of the group's first output.

An op declaring ``epilogue_consumer`` (bias_act: act(y + b) for the activations whose
vectorised kernels stay out of generated code) is taken the same way when the product is
its input 0, of its output's shape and dtype: the bias is added into the product's buffer
(the backend's add with out=, in place: the value it computes out of place), then the op's
``epilogue`` applies the activation there (the kernels' ``out=`` entry).
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


class OpEpilogue:
    """An ``epilogue_consumer`` op (bias_act) as the elementwise part of EpilogueKernel:
    called with the product first and ``out=(product,)``, it computes over that buffer."""

    def __init__(self, node: Node, backend) -> None:
        self.fn, self.attrs, self.B = node.fn, node.attrs, backend
        self.nodes = [node]  # as a fused group's: the interop pass's cost model reads them
        out = node.outputs[0]
        self.shape, self.out_dtypes = tuple(out.shape), [np.dtype(out.dtype)]
        self.text = f"{node.op}{self._attrs()} {np.dtype(out.dtype).name}{list(out.shape)} " \
                    "in place"

    def _attrs(self) -> str:
        a = dict(self.attrs)
        if a.get("approximate", "none") == "none":
            a.pop("approximate", None)
        return "(" + ", ".join(str(v) for v in a.values()) + ")" if a else ""

    def __call__(self, y, b, out) -> tuple:
        # out is (y,): EpilogueKernel hands over the product's own writable buffer.  The
        # backend's add, not numpy's: numpy's runs on one thread, long enough for the
        # kernels' team to fall asleep, and the activation then paid the wake-up (4096 x 64
        # at 2 threads: 87 us for a 20 us gelu)
        self.B.add(y, b, out=y)
        return (self.fn.epilogue(self.B, y, **self.attrs),)

    def describe(self) -> str:
        """'BiasAct(gelu) float32[2048, 1024] in place' for explain()."""
        return self.text


def _consumer_ok(n: Node, v) -> bool:
    """An epilogue_consumer op whose input 0 is `v`, of its output's shape and dtype."""
    if n.kernel is not None or not getattr(n.fn, "epilogue_consumer", False) \
            or len(n.outputs) != 1 or len(n.inputs) != 2 or n.inputs[0] is not v:
        return False
    o = n.outputs[0]
    return tuple(o.shape) == tuple(v.shape) and np.dtype(o.dtype) == np.dtype(v.dtype)


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
        consumer = n.kernel is None and getattr(n.fn, "epilogue_consumer", False)
        if not consumer and (n.kernel is None or not hasattr(n.kernel, "out_dtypes")
                             or not n.kernel.compiled):
            continue
        for pos, v in enumerate(n.inputs):
            if consumer and (pos != 0 or not _consumer_ok(n, v)):
                break
            p = v.producer
            if p is None or id(p) not in here or p.kernel is not None \
                    or not p.fn.epilogue_producer or id(p) in drop or v.id in out_ids:
                continue
            users = consumers.get(v.id, [])
            if len(users) != 1 or users[0] is not n:
                continue
            epi = OpEpilogue(n, backend) if consumer else n.kernel
            if tuple(v.shape) != tuple(epi.shape) or np.dtype(v.dtype) != epi.out_dtypes[0]:
                continue
            kern = EpilogueKernel(p.fn, p.attrs, backend, len(p.inputs), pos, epi)
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
