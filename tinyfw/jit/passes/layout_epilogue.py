"""The layout pass's steps after its rewrite: the conv epilogue fold (below), a chain-exit
conv writing NCHW itself (write_nchw_exits) and entries read in place once only convs
read them (read_entries_in_place).

Fold a bias add, a residual add and a relu that follow a
``Conv2dNHWC`` into the conv itself, so that they run on each output row as the kernel
stores it (csrc/layout_conv.cpp) instead of as one more pass over the whole output.

After ``jit.freeze`` folds batch norm into the filter, a ResNet block's chain is
conv -> +bias -> relu -> conv -> +bias -> +x -> relu: each conv then leaves its output
finished.  Those passes cost ~0.7 ms each at 8x64x56x56 float32 (Sapphire Rapids, 1
thread), ~5% of the block.

Folds, in this order and each at most once (the kernel's order, so every step rounds as
the separate op did): ``Add(y, b)`` with b a per-channel ``(1, 1, 1, C)`` value or a
1-element one, ``Add(y, r)`` with r of y's shape, ``Relu(y)``.  A step folds only when y
is read by that node alone, is not a graph output and the add keeps y's dtype.
"""
from __future__ import annotations

import numpy as np

from ...ops._elementwise_activation import Relu
from ...ops._elementwise_binary import Add
from ..ir import Graph, Node
from ..layout_ops import Conv2dNHWC


def _sole_reader(v, consumers: dict, out_ids: set):
    users = consumers.get(v.id, [])
    if v.id in out_ids or len(users) != 1 or users[0].kernel is not None:
        return None
    return users[0]


def _other(n: Node, v):
    """The operand of binary `n` that is not `v` (None when v is both operands)."""
    if len(n.inputs) != 2 or n.inputs[0] is n.inputs[1]:
        return None
    return n.inputs[1] if n.inputs[0] is v else n.inputs[0]


def fold(graph: Graph, decisions: list) -> int:
    """Fold the epilogues into the graph's ``Conv2dNHWC`` nodes; returns how many convs
    took one.  `decisions` gets a line per conv for ``jit.explain``."""
    consumers = graph.consumers()
    out_ids = {v.id for v in graph.outputs}
    drop: set = set()
    moved: dict = {}  # id(last folded node) -> the conv, which takes that node's place
    count = 0
    for n in graph.nodes:
        if n.fn is not Conv2dNHWC or id(n) in drop or n.attrs.get("relu") \
                or n.attrs.get("bias") or n.attrs.get("residual"):
            continue
        y = n.outputs[0]
        shape, dt = tuple(y.shape), np.dtype(y.dtype)
        c = shape[3]
        steps, extra, last = [], [], y
        for step in ("bias", "residual", "relu"):
            m = _sole_reader(last, consumers, out_ids)
            # (a node already folded into another conv is gone: the sum of two conv
            # branches is one conv's residual, not both's)
            if m is None or id(m) in drop or tuple(m.outputs[0].shape) != shape \
                    or np.dtype(m.outputs[0].dtype) != dt:
                break
            if step == "relu":
                if m.fn is not Relu:
                    continue
            else:
                if m.fn is not Add:
                    continue
                o = _other(m, last)
                if o is None or np.dtype(o.dtype) != dt:
                    continue
                if step == "bias":
                    per_channel = tuple(o.shape)[-1:] in ((c,), (1,)) and \
                        all(s == 1 for s in tuple(o.shape)[:-1])
                    if not per_channel:
                        continue
                    if o.shape[-1] == 1 and c != 1:  # one value for every channel
                        continue
                elif tuple(o.shape) != shape:
                    continue
                extra.append(o)
            steps.append(step)
            drop.add(id(m))
            m_last, last = m, m.outputs[0]
        if not steps:
            continue
        # the conv now produces the last folded node's value
        n.inputs = n.inputs[:2] + extra
        n.attrs = dict(n.attrs, **{s: True for s in steps})
        n.outputs = [last]
        last.producer = n
        # the operands may be made after the conv (a bias reshape the layout pass put just
        # before its add): the conv runs where the last folded node ran, which is after
        # all of them and before every reader of the result
        drop.add(id(n))
        moved[id(m_last)] = n
        count += 1
        decisions.append(f"    epilogue: Conv2dNHWC -> {' + '.join(steps)} applied as the "
                         f"conv stores each row ({last} {list(shape)})")
    graph.nodes = [moved.get(id(n), n) for n in graph.nodes
                   if id(n) not in drop or id(n) in moved]
    return count


def write_nchw_exits(graph: Graph, decisions: list, measure) -> int:
    """A conv whose result only leaves the chain (read by one ``ToNCHW`` alone) writes
    NCHW itself, the conversion dropped, when ``measure(conv_node)`` says that is cheaper
    (None: always).  Its residual, if any, must then be NCHW too: the value a ``ToNHWC``
    converted (a ResNet block's input).  Returns how many conversions went."""
    from ..layout_ops import ToNCHW, ToNHWC

    consumers = graph.consumers()
    out_ids = {v.id for v in graph.outputs}
    drop: set = set()
    for n in graph.nodes:
        if n.fn is not Conv2dNHWC or n.attrs.get("y_layout", "nhwc") != "nhwc":
            continue
        t = _sole_reader(n.outputs[0], consumers, out_ids)
        if t is None or t.fn is not ToNCHW:
            continue
        ins = list(n.inputs)
        if n.attrs.get("residual"):
            r = ins[-1]
            if r.producer is None or r.producer.fn is not ToNHWC:
                continue
            ins[-1] = r.producer.inputs[0]
        if measure is not None and not measure(n):
            continue
        n.inputs = ins
        n.attrs = dict(n.attrs, y_layout="nchw")
        y = t.outputs[0]
        n.outputs = [y]
        y.producer = n
        drop.add(id(t))
        decisions.append(f"    writes nchw: the conv stores {y} {list(y.shape)} as nchw: its exit "
                         "conversion dropped" + (", residual read as nchw"
                                                 if n.attrs.get("residual") else ""))
    graph.nodes = [n for n in graph.nodes if id(n) not in drop]
    return len(drop)


def read_entries_in_place(graph: Graph, decisions: list, measure) -> int:
    """An entry conversion (``ToNHWC``) whose result only convs read (as their input), as
    a ResNet block's input is once its last conv reads the residual as NCHW: the convs read
    the NCHW value in place when ``measure(convert_node, conv_nodes)`` says so (None:
    always), and the conversion goes.  Returns how many conversions went."""
    from ..layout_ops import ToNHWC

    consumers = graph.consumers()
    out_ids = {v.id for v in graph.outputs}
    drop: set = set()
    for t in graph.nodes:
        if t.fn is not ToNHWC or t.outputs[0].id in out_ids:
            continue
        h = t.outputs[0]
        readers = consumers.get(h.id, [])
        if not readers or not all(
                r.fn is Conv2dNHWC and r.inputs[0] is h and all(v is not h for v in r.inputs[1:])
                and r.attrs.get("x_layout", "nhwc") == "nhwc" for r in readers):
            continue
        if measure is not None and not measure(t, readers):
            continue
        for r in readers:
            r.inputs = [t.inputs[0]] + r.inputs[1:]
            r.attrs = dict(r.attrs, x_layout="nchw")
        drop.add(id(t))
        decisions.append(f"    reads nchw: {t.inputs[0]} {list(t.inputs[0].shape)} (only convs "
                         "read it now: its entry conversion dropped)")
    graph.nodes = [n for n in graph.nodes if id(n) not in drop]
    return len(drop)
