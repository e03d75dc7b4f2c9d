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
                env[v.id] = o
        with no_grad():  # buffers written in place (running statistics), as traced
            for (t, bumps), v in zip(state, graph.outputs[n_out:]):
                if t is not None:
                    for _ in range(max(bumps, 1)):
                        t.copy_(get(v))
        return unflatten([get(v) for v in graph.outputs[:n_out]], struct)

    return replay
