"""The backward pass: walk the graph from the outputs in reverse topological order."""
from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

from ..backend import backend_of
from .function import Function, GradMode, _ContextFlag, _GradModeContext
from .views import refresh as refresh_view


def _as_list(x) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


_Tensor = None


def _tensor_class():
    # tensor.py imports this package, so Tensor is looked up once, on first use (a
    # function-level import costs ~1.5 us per call, which tiny backward passes feel)
    global _Tensor
    if _Tensor is None:
        from ..tensor import Tensor

        _Tensor = Tensor
    return _Tensor


def _root_grads(outputs: list, grads: list | None, op: str) -> list:
    Tensor = _tensor_class()
    if grads is None or len(grads) == 0:
        grads = [None] * len(outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(f"{op}: got {len(outputs)} outputs but {len(grads)} gradients")
    result = []
    for out, g in zip(outputs, grads):
        if not isinstance(out, Tensor):
            raise TypeError(f"{op}: outputs must be Tensors, got {type(out).__name__}")
        if out._view is not None:
            refresh_view(out)
        if not out._rg:
            raise RuntimeError(f"{op}: the tensor (shape {tuple(out.shape)}) does not require "
                               "grad and has no grad_fn; was requires_grad set on an input?")
        if g is None:
            if out._data.size != 1:
                raise RuntimeError(
                    f"{op}: grad can be implicitly created only for scalar outputs, this one "
                    f"has shape {tuple(out.shape)}; pass a gradient of that shape")
            a = out._data
            B = backend_of(a)
            g = Tensor._make(B.full(a.shape, 1, a.dtype))
        else:
            if not isinstance(g, Tensor):
                raise TypeError(f"{op}: gradients must be Tensors, got {type(g).__name__}")
            if g.shape != out.shape:
                raise RuntimeError(f"{op}: gradient of shape {tuple(g.shape)} does not match "
                                   f"the output's shape {tuple(out.shape)}")
        result.append(g)
    return result


def _owner(a):
    """An object identifying the memory array `a` views."""
    return backend_of(a).memory_owner(a)


def _call_hooks(hooks, g):
    """Run gradient hooks in order; a hook may return a replacement gradient, which must
    be a tensor of the gradient's shape, dtype and device (as PyTorch checks): a wrong one
    would otherwise be summed, broadcast or stored silently."""
    Tensor = _tensor_class()
    for h in list(hooks):
        r = h(g)
        if r is None:
            continue
        name = getattr(h, "__name__", type(h).__name__)
        if not isinstance(r, Tensor):
            raise TypeError(f"backward hook {name!r} returned {type(r).__name__}; a hook "
                            "returns a Tensor (the new gradient) or None")
        if r.shape != g.shape:
            raise RuntimeError(f"backward hook {name!r} changed the gradient's shape from "
                               f"{tuple(g.shape)} to {tuple(r.shape)}")
        if r.dtype is not g.dtype:
            raise RuntimeError(f"backward hook {name!r} changed the gradient's dtype from "
                               f"{g.dtype.name} to {r.dtype.name}")
        if r.device != g.device:
            raise RuntimeError(f"backward hook {name!r} moved the gradient from device "
                               f"'{g.device}' to '{r.device}'")
        g = r
    return g


#: `retain_graph` of the backward pass now running in this thread (True outside one): when
#: False, a node holding large saved state (a traced graph's activations) may free each part
#: as soon as its backward has read it, as eager frees a saved tensor with its node
RetainGraph = _ContextFlag("tinyfw_retain_graph", True)

# Hooks run after a leaf's `.grad` was updated (`register_post_accumulate_grad_hook`),
# keyed by id(leaf) with a weak reference that drops the entry with the leaf: a
# WeakKeyDictionary would compare tensors with `==`, which is elementwise here.
_post_hooks: dict = {}
# the end-of-backward callbacks of the passes running in this thread (innermost last)
_callbacks = threading.local()


class _PostHookHandle:
    """Returned by register_post_accumulate_grad_hook; remove() unregisters the hook."""

    def __init__(self, key: int, hook) -> None:
        self._key, self._hook = key, hook

    def remove(self) -> None:
        entry = _post_hooks.get(self._key)
        if entry is not None and self._hook in entry[1]:
            entry[1].remove(self._hook)
            if not entry[1]:
                del _post_hooks[self._key]


def register_post_accumulate_grad_hook(leaf, hook) -> _PostHookHandle:
    """Call ``hook(leaf)`` each time backward has stored a gradient into the leaf's
    ``.grad`` (once per gradient that reaches it: a leaf used twice in a graph calls it
    twice, the second time with the sum).  Used by DistributedDataParallel to start a
    bucket's all-reduce while the rest of backward still runs."""
    if leaf.grad_fn is not None or not leaf._rg:
        raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors that "
                           "require grad have an accumulated gradient")
    key = id(leaf)
    entry = _post_hooks.get(key)
    if entry is None or entry[0]() is not leaf:
        entry = (weakref.ref(leaf, lambda ref, k=key, d=_post_hooks: _drop(d, k, ref)), [])
        _post_hooks[key] = entry
    entry[1].append(hook)
    return _PostHookHandle(key, hook)


def _drop(table: dict, key: int, ref) -> None:
    # the leaf died: forget its hooks (the dict is bound early: this may run at shutdown)
    if table.get(key, (None,))[0] is ref:
        del table[key]


def queue_callback(fn) -> None:
    """Run ``fn()`` when the backward pass now running in this thread has finished (after
    every leaf's gradient was stored); PyTorch's ``queue_callback``.  Outside a backward
    pass it is an error."""
    stack = getattr(_callbacks, "stack", None)
    if not stack:
        raise RuntimeError("queue_callback: no backward pass is running in this thread")
    stack[-1].append(fn)


#: True while this context runs backward formulas: autocast leaves their ops alone (their
#: dtypes follow the forward's, as in PyTorch, where backward runs outside autocast)
InBackward = _ContextFlag("tinyfw_in_backward", False)


class _FlagContext:
    """Set a `_ContextFlag` for the block, restore it after."""

    __slots__ = ("flag", "mode", "token")

    def __init__(self, flag: _ContextFlag, mode: bool) -> None:
        self.flag, self.mode = flag, mode

    def __enter__(self) -> "_FlagContext":
        self.token = self.flag._var.set(self.mode)
        return self

    def __exit__(self, *exc) -> bool:
        self.flag._var.reset(self.token)
        return False


#: What a node's backward returns for an input whose gradient it has already added into
#: that leaf's ``.grad`` array (nodes with ``adds_into_grads``: a traced call's backward)
ACCUMULATED = type("Accumulated", (), {"__repr__": lambda self: "ACCUMULATED",
                                       "__slots__": ()})()


def _grad_array(leaf):
    """The array of `leaf`'s existing ``.grad`` when a gradient may be added into it in
    place (a writeable array of a plain tensor), else None.  As in PyTorch, whoever holds
    that ``.grad`` tensor sees the sum: accumulation reuses the tensor."""
    t = leaf._grad
    if t is None or t.grad_fn is not None or t._rg:
        return None
    d = t._data
    return d if backend_of(d).is_writeable(d) else None


def _accumulate(leaf, g, out_of_place: bool) -> None:
    """leaf.grad += g: into the existing tensor where `_grad_array` allows it (the
    backend's add, the same sum as ``old + g``), else as a new tensor."""
    d = None if out_of_place else _grad_array(leaf)
    gd = g._data
    B = backend_of(d) if d is not None else None
    if (d is not None and type(gd) is type(d) and gd.shape == d.shape and gd.dtype == d.dtype
            and B.memory_owner(d) is not B.memory_owner(gd)):
        B.add(d, gd, out=d)  # (every backend's add takes out= its first operand)
        leaf._grad._version[0] += 1
    else:  # a new array: g's memory stays free
        leaf._grad = leaf._grad + g


def _kept(g, handed: set):
    """A tensor of g's values that a leaf may keep as its .grad and later add into: g
    itself, or a copy when its memory is among `handed` (what the caller, a hook or
    another leaf holds) or is a view that is not one writeable dense block; the memory
    kept joins `handed`."""
    Tensor = _tensor_class()
    d = g._data
    B = backend_of(d)
    owner = B.memory_owner(d)
    key = id(owner)
    # a view that is not one dense block may overlap itself (expand) or skip memory
    if key in handed or not B.is_writeable(d) or (owner is not d and not B.is_dense(d)):
        c = B.empty(d.shape, d.dtype)
        B.copy_(c, d)
        d = c
        key = id(d)
    handed.add(key)
    return Tensor._make(d)


def run(outputs: Sequence, grads: Sequence, retain_graph: bool, create_graph: bool,
        capture: dict | None = None) -> None:
    """Propagate `grads` from `outputs` to the leaves.

    Leaves get their `.grad` accumulated, unless `capture` is given: then the gradients
    of the keys of `capture` (leaf Tensors, or graph nodes standing for non-leaf tensors)
    are stored in it and no `.grad` is touched.
    """
    Tensor = _tensor_class()
    # count, for every node, how many edges reach it, so it runs once all have arrived
    roots = [o.grad_fn for o in outputs]
    deps: dict = {}
    # each node once: two outputs sharing a node (x.squeeze(d) of a dim that is not 1
    # returns x's node on a new tensor) must not count its edges twice, or the nodes
    # after it wait for a gradient that never comes
    stack = [r for r in dict.fromkeys(roots) if r is not None]
    for r in stack:
        deps.setdefault(r, 0)
    seen = set(stack)
    while stack:
        node = stack.pop()
        for nxt in node.next:
            if isinstance(nxt, Function):
                deps[nxt] = deps.get(nxt, 0) + 1
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)

    pending: dict = {}
    # Memory (by owning array) that a leaf may not keep without a copy: the caller's root
    # gradients, whatever a hook has seen (it may have kept it: retain_grad does), and what
    # an earlier leaf already keeps.  Gradients computed during this pass are private
    # otherwise (a later gradient of the same pass is added out of place: `fresh`), so a
    # leaf may keep them, views included -- e.g. the transposed weight gradient of linear,
    # which a copy would re-read in full.
    handed: set = {id(_owner(g._data)) for g in grads}
    # leaves whose .grad this pass stored: it may be memory that another node of the pass
    # still reads (a kept gradient, views included), so adding into it is out of place;
    # a .grad from before the pass is the leaf's own and takes later gradients in place
    fresh: set = set()

    def to_leaf(leaf: Tensor, g: Tensor) -> None:
        if type(g._data) is not type(leaf._data) and g.device != leaf.device:
            # a 0-d CPU leaf used in another device's op (it joins that device, as in
            # PyTorch) gets its gradient back on the CPU
            g = g.to(leaf.device)
        if leaf._hooks:
            handed.add(id(_owner(g._data)))
            g = _call_hooks(leaf._hooks, g)
            handed.add(id(_owner(g._data)))
        if capture is not None:
            if leaf in capture:
                prev = capture[leaf]
                capture[leaf] = g if prev is None else prev + g
            return
        if leaf._grad is not None:
            _accumulate(leaf, g, create_graph or id(leaf) in fresh)
            if _post_hooks:
                _run_post_hooks(leaf)
            return
        fresh.add(id(leaf))
        leaf._grad = g if create_graph else _kept(g, handed)
        if _post_hooks:
            _run_post_hooks(leaf)

    try:
        stack = _callbacks.stack
    except AttributeError:
        stack = _callbacks.stack = []
    queued: list = []
    stack.append(queued)
    try:
        _propagate(outputs, roots, grads, deps, pending, handed, to_leaf, capture,
                   retain_graph, create_graph, fresh)
    finally:
        stack.pop()
    for fn in queued:
        fn()


def _run_post_hooks(leaf) -> None:
    entry = _post_hooks.get(id(leaf))
    if entry is not None and entry[0]() is leaf:
        for h in list(entry[1]):
            h(leaf)


def _grad_targets(nexts: tuple, fresh: set) -> list:
    """Per edge of a node that adds into gradients itself: the leaf's ``.grad`` array it
    may add into (`_grad_array`), or None (a node, a leaf with hooks, a .grad stored in
    this pass, a leaf reached twice by this node)."""
    ids = [id(n) for n in nexts if n is not None and not isinstance(n, Function)]
    twice = {i for i in ids if ids.count(i) > 1}
    return [None if n is None or isinstance(n, Function) or n._hooks or id(n) in fresh
            or id(n) in twice else _grad_array(n) for n in nexts]


def _propagate(outputs, roots, grads, deps, pending, handed, to_leaf, capture, retain_graph,
               create_graph, fresh) -> None:
    """The walk itself: run each node once all its gradients have arrived."""
    for out, root, g in zip(outputs, roots, grads):
        if root is None:
            to_leaf(out, g)
        else:
            pending[root] = pending[root] + g if root in pending else g

    with _GradModeContext(create_graph), _FlagContext(RetainGraph, retain_graph), \
            _FlagContext(InBackward, True):
        ready = [r for r in dict.fromkeys(roots) if r is not None and deps[r] == 0]
        while ready:
            node = ready.pop()
            g = pending.pop(node)
            if node._pre_hooks:
                handed.add(id(_owner(g._data)))
                g = _call_hooks(node._pre_hooks, g)
                handed.add(id(_owner(g._data)))
            if capture is not None and node in capture:
                capture[node] = g
            if node.adds_into_grads and capture is None and not create_graph:
                node.grad_into = _grad_targets(node.next, fresh)
            in_grads = node.backward(g)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            if not retain_graph:
                node.release()
            for nxt, gi in zip(node.next, in_grads):
                if nxt is None or gi is None:
                    continue
                if gi is ACCUMULATED:  # the node added it into nxt's .grad itself
                    nxt._grad._version[0] += 1
                    if _post_hooks:
                        _run_post_hooks(nxt)
                    continue
                if isinstance(nxt, Function):
                    pending[nxt] = pending[nxt] + gi if nxt in pending else gi
                    deps[nxt] -= 1
                    if deps[nxt] == 0:
                        ready.append(nxt)
                else:
                    to_leaf(nxt, gi)


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None,
             create_graph: bool = False, inputs=None) -> None:
    """Accumulate gradients of `tensors` into the `.grad` of the leaves they depend on."""
    outputs = _as_list(tensors)
    grads = _root_grads(outputs, _as_list(grad_tensors) or None, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        wanted = _as_list(inputs)
        got = grad(outputs, wanted, grads, retain_graph=retain_graph,
                   create_graph=create_graph, allow_unused=True)
        # as run() stores them: no two leaves keep one array, none keeps the caller's
        handed = {id(_owner(g._data)) for g in grads}
        for t, g in zip(wanted, got):
            if g is None:
                continue
            if t._grad is not None:
                _accumulate(t, g, create_graph)
            else:
                t._grad = g if create_graph else _kept(g, handed)
        return
    run(outputs, grads, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple:
    """Return d(outputs)/d(inputs) without touching any `.grad`."""
    outputs = _as_list(outputs)
    inputs = _as_list(inputs)
    grads = _root_grads(outputs, _as_list(grad_outputs) or None, "autograd.grad")
    if retain_graph is None:
        retain_graph = create_graph
    keys = []
    for t in inputs:
        if t._view is not None:
            refresh_view(t)
        if not t._rg:
            raise RuntimeError(f"autograd.grad: an input (shape {tuple(t.shape)}) does not "
                               "require grad")
        keys.append(t.grad_fn if t.grad_fn is not None else t)
    capture = dict.fromkeys(keys)
    run(outputs, grads, retain_graph, create_graph, capture)
    result = []
    for t, k in zip(inputs, keys):
        g = capture[k]
        if g is None and not allow_unused:
            raise RuntimeError(f"autograd.grad: an input (shape {tuple(t.shape)}) was not used "
                               "to compute the outputs; pass allow_unused=True if intended")
        if g is not None and not create_graph:
            g = g.detach()
        result.append(g)
    return tuple(result)


__all__ = ["backward", "grad", "GradMode"]
