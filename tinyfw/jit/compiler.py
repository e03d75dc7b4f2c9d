"""Trace → joint graph → passes → forward/backward partitions → executors.

The joint graph holds the forward ops and the backward ops (traced by running eager's
own backward formulas on placeholder output gradients).  Passes that only remove work
(DCE, CSE, constant folding, simplification) run on the joint graph, so that the backward
reuses forward values; then it is cut in two: the forward partition computes what the
outputs need, plus the values the backward reads ("saved"); the backward partition is
everything else.  Fusion and memory planning run per partition, where saved values are
fixed boundaries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


from .. import dispatch
from ..backend._cpu_bind import NO_KERNEL_DTYPES
from ..backend import backend_of
from ..autograd.engine import grad as _autograd_grad
from ..autograd.function import GradMode
from ..tensor import Tensor
from . import executor
from .ir import Graph, Value
from .passes import (const_fold, cse, dce, fuse_elementwise, fuse_epilogue, interop, layout,
                     memory_plan, prepack, shrink_saved, simplify)
from .tracer import TraceError, Tracer

DEFAULT_PASSES = ("rewrite", "dce", "cse", "const_fold", "simplify", "shrink_saved", "layout",
                  "fuse_elementwise", "fuse_epilogue", "interop", "memory_plan")
# passes whose kernels and buffers are CPU code (generated C, numpy arena buffers): a
# graph on another device runs its ops' own forwards through that device's backend
CPU_ONLY_PASSES = ("layout", "fuse_elementwise", "fuse_epilogue", "memory_plan", "interop",
                   "prepack")


@dataclass
class Traced:
    """What tracing produced: the joint graph and how its ends map to Python objects."""

    graph: Graph
    n_out: int                 # the first n_out graph outputs are the function's outputs
    out_struct: Any            # how to rebuild the returned object from the output list
    diff_outputs: list         # indices of outputs that carry gradients (grad placeholders)
    wrt: list                  # leaf Values that receive gradients, in order
    params: list               # the live Tensors behind graph.params, in order
    # graph outputs n_out .. n_out+len(state)-1: per entry (Tensor to copy the value back
    # into after each call, or None for a generator's last draw; version bumps per call)
    state: list = field(default_factory=list)
    rewrites: list = field(default_factory=list)  # what the subgraph rewrites did (explain)


def _flatten(out, op: str) -> tuple[list, Any]:
    if isinstance(out, Tensor):
        return [out], None
    if isinstance(out, (tuple, list)):
        flat, struct = [], []
        for o in out:
            f, s = _flatten(o, op)
            struct.append((len(f), s))
            flat += f
        return flat, (type(out), struct)
    raise TraceError(f"{op}: the traced function must return a Tensor or a tuple/list of "
                     f"Tensors, got {type(out).__name__}")


def unflatten(flat: list, struct):
    """Rebuild the returned object from the flat output list."""
    if struct is None:
        return flat[0]
    typ, parts = struct
    out, i = [], 0
    for n, s in parts:
        out.append(unflatten(flat[i:i + n], s))
        i += n
    return typ(out)


def trace_graph(fn, args: tuple, live: dict, op: str = "jit.trace", rewriter=None) -> Traced:
    """Run `fn(*args)` under a Tracer; trace its backward too when grad mode needs it.
    With a `rewriter` (jit.rewrite.Rewriter) the forward is rewritten first and, when a
    rewrite fired, replayed under a new trace that derives the backward (jit/rewrite.py)."""
    if rewriter is not None and any(getattr(ic, "rewrites_inputs", False)
                                    for ic in dispatch.interceptors()):
        rewriter = None  # autocast: its casts are in the graph, a replay would add more
    if rewriter is not None:
        rewriter.prepare()
    g = Graph()
    tracer = Tracer(g, live)
    # inputs with an eager history (a non-leaf x) enter as fresh leaves on the same array,
    # so tracing the backward stops at them instead of re-running (or, when the history
    # was already freed by a backward, failing on) the caller's graph
    args = tuple(Tensor._make(a._data, True, None) if isinstance(a, Tensor)
                 and a.grad_fn is not None else a for a in args)
    with tracer:
        for a in args:
            if isinstance(a, Tensor):
                v = tracer.arrays.get(id(a._data))
                if v is not None and v[0] is a._data:
                    raise TraceError(f"{op}: the same tensor is passed twice as an input")
                tracer.new_leaf(a, "input")
        out = fn(*args)
        flat, struct = _flatten(out, op)
        out_vals = [tracer.lookup(t) for t in flat]
        matches = None
        if rewriter is not None:
            g.outputs = out_vals + [v for _, v, _ in tracer.state_outputs()]
            dispatch.pop_interceptor(tracer)  # a match filter's own ops are not the model's
            try:
                matches = rewriter.find(g)
            finally:
                dispatch.push_interceptor(tracer)
        diff = [i for i, t in enumerate(flat) if t._rg and GradMode.enabled and not matches]
        wrt_vals: list[Value] = []
        wrt_tensors: list[Tensor] = []
        grad_vals: list = []
        if diff:
            for v in g.inputs:
                if v.data._rg:
                    wrt_vals.append(v)
                    wrt_tensors.append(v.data)
            for v, t in tracer.live_values:
                if t._rg:
                    wrt_vals.append(v)
                    wrt_tensors.append(t)
            gouts = []
            for i in diff:
                t = flat[i]
                gt = Tensor._make(backend_of(t._data).full(t._data.shape, 1, t._data.dtype))
                tracer.new_leaf(gt, "grad")
                gouts.append(gt)
            grads = _autograd_grad([flat[i] for i in diff], wrt_tensors, gouts,
                                   retain_graph=True, allow_unused=True)
            grad_vals = [None if gr is None else tracer.lookup(gr) for gr in grads]
        tracer.check_unmodified()
        state = tracer.state_outputs()
    if matches:
        from .replay import retrace_rewritten

        return retrace_rewritten(g, tracer, matches, rewriter, len(out_vals), struct, state,
                                 lambda f: trace_graph(f, args, live, op))
    g.outputs = out_vals + [v for _, v, _ in state] + [v for v in grad_vals if v is not None]
    wrt = [(w, gv is not None) for w, gv in zip(wrt_vals, grad_vals)]
    return Traced(g, len(out_vals), struct, diff, wrt,
                  [v.data for v in g.params], [(t, bumps) for t, _, bumps in state])


@dataclass
class Compiled:
    """Executable forward and backward for one input signature, plus pass statistics."""

    forward: Any
    backward: Any
    n_out: int
    n_saved: int
    out_struct: Any
    diff_outputs: list
    wrt_has_grad: list          # per wrt entry: does the backward produce its gradient
    wrt_index: list             # per wrt entry: ("input", i) or ("param", j)
    params: list
    fwd_graph: Graph
    bwd_graph: Graph | None
    stats: list = field(default_factory=list)
    state: list = field(default_factory=list)  # as Traced.state: forward outputs after n_out
    backend: Any = None                         # the backend module the executors call


def _ancestors(outputs: list) -> set:
    seen: set = set()
    stack = [v.producer for v in outputs if v.producer is not None]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.extend(v.producer for v in n.inputs if v.producer is not None)
    return seen


def _partition(joint: Graph, n_out: int, shrink: bool = False
               ) -> tuple[Graph, Graph | None, list, int]:
    fwd_out = joint.outputs[:n_out]
    bwd_out = joint.outputs[n_out:]
    in_fwd = _ancestors(fwd_out)
    avoided = 0
    if shrink and bwd_out:
        moved, avoided = shrink_saved.select(joint, in_fwd, fwd_out)
        in_fwd |= moved
    fwd_nodes = [n for n in joint.nodes if id(n) in in_fwd]
    bwd_nodes = [n for n in joint.nodes if id(n) not in in_fwd]
    saved: dict = {}
    for n in bwd_nodes:
        for v in n.inputs:
            if v.kind != "const" and v.kind != "grad" and (v.producer is None
                                                             or id(v.producer) in in_fwd):
                saved.setdefault(v.id, v)
    for v in bwd_out:
        if v.kind not in ("const", "grad") and (v.producer is None or id(v.producer) in in_fwd):
            saved.setdefault(v.id, v)
    saved_list = list(saved.values())
    f = Graph()
    f.nodes, f.inputs, f.params = fwd_nodes, list(joint.inputs), list(joint.params)
    f.outputs = list(fwd_out) + saved_list
    if not bwd_out:
        return f, None, [], 0
    b = Graph()
    b.nodes, b.inputs, b.grads = bwd_nodes, saved_list, list(joint.grads)
    b.outputs = list(bwd_out)
    return f, b, saved_list, avoided


def _count(g: Graph) -> int:
    return len(g.nodes)


def optimize(tr: Traced, backend=None, passes=DEFAULT_PASSES) -> Compiled:
    """Run the passes and build the executors; `stats` records what each pass did."""
    B = backend or dispatch.get_backend()
    g = tr.graph
    if getattr(B, "_needs_ref", None) is not None and any(
            v.dtype in NO_KERNEL_DTYPES for n in g.nodes for v in (*n.inputs, *n.outputs)):
        B = B._ref  # no C++ kernel takes uint8/int16 (backend/_cpu_bind.py): ref runs the graph
    stats: list = []

    def step(name, where, graph, fn, *a):
        before = _count(graph)
        info = fn(graph, *a)
        stats.append({"pass": name, "graph": where, "nodes_before": before,
                      "nodes_after": _count(graph), **info})

    stats += tr.rewrites
    stats.append({"pass": "trace", "graph": "joint", "nodes_before": _count(g),
                  "nodes_after": _count(g)})
    if "dce" in passes:
        step("dce", "joint", g, dce.run)
    if "cse" in passes:
        step("cse", "joint", g, cse.run)
    if "const_fold" in passes:
        step("const_fold", "joint", g, const_fold.run, B)
    if "simplify" in passes:
        step("simplify", "joint", g, simplify.run)
        step("dce", "joint", g, dce.run)
    if "prepack" in passes:  # jit.freeze: constant weights re-laid-out once
        step("prepack", "joint", g, prepack.run, B)
    # state outputs belong to the forward: they are computed by every call
    fwd, bwd, saved, avoided = _partition(g, tr.n_out + len(tr.state), "shrink_saved" in passes)
    stats.append({"pass": "shrink_saved", "graph": "joint", "nodes_before": _count(g),
                  "nodes_after": _count(g), "saved_values": len(saved),
                  "saved_bytes": int(sum(v.nbytes for v in saved)),
                  "bytes_saved": int(avoided)})
    for where, part in (("forward", fwd), ("backward", bwd)):
        if part is None:
            continue
        if "layout" in passes and bwd is None:  # inference only: no NHWC backward kernels
            step("layout", where, part, layout.run, B)
        if "fuse_elementwise" in passes:
            step("fuse_elementwise", where, part, fuse_elementwise.run)
        if "interop" in passes:  # independent branches -> parallel regions (own arenas)
            step("interop", where, part, interop.run, B, passes)
        if "fuse_epilogue" in passes:
            step("fuse_epilogue", where, part, fuse_epilogue.run, B)
        step("memory_plan", where, part, memory_plan.run, "memory_plan" in passes)
    f_run = executor.build(fwd, B, fwd.inputs + fwd.params)
    b_run = None
    if bwd is not None:
        b_run = executor.build(bwd, B, bwd.inputs + bwd.grads)
        # the same graph adding its gradients into existing .grad arrays (api._GraphBackward)
        b_run.accumulate = executor.build(bwd, B, bwd.inputs + bwd.grads, accumulate=True)
        b_run.out_meta = [(tuple(v.shape), np.dtype(v.dtype)) for v in bwd.outputs]
    wrt_index = []
    for v, _ in tr.wrt:
        if v.kind == "input":
            wrt_index.append(("input", tr.graph.inputs.index(v)))
        else:
            wrt_index.append(("param", tr.graph.params.index(v)))
    return Compiled(f_run, b_run, tr.n_out, len(saved), tr.out_struct, tr.diff_outputs,
                    [h for _, h in tr.wrt], wrt_index, tr.params, fwd, bwd, stats, tr.state, B)
