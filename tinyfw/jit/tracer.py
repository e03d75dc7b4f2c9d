"""Recording a function into a graph at the dispatch point.

The function runs once, eagerly, on the example inputs while a `Tracer` sits in the
dispatcher's interceptor stack: every `apply(fn, inputs, attrs)` is executed for real and
appended to the graph as a node.  Tensors are matched to graph values by the identity of
their numpy array, which is what survives when a backward formula rebuilds a Tensor from
a saved array (``Function.output``, ``Where``'s saved condition): so tracing the backward
pass through the same interceptor yields the backward graph from eager's own formulas.

State: a kernel seed drawn from a `tinyfw.Generator` (``DrawSeed``, dropout's mask) is a
node that draws again on every replay; the draws of one generator are chained through an
extra input so no pass can merge or reorder them, and the last one is a graph output so
none is removed.  A whole-tensor in-place write to a module parameter or buffer (batch
norm's running statistics) is recorded as a *state output*: the value written becomes a
graph output that the caller copies back into the tensor after each replay.  Tracing
itself leaves no trace: generators and buffers are restored when it ends, so the first
replay draws and updates exactly what one eager call would.

Guards: reading a traced tensor's value from Python (``bool``, ``item``, ``tolist``,
``numpy``) raises `TraceError` naming the user's file and line, as do in-place writes to
traced activations or inputs, traced tensors hidden in op attributes, and random draws
that bypass a dispatched op (``tinyfw.rand``, ``uniform_`` ...).
"""
from __future__ import annotations

import os
import sys


import importlib
from .. import backend as _backends
from ..autograd.function import GradMode
from ..dispatch import pop_interceptor, push_interceptor
from ..ops import inplace as _inplace_mod
from ..ops.nn import DrawSeed
from ..random import default_generator
from ..tensor import Tensor, _copy_array
from .ir import AttrSlot, Graph, Value

_tensor_mod = importlib.import_module("tinyfw.tensor")

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TraceError(RuntimeError):
    """The function cannot be traced faithfully (data-dependent control flow, ...)."""


def user_frame() -> str:
    """'file:line: source' of the innermost caller outside the tinyfw package."""
    f = sys._getframe(1)
    while f is not None:
        fname = os.path.abspath(f.f_code.co_filename)
        if not fname.startswith(_PKG_DIR + os.sep):
            import linecache

            src = linecache.getline(fname, f.f_lineno).strip()
            return f"{fname}:{f.f_lineno}" + (f": {src}" if src else "")
        f = f.f_back
    return "<unknown location>"


class Tracer:
    """An interceptor that appends every dispatched op to `graph`.

    `live` maps id(tensor) of tensors to capture by reference (module parameters and
    buffers); any other unknown tensor that requires grad is captured live too, the rest
    become constants.
    """

    def __init__(self, graph: Graph, live: dict | None = None) -> None:
        self.graph = graph
        self.live = live or {}
        # id(array) -> (array, value, version list, version): keeps arrays alive so ids
        # stay unique for the whole trace
        self.arrays: dict[int, tuple] = {}
        self.live_values: list[tuple[Value, Tensor]] = []
        # id(generator) -> [generator, state before the trace, state expected now, last
        # draw's Value]
        self.generators: dict[int, list] = {}
        # id(tensor) -> [tensor, content before the trace, version before, Value written
        # last, number of writes]: live tensors written in place
        self.mutated: dict[int, list] = {}

    # -- binding tensors to values ------------------------------------------------------------
    def bind(self, t: Tensor, v: Value) -> None:
        """Record that tensor `t` (its array) holds value `v`."""
        self.arrays[id(t._data)] = (t._data, v, t._version, t._version[0])

    def new_leaf(self, t: Tensor, kind: str) -> Value:
        """A leaf value for tensor `t` of the given kind, bound to it."""
        g = self.graph
        v = g.new_value(t._data.shape, t._data.dtype, kind,
                        data=t if kind in ("param", "input") else t._data)
        if kind == "param":
            g.params.append(v)
            self.live_values.append((v, t))
        elif kind == "input":
            g.inputs.append(v)
        elif kind == "grad":
            g.grads.append(v)
        self.bind(t, v)
        return v

    def lookup(self, t: Tensor) -> Value:
        """The value tensor `t` holds; unknown tensors become live leaves or constants."""
        rec = self.arrays.get(id(t._data))
        if rec is not None and rec[0] is t._data:
            if rec[2] is t._version and t._version[0] != rec[3]:
                raise TraceError(
                    f"jit.trace: a traced tensor of shape {tuple(t.shape)} was modified by an "
                    f"in-place operation and then used, at {user_frame()}; in-place ops on "
                    "traced values are not supported: use the out-of-place op")
            return rec[1]
        base = t._base
        if (base is not None and base._data is t._data and not t._rg
                and (id(base) in self.live or base._rg)):
            # a detached alias of a live tensor (cast(p, int64) detaches p first): its
            # values are p's, read live, or a later p update would not be seen (and p
            # itself, found by the same array, would lose its gradient).  An alias that
            # requires grad itself (w = (w0 * s).detach().requires_grad_()) is a leaf of
            # its own: its gradient is its own, not its base's history
            return self.lookup(base)
        if id(t) in self.live or t._rg:
            return self.new_leaf(t, "param")
        return self.new_leaf(t, "const")

    def traced_value(self, t: Tensor) -> Value | None:
        """The value of `t` when it depends on inputs or live tensors (not a constant)."""
        rec = self.arrays.get(id(t._data))
        if rec is not None and rec[0] is t._data and rec[1].kind != "const":
            return rec[1]
        return None

    # -- the interceptor ------------------------------------------------------------------------
    def intercept(self, fn, inputs, attrs, run):
        """Run the op for real and append it to the graph."""
        if fn is DrawSeed:
            return self._draw(attrs, run)
        vals = [self.lookup(t) for t in inputs]
        extra: list = []
        tattrs = self._slot_attrs(attrs, extra)
        out = run(inputs)
        outs = out if type(out) is tuple else (out,)
        node = self.graph.add_node(fn.__name__, fn, vals + extra, tattrs,
                                   [(o._data.shape, o._data.dtype) for o in outs])
        node.n_attr_inputs = len(extra)
        for o, v in zip(outs, node.outputs):
            self.bind(o, v)
        gf = outs[0].grad_fn
        if gf is not None and type(gf) is fn:
            # arrays the forward computed for its backward: make them node outputs, so
            # the traced backward reads this call's values, not the trace's
            for name, a in vars(gf).items():
                if _backends.is_array(a) and not name.startswith("_") \
                        and self.traced_value(Tensor._make(a)) is None:
                    v = self.graph.new_value(a.shape, a.dtype, "node", node)
                    node.outputs.append(v)
                    node.ctx_outputs += (name,)
                    self.arrays[id(a)] = (a, v, [0], 0)
        return out

    def _draw(self, attrs, run):
        """A seed drawn from a generator: a node chained after the previous draw from the
        same generator (the chain fixes their order and keeps CSE from merging them)."""
        gen = attrs["generator"]
        rec = self.generators.get(id(gen))
        if rec is None:
            state = gen.get_state()
            if gen is default_generator and state != self._default_state:
                _untracked_draw()
            rec = self.generators[id(gen)] = [gen, state, state, None]
        elif gen.get_state() != rec[2]:
            _untracked_draw()
        out = run(())
        prev = [] if rec[3] is None else [rec[3]]
        node = self.graph.add_node("DrawSeed", DrawSeed, prev, dict(attrs),
                                   [(out._data.shape, out._data.dtype)])
        self.bind(out, node.outputs[0])
        rec[2], rec[3] = gen.get_state(), node.outputs[0]
        return out

    def _captured(self, t: Tensor) -> bool:
        """True for tensors from outside the traced computation: module parameters and
        buffers, closed-over tensors (bound as params or constants, or not seen yet)."""
        if id(t) in self.live:
            return True
        rec = self.arrays.get(id(t._data))
        if rec is not None and rec[0] is t._data:
            return rec[1].kind in ("param", "const")
        return True

    def inplace_write(self, x: Tensor, result: Tensor, op: str) -> None:
        """Called by every in-place write while tracing, before the write happens.  A
        whole-tensor write to a captured tensor (a buffer) becomes a state output; writes
        to activations and inputs are left to the version checks (an error when the stale
        value is used)."""
        if x._base is not None:
            if id(x._base) in self.live:
                raise TraceError(
                    f"jit.trace: {op} writes in place into a view of a parameter or buffer "
                    f"of shape {tuple(x._base.shape)}, at {user_frame()}; only whole-tensor "
                    "writes to buffers can be traced: compute the new buffer and copy_ it")
            return
        if not self._captured(x):
            return
        if x._rg or (GradMode.enabled and result._rg):
            raise TraceError(
                f"jit.trace: {op} writes in place into a parameter or buffer of shape "
                f"{tuple(x.shape)} that requires grad (or a value that does), at "
                f"{user_frame()}; only gradient-free updates of buffers (e.g. running "
                "statistics) can be traced: do optimizer steps outside the traced function")
        if result.dtype is not x.dtype:
            result = result.to(x.dtype)  # what the write's unsafe cast stores
        v = self.lookup(result)
        rec = self.mutated.get(id(x))
        if rec is None:
            self._make_live(x)
            rec = self.mutated[id(x)] = [x, _copy_array(x._data), x._version[0], v, 0]
        rec[3] = v
        rec[4] += 1
        # later reads of x in this trace see the new value (the write bumps the version)
        self.arrays[id(x._data)] = (x._data, v, x._version, x._version[0] + 1)

    def _make_live(self, x: Tensor) -> None:
        """Capture `x` by reference from now on: a constant it was bound to becomes a
        param leaf (its value is read at each call, not baked in at trace time)."""
        self.live[id(x)] = x
        rec = self.arrays.get(id(x._data))
        if rec is not None and rec[0] is x._data and rec[1].kind == "const":
            v = rec[1]
            v.kind, v.data = "param", x
            self.graph.params.append(v)
            self.live_values.append((v, x))

    def state_outputs(self) -> list[tuple[Tensor | None, Value, int]]:
        """(tensor to write back or None, value, version bumps) per piece of state the
        graph advances: written buffers, then each generator's last draw (an output only
        so that dead-code elimination keeps every draw)."""
        out = [(rec[0], rec[3], rec[4]) for rec in self.mutated.values()]
        out += [(None, rec[3], 0) for rec in self.generators.values()]
        return out

    def _slot_attrs(self, a, extra: list):
        """Attributes with traced arrays/Tensors replaced by AttrSlots (their values go
        to `extra`, to become the node's trailing inputs)."""
        if isinstance(a, Tensor) or _backends.is_array(a):
            t = a if isinstance(a, Tensor) else Tensor._make(a)
            v = self.traced_value(t)
            if v is None:
                return a
            extra.append(v)
            return AttrSlot(len(extra) - 1, isinstance(a, Tensor))
        if isinstance(a, dict):
            return {k: self._slot_attrs(x, extra) for k, x in a.items()}
        if isinstance(a, (tuple, list)):
            return type(a)(self._slot_attrs(x, extra) for x in a)
        return a

    # -- guards ---------------------------------------------------------------------------------
    def value_read(self, t: Tensor, what: str) -> None:
        """Called by Tensor.__bool__/item/tolist/numpy while tracing."""
        if self.traced_value(t) is not None:
            raise TraceError(
                f"jit.trace: {what} reads the value of a traced tensor (shape "
                f"{tuple(t.shape)}) at {user_frame()}; Python control flow that depends on "
                "tensor values cannot be traced (the branch taken would be baked in). Use "
                "tinyfw.where / masks instead, or run this code eagerly")

    def __enter__(self) -> "Tracer":
        if _tensor_mod._trace_hook.get() is not None:
            raise TraceError("jit.trace: tracing inside a trace is not supported")
        self._default_state = default_generator.get_state()
        push_interceptor(self)
        # context-local: another thread running eagerly meanwhile is not traced
        self._tokens = (_tensor_mod._trace_hook.set(self.value_read),
                        _inplace_mod._trace_write.set(self.inplace_write))
        return self

    def __exit__(self, *exc) -> bool:
        _tensor_mod._trace_hook.reset(self._tokens[0])
        _inplace_mod._trace_write.reset(self._tokens[1])
        pop_interceptor(self)
        try:
            if exc[0] is None:
                for gen, _, expected, _ in self.generators.values():
                    if gen.get_state() != expected:
                        _untracked_draw()
                if id(default_generator) not in self.generators \
                        and default_generator.get_state() != self._default_state:
                    _untracked_draw()
        finally:
            self.restore()
        return False

    def restore(self) -> None:
        """Undo the trace's side effects: generators and written buffers as before it."""
        if id(default_generator) not in self.generators:
            default_generator.set_state(self._default_state)
        for gen, before, _, _ in self.generators.values():
            gen.set_state(before)
        for t, before, version, _, _ in self.mutated.values():
            _backends.backend_of(t._data).copy_(t._data, before)
            t._version[0] = version

    def check_unmodified(self) -> None:
        """Raise if any traced tensor was modified in place during the trace."""
        for arr, v, vl, ver in self.arrays.values():
            if vl[0] != ver and v.kind != "const":
                raise TraceError(
                    f"jit.trace: a traced tensor of shape {arr.shape} was modified in place "
                    "during tracing; in-place ops on traced values (activations, inputs, "
                    "views of parameters or buffers) are not supported; whole-tensor "
                    "writes to a traced module's buffers are")


def _untracked_draw() -> None:
    raise TraceError(
        "jit.trace: random numbers were drawn while tracing outside dropout (tinyfw.rand, "
        "uniform_, normal_ ...); the draw would be baked into the graph. Create random "
        "tensors outside the traced function and pass them in")
