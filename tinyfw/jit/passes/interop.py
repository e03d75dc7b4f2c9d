"""Inter-op scheduling: independent branches of a graph become one parallel region node.

Where the branches are found: a node comparable with every other node (an ancestor or a
descendant of each) is a *cut* node; the nodes between two consecutive cut nodes form a
segment, and the weakly connected components of a segment have no path between them, so
they may run at once (the two paths of a block joined by an add, the q/k/v projections,
a backward's weight gradient beside the input gradient and everything after it).
Components are packed into at most ``parallel.workers()`` branches, heaviest first; when
one component is much heavier than the rest, only its first nodes (a prefix in execution
order, which is closed under its ancestors) join the region and the remainder is scheduled
after it, recursively (an MLP's backward: ``dW3 || dX3``, then ``dW2 || dX2`` ...).

When: a region the model below predicts faster is then timed, once, at compile time, on
random inputs of its shapes, in order and in parallel, and kept only when it measures at
least ``MIN_GAIN`` faster (at 2 threads on the 2-vCPU Sapphire Rapids here, every
workload of benchmarks/bench_interop.py measured slower in parallel: one core's kernels
gain 1.5-1.7x from a second thread, two branches on one thread each gain 1.75x at best,
and handing a branch to the pool and back costs ~100-200 us of thread wake-ups and GIL
hand-offs).  Each node's time at one thread is estimated from its shapes (FLOPs from
its op's ``flops``, bytes moved, a fixed cost per node).  In order, a node at ``nt`` threads is
modelled as using only the threads its work pays for (one per ``GRAIN_US``) at
``SCALING`` efficiency each; in parallel, each branch gets its share of the threads
(`parallel.split_threads`) and the region pays ``REGION_US``.  A region is formed only
when the prediction is at least ``MIN_GAIN`` faster and every branch takes at least
``MIN_BRANCH_US``; ``TINYFW_INTEROP=force`` forms every region (tests), ``=0`` none.  At
one thread (``tinyfw.get_num_threads()``) the region runs its branches in order, so the
prediction assumes at least 2 threads.

What the region node is: ``kernel`` is a `parallel.ParallelRegion`; each branch is a graph
of its own (its own memory plan and generated executor).  A view of a value from outside
a branch is moved out of it (before the region), so no branch output aliases another
branch's input; branch arguments are never written in place (the branch's planner sees
them as arguments).  It runs after elementwise fusion and before epilogue fusion, which
then runs inside each branch: a join (``a + b`` after the branches' last products) fused
as the epilogue of one branch's product would pull that product out of its branch.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .. import executor, parallel
from ..ir import Graph, Node
from . import fuse_epilogue, memory_plan

FLOPS_PER_US = 5e4      # 50 GFLOP/s: a product on one core (AVX2 FMA or AVX-512)
BYTES_PER_US = 2e4      # 20 GB/s read + written by one core
NODE_US = 2.0           # the executor's Python line and the op's checks
GRAIN_US = 25.0         # work per thread below which a kernel stays on fewer threads
SCALING = 0.85          # what each extra intra-op thread adds
REGION_US = 30.0        # handing a branch to the pool and waiting for it
MIN_BRANCH_US = 100.0   # smaller branches are not worth a hand-off
MIN_GAIN = 1.05         # predicted in-order / parallel time
SPLIT_SLACK = 1.25      # a component heavier than this x the next branch is cut
MAX_KEPT_SHOWN = 12     # "kept in order" lines explain() shows per graph


def node_us(n: Node) -> float:
    """Estimated time of node `n` at one thread, in microseconds, from its shapes."""
    if n.is_view:
        return NODE_US
    nbytes = sum(v.nbytes for v in n.inputs) + sum(v.nbytes for v in n.outputs)
    return NODE_US + _flops(n) / FLOPS_PER_US + nbytes / BYTES_PER_US


def _op_flops(fn, ins: list, outs: list, attrs: dict) -> float:
    try:
        return float(fn.flops([tuple(v.shape) for v in ins], [tuple(v.shape) for v in outs],
                              attrs))
    except Exception:  # noqa: BLE001 - an estimate: one per output element
        return float(sum(int(v.nbytes // max(1, v.dtype.itemsize)) for v in outs))


def _flops(n: Node) -> float:
    k = n.kernel
    if k is None:
        return _op_flops(n.fn, n.inputs, n.outputs, n.attrs)
    inner = getattr(k, "nodes", None)
    if inner is not None:  # a fused elementwise group
        return sum(_op_flops(m.fn, m.inputs, m.outputs, m.attrs) for m in inner)
    if getattr(k, "epi", None) is not None:  # product + epilogue
        prod = _op_flops(k.fn, n.inputs[:k.n], n.outputs[:1], k.attrs)
        return prod + sum(_op_flops(m.fn, m.inputs, m.outputs, m.attrs)
                          for m in getattr(k.epi, "nodes", []))
    return float(sum(int(v.nbytes // max(1, v.dtype.itemsize)) for v in n.outputs))


def at_threads(us: float, nt: int) -> float:
    """Modelled time of a node of `us` (one thread) given `nt` intra-op threads."""
    usable = max(1.0, min(float(nt), us / GRAIN_US))
    return us / (1.0 + (usable - 1.0) * SCALING)


class _Planner:
    def __init__(self, nodes: list, nt: int, width: int, force: bool) -> None:
        self.cost = {id(n): node_us(n) for n in nodes}
        self.nt, self.width, self.force = nt, width, force
        self._pos = {id(n): i for i, n in enumerate(nodes)}  # the graph's order
        self.decisions: list = []

    # -- structure ------------------------------------------------------------------------
    def schedule(self, nodes: list) -> list:
        """`nodes` (topologically ordered, convex) as a list of nodes and regions (lists
        of branches, each a list of nodes)."""
        n = len(nodes)
        if n < 2:
            return list(nodes)
        pos = {id(x): i for i, x in enumerate(nodes)}
        preds = [{pos[id(v.producer)] for v in x.inputs
                  if v.producer is not None and id(v.producer) in pos} for x in nodes]
        anc = [0] * n
        for i in range(n):
            for p in preds[i]:
                anc[i] |= anc[p] | (1 << p)
        desc = [0] * n
        for i in range(n - 1, -1, -1):
            for p in preds[i]:
                desc[p] |= desc[i] | (1 << i)
        full = (1 << n) - 1
        out: list = []
        seg: list = []
        for i in range(n):
            if anc[i] | desc[i] | (1 << i) == full:
                out += self._segment(seg, preds, nodes)
                seg = []
                out.append(nodes[i])
            else:
                seg.append(i)
        out += self._segment(seg, preds, nodes)
        return out

    def _segment(self, seg: list, preds: list, nodes: list) -> list:
        if len(seg) < 2:
            return [nodes[i] for i in seg]
        parent = {i: i for i in seg}

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in seg:
            for p in preds[i]:
                if p in parent:
                    parent[find(i)] = find(p)
        comps: dict = {}
        for i in seg:
            comps.setdefault(find(i), []).append(nodes[i])
        if len(comps) < 2:
            return [nodes[i] for i in seg]
        return self._region(list(comps.values()))

    def _region(self, comps: list) -> list:
        us = [sum(self.cost[id(x)] for x in c) for c in comps]
        k = min(self.width, len(comps))
        bins: list = [[] for _ in range(k)]
        bus = [0.0] * k
        members: list = [[] for _ in range(k)]
        for j in sorted(range(len(comps)), key=lambda j: -us[j]):
            b = min(range(k), key=lambda b: bus[b])
            bins[b] += comps[j]
            bus[b] += us[j]
            members[b].append(j)
        rest: list = []
        heavy = max(range(k), key=lambda b: bus[b])
        second = max(bus[b] for b in range(k) if b != heavy)
        if len(members[heavy]) == 1 and bus[heavy] > SPLIT_SLACK * second:
            comp = comps[members[heavy][0]]
            acc, cut = 0.0, 0
            while cut < len(comp) and acc + self.cost[id(comp[cut])] / 2 <= second:
                acc += self.cost[id(comp[cut])]
                cut += 1
            cut = max(cut, 1)
            bins[heavy], rest = comp[:cut], comp[cut:]
            bus[heavy] = sum(self.cost[id(x)] for x in bins[heavy])
        branches = [b for b in bins if b]
        seq = [x for b in branches for x in b]
        ok, why = self._worth(branches, seq)
        if not ok:
            self.decisions.append(f"kept in order: {len(comps)} independent parts "
                                  f"({', '.join(_us(u) for u in sorted(us, reverse=True))}): "
                                  f"{why}")
            # the rest of a cut component may still hold parallel parts of its own
            head = sorted(seq, key=lambda x: self._pos[id(x)])
            return head + self.schedule(rest)
        for b in branches:
            b.sort(key=lambda x: self._pos[id(x)])
        return [(branches, why)] + self.schedule(rest)

    def _worth(self, branches: list, seq: list) -> tuple[bool, str]:
        if self.force:
            return True, "TINYFW_INTEROP=force"
        bus = [sum(self.cost[id(x)] for x in b) for b in branches]
        if min(bus) < MIN_BRANCH_US:
            return False, f"a branch under {_us(MIN_BRANCH_US)}"
        nt = max(2, self.nt)
        t_seq = sum(at_threads(self.cost[id(x)], nt) for x in seq)
        ts = parallel.split_threads(nt, bus)
        t_par = max(sum(at_threads(self.cost[id(x)], t) for x in b)
                    for b, t in zip(branches, ts)) + REGION_US
        if t_seq < MIN_GAIN * t_par:
            return False, (f"predicted {_us(t_seq)} in order vs {_us(t_par)} in parallel "
                           f"at {nt} threads")
        return True, f"predicted {_us(t_seq)} -> {_us(t_par)} at {nt} threads"


def _us(u: float) -> str:
    return f"{u / 1000:.2f} ms" if u >= 1000 else f"{u:.0f} us"


def _hoist_views(branch: list) -> tuple[list, list] | None:
    """Views of values from outside `branch` move before the region (their outputs would
    alias another branch's input); None when one cannot (it also reads a branch value)."""
    produced: set = set()
    hoisted, kept = [], []
    for n in branch:
        if n.is_view and n.inputs and n.inputs[0].id not in produced:
            if any(v.id in produced for v in n.inputs):
                return None
            hoisted.append(n)
            continue
        kept.append(n)
        produced.update(v.id for v in n.outputs)
    return hoisted, kept


def _collapse(graph: Graph, branches: list, B, passes: tuple, force: bool,
              later_reads: set) -> tuple[list, Node] | str:
    """(hoisted views, region node) for `branches`, or why they cannot form one."""
    hoisted: list = []
    kept_branches = []
    for b in branches:
        r = _hoist_views(b)
        if r is None:
            return "a view in a branch reads both a branch value and an outside one"
        if not r[1]:
            return "a branch holds only views of outside values"
        hoisted += r[0]
        kept_branches.append(r[1])
    region_inputs: list = []
    index: dict = {}
    made = []
    outs_all: list = []
    for b in kept_branches:
        produced = {v.id for n in b for v in n.outputs}
        ext = []
        for n in b:
            for v in n.inputs:
                if v.id not in produced and v.kind != "const" and v not in ext:
                    ext.append(v)
        outs = [v for n in b for v in n.outputs if v.id in later_reads]
        if not outs:
            return "a branch computes nothing read after it"
        sub = Graph()
        sub.nodes, sub.inputs, sub.outputs = list(b), ext, outs
        if "fuse_epilogue" in passes:
            fuse_epilogue.run(sub, B)
        memory_plan.run(sub, "memory_plan" in passes)
        run = executor.build(sub, B, ext)
        for v in ext:
            if v.id not in index:
                index[v.id] = len(region_inputs)
                region_inputs.append(v)
        made.append((sub, run, [index[v.id] for v in ext], outs))
        outs_all += outs
    brs = [parallel.Branch(sub, run, idx, sum(node_us(n) for n in sub.nodes))
           for sub, run, idx, _ in made]
    fresh = all(memory_plan._fresh(v.producer) for v in outs_all)
    region = parallel.ParallelRegion(brs, force=force, fresh=fresh)
    node = Node(f"Parallel[{len(brs)}]", None, region_inputs, {}, list(outs_all), kernel=region)
    for v in outs_all:
        v.producer = node
    return hoisted, node


def measure(node: Node, repeat: int = 5) -> tuple[float, float]:
    """Median seconds of the region node's kernel on random inputs of its inputs' shapes,
    (in order, in parallel), interleaved after a warm-up of each."""
    rng = np.random.default_rng(0)
    args = []
    for v in node.inputs:
        dt = np.dtype(v.dtype)
        a = rng.standard_normal(v.shape).astype(dt) if dt.kind == "f" else np.zeros(v.shape, dt)
        args.append(a)  # (zeros for integers: any index is in range)
    region = node.kernel
    times: dict = {True: [], False: []}
    try:
        for k in range(repeat + 1):
            for in_order in (True, False):
                region.in_order = in_order
                t0 = time.perf_counter()
                region(*args)
                if k:
                    times[in_order].append(time.perf_counter() - t0)
    finally:
        region.in_order = False
    return float(np.median(times[True])), float(np.median(times[False]))


def run(graph: Graph, backend, passes: tuple = ("fuse_epilogue", "memory_plan")) -> dict:
    """Replace independent branches worth running at once by parallel region nodes."""
    mode = os.environ.get("TINYFW_INTEROP", "1").strip().lower()
    if mode not in ("0", "1", "force"):
        raise ValueError(f"TINYFW_INTEROP: expected 0, 1 or force, got {mode!r}")
    if mode == "0":
        return {"regions": 0, "decisions": ["off: TINYFW_INTEROP=0"]}
    if not parallel.supported():
        return {"regions": 0, "decisions": ["off: the C++ kernels cannot take a per-thread "
                                            "thread count (tinyfw._C not built or too old)"]}
    width = parallel.workers()
    if width < 2:
        return {"regions": 0, "decisions": ["off: TINYFW_INTEROP_WORKERS=1"]}
    from ...threads import get_num_threads

    nt = get_num_threads()
    # views of the graph's leaves (a backward's transposed weights and saved inputs) are
    # free and have no producer here: left in, they would be incomparable with every
    # node before their reader and hide every cut node; they go first instead
    here = {id(n) for n in graph.nodes}
    free: set = set()
    for n in graph.nodes:
        if n.is_view and all(v.producer is None or id(v.producer) not in here
                             or id(v.producer) in free for v in n.inputs):
            free.add(id(n))
    p = _Planner(graph.nodes, nt, width, mode == "force")
    items = [n for n in graph.nodes if id(n) in free] \
        + p.schedule([n for n in graph.nodes if id(n) not in free])
    reads = {v.id for n in graph.nodes for v in n.inputs} | {v.id for v in graph.outputs}
    nodes: list = []
    regions = 0
    for it in items:
        if isinstance(it, Node):
            nodes.append(it)
            continue
        it, why = it
        # a value is read after the region when a node outside this branch reads it
        later = set()
        inside = {id(x) for b in it for x in b}
        for n in graph.nodes:
            if id(n) not in inside:
                later.update(v.id for v in n.inputs)
        later |= {v.id for v in graph.outputs}
        got = _collapse(graph, it, backend, tuple(passes), mode == "force", later & reads)
        if isinstance(got, str):
            p.decisions.append(f"kept in order: {got}")
            nodes += sorted((x for b in it for x in b), key=lambda x: p._pos[id(x)])
            continue
        hoisted, node = got
        if mode != "force" and nt >= 2:
            t_seq, t_par = measure(node)
            timed = (f"measured {_us(t_seq * 1e6)} in order vs {_us(t_par * 1e6)} in "
                     f"parallel at {nt} threads")
            if t_seq < MIN_GAIN * t_par:
                p.decisions.append(f"kept in order: {timed}")
                nodes += sorted((x for b in it for x in b), key=lambda x: p._pos[id(x)])
                continue
            why = f"{why}; {timed}"
        nodes += hoisted
        nodes.append(node)
        regions += 1
        threads = parallel.split_threads(max(2, nt), [b.cost_us for b in node.kernel.branches])
        p.decisions.append(f"parallel region {regions - 1}: " + " || ".join(
            f"[{b.describe()}, {t} thread{'s' * (t != 1)}]"
            for b, t in zip(node.kernel.branches, threads)) + f": {why}")
    _check_order(nodes, graph)
    graph.nodes = nodes
    shown, kept, hidden = [], 0, 0  # a large graph has many small independent parts
    for d in p.decisions:
        if d.startswith("kept"):
            kept += 1
            if kept > MAX_KEPT_SHOWN:
                hidden += 1
                continue
        shown.append(d)
    p.decisions = shown + ([f"... and {hidden} more kept in order"] if hidden else [])
    if regions and nt < 2 and mode != "force":
        p.decisions.append("(the kernels have 1 thread now: the regions run in order until "
                           "tinyfw.set_num_threads(2) or more)")
    return {"regions": regions, "decisions": p.decisions}


def _check_order(nodes: list, graph: Graph) -> None:
    # (a backward graph's inputs are forward values: they have a producer, there)
    seen = {v.id for v in graph.leaves() + graph.inputs + graph.params + graph.grads}
    for n in nodes:
        for v in n.inputs:
            if v.producer is not None and v.id not in seen:
                raise RuntimeError(f"jit interop: {n.op} reads {v} before it is computed "
                                   "(a scheduling bug)")
        seen.update(v.id for v in n.outputs)
