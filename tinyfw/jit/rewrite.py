"""Subgraph rewrites: replace a pattern of ops by an equivalent, faster subgraph.

    def pattern(x):
        return x * tinyfw.sigmoid(x)

    def replacement(x):
        return tinyfw.nn.functional.silu(x)

    tinyfw.jit.register_rewrite(tinyfw.jit.Rewrite(pattern, replacement, name="silu"))
    f = tinyfw.jit.trace(model, (x,))            # or trace(..., rewrites=[...]) per trace

Both functions are traced (on `example_inputs`, default: float32 tensors of shape (4, 4))
into small graphs over the same placeholders; the matcher (rewrite_match.py) finds the
pattern in the traced forward graph, by op, attributes and dataflow.  A replacement that
declares a keyword-only ``match`` parameter receives the `Match`, to read what the
pattern left free (``ignore_attrs``: a convolution's stride; ``free_consts``: an epsilon).
``match_filter(match) -> bool`` may refuse a match after looking at its values' shapes
and dtypes.

When rewrites run: at trace time, on the forward graph only, before any other pass (so
before fusion).  The replacement is traced on the very arrays the trace computed, and the
rewritten forward is then *replayed* eagerly under a new tracer (compiler.trace_graph):
the backward graph comes from the autograd formulas of the replacement ops, so gradients
stay exact.  Rewrites are off under autocast (its casts are already in the graph and the
replay would insert them twice) and when ``"rewrite"`` is not among the passes.

Every match is reported by ``jit.explain`` (a ``rewrite`` line per match: the rewrite's
name and the nodes it replaced).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

import numpy as np

from ..autograd.function import no_grad
from ..tensor import Tensor, _copy_array
from .ir import Graph, Node
from .rewrite_match import Match, Matcher
from .tracer import TraceError, Tracer

__all__ = ["Rewrite", "Match", "register_rewrite", "unregister_rewrite", "registered_rewrites"]

MAX_ROUNDS = 8  # a rewrite may expose another (neg(neg(neg(neg x)))); bounded for safety


def _example(spec, k: int) -> Tensor:
    """An example tensor for placeholder k, on the CPU (a pattern is ops and attributes,
    whatever the device): given, or float32 of the given shape, with values in
    [0.5, 1.5] (so log/rsqrt/division in a pattern warn about nothing)."""
    if isinstance(spec, Tensor):
        return spec.detach().to("cpu")
    shape = (4, 4) if spec is None else tuple(spec)
    rs = np.random.RandomState(1234 + k)  # not tinyfw's generator: tracing checks it
    return Tensor._make(rs.uniform(0.5, 1.5, shape).astype(np.float32))


def _trace_small(fn: Callable, tensors: list, what: str, kwargs: dict | None = None):
    """Trace `fn(*tensors)` (no grad) into a Graph; returns (graph, output Value, value
    id -> the array the trace computed for it)."""
    g = Graph()
    tracer = Tracer(g, {})
    with no_grad(), tracer:
        for t in tensors:
            tracer.new_leaf(t, "input")
        out = fn(*tensors, **(kwargs or {}))
        if not isinstance(out, Tensor):
            raise TypeError(f"{what} must return one Tensor, got {type(out).__name__}")
        v = tracer.lookup(out)
    g.outputs = [v]
    from .passes import dce

    dce.run(g)
    return g, v, {rec[1].id: rec[0] for rec in tracer.arrays.values()}


class Rewrite:
    """A pattern function, its replacement (same placeholders), an optional filter.

    `name` labels the rewrite in ``jit.explain``; `example_inputs` (Tensors or shapes, one
    per placeholder) are what both functions are traced on; `ignore_attrs` names op
    attributes the pattern leaves free (e.g. ``("stride", "padding")``) and
    `free_consts` lets each size-1 pattern constant match any size-1 constant; the
    replacement then reads them from its ``match`` keyword argument.  A registered
    rewrite with `freeze_only` runs only under jit.freeze (the batch-norm folding: it
    pays only when the folded weights are constants); passed to a trace's ``rewrites=``
    it runs there too.
    """

    def __init__(self, pattern: Callable, replacement: Callable,
                 match_filter: Callable[[Match], bool] | None = None, name: str | None = None,
                 example_inputs: Iterable | None = None, ignore_attrs: Iterable[str] = (),
                 free_consts: bool = False, freeze_only: bool = False) -> None:
        if not callable(pattern) or not callable(replacement):
            raise TypeError("Rewrite: pattern and replacement must be functions of tensors")
        self.pattern, self.replacement, self.match_filter = pattern, replacement, match_filter
        self.name = name or getattr(pattern, "__name__", "rewrite")
        params = [p for p in inspect.signature(pattern).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self.arg_names = [p.name for p in params]
        rsig = inspect.signature(replacement).parameters
        self.wants_match = "match" in rsig and rsig["match"].kind == inspect.Parameter.KEYWORD_ONLY
        n_rep = len([p for p in rsig.values()
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
        if n_rep != len(self.arg_names):
            raise TypeError(f"Rewrite {self.name}: the pattern takes {len(self.arg_names)} "
                            f"tensors ({', '.join(self.arg_names)}) but the replacement takes "
                            f"{n_rep}; both are functions of the same placeholders")
        ex = list(example_inputs) if example_inputs is not None else [None] * len(self.arg_names)
        if len(ex) != len(self.arg_names):
            raise TypeError(f"Rewrite {self.name}: {len(ex)} example inputs for "
                            f"{len(self.arg_names)} placeholders")
        self.examples = ex
        self.ignore_attrs, self.free_consts = tuple(ignore_attrs), free_consts
        self.freeze_only = freeze_only
        self._matcher: Matcher | None = None

    def prepare(self) -> Matcher:
        """Trace the pattern (once) and check that it can be matched."""
        if self._matcher is None:
            tensors = [_example(s, k) for k, s in enumerate(self.examples)]
            g, out, _ = _trace_small(self.pattern, tensors, f"Rewrite {self.name}: the pattern")
            if out.producer is None:
                raise ValueError(f"Rewrite {self.name}: the pattern computes nothing (it "
                                 "returns an argument or a constant); it needs at least one op")
            used = {v.id for n in g.nodes for v in n.inputs}
            for nm, v in zip(self.arg_names, g.inputs):
                if v.id not in used:
                    raise ValueError(f"Rewrite {self.name}: placeholder '{nm}' is not used by "
                                     "the pattern, so a match could not give it a value")
            for n in g.nodes:
                if n.fn is None or getattr(n.fn, "__name__", "") == "DrawSeed":
                    raise ValueError(f"Rewrite {self.name}: the pattern draws random numbers "
                                     f"({n.op}); random ops cannot be matched")
            self._matcher = Matcher(g, out, self.ignore_attrs, self.free_consts)
        return self._matcher

    def __repr__(self) -> str:
        return f"<tinyfw.jit.Rewrite {self.name}>"


# Tried in this order: a trace's own rewrites, then the user's registered ones, then the
# built-ins: the more specific pattern (a user's tanh written with exp) must get its
# nodes before a built-in takes a piece of it (exp(2x) - 1 into expm1).
_USER: list[Rewrite] = []
_BUILTIN: list[Rewrite] = []


def register_rewrite(rw: Rewrite, *, builtin: bool = False) -> Rewrite:
    """Add `rw` to the rewrites every trace applies (tried before the built-ins, after
    the ones registered earlier); returns it."""
    if not isinstance(rw, Rewrite):
        raise TypeError(f"register_rewrite: expected a tinyfw.jit.Rewrite, got "
                        f"{type(rw).__name__}")
    if any(r.name == rw.name for r in _USER + _BUILTIN):
        raise ValueError(f"register_rewrite: a rewrite named '{rw.name}' is already "
                         "registered; unregister_rewrite it first or pick another name")
    (_BUILTIN if builtin else _USER).append(rw)
    return rw


def unregister_rewrite(name: str) -> None:
    """Remove the registered rewrite called `name` (built-ins included)."""
    for lst in (_USER, _BUILTIN):
        for i, r in enumerate(lst):
            if r.name == name:
                del lst[i]
                return
    raise KeyError(f"unregister_rewrite: no rewrite named '{name}' (registered: "
                   f"{', '.join(r.name for r in _USER + _BUILTIN)})")


def registered_rewrites() -> list[Rewrite]:
    """The registered rewrites, in the order they are tried."""
    return _USER + _BUILTIN


class Rewriter:
    """The rewrites of one trace: the registry's (its freeze-only ones when `frozen`)
    plus the trace's own."""

    def __init__(self, extra: Iterable[Rewrite] = (), frozen: bool = False) -> None:
        self.rewrites = list(extra) + [r for r in _USER + _BUILTIN
                                       if frozen or not r.freeze_only]

    def prepare(self) -> None:
        """Trace every pattern before the trace starts (tracing cannot nest)."""
        for r in self.rewrites:
            r.prepare()

    def find(self, graph: Graph) -> list[Match]:
        """Closed, non-overlapping matches that their filters accept, rewrites in order."""
        claimed: set = set()
        out = []
        for r in self.rewrites:
            for m in r.prepare().find(graph, r, claimed):
                if r.match_filter is not None and not r.match_filter(m):
                    claimed.difference_update(id(n) for n in m.nodes)
                    continue
                out.append(m)
        return out

    def apply(self, graph: Graph, matches: list[Match], arrays: dict) -> list[str]:
        """Splice each match's replacement into `graph`; `arrays` maps value ids to the
        trace's arrays (extended with the replacement's).  Returns a line per match."""
        lines = []
        subst: dict = {}  # value id -> its replacement: later matches may have bound it
        for m in matches:
            line = _splice(graph, m, arrays, subst)
            if line is not None:
                lines.append(line)
        graph.toposort()
        from .passes import dce

        dce.run(graph)
        return lines


def _resolve(v, subst: dict):
    while v.id in subst:
        v = subst[v.id]
    return v


def _splice(graph: Graph, m: Match, arrays: dict, subst: dict) -> str:
    r = m.rewrite
    bound = [_resolve(m.values[nm], subst) for nm in r.arg_names]
    tensors, seen = [], set()
    for v in bound:
        a = arrays[v.id]
        if id(a) in seen:  # one value bound to two placeholders: distinct arrays to trace
            a = _copy_array(a)
        seen.add(id(a))
        tensors.append(Tensor._make(a))
    kw = {"match": m} if r.wants_match else {}
    sub, out, sub_arrays = _trace_small(r.replacement, tensors, f"Rewrite {r.name}: the replacement", kw)
    old = _anchor_out(m)
    if tuple(out.shape) != tuple(old.shape) or np.dtype(out.dtype) != np.dtype(old.dtype):
        raise TraceError(f"Rewrite {r.name}: the replacement returns {np.dtype(out.dtype)}"
                         f"{list(out.shape)} where the pattern matched "
                         f"{np.dtype(old.dtype)}{list(old.shape)}")
    vmap = {p.id: v for p, v in zip(sub.inputs, bound)}
    if out.producer is None and any(v is old for v in graph.outputs):
        # a graph output must not alias an input or constant (eager returns a new tensor)
        from ..ops.convert import Clone

        c = Node("Clone", Clone, [vmap[out.id]], {})
        c.outputs = [graph.new_value(out.shape, out.dtype, "node", c)]
        arrays[c.outputs[0].id] = _copy_array(arrays[vmap[out.id].id])
        graph.nodes.insert(graph.nodes.index(m.anchor), c)
        graph.replace_all_uses(old, c.outputs[0])
        subst[old.id] = c.outputs[0]
        return f"{r.name}: {'+'.join(n.op for n in m.nodes)} -> Clone"
    for leaf in sub.leaves():
        if leaf.kind == "param":
            raise TraceError(f"Rewrite {r.name}: the replacement reads a tensor that requires "
                             "grad from outside its arguments; pass it as a placeholder")
        if leaf.kind == "const":
            c = graph.new_value(leaf.shape, leaf.dtype, "const", data=leaf.data)
            vmap[leaf.id] = c
            arrays[c.id] = leaf.data
    new_nodes = []
    for n in sub.nodes:
        n.inputs = [vmap[v.id] for v in n.inputs]
        outs = []
        for v in n.outputs:
            w = graph.new_value(v.shape, v.dtype, "node", n)
            vmap[v.id] = w
            arrays[w.id] = sub_arrays[v.id]
            outs.append(w)
        n.outputs = outs
        new_nodes.append(n)
    pos = graph.nodes.index(m.anchor)
    graph.nodes[pos:pos] = new_nodes
    graph.replace_all_uses(old, vmap[out.id])
    subst[old.id] = vmap[out.id]
    return f"{r.name}: {'+'.join(n.op for n in m.nodes)} -> " \
           f"{'+'.join(n.op for n in new_nodes) or 'its input'}"


def _anchor_out(m: Match):
    """The anchor's output the pattern returned (its index in the pattern's anchor)."""
    mt = m.rewrite.prepare()
    return m.anchor.outputs[mt.anchor.outputs.index(mt.out)]

