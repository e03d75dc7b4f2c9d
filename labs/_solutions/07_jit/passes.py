"""Lab 7: graph passes for traced mode.

``tinyfw.jit.trace(f, example_inputs, passes=())`` records what `f` does as a `Graph`
(tinyfw/jit/ir.py) without optimizing it; ``traced.graph(*args)[0]`` is the forward graph:

- ``graph.nodes``: `Node`s in execution order; ``node.fn`` is the op's `Function` class,
  ``node.inputs`` / ``node.outputs`` lists of `Value`s, ``node.attrs`` its attributes;
- a `Value` has an ``id``, ``shape``, ``dtype``, ``kind`` ("input", "param", "const" for
  leaves, "node" for computed ones) and ``producer`` (its Node, None for a leaf);
- ``graph.outputs``: the values the function returns (and what backward needs).

`run_graph` (given) executes a graph on numpy arrays.  Your passes rewrite graphs in place;
the grader checks they still compute the same thing.
"""
from __future__ import annotations

import numpy as np

from tinyfw.backend import cpu as _cpu
from tinyfw.jit.ir import Graph, Node
from tinyfw.jit.kernels import fusable  # noqa: F401  (used by fusion_groups)
from tinyfw.jit.passes.cse import freeze as attr_key  # noqa: F401  (a hashable attrs key)


def run_graph(graph: Graph, inputs: list) -> list:
    """Execute `graph` on numpy `inputs` (one per graph input); its outputs as arrays
    (given).  A node with a ``kernel`` (see fuse) runs ``kernel(arrays) -> list``."""
    env = {v.id: a for v, a in zip(graph.inputs, inputs)}
    for v in graph.leaves():
        if v.kind == "const":
            env[v.id] = v.data
        elif v.kind == "param":
            env[v.id] = v.data._data
    for node in graph.nodes:
        arrays = [env[v.id] for v in node.inputs]
        if node.kernel is not None:
            outs = node.kernel(arrays)
        else:
            outs = node.call_forward(_cpu, arrays)
            outs = list(outs) if isinstance(outs, tuple) else [outs]
        for v, a in zip(node.outputs, outs):
            env[v.id] = a
    return [env[v.id] for v in graph.outputs]


def dce(graph: Graph) -> int:
    """TASK 7.1 — remove every node none of whose outputs is used (by a later node or as
    a graph output), including chains of them; returns how many went."""
    used = {v.id for v in graph.outputs}
    keep = []
    for node in reversed(graph.nodes):
        if any(v.id in used for v in node.outputs):
            keep.append(node)
            used.update(v.id for v in node.inputs)
    removed = len(graph.nodes) - len(keep)
    graph.nodes = keep[::-1]
    return removed


def cse(graph: Graph) -> int:
    """TASK 7.2 — merge nodes computing the same thing: same op (``fn``), the same input
    values (by id) and equal attributes (``attr_key(node.attrs)``); the later node's
    outputs are replaced everywhere by the first's (``graph.replace_all_uses``) and the
    later node dropped.  First make equal constants one value: tracing gives each scalar
    its own "const" leaf (``x * 2`` twice makes two), so merge the const leaves of at most
    16 elements with equal dtype, shape and bytes.  Returns how many nodes went."""
    consts: dict = {}
    for v in graph.leaves():
        a = v.data
        if v.kind == "const" and isinstance(a, np.ndarray) and a.size <= 16:
            key = (a.dtype.str, a.shape, a.tobytes())
            if key in consts:
                graph.replace_all_uses(v, consts[key])
            else:
                consts[key] = v
    seen: dict = {}
    kept = []
    for node in graph.nodes:
        if node.fn is None or node.kernel is not None:
            kept.append(node)
            continue
        key = (node.fn, tuple(v.id for v in node.inputs), attr_key(node.attrs))
        first = seen.get(key)
        if first is None:
            seen[key] = node
            kept.append(node)
            continue
        for old, new in zip(node.outputs, first.outputs):
            graph.replace_all_uses(old, new)
    removed = len(graph.nodes) - len(kept)
    graph.nodes = kept
    return removed


def fusion_groups(graph: Graph) -> list:
    """TASK 7.3 — groups of elementwise nodes to fuse: visiting nodes in order, a
    `fusable` node joins the group of a producer of one of its inputs when that producer
    is fusable, has the same output shape, and joining creates no cycle (no other input of
    the node depends on that group through a node outside it); else it starts a group.
    Returns lists of nodes (in graph order), groups of one included."""
    group_of: dict = {}           # id(node) -> group index
    groups: list = []
    depends: dict = {}            # value id -> set of group indices it depends on

    def deps(v) -> set:
        return depends.get(v.id, set())

    for node in graph.nodes:
        chosen = None
        if fusable(node):
            shape = node.outputs[0].shape
            for v in node.inputs:
                p = v.producer
                if p is None or id(p) not in group_of:
                    continue
                g = group_of[id(p)]
                if groups[g][0].outputs[0].shape != shape:
                    continue
                # a cycle: another input reaches group g through a node outside it
                others = [w for w in node.inputs if w.producer is None
                          or group_of.get(id(w.producer)) != g]
                if any(g in deps(w) for w in others):
                    continue
                chosen = g
                break
        if chosen is None and fusable(node):
            chosen = len(groups)
            groups.append([])
        below = set().union(*(deps(v) for v in node.inputs)) if node.inputs else set()
        if chosen is not None:
            groups[chosen].append(node)
            group_of[id(node)] = chosen
            for v in node.outputs:
                depends[v.id] = below | {chosen}
        else:
            for v in node.outputs:
                depends[v.id] = below | {("node", id(node))}
    return groups


def _group_kernel(members: list, inputs: list, outputs: list):
    def kernel(arrays):
        env = {v.id: a for v, a in zip(inputs, arrays)}
        for node in members:
            out = node.call_forward(_cpu, [env[v.id] for v in node.inputs])
            env[node.outputs[0].id] = out
        return [env[v.id] for v in outputs]
    return kernel


def fuse(graph: Graph, groups: list) -> int:
    """TASK 7.4 — replace each group of two or more nodes by one node (op "Fused", fn
    None) whose ``kernel(arrays)`` runs the members in order: its inputs are the values
    the group reads from outside it, its outputs the members' values used outside it (by
    other nodes or as graph outputs).  The fused node goes where the group's last member
    was, then ``graph.toposort()`` restores an order where every value is made before it
    is read (an outside node may read an early member's value).  Returns how many nodes
    the graph lost."""
    before = len(graph.nodes)
    for members in groups:
        if len(members) < 2:
            continue
        inside = {id(n) for n in members}
        made = {v.id for n in members for v in n.outputs}
        ins, seen = [], set()
        for n in members:
            for v in n.inputs:
                if v.id not in made and v.id not in seen:
                    seen.add(v.id)
                    ins.append(v)
        used_outside = {v.id for n in graph.nodes if id(n) not in inside for v in n.inputs}
        used_outside |= {v.id for v in graph.outputs}
        outs = [v for n in members for v in n.outputs if v.id in used_outside]
        fused = Node("Fused", None, ins, {}, outs, kernel=_group_kernel(members, ins, outs))
        last = max(graph.nodes.index(n) for n in members)
        nodes = [fused if i == last else n for i, n in enumerate(graph.nodes)]
        graph.nodes = [n for n in nodes if id(n) not in inside]
        for v in outs:
            v.producer = fused
    graph.toposort()
    return before - len(graph.nodes)
