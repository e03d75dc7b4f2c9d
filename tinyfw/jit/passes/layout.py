"""Layout pass: run conv / pool / per-channel-norm chains of an inference graph in the
channels-last layout (NHWC) when measuring says it is faster.

A **chain** is a connected set of nodes that can all run on NHWC arrays:
- ``Conv2d`` with groups 1 (float32/float64): becomes ``Conv2dNHWC`` on a packed filter
  (``PackConvFilter``; a constant filter, as in a frozen graph, is packed once here);
- ``MaxPool2d`` whose argmax indices nobody reads, ``AvgPool2d``;
- elementwise ops (a ``c_expr`` Function, or an ``epilogue_consumer``: bias_act) whose
  4-d output has the shape of a chain input they read; their other operands must be full-shape 4-d values (converted on entry),
  per-channel values (shape ``(1, C, 1, 1)`` or ``(C, 1, 1)``: viewed as ``(1, 1, 1, C)``)
  or scalars.  That covers bias adds, inference batch norm (``(x - mean) * rstd * w + b``),
  activations and residual adds.  A bias add, residual add and relu right after a conv
  are then folded into the conv's store (passes/layout_epilogue.py); other elementwise
  ops fuse into the conv's epilogue as before.  After that fold, a conv whose result only
  leaves the chain may write NCHW itself, and an entry then read only by convs may be read
  in place (both where measured cheaper; always under the nhwc override).

Per chain the pass compares the measured time of its conv/pool kernels in NCHW with the
time of the NHWC kernels plus the conversions the chain needs (one ``ToNHWC`` per value
entering it, one ``ToNCHW`` per value leaving it; elementwise ops cost the same in both
layouts).  Kernels are timed once per shape and thread count, on random data, and the
results cached for the process (passes/layout_cost.py).
``TINYFW_JIT_LAYOUT=nhwc|nchw`` (or ``force(...)``) overrides the measurement; ``auto``
(the default) measures.

Only graphs without a backward are rewritten (inference: ``no_grad`` or parameters that
need no gradient): the NHWC kernels have no backward variants.  Every decision and every
conversion is recorded for ``jit.explain``.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

from ...backend.ref_layout import kernels
from ...ops.nn_conv import AvgPool2d, Conv2d, MaxPool2d
from ...ops.shape import ReshapeCopy
from ..ir import Graph, Node, Value
from . import layout_cost as lc, layout_epilogue
from ..layout_ops import (AvgPool2dNHWC, Conv2dNHWC, MaxPool2dNHWC, PackConvFilter, ToNCHW,
                          ToNHWC)

MODES = ("auto", "nhwc", "nchw")
_forced: list = []          # force()'s stack


def mode() -> str:
    """The layout choice in effect: force()'s, else $TINYFW_JIT_LAYOUT, else "auto"."""
    m = _forced[-1] if _forced else os.environ.get("TINYFW_JIT_LAYOUT", "auto")
    if m not in MODES:
        raise ValueError(f"jit layout pass: mode must be one of {MODES}, got {m!r} "
                         "(TINYFW_JIT_LAYOUT)")
    return m


@contextlib.contextmanager
def force(m: str):
    """Within the block, graphs traced choose layouts by `m` ("nhwc", "nchw" or "auto")
    instead of by $TINYFW_JIT_LAYOUT.  Graphs already compiled keep their layout."""
    if m not in MODES:
        raise ValueError(f"jit layout pass: mode must be one of {MODES}, got {m!r}")
    _forced.append(m)
    try:
        yield
    finally:
        _forced.pop()


# -- which nodes can run in NHWC -------------------------------------------------------------
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _anchor(n: Node, consumers: dict, out_ids: set) -> bool:
    if n.kernel is not None or not n.fn.channels_last or not n.inputs \
            or np.dtype(n.outputs[0].dtype) not in _FLOATS:
        return False
    if len(n.inputs[0].shape) != 4:
        return False
    if n.fn is Conv2d:
        return n.attrs["groups"] == 1 and len(n.inputs) == 2
    if n.fn is MaxPool2d:  # inference reads the values only
        idx = n.outputs[1]
        return not consumers.get(idx.id) and idx.id not in out_ids
    return n.fn is AvgPool2d


def _per_channel(v: Value, c: int) -> bool:
    s = (1,) * (4 - len(v.shape)) + tuple(v.shape) if len(v.shape) <= 4 else None
    return s is not None and s[0] == s[2] == s[3] == 1 and s[1] in (1, c)


def _elementwise(n: Node, chain_vals: set) -> bool:
    if n.kernel is not None or len(n.outputs) != 1:
        return False
    # an epilogue_consumer (bias_act) is elementwise over input 0 too, without a C expression
    if getattr(n.fn, "c_expr", None) is None and not n.fn.epilogue_consumer:
        return False
    shape = tuple(n.outputs[0].shape)
    if len(shape) != 4 or np.dtype(n.outputs[0].dtype) not in _FLOATS:
        return False
    if not any(v.id in chain_vals and tuple(v.shape) == shape for v in n.inputs):
        return False
    return all(tuple(v.shape) == shape or _per_channel(v, shape[1]) for v in n.inputs)


def _describe(n: Node) -> str:
    return f"{n.fn.__name__}{list(n.inputs[0].shape)}"


# -- the pass --------------------------------------------------------------------------------
def _chains(graph: Graph) -> list:
    """Connected sets of nodes that can run in NHWC, in graph order: list of node lists."""
    consumers = graph.consumers()
    out_ids = {v.id for v in graph.outputs}
    parent: dict = {}

    def find(k):
        while parent[k] != k:
            k = parent[k]
        return k

    owner: dict = {}  # value id -> id of the member node producing it
    for n in graph.nodes:
        if _anchor(n, consumers, out_ids):
            links = [owner[n.inputs[0].id]] if n.inputs[0].id in owner else []
        elif _elementwise(n, set(owner)):
            links = [owner[v.id] for v in n.inputs if v.id in owner
                     and tuple(v.shape) == tuple(n.outputs[0].shape)]
        else:
            continue
        parent[id(n)] = id(n)
        for k in links:
            parent[find(k)] = id(n)
        owner[n.outputs[0].id] = id(n)
    groups: dict = {}
    for n in graph.nodes:
        if id(n) in parent:
            groups.setdefault(find(id(n)), []).append(n)
    return list(groups.values())


def _boundaries(graph: Graph, chain: list) -> tuple:
    """(values entering the chain as full-shape 4-d inputs that need a conversion, member
    values read outside, ids of entering values that only convs read: those read them in
    NCHW, in place)."""
    made = {n.outputs[0].id for n in chain}
    members = {id(n) for n in chain}
    enter: dict = {}
    for n in chain:
        ins = n.inputs[:1] if n.fn.channels_last else n.inputs
        for v in ins:
            if v.id not in made and len(v.shape) == 4 and \
                    (n.fn.channels_last or
                     tuple(v.shape) == tuple(n.outputs[0].shape)):
                enter.setdefault(v.id, v)
    readers: dict = {}
    for n in chain:
        for k, v in enumerate(n.inputs):
            if v.id in enter:
                readers.setdefault(v.id, []).append(n.fn is Conv2d and k == 0)
    direct = {i for i, r in readers.items() if all(r) and enter[i].kind != "const"}
    leave: dict = {}
    for n in graph.nodes:
        if id(n) not in members:
            for v in n.inputs:
                if v.id in made:
                    leave.setdefault(v.id, v)
    for v in graph.outputs:
        if v.id in made:
            leave.setdefault(v.id, v)
    return [v for i, v in enter.items() if i not in direct], list(leave.values()), direct


def run(graph: Graph, backend) -> dict:
    """Rewrite the chains that are faster in NHWC (or all / none under an override)."""
    m = mode()
    K = kernels(backend)
    # a partition is a fresh Graph over the joint graph's values: new ids start past them
    ids = [v.id for n in graph.nodes for v in n.inputs + n.outputs]
    ids += [v.id for v in graph.inputs + graph.params + graph.grads + graph.outputs]
    graph._next_id = max([graph._next_id - 1] + ids) + 1
    decisions: list = []
    chosen: list = []
    for i, chain in enumerate(_chains(graph)):
        enter, leave, direct = _boundaries(graph, chain)
        anchors = [n for n in chain if n.fn.channels_last]
        ops = ", ".join(_describe(n) for n in anchors)
        if m == "auto":
            _check_direct(anchors, direct, enter, backend, K)
            costs = [lc.cost(n, backend, K, n.inputs[0].id in direct) for n in anchors]
            t_nchw = sum(c[0] for c in costs)
            t_conv = sum(lc.conversion_cost(v, K, True) for v in enter) + \
                sum(lc.conversion_cost(v, K, False) for v in leave)
            t_nhwc = sum(c[1] for c in costs) + t_conv
            pick = "nhwc" if t_nhwc < t_nchw else "nchw"
            why = (f"measured nchw {lc.fmt_ms(t_nchw)}, nhwc {lc.fmt_ms(t_nhwc)} "
                   f"(conversions {lc.fmt_ms(t_conv)})")
        else:
            pick, why = m, "forced (TINYFW_JIT_LAYOUT / layout.force)"
        decisions.append(f"chain {i}: {pick}: {ops} + {len(chain) - len(anchors)} "
                         f"elementwise op(s): {why}")
        if pick == "nhwc":
            chosen.append((chain, direct))
    conversions = 0
    for chain, direct in chosen:
        conversions += _rewrite(graph, chain, direct, K, decisions)
    folded = exits = 0
    if chosen:
        folded = layout_epilogue.fold(graph, decisions)
        exits = layout_epilogue.write_nchw_exits(
            graph, decisions, (lambda n: lc.nchw_store_cheaper(n, K)) if m == "auto" else None)
        exits += layout_epilogue.read_entries_in_place(
            graph, decisions, (lambda t, convs: lc.nchw_read_cheaper(t, convs, K))
            if m == "auto" else None)
    return {"decisions": decisions, "nhwc_chains": len(chosen),
            "conversions": conversions - exits, "conv_epilogues": folded}


def _check_direct(anchors: list, direct: set, enter: list, B, K) -> None:
    """Keep an entry in `direct` (its convs read it as NCHW) only where that measures
    cheaper than converting it once and running the convs on NHWC: the NCHW read is a
    strided one (measured ~1.4 ms dearer than the ~0.7 ms conversion at 8x64x56x56 on an
    idle machine, cheaper under memory-bandwidth contention); with one channel both
    layouts are the same bytes."""
    for vid in list(direct):
        convs = [n for n in anchors if n.inputs[0].id == vid]
        v = convs[0].inputs[0]
        t_in = sum(lc.cost(n, B, K, True)[1] for n in convs)
        t_cv = sum(lc.cost(n, B, K, False)[1] for n in convs) + lc.conversion_cost(v, K, True)
        if t_in >= t_cv:
            direct.discard(vid)
            enter.append(v)


def _rewrite(graph: Graph, chain: list, direct: set, K, decisions: list) -> int:
    """Replace `chain`'s nodes by NHWC ones, with conversions at its boundary (but convs
    read the entries in `direct` as NCHW); returns the number of conversions inserted."""
    members = {id(n) for n in chain}
    made = {n.outputs[0].id for n in chain}
    nhwc: dict = {}       # NCHW value id -> its NHWC value (members' and entries')
    channel: dict = {}    # per-channel value id -> its (1, 1, 1, C) view
    back: dict = {}       # member value id -> its NCHW value (exit conversion)
    out: list = []
    count = 0

    def new_node(op, fn, inputs, attrs, shape, dtype) -> Value:
        node = Node(op, fn, list(inputs), dict(attrs))
        v = graph.new_value(shape, dtype, "node", node)
        node.outputs = [v]
        out.append(node)
        return v

    def entry(v: Value) -> Value:
        nonlocal count
        if v.id not in nhwc:
            if v.kind == "const":
                nhwc[v.id] = graph.new_value(lc.nhwc_shape(v.shape), v.dtype, "const",
                                             data=K.nchw_to_nhwc(np.asarray(v.data)))
            else:
                nhwc[v.id] = new_node("ToNHWC", ToNHWC, [v], {}, lc.nhwc_shape(v.shape), v.dtype)
                count += 1
                decisions.append(f"    convert: {v} {list(v.shape)} nchw -> nhwc (chain entry)")
        return nhwc[v.id]

    def per_channel(v: Value, c: int) -> Value:
        if len(v.shape) == 0 or all(s == 1 for s in v.shape):
            return v  # a scalar broadcasts in either layout
        if v.id not in channel:
            if v.kind == "const":
                channel[v.id] = graph.new_value((1, 1, 1, c), v.dtype, "const",
                                                data=np.ascontiguousarray(v.data).reshape(1, 1, 1, c))
            else:
                channel[v.id] = new_node("ReshapeCopy", ReshapeCopy, [v], {"shape": (1, 1, 1, c)},
                                         (1, 1, 1, c), v.dtype)
        return channel[v.id]

    def leave(v: Value) -> Value:
        nonlocal count
        if v.id not in back:
            back[v.id] = new_node("ToNCHW", ToNCHW, [nhwc[v.id]], {}, tuple(v.shape), v.dtype)
            count += 1
            decisions.append(f"    convert: {v} {list(v.shape)} nhwc -> nchw (chain exit)")
        return back[v.id]

    for n in graph.nodes:
        if id(n) not in members:
            n.inputs = [leave(v) if v.id in made else v for v in n.inputs]
            out.append(n)
            continue
        y = n.outputs[0]
        shape, a = lc.nhwc_shape(tuple(y.shape)), n.attrs
        if n.fn is Conv2d:
            x, w = n.inputs
            o = w.shape[0]
            block = int(K.conv2d_nhwc_block(o, np.dtype(w.dtype)))
            if w.kind == "const":  # a frozen filter: packed once, now
                packed = K.conv2d_nhwc_pack(np.ascontiguousarray(w.data), block)
                wp = graph.new_value(packed.shape, w.dtype, "const", data=packed)
                decisions.append(f"    prepacked: constant filter {list(w.shape)} -> "
                                 f"{list(packed.shape)} (blocks of {block} output channels)")
            else:
                nob = -(-o // block)
                wp = new_node("PackConvFilter", PackConvFilter, [w], {"block": block},
                              (nob, w.shape[2], w.shape[3], w.shape[1], block), w.dtype)
            attrs = {"out_channels": o, "stride": a["stride"], "padding": a["padding"],
                     "dilation": a["dilation"]}
            if x.id in direct:
                attrs["x_layout"] = "nchw"
                decisions.append(f"    reads nchw: {x} {list(x.shape)} (chain entry read only "
                                 "by convs: no conversion)")
            nhwc[y.id] = new_node("Conv2dNHWC", Conv2dNHWC,
                                  [x if x.id in direct else entry(x), wp], attrs, shape, y.dtype)
        elif n.fn is MaxPool2d:
            nhwc[y.id] = new_node("MaxPool2dNHWC", MaxPool2dNHWC, [entry(n.inputs[0])], a,
                                  shape, y.dtype)
        elif n.fn is AvgPool2d:
            nhwc[y.id] = new_node("AvgPool2dNHWC", AvgPool2dNHWC, [entry(n.inputs[0])], a,
                                  shape, y.dtype)
        else:
            c = y.shape[1]
            ins = [entry(v) if tuple(v.shape) == tuple(y.shape) else per_channel(v, c)
                   for v in n.inputs]
            nhwc[y.id] = new_node(n.op, n.fn, ins, a, shape, y.dtype)
    graph.outputs = [leave(v) if v.id in made else v for v in graph.outputs]
    graph.nodes = out
    return count
