"""Lab 2: an autograd engine on tinyfw's graph.

Every tinyfw op that involves a tensor requiring grad records a node: the op's
`Function` object, reachable as ``y.grad_fn``.  A node knows

- ``node.next``: one entry per input of the op — the input's own node (a `Function`), the
  input itself when it is a leaf (a Tensor created by the user with requires_grad), or
  None when the input needs no gradient;
- ``node.backward(g)``: given the gradient of the loss w.r.t. the op's output, the
  gradients w.r.t. each input (a tuple, or one tensor for a one-input op; None entries
  for inputs without one).

Your engine walks this graph from the output to the leaves — tinyfw's own engine
(tinyfw/autograd/engine.py) is what the grader compares you with.

Your work: every function below that raises NotImplementedError("TODO ...") (README.md
lists the tasks).  Grade it with: python -m tinyfw.labs grade 2 --src <this folder>
"""
from __future__ import annotations

import tinyfw
from tinyfw.autograd.function import Function

_leaf_hooks: dict = {}  # id(leaf) -> (leaf, [hook, ...])


def topological_order(root: Function) -> list:
    """TASK 2.1 — every node reachable from `root` through `.next`, each once, ordered so
    that a node comes before every node in its `.next` (the order backward runs in)."""
    raise NotImplementedError("TODO 2.1: topological_order")


def _as_tuple(grads) -> tuple:
    return grads if isinstance(grads, tuple) else (grads,)


def _seed(output, grad):
    """TASK 2.2 (helper) — the gradient backward starts from: `grad`, or ones for a
    one-element output; RuntimeError for a larger output without `grad`."""
    raise NotImplementedError("TODO 2.2: _seed")


def _propagate(output, grad, targets: dict | None) -> dict:
    """TASK 2.2 (helper) — run every node once with the sum of its incoming gradients;
    returns {id(leaf): (leaf, total gradient)}.  With `targets` ({id(node): None}), also
    records the gradient arriving at each of those nodes."""
    raise NotImplementedError("TODO 2.2: _propagate")


def backward(output, grad=None) -> None:
    """TASK 2.2 — accumulate d(output)/d(leaf) (times `grad`, ones for a scalar output)
    into the `.grad` of every leaf the output depends on.  Each node's backward runs once,
    with the sum of the gradients from all the ops that used its output.  A non-scalar
    output without `grad` raises RuntimeError."""
    raise NotImplementedError("TODO 2.2: backward")


def register_leaf_hook(leaf, hook) -> None:
    """TASK 2.3 — make `backward` call hook(total gradient of `leaf`) once per backward
    pass before accumulating; a returned tensor replaces the gradient."""
    raise NotImplementedError("TODO 2.3: register_leaf_hook")


def clear_hooks() -> None:
    """Forget every hook registered with register_leaf_hook."""
    _leaf_hooks.clear()


def grad(output, inputs: list, grad_output=None) -> list:
    """TASK 2.4 — d(output)/d(input) for each of `inputs` (leaves, or intermediate
    tensors: the gradient arriving at the tensor's node), without touching any `.grad`;
    None for an input the output does not depend on."""
    raise NotImplementedError("TODO 2.4: grad")
