"""The graph IR of traced mode: values (SSA), nodes (op, inputs, attrs, outputs), graphs.

A `Value` is produced once, by a node or as a graph leaf.  Leaves come in kinds:

- ``input``: a positional tensor argument of the traced function;
- ``param``: a live tensor captured by reference (a parameter, a module buffer, a tensor
  that requires grad): its current ``_data`` is read on every call, so optimizer updates
  are seen;
- ``const``: an array baked in at trace time (scalars, closed-over tensors that need no
  grad, as torch.jit.trace does); only these are folded;
- ``grad``: an incoming output gradient (backward graphs only).

A `Node` names its op by the `Function` subclass that eager uses (``fn``), so replaying it
calls the very same forward; fused nodes carry a `kernel` object instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class Value:
    """One SSA value: shape and dtype as seen at trace time, its producer or leaf kind."""

    id: int
    shape: tuple
    dtype: np.dtype
    kind: str = "node"  # input | param | const | grad | node
    producer: "Node | None" = None
    data: Any = None  # the array of a const; the Tensor of a param
    name: str = ""

    @property
    def nbytes(self) -> int:
        """Bytes of a dense array of this shape and dtype."""
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def __repr__(self) -> str:
        return f"%{self.name or self.id}"


@dataclass(eq=False)
class Node:
    """One op: `fn` (a Function subclass) or a fused `kernel`, inputs, attrs, outputs."""

    op: str
    fn: Any
    inputs: list
    attrs: dict
    outputs: list = field(default_factory=list)
    kernel: Any = None  # a fused kernel (jit.passes.fuse_*): callable on arrays
    # traced arrays the op takes as attributes (an index, pooling indices): the last
    # n_attr_inputs inputs; `attrs` holds AttrSlot placeholders where they go
    n_attr_inputs: int = 0
    # arrays the forward leaves on its ctx for the backward (layer norm's mean/rstd,
    # max-pool's indices): the last len(ctx_outputs) outputs, read back from the ctx
    ctx_outputs: tuple = ()

    def call_forward(self, backend, arrays: list, ctx=None):
        """Call the op's forward on `arrays` (one per input), attribute inputs put back."""
        k = self.n_attr_inputs
        attrs = self.attrs
        if k:
            pos = arrays[len(arrays) - k:]
            arrays = arrays[:len(arrays) - k]
            attrs = fill_slots(attrs, pos)
        return self.fn.forward(ctx if ctx is not None else _Ctx(), backend, *arrays, **attrs)

    @property
    def is_view(self) -> bool:
        """True when the output aliases the first input's memory."""
        return self.fn is not None and getattr(self.fn, "is_view", False)


class _Ctx:
    """A throwaway ctx for a forward called outside the dispatcher."""


@dataclass(frozen=True)
class AttrSlot:
    """Stands in an attribute for the k-th attribute input (as a Tensor or an array)."""

    k: int
    tensor: bool


def fill_slots(a, arrays):
    """`a` (attrs, possibly nested) with every AttrSlot replaced by its array."""
    if isinstance(a, AttrSlot):
        x = arrays[a.k]
        if a.tensor:
            from ..tensor import Tensor

            return Tensor._make(x)
        return x
    if isinstance(a, dict):
        return {k: fill_slots(v, arrays) for k, v in a.items()}
    if isinstance(a, (tuple, list)):
        return type(a)(fill_slots(v, arrays) for v in a)
    return a


class Graph:
    """A list of nodes in execution order between leaf values and output values."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.inputs: list[Value] = []   # positional inputs, in call order
        self.params: list[Value] = []   # live captured tensors
        self.grads: list[Value] = []    # incoming output gradients (backward graphs)
        self.outputs: list[Value] = []
        self._next_id = 0

    # -- construction -------------------------------------------------------------------
    def new_value(self, shape, dtype, kind: str = "node", producer=None, data=None) -> Value:
        """Create a value with a fresh id."""
        v = Value(self._next_id, tuple(shape), np.dtype(dtype), kind, producer, data)
        self._next_id += 1
        return v

    def add_node(self, op: str, fn, inputs: list, attrs: dict, out_meta: list) -> Node:
        """Append a node whose outputs have the (shape, dtype) pairs of `out_meta`."""
        node = Node(op, fn, list(inputs), dict(attrs))
        node.outputs = [self.new_value(s, d, "node", node) for s, d in out_meta]
        self.nodes.append(node)
        return node

    def leaves(self) -> list[Value]:
        """Every leaf value the nodes or outputs use (inputs, params, consts, grads)."""
        seen: dict = {}
        for n in self.nodes:
            for v in n.inputs:
                if v.producer is None:
                    seen.setdefault(v.id, v)
        for v in self.outputs:
            if v.producer is None:
                seen.setdefault(v.id, v)
        return list(seen.values())

    # -- rewriting helpers (used by the passes) --------------------------------------------
    def uses(self) -> dict:
        """Value id -> number of uses by nodes and outputs."""
        count: dict = {}
        for n in self.nodes:
            for v in n.inputs:
                count[v.id] = count.get(v.id, 0) + 1
        for v in self.outputs:
            count[v.id] = count.get(v.id, 0) + 1
        return count

    def consumers(self) -> dict:
        """Value id -> list of nodes that read it (a node appears once per use)."""
        out: dict = {}
        for n in self.nodes:
            for v in n.inputs:
                out.setdefault(v.id, []).append(n)
        return out

    def replace_all_uses(self, old: Value, new: Value) -> None:
        """Make every reader of `old` (nodes and outputs) read `new` instead."""
        for n in self.nodes:
            if any(v is old for v in n.inputs):
                n.inputs = [new if v is old else v for v in n.inputs]
        self.outputs = [new if v is old else v for v in self.outputs]

    def toposort(self) -> None:
        """Reorder nodes so each comes after its producers, otherwise keeping the order."""
        import heapq

        pos = {id(n): i for i, n in enumerate(self.nodes)}
        prod = {v.id: n for n in self.nodes for v in n.outputs}
        waiting = {id(n): len({id(prod[v.id]) for v in n.inputs if v.id in prod})
                   for n in self.nodes}
        users: dict = {}
        for n in self.nodes:
            for p in {id(prod[v.id]): prod[v.id] for v in n.inputs if v.id in prod}.values():
                users.setdefault(id(p), []).append(n)
        heap = [(pos[id(n)], id(n), n) for n in self.nodes if waiting[id(n)] == 0]
        heapq.heapify(heap)
        out = []
        while heap:
            _, _, n = heapq.heappop(heap)
            out.append(n)
            for u in users.get(id(n), []):
                waiting[id(u)] -= 1
                if waiting[id(u)] == 0:
                    heapq.heappush(heap, (pos[id(u)], id(u), u))
        if len(out) != len(self.nodes):
            raise RuntimeError("jit: the graph has a cycle (a fusion bug)")
        self.nodes = out

    def name_values(self) -> None:
        """Give values short readable names (x0.., p0.., c0.., g0.., v0..) for printing."""
        for prefix, vals in (("x", self.inputs), ("p", self.params), ("g", self.grads)):
            for i, v in enumerate(vals):
                v.name = f"{prefix}{i}"
        k = c = 0
        for v in self.leaves():
            if v.kind == "const":
                v.name = f"c{c}"
                c += 1
        for n in self.nodes:
            for v in n.outputs:
                v.name = f"v{k}"
                k += 1

    # -- printing -------------------------------------------------------------------------
    def __str__(self) -> str:
        self.name_values()
        lines = ["graph(" + ", ".join(f"{v}: {_ty(v)}" for v in
                                      self.inputs + self.params + self.grads) + "):"]
        for v in self.leaves():
            if v.kind == "const":
                lines.append(f"  {v} = const {_ty(v)}{_const_text(v)}")
        for n in self.nodes:
            outs = ", ".join(f"{v}: {_ty(v)}" for v in n.outputs)
            args = ", ".join(repr(v) for v in n.inputs)
            attrs = ", ".join(f"{k}={_short(a)}" for k, a in n.attrs.items())
            lines.append(f"  {outs} = {n.op}({', '.join(x for x in (args, attrs) if x)})")
        lines.append("  return " + ", ".join(repr(v) for v in self.outputs))
        return "\n".join(lines)

    def to_dot(self) -> str:
        """The graph in Graphviz DOT: leaves as ellipses, ops as boxes, edges for data."""
        self.name_values()
        out = ["digraph tinyfw {", "  rankdir=TB;", '  node [fontname="monospace"];']
        for v in self.leaves():
            out.append(f'  "{v}" [shape=ellipse, label="{v} ({v.kind})\\n{_ty(v)}"];')
        for i, n in enumerate(self.nodes):
            out.append(f'  n{i} [shape=box, label="{n.op}\\n'
                       + ", ".join(_ty(v) for v in n.outputs) + '"];')
            for v in n.inputs:
                src = f"n{self.nodes.index(v.producer)}" if v.producer is not None else f'"{v}"'
                out.append(f"  {src} -> n{i};")
        for j, v in enumerate(self.outputs):
            out.append(f'  out{j} [shape=doublecircle, label="out{j}"];')
            src = f"n{self.nodes.index(v.producer)}" if v.producer is not None else f'"{v}"'
            out.append(f"  {src} -> out{j};")
        out.append("}")
        return "\n".join(out)


def _ty(v: Value) -> str:
    return f"{np.dtype(v.dtype).name}{list(v.shape)}"


def _const_text(v: Value) -> str:
    a = v.data
    if isinstance(a, np.ndarray) and a.size <= 4:
        return " " + np.array2string(a.astype(np.float64) if a.dtype.kind == "V" else a,
                                     separator=",").replace("\n", "")
    return ""


def _short(a) -> str:
    s = repr(a)
    return s if len(s) <= 40 else s[:37] + "..."
