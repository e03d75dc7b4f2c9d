"""Save less for the backward: move narrowing elementwise ops of saved values forward.

The backward of relu reads only ``out > 0``; a traced joint graph computes that compare
in the backward partition, so the forward must save the float32 output (4 bytes per
element) for it.  This pass moves such a node into the forward, where the elementwise
fusion computes it in the same loop as the activation, and the forward saves the bool
mask (1 byte per element) instead.

A backward node is moved when it is fusable elementwise, its output is narrower than
some input produced by the forward, all its inputs are forward values or constants, and
every backward reader of that wide input is moved too (else the wide value stays saved
and the narrow one would only add bytes).  A wide value that is also a forward output
is left alone (the caller holds it anyway).
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph
from ..kernels import fusable


def select(joint: Graph, in_fwd: set, fwd_outputs: list) -> tuple[set, int]:
    """Ids of backward nodes to move into the forward and the saved bytes this avoids."""
    out_ids = {v.id for v in fwd_outputs}
    consumers = joint.consumers()

    def fwd_value(v) -> bool:
        return v.producer is not None and id(v.producer) in in_fwd

    def narrowing(n) -> list:
        if id(n) in in_fwd or not fusable(n):
            return []
        if any(not (fwd_value(v) or v.kind in ("const", "param", "input")) for v in n.inputs):
            return []
        osize = np.dtype(n.outputs[0].dtype).itemsize
        return [v for v in n.inputs if fwd_value(v) and v.id not in out_ids
                and np.dtype(v.dtype).itemsize > osize
                and tuple(v.shape) == tuple(n.outputs[0].shape)]

    cand = {id(n): narrowing(n) for n in joint.nodes}
    moved: set = set()
    saved = 0
    for n in joint.nodes:
        for v in cand.get(id(n), []):
            readers = [c for c in consumers.get(v.id, []) if id(c) not in in_fwd]
            if readers and all(cand.get(id(c)) for c in readers):
                new = {id(c) for c in readers} - moved
                if new:
                    moved |= new
                    saved += v.nbytes - sum(c.outputs[0].nbytes for c in readers
                                            if id(c) in new)
    return moved, saved
