"""Elementwise fusion: chains and trees of elementwise ops become one generated kernel.

Nodes are visited in order; a fusable node joins the group of one of its producers when
they have the same output shape (the group's iteration shape) and joining cannot create a
cycle (no other input of the node depends on that group through ops outside it).  A
group's outputs are its values read outside it; the other values never exist in memory
("bytes saved").  Groups of one node stay ordinary ops, unless a matmul produces their
input (then the epilogue pass can still take them) or they can write their output over a
dying freshly allocated input (memory_plan's in-place rule; an eager op would allocate).

Traced mode must never be slower than eager, so a fusable op whose float32 eager kernel
is hand-vectorised stays an eager op (kernels.eager_reason; docs/jit.md).  Every choice is
recorded for ``jit.explain`` in the ``decisions`` list: each group fused (ops, the
intermediate arrays it never writes and their bytes), each op kept eager and why.
"""
from __future__ import annotations

from ...ops import shape as S
from ..ir import Graph, Node
from . import dce
from .memory_plan import fresh_op
from ..kernels import FusedKernel, eager_reason, fusable


def run(graph: Graph) -> dict:
    """Replace fusable groups by fused nodes; returns groups and bytes saved."""
    group: dict = {}          # node id -> group id (resolve with find)
    members: dict = {}        # root group id -> list of nodes
    gshape: dict = {}         # root group id -> iteration shape
    ext: dict = {}            # root group id -> groups its external inputs depend on
    deps: dict = {}           # value id -> group ids it depends on (through any path)
    parent: dict = {}

    def find(g):
        while parent[g] != g:
            g = parent[g]
        return g

    def dset(v) -> set:
        return {find(x) for x in deps.get(v.id, ())}

    decisions: list = []
    for n in graph.nodes:
        in_deps = [dset(v) for v in n.inputs]
        gid = None
        why = eager_reason(n)
        if why is not None:
            decisions.append(f"kept eager: {_describe(n)}: {why}")
        elif fusable(n):
            shape = tuple(n.outputs[0].shape)
            direct = [find(group[id(v.producer)]) if v.producer is not None
                      and id(v.producer) in group else None for v in n.inputs]
            cands = []
            for c in direct:
                if c is not None and c not in cands and gshape[c] == shape:
                    cands.append(c)
            # take as many producer groups as can be merged without creating a cycle
            chosen: list = []
            for c in cands:
                trial = set(chosen) | {c}
                ok = all(not ({find(x) for x in ext[g]} & trial) for g in trial)
                for j, w in enumerate(n.inputs):
                    if direct[j] not in trial and in_deps[j] & trial:
                        ok = False
                if ok:
                    chosen.append(c)
            outside = set()
            for j in range(len(n.inputs)):
                if direct[j] not in chosen:
                    outside |= in_deps[j]
            if chosen:
                gid = chosen[0]
                for c in chosen[1:]:
                    parent[c] = gid
                    members[gid] += members.pop(c)
                    ext[gid] |= ext.pop(c)
                    gshape.pop(c)
                # keep execution order: members sorted by their position in the graph
            else:
                gid = id(n)
                parent[gid], members[gid], gshape[gid], ext[gid] = gid, [], shape, set()
            ext[gid] |= outside
            members[gid].append(n)
            group[id(n)] = gid
        mine = set().union(*in_deps) if in_deps else set()
        if gid is not None:
            mine.add(gid)
        for v in n.outputs:
            deps[v.id] = mine

    order = {id(n): i for i, n in enumerate(graph.nodes)}
    for gid in members:
        members[gid].sort(key=lambda m: order[id(m)])
    group = {k: find(g) for k, g in group.items()}

    consumers = graph.consumers()
    out_ids = {v.id for v in graph.outputs}
    here = {id(m) for m in graph.nodes}
    new_nodes: list = []
    groups_txt = []
    saved = 0
    for n in graph.nodes:
        if id(n) not in group:
            new_nodes.append(n)
            continue
        gid = group[id(n)]
        nodes = members[gid]
        if len(nodes) == 1 and not any(v.producer is not None and v.producer.kernel is None
                                       and v.producer.fn.epilogue_producer
                                       for v in n.inputs) \
                and not _overwrites(n, group, consumers, out_ids):
            decisions.append(f"kept eager: {_describe(n)}: alone, a generated kernel would "
                             f"save no memory pass")
            new_nodes.append(n)
            continue
        if id(n) != id(nodes[-1]):
            continue  # the fused node goes where its last member was
        ids = {id(m) for m in nodes}
        produced = {v.id for m in nodes for v in m.outputs}
        inputs, seen = [], set()
        for m in nodes:
            for k, v in enumerate(m.inputs):
                if v.id in produced:
                    continue
                src = _through_expand(v, gshape[gid], here)
                if src is not v:
                    m.inputs[k] = v = src
                if v.id not in seen:
                    seen.add(v.id)
                    inputs.append(v)
        outputs = [v for m in nodes for v in m.outputs
                   if v.id in out_ids or any(id(c) not in ids for c in consumers.get(v.id, []))]
        internal = [v for m in nodes for v in m.outputs if v not in outputs]
        kernel = FusedKernel(nodes, inputs, outputs, gshape[gid])
        fused = Node("Fused[" + "+".join(m.op for m in nodes) + "]", None, inputs, {},
                     outputs, kernel)
        for v in outputs:
            v.producer = fused
        new_nodes.append(fused)
        b = sum(v.nbytes for v in internal)
        saved += b
        groups_txt.append(kernel.describe() + f", saves {b} bytes")
        if internal:
            why = f"saves {len(internal)} intermediate array(s), {_fmt_bytes(b)} written and " \
                  f"read back"
        elif any(v.producer is not None and v.producer.kernel is None
                 and v.producer.fn.epilogue_producer for v in n.inputs):
            why = "alone, for the epilogue of the product it reads (written into its buffer)"
        else:
            why = "alone, written over a dying input: no output allocated (eager allocates)"
        decisions.append(f"fused: {kernel.describe()} ({len(nodes)} ops): {why}")
    graph.nodes = new_nodes
    graph.toposort()  # a group's outside readers may sit between its members
    dce.run(graph)  # expands read through by the kernels are dead now
    return {"groups": groups_txt, "decisions": decisions, "fused_groups": len(groups_txt),
            "bytes_saved": saved}


def _describe(n: Node) -> str:
    """'Tanh float32[256, 64]' for a decision line."""
    out = n.outputs[0]
    return f"{n.op} {out.dtype}{list(out.shape)}"


def _fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB" if n >= 1024 \
        else f"{n} B"



def _overwrites(n: Node, group: dict, consumers: dict, out_ids: set) -> bool:
    """True when a lone elementwise node could write its output over an input that only it
    reads (memory_plan's in-place rule): as a kernel it then allocates nothing, which an
    eager op cannot do -- relu's backward Where(mask, 0, g) over the pooling gradient."""
    out = n.outputs[0]
    for w in n.inputs:
        p = w.producer
        if p is None or w.id in out_ids or tuple(w.shape) != tuple(out.shape) \
                or w.dtype != out.dtype or any(c is not n for c in consumers.get(w.id, [])):
            continue
        if id(p) in group or fresh_op(p):
            return True
    return False


def _through_expand(v, shape: tuple, here: set):
    """The un-expanded source of an Expand feeding a kernel: the kernel broadcasts itself,
    and reading the expanded view would first copy it to contiguous memory.  Only an
    Expand of this graph (`here`: its node ids): a backward graph's saved inputs have
    their producers in the forward graph, whose values it does not have."""
    p = v.producer
    if p is None or id(p) not in here or p.fn is not S.Expand:
        return v
    src = p.inputs[0]
    nd = len(shape)
    if len(src.shape) > nd:
        return v
    full = (1,) * (nd - len(src.shape)) + tuple(src.shape)
    if all(a == 1 or a == b for a, b in zip(full, shape)):
        return src
    return v
