"""Subgraph matching for the rewriter (tinyfw.jit.rewrite): find where a traced pattern
graph occurs in a traced forward graph.

A pattern is a small graph whose leaves are *placeholders* (the pattern function's
arguments, graph inputs of kind ``input``) and constants.  A match maps every pattern
node to a graph node with the same op (``Function`` class), the same attributes (minus
the rewrite's ``ignore_attrs``) and the same number of inputs and outputs, such that
dataflow agrees: a pattern edge from node a to node b is a graph edge between their
images.  A placeholder binds to any graph value, the same one wherever it occurs; a
pattern constant matches a graph constant of equal value (any size-1 constant when the
rewrite declares ``free_consts``).  Binary ops that declare ``commutative`` match with
their operands in either order (``sigmoid(x) * x`` is ``x * sigmoid(x)``).

Matching starts at the node producing the pattern's output (the *anchor*) and walks the
pattern upwards, backtracking over operand orders.  A match is then only accepted when
it is *closed*: no value computed inside it, other than the anchor's output, is read
outside it or is a graph output (replacing the subgraph would otherwise remove a value
someone still reads).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..backend import backend_of
from .ir import Graph, Node, Value
from .passes.cse import freeze as _freeze_attr


@dataclass
class Match:
    """One occurrence of a pattern: what a match filter and a replacement may inspect.

    ``values`` maps each placeholder name to the graph Value it binds (``.shape``,
    ``.dtype``, ``.kind``; a constant's array is ``.data``); ``nodes`` lists the matched
    graph nodes in the pattern's order (the anchor last); ``consts`` the graph constants
    matched by the pattern's constants, in the pattern's order (with ``free_consts``
    these are where scales and epsilons are read)."""

    rewrite: object
    values: dict
    nodes: list
    consts: list = field(default_factory=list)

    def node(self, op: str, k: int = 0) -> Node:
        """The k-th matched node whose op is `op` (e.g. ``match.node("Conv2d")``)."""
        found = [n for n in self.nodes if n.op == op]
        if len(found) <= k:
            raise KeyError(f"rewrite {self.rewrite.name}: the match has {len(found)} "
                           f"{op} node(s), asked for number {k}")
        return found[k]

    def const(self, k: int = 0) -> float:
        """The value of the k-th matched constant as a Python float."""
        return float(_host(self.consts[k].data).astype(np.float64).reshape(-1)[0])

    @property
    def anchor(self) -> Node:
        """The graph node that computed the pattern's output."""
        return self.nodes[-1]


class _State:
    """Bindings during one attempt: pattern node id -> graph node, placeholder id ->
    graph value, pattern const id -> graph const.  Copied on write: a failed branch of the
    backtracking leaves the caller's state as it was."""

    __slots__ = ("nodes", "vals", "consts")

    def __init__(self, nodes=None, vals=None, consts=None) -> None:
        self.nodes = nodes or {}
        self.vals = vals or {}
        self.consts = consts or {}

    def with_node(self, pn: Node, tn: Node) -> "_State":
        return _State({**self.nodes, id(pn): tn}, self.vals, self.consts)

    def with_val(self, pv: Value, tv: Value) -> "_State":
        return _State(self.nodes, {**self.vals, pv.id: tv}, self.consts)

    def with_const(self, pv: Value, tv: Value) -> "_State":
        return _State(self.nodes, self.vals, {**self.consts, pv.id: tv})


def _n_main(n: Node) -> int:
    """Outputs of a node without the ctx arrays the tracer adds for the backward."""
    return len(n.outputs) - len(n.ctx_outputs)


def _attrs_equal(a: dict, b: dict, ignore) -> bool:
    if set(a) != set(b):
        return False
    return all(k in ignore or _freeze_attr(a[k]) == _freeze_attr(b[k]) for k in a)


def _host(a) -> np.ndarray:
    """A constant's array on the host (device constants are read back; only small ones
    are ever compared or read)."""
    return a if isinstance(a, np.ndarray) else np.asarray(backend_of(a).to_host(a))


def _const_equal(pv: Value, tv: Value, free: bool) -> bool:
    pa, ta = np.asarray(pv.data), tv.data
    if free:
        return pa.size == 1 and int(np.prod(ta.shape)) == 1 and len(ta.shape) == pa.ndim
    if tuple(ta.shape) != pa.shape or pa.size > 1 << 16:
        return False
    try:
        return bool(np.array_equal(pa.astype(np.float64), _host(ta).astype(np.float64)))
    except (TypeError, ValueError):
        return False


class Matcher:
    """Finds closed, non-overlapping occurrences of one traced pattern in a graph."""

    def __init__(self, pattern: Graph, out: Value, ignore_attrs, free_consts: bool) -> None:
        self.pattern, self.out = pattern, out
        self.anchor = out.producer
        self.ignore = frozenset(ignore_attrs)
        self.free = free_consts
        self.placeholders = list(pattern.inputs)
        # the pattern's constants in trace order (Match.consts follows it)
        self.pconsts = sorted((v for v in pattern.leaves() if v.kind == "const"),
                              key=lambda v: v.id)

    # -- the recursive walk (generators: each yields every consistent extension) -----------
    def _node(self, pn: Node, tn: Node, st: _State):
        seen = st.nodes.get(id(pn))
        if seen is not None:
            if seen is tn:
                yield st
            return
        if tn.fn is not pn.fn or tn.kernel is not None or len(tn.inputs) != len(pn.inputs) \
                or tn.n_attr_inputs != pn.n_attr_inputs or _n_main(tn) != _n_main(pn) \
                or not _attrs_equal(pn.attrs, tn.attrs, self.ignore):
            return
        if any(t is tn for t in st.nodes.values()):
            return  # two pattern nodes cannot share one graph node
        st = st.with_node(pn, tn)
        orders = [list(tn.inputs)]
        if getattr(pn.fn, "commutative", False) and len(tn.inputs) == 2 \
                and tn.inputs[0] is not tn.inputs[1]:
            orders.append(list(tn.inputs[::-1]))
        for tins in orders:
            yield from self._inputs(pn.inputs, tins, 0, st)

    def _inputs(self, pins: list, tins: list, i: int, st: _State):
        if i == len(pins):
            yield st
            return
        for st2 in self._value(pins[i], tins[i], st):
            yield from self._inputs(pins, tins, i + 1, st2)

    def _value(self, pv: Value, tv: Value, st: _State):
        if pv.kind == "input":  # a placeholder: binds once, then must agree
            bound = st.vals.get(pv.id)
            if bound is None:
                yield st.with_val(pv, tv)
            elif bound is tv:
                yield st
            return
        if pv.kind == "const":
            if tv.kind == "const" and _const_equal(pv, tv, self.free):
                yield st.with_const(pv, tv)
            return
        if tv.producer is None or pv.producer is None:
            return
        if pv.producer.outputs.index(pv) != tv.producer.outputs.index(tv):
            return
        yield from self._node(pv.producer, tv.producer, st)

    # -- whole-graph search -------------------------------------------------------------------
    def find(self, graph: Graph, rewrite, claimed: set) -> list[Match]:
        """Every closed match, in graph order, that touches no node in `claimed` (the
        nodes of earlier matches of this round); their nodes are added to `claimed`."""
        consumers = graph.consumers()
        out_ids = {v.id for v in graph.outputs}
        k = self.anchor.outputs.index(self.out)
        found = []
        for tn in list(graph.nodes):
            if tn.fn is not self.anchor.fn or id(tn) in claimed:
                continue
            for st in self._node(self.anchor, tn, _State()):
                m = self._accept(st, tn.outputs[k], consumers, out_ids, claimed, rewrite)
                if m is not None:
                    claimed.update(id(n) for n in m.nodes)
                    found.append(m)
                    break
        return found

    def _accept(self, st: _State, out: Value, consumers: dict, out_ids: set, claimed: set,
                rewrite) -> Match | None:
        inside = {id(n) for n in st.nodes.values()}
        if inside & claimed:
            return None
        for n in st.nodes.values():
            for v in n.outputs:
                if v is out:
                    continue
                if v.id in out_ids or any(id(c) not in inside for c in consumers.get(v.id, ())):
                    return None  # an interior value read outside the subgraph
        for v in st.vals.values():
            if v.producer is not None and id(v.producer) in inside:
                return None  # a placeholder bound to a value the subgraph computes
        order = [n for n in self.pattern.nodes if id(n) in st.nodes]
        names = getattr(rewrite, "arg_names", None) or [f"arg{i}" for i in
                                                        range(len(self.placeholders))]
        m = Match(rewrite, {nm: st.vals[p.id] for nm, p in zip(names, self.placeholders)},
                  [st.nodes[id(n)] for n in order],
                  [st.consts[c.id] for c in self.pconsts if c.id in st.consts])
        # the anchor last, whatever the pattern's trace order
        m.nodes.remove(st.nodes[id(self.anchor)])
        m.nodes.append(st.nodes[id(self.anchor)])
        return m
