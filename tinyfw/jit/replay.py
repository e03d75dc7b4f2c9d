"""Replaying a traced forward graph eagerly, so that tracing the replay yields a new
joint graph: the backward of a rewritten forward comes from the autograd formulas of the
ops that are in it now (tinyfw.jit.rewrite)."""
from __future__ import annotations

from collections.abc import Callable

from .. import dispatch
from ..autograd.function import no_grad
from ..ops.nn import DrawSeed
from ..tensor import Tensor
from .ir import Graph, fill_slots


def replay_function(graph: Graph, n_out: int, struct, state: list) -> Callable:
    """A function of the traced function's arguments that runs `graph`'s nodes through
    the dispatcher (each op's own forward, autograd recording as usual), writes the
    state outputs back into their buffers (`state`: Traced.state) and returns the first
    `n_out` outputs rebuilt as `struct` (compiler.unflatten)."""
    from .compiler import unflatten

    def replay(*args):
        env: dict = {}
        tensors = [a for a in args if isinstance(a, Tensor)]
        for v, t in zip(graph.inputs, tensors):
            env[v.id] = t

        def get(v) -> Tensor:
            t = env.get(v.id)
            if t is None:
                if v.kind == "param":
                    t = v.data  # the live tensor itself: the new trace captures it again
                elif v.kind == "const":
                    t = Tensor._make(v.data)
                else:
                    raise RuntimeError(f"jit replay: value {v} ({v.kind}) has no tensor")
                env[v.id] = t
            return t

        for n in graph.nodes:
            if n.fn is DrawSeed:  # its input only chains the draws; it takes none
                out = dispatch.apply(DrawSeed, (), n.attrs)
            else:
                k = n.n_attr_inputs
                main = n.inputs[:len(n.inputs) - k]
                attrs = fill_slots(n.attrs, [get(v)._data for v in n.inputs[len(main):]]) \
                    if k else n.attrs
                out = dispatch.apply(n.fn, tuple(get(v) for v in main), attrs)
            outs = out if type(out) is tuple else (out,)
            for v, o in zip(n.outputs[:len(n.outputs) - len(n.ctx_outputs)], outs):
                # an integer or bool result carries no gradient: eager detaches there
                # (Tensor.to an integer dtype), the op's Function on its own would not
                env[v.id] = o if not o._rg or o.dtype.is_floating_point else Tensor._make(o._data)
        with no_grad():  # buffers written in place (running statistics), as traced
            for (t, bumps), v in zip(state, graph.outputs[n_out:]):
                if t is not None:
                    for _ in range(max(bumps, 1)):
                        t.copy_(get(v))
        return unflatten([get(v) for v in graph.outputs[:n_out]], struct)

    return replay


def retrace_rewritten(g: Graph, tracer, matches: list, rewriter, n_out: int, struct,
                      state: list, retrace: Callable):
    """Apply the rewrites to the traced forward `g` (rounds until none matches), then
    trace its replay with `retrace(fn) -> Traced` (compiler.trace_graph on the call's
    arguments); the Traced returned carries the rewrite report for jit.explain.
    `tracer` is the finished first trace (its arrays feed the replacements), `state`
    its state outputs (tensor, value, version bumps)."""
    from .rewrite import MAX_ROUNDS

    arrays = {rec[1].id: rec[0] for rec in tracer.arrays.values()}
    for v in g.leaves():
        if v.kind == "param":
            arrays[v.id] = v.data._data
        elif v.kind == "const":
            arrays[v.id] = v.data
    before = len(g.nodes)
    lines: list = []
    for _ in range(MAX_ROUNDS):
        lines += rewriter.apply(g, matches, arrays)
        matches = rewriter.find(g)
        if not matches:
            break
    tr = retrace(replay_function(g, n_out, struct, [(t, b) for t, _, b in state]))
    tr.rewrites = [{"pass": "rewrite", "graph": "forward", "nodes_before": before,
                    "nodes_after": len(g.nodes), "matches": len(lines),
                    "decisions": [f"rewrote {x}" for x in lines]}]
    return tr
