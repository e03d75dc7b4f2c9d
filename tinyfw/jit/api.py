"""User-facing traced mode: `trace`, `compile`, and the callable they return."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


from .. import dispatch
from ..backend import backend_for, device_of
from ..device import Device
from ..autograd.function import Function, GradMode
from ..autograd.engine import ACCUMULATED, RetainGraph
from ..tensor import Tensor
from .compiler import CPU_ONLY_PASSES, DEFAULT_PASSES, Compiled, optimize, trace_graph, unflatten
from .rewrite import Rewriter
from .tracer import TraceError

_make = Tensor._make


class _OutputGrads:
    """The gradients of a traced call's outputs on their way to its one backward node.

    Each differentiable output has a node of its own (`_GraphOutput`) whose only edge
    leads to the call's `_GraphBackward`; the engine sums what reaches a node with ``+``,
    which for these merges the per-output gradients (an output's own gradients, arriving
    several times, add as tensors).  So the backward graph runs ONCE with every output's
    gradient, as eager's backward does: run once per output, the engine summed the
    per-output results in another order than eager sums the same terms (results 1 ulp
    apart, found by tests/test_jit_property.py)."""

    __slots__ = ("grads",)

    def __init__(self, grads: dict) -> None:
        self.grads = grads

    def __add__(self, other: "_OutputGrads") -> "_OutputGrads":
        merged = dict(self.grads)
        for k, g in other.grads.items():
            merged[k] = merged[k] + g if k in merged else g
        return _OutputGrads(merged)


class _GraphOutput(Function):
    """The autograd node of one differentiable output of a traced call."""

    def backward(self, grad):
        return (_OutputGrads({self.index: grad}),)


class _GraphBackward(Function):
    """The autograd node of a traced call: runs the compiled backward graph once, on the
    gradients of all its outputs (zeros for an output that received none).  Gradients of
    leaves that already have a ``.grad`` are added into it by the graph itself (the
    engine's ``grad_into``): the fused kernels that make them add in place, saving the
    engine's separate pass over each array."""

    adds_into_grads = True
    grad_into = None

    def backward(self, grads: _OutputGrads):
        if GradMode.enabled:
            raise RuntimeError("jit: double backward (create_graph=True) through a traced "
                               "function is not supported; run it eagerly for that")
        c: Compiled = self.compiled
        if self.saved is None:
            raise RuntimeError("jit: trying to backward through a traced call a second time; "
                               "pass retain_graph=True to the first backward()")
        gs = []
        for k in range(len(c.diff_outputs)):
            shape, dtype = self.out_meta[k]
            g = grads.grads.get(k)
            if g is None:
                gs.append(c.backend.full(shape, 0, dtype))
            else:
                g = g._data
                gs.append(g if g.dtype == dtype else g.astype(dtype))
        args = list(self.saved) + gs
        if not RetainGraph.enabled:
            self.saved = None  # the backward graph then frees each saved array at last use
        into = self._targets(c)
        res = c.backward.owned(args) if into is None else c.backward.accumulate(args, into)
        out, j = [], 0
        for has in c.wrt_has_grad:
            if has:
                out.append(ACCUMULATED if into is not None and into[j] is not None
                           else _make(res[j]))
                j += 1
            else:
                out.append(None)
        return tuple(out)

    def _targets(self, c: Compiled) -> list | None:
        """Per backward output, the .grad array to add it into (C-contiguous, of its
        shape and dtype), or None; None when there is none at all."""
        given, self.grad_into = self.grad_into, None
        if given is None:
            return None
        into, j, meta = [], 0, c.backward.out_meta
        for has, d in zip(c.wrt_has_grad, given):
            if has:
                ok = (d is not None and (d.shape, d.dtype) == meta[j]
                      and c.backend.is_contiguous(d))
                into.append(d if ok else None)
                j += 1
        return into if any(d is not None for d in into) else None

    def release(self) -> None:
        self.saved = None


def _module_live(obj) -> tuple[dict, list]:
    """Parameters and buffers of a Module-like object, captured by reference."""
    live: dict = {}
    tensors: list = []
    for meth in ("parameters", "buffers"):
        f = getattr(obj, meth, None)
        if callable(f):
            for t in f():
                if isinstance(t, Tensor) and id(t) not in live:
                    live[id(t)] = t
                    tensors.append(t)
    return live, tensors


def _value_key(a: Any, name: str):
    """A cache-key part for a non-tensor argument, by value (lists and dicts included, so
    mutating one between calls retraces); tensors nested in containers are traced as
    constants, so they key by identity and version (an in-place write retraces)."""
    if isinstance(a, Tensor):
        return ("nested-tensor", id(a), a._version[0], a.shape, a.dtype.name, a.device)
    if isinstance(a, (list, tuple)):
        return (type(a).__name__, tuple(_value_key(v, name) for v in a))
    if isinstance(a, dict):
        return ("dict", tuple((k, _value_key(v, name)) for k, v in a.items()))
    try:
        hash(a)
    except TypeError:
        raise TraceError(f"jit.trace({name}): an argument of type {type(a).__name__} is not "
                         "hashable, so a call cannot tell whether it changed since tracing; "
                         "pass tensors, numbers, strings or tuples/lists/dicts of them") from None
    return ("py", type(a).__name__, a)


def _graph_device(args: tuple, live: dict, consts: tuple = ()) -> Device:
    """The device a call runs on: that of its first tensor argument or live tensor with
    at least one dimension (0-d CPU tensors mix with any device, as in eager), else that
    of its constants (a function of closed-over constants alone)."""
    for t in [a for a in args if isinstance(a, Tensor)] + list(live.values()):
        if t._data.ndim or t.device.type != "cpu":
            return t.device
    for a in consts:
        if device_of(a).type != "cpu":
            return device_of(a)
    return Device("cpu")


class TracedFunction:
    """A traced function or module: same call signature, replays compiled graphs.

    One compiled graph is kept per input signature (shapes, strides, dtypes,
    requires_grad of tensor arguments, the other arguments, grad mode, backend, the
    autocast state and the training flags of the module and its submodules); a call with
    a new signature traces again.  Dropout draws afresh on every call and buffers written in place (batch-norm
    running statistics) are updated after every call, as in eager.
    """

    def __init__(self, fn: Callable, passes=DEFAULT_PASSES, name: str | None = None,
                 rewrites=()) -> None:
        self.fn = fn
        self.passes = tuple(passes)
        self.rewrites = tuple(rewrites)  # jit.Rewrite objects tried before the registry's
        self.cache: dict = {}
        self._mods: list | None = None  # the module tree, for the training flags
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        functools.update_wrapper(self, fn, updated=()) if callable(fn) and hasattr(
            fn, "__name__") else None

    def signature(self, args: tuple) -> tuple:
        """The cache key of a call: everything the traced graph was specialised on."""
        key: list = []
        for a in args:
            if isinstance(a, Tensor):
                d = a._data
                key.append((d.shape, d.dtype.str, d.strides, a._rg, a.device))
            else:
                key.append(_value_key(a, self.name))
        if self._mods is None:
            # every submodule's flag, not only the top one: model.dropout.eval() alone
            # must retrace too (the module tree is taken as it is at the first call)
            # (of the module itself, or of the one a bound method like model.forward is of)
            owner = getattr(self.fn, "__self__", self.fn)
            f = getattr(owner, "modules", None)
            self._mods = list(f()) if callable(f) else []
        training = tuple([m.training for m in self._mods]) if self._mods \
            else getattr(self.fn, "training", None)
        # the parameters and buffers themselves: one replaced after tracing (m.weight =
        # Parameter(...), load_state_dict(assign=True)) must not be served the old graph,
        # which holds the old tensor (so its id cannot be reused while the entry lives)
        # (with dtype and device: Module.to moves and casts their data in place)
        live = tuple([(id(t), t._data.dtype, device_of(t._data))
                      for t in _module_live(self.fn)[1]])
        # modes of interceptors that change what an op computes (autocast's casts are
        # baked into the graph: a call outside the region must not replay them)
        modes = tuple([ic.trace_key() for ic in dispatch.interceptors()
                       if hasattr(ic, "trace_key")])
        return (tuple(key), GradMode.enabled, id(dispatch.get_backend()), training, live,
                modes)

    def get_compiled(self, args: tuple) -> Compiled:
        """The compiled graph for these arguments, tracing it on a cache miss."""
        key = self.signature(args)
        c = self.cache.get(key)
        if c is None:
            live, _ = _module_live(self.fn)
            # tracing restores the buffers and generators it touched (tracer.restore), so
            # the first replay below updates and draws exactly what one eager call would
            tr = trace_graph(self.fn, args, live, op=f"jit.trace({self.name})",
                             rewriter=Rewriter(self.rewrites) if "rewrite" in self.passes
                             else None)
            # (with the tensors the trace captured: a function of closed-over tensors
            # alone runs on their device, not on the CPU's backend)
            device = _graph_device(args, {**live, **{id(t): t for t in tr.params}},
                                   tuple(v.data for v in tr.graph.leaves() if v.kind == "const"))
            passes = self.passes if device.type == "cpu" else \
                tuple(p for p in self.passes if p not in CPU_ONLY_PASSES)
            c = optimize(tr, backend=backend_for(device) if device.type != "cpu" else None,
                         passes=passes)
            self.cache[key] = c
        return c

    def __call__(self, *args):
        c = self.get_compiled(args)
        tensors = [a for a in args if isinstance(a, Tensor)]
        arrays = [t._data for t in tensors] + [p._data for p in c.params]
        res = c.forward(*arrays)
        n = c.n_out
        if c.state:
            for (t, bumps), a in zip(c.state, res[n:]):
                if t is not None:  # a buffer the function updates in place, as eager does
                    c.backend.copy_(t._data, a)
                    t._version[0] += bumps
        outs = [_make(a) for a in res[:n]]
        if c.backward is not None and GradMode.enabled:
            wrt = [tensors[i] if kind == "input" else c.params[i] for kind, i in c.wrt_index]
            nxt = tuple([(t.grad_fn or t) if t._rg else None for t in wrt])
            if any(x is not None for x in nxt):
                call = _GraphBackward.__new__(_GraphBackward)
                call.next, call.compiled, call.saved = nxt, c, res[n + len(c.state):]
                call.out_meta = [(res[i].shape, res[i].dtype) for i in c.diff_outputs]
                for k, i in enumerate(c.diff_outputs):
                    node = _GraphOutput.__new__(_GraphOutput)
                    node.next, node.index = (call,), k
                    outs[i] = _make(res[i], True, node)
        return unflatten(outs, c.out_struct)

    def graph(self, *args):
        """The optimized (forward, backward) graphs for these arguments."""
        c = self.get_compiled(args)
        return c.fwd_graph, c.bwd_graph

    def __repr__(self) -> str:
        return f"<tinyfw.jit traced {self.name}: {len(self.cache)} compiled signature(s)>"


def trace(fn_or_module: Callable, example_inputs: Any = (), passes=DEFAULT_PASSES,
          rewrites=()) -> TracedFunction:
    """Trace `fn_or_module` on `example_inputs` (a Tensor or a tuple of arguments) and
    return a callable with the same signature that replays the optimized graph.
    `rewrites`: jit.Rewrite objects applied to this trace, tried before the registered ones."""
    if not callable(fn_or_module):
        raise TypeError(f"jit.trace: expected a function or a Module, got "
                        f"{type(fn_or_module).__name__}")
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    tf = TracedFunction(fn_or_module, passes, rewrites=rewrites)
    tf.get_compiled(args)
    return tf


def compile(fn: Callable | None = None, *, passes=DEFAULT_PASSES, rewrites=()):  # noqa: A001
    """Decorator: trace on the first call, keep one compiled graph per input signature.

        @tinyfw.jit.compile
        def f(x, w):
            return (x @ w).relu()
    """
    if fn is None:
        return lambda f: TracedFunction(f, passes, rewrites=rewrites)
    return TracedFunction(fn, passes, rewrites=rewrites)
