"""Pre-packing of constant operands (run by jit.freeze, after constant folding).

A *prepack hook* sees a node whose op it is registered for, with the node's constant
inputs (position -> array), and may return a replacement node computing the same
outputs from a re-laid-out constant (a conv filter in the layout the layout pass chose,
a GEMM operand in the order its packing routine reads fastest), or None to keep it.
Hooks are registered per op with `register_prepack(fn, hook)`; they run once, at freeze
time, so the re-layout costs nothing per call.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ir import Graph, Node, Value

_HOOKS: dict = {}


def register_prepack(fn, hook: Callable[[Node, dict], "Node | None"]) -> None:
    """Register `hook(node, const_inputs) -> Node | None` for nodes of op `fn` (a
    Function subclass); hooks for one op are tried in registration order."""
    if not callable(hook):
        raise TypeError(f"register_prepack: the hook for {getattr(fn, '__name__', fn)} must "
                        f"be callable, got {type(hook).__name__}")
    _HOOKS.setdefault(fn, []).append(hook)


def new_const(array) -> Value:
    """A constant Value for a hook's re-laid-out array (run() gives it a graph id)."""
    return Value(None, tuple(array.shape), array.dtype, "const", None, array)


def run(graph: Graph, backend=None) -> dict:
    """Give every node with constant inputs to its op's hooks; returns what was packed."""
    packed = []
    for i, n in enumerate(graph.nodes):
        hooks = _HOOKS.get(n.fn) if n.kernel is None else None
        if not hooks:
            continue
        consts = {k: v.data for k, v in enumerate(n.inputs) if v.kind == "const"}
        if not consts:
            continue
        for hook in hooks:
            new = hook(n, consts)
            if new is not None:
                if len(new.outputs) != len(n.outputs) or any(
                        a is not b for a, b in zip(new.outputs, n.outputs)):
                    raise RuntimeError(f"prepack hook {hook!r} for {n.op} must return a node "
                                       "with the original node's output values")
                for v in new.outputs:
                    v.producer = new
                for v in new.inputs:
                    if v.id is None:
                        v.id = graph._next_id
                        graph._next_id += 1
                graph.nodes[i] = new
                packed.append(f"{n.op} -> {new.op}")
                break
    return {"packed": len(packed), "decisions": [f"prepacked: {p}" for p in packed]}


def _contiguous_weight(node: Node, consts: dict):
    """Matmul by a constant 2-d right operand stored column-major (linear's folded
    ``weight.mT``): store it row-major once, the order GEMM's B packing reads in runs."""
    b = consts.get(1)
    if type(b) is not np.ndarray or b.ndim != 2 or b.flags.c_contiguous:
        return None
    c = new_const(np.ascontiguousarray(b))
    return Node(node.op, node.fn, [node.inputs[0], c] + node.inputs[2:], dict(node.attrs),
                list(node.outputs), n_attr_inputs=node.n_attr_inputs,
                ctx_outputs=node.ctx_outputs)


def _register_builtin() -> None:
    from ...ops.linalg import Matmul

    register_prepack(Matmul, _contiguous_weight)


_register_builtin()
