"""`jit.freeze(traced)`: a traced model for inference whose parameters are constants.

Freezing snapshots every parameter and buffer of the model, traces it without gradients,
turns the captured tensors into constants holding the snapshot, and compiles with the
usual passes plus ``prepack``.  Constant folding then evaluates everything that depends
on weights only -- the folded weights and biases of the batch-norm folding rewrite, a
linear layer's transposed weight -- once, and prepack hooks (passes/prepack.py) store
constant operands in the layout their kernels read fastest.

As with ``torch.jit.freeze``, the frozen function keeps the values its parameters had
when it was frozen: changing or retraining the model afterwards does not change what it
computes (freeze again).  Its outputs carry no gradient.  Freezing a model in training
mode is an error: batch norm would use batch statistics and update running ones, and
dropout would draw -- there is nothing constant to fold.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..autograd.function import no_grad
from ..backend import backend_for
from ..tensor import _copy_array
from .api import TracedFunction, _graph_device, _module_live
from .compiler import CPU_ONLY_PASSES, Compiled, optimize, trace_graph
from .rewrite import Rewriter


def _modules(fn) -> list:
    owner = getattr(fn, "__self__", fn)
    f = getattr(owner, "modules", None)
    return list(f()) if callable(f) else []


class FrozenFunction(TracedFunction):
    """A traced function whose parameters and buffers are frozen constants (see module
    doc); one compiled graph per input signature, as TracedFunction."""

    def __init__(self, fn: Callable, passes, name: str, rewrites=()) -> None:
        training = [type(m).__name__ for m in _modules(fn) if m.training]
        if training or getattr(fn, "training", False):
            raise RuntimeError(
                f"jit.freeze({name}): the model is in training mode ({', '.join(training)}"
                f"{' ...' if len(training) > 3 else ''} have training=True); freezing is for "
                "inference: call model.eval() first (batch norm and dropout behave "
                "differently in training and nothing could be folded)")
        super().__init__(fn, tuple(passes) + ("prepack",), name, rewrites)
        # the values the frozen graphs hold, whatever happens to the model later
        self.snapshot = {id(t): _copy_array(t._data) for t in _module_live(fn)[1]}

    def get_compiled(self, args: tuple) -> Compiled:
        """The compiled frozen graph for these arguments (traced on a cache miss)."""
        key = self.signature(args)
        c = self.cache.get(key)
        if c is None:
            live, _ = _module_live(self.fn)
            with no_grad():
                tr = trace_graph(self.fn, args, live, op=f"jit.freeze({self.name})",
                                 rewriter=Rewriter(self.rewrites, frozen=True) if "rewrite" in self.passes
                                 else None)
            if tr.state:
                raise RuntimeError(f"jit.freeze({self.name}): the model writes buffers or "
                                   "draws random numbers on every call; it cannot be frozen")
            frozen = 0
            for v in tr.graph.params:
                t = v.data
                arr = self.snapshot.get(id(t))
                v.kind, v.data = "const", arr if arr is not None else _copy_array(t._data)
                frozen += 1
            tr.graph.params, tr.params, tr.wrt = [], [], []
            n_traced = len(tr.graph.nodes)
            device = _graph_device(args, live)
            passes = self.passes if device.type == "cpu" else \
                tuple(p for p in self.passes if p not in CPU_ONLY_PASSES)
            c = optimize(tr, backend=backend_for(device) if device.type != "cpu" else None,
                         passes=passes)
            c.stats.insert(0, {"pass": "freeze", "graph": "joint",
                               "nodes_before": n_traced, "nodes_after": n_traced,
                               "constants": frozen})
            self.cache[key] = c
        return c

    def __repr__(self) -> str:
        return f"<tinyfw.jit frozen {self.name}: {len(self.cache)} compiled signature(s)>"


def freeze(traced: Any, example_inputs: Any = None) -> FrozenFunction:
    """Freeze a traced model (``jit.trace(model, x)``, or a Module/function to trace) for
    inference: parameters become constants, batch-norm folding and constant folding
    finish at freeze time, constant weights are pre-packed.  `example_inputs` (a Tensor or
    a tuple) compiles that signature now; otherwise the first call does."""
    if isinstance(traced, FrozenFunction):
        return traced
    if isinstance(traced, TracedFunction):
        fn, passes, name, rw = traced.fn, traced.passes, traced.name, traced.rewrites
    elif callable(traced):
        from .compiler import DEFAULT_PASSES

        fn, passes, rw = traced, DEFAULT_PASSES, ()
        name = getattr(traced, "__name__", type(traced).__name__)
    else:
        raise TypeError(f"jit.freeze: expected a traced function or a Module, got "
                        f"{type(traced).__name__}")
    ff = FrozenFunction(fn, passes, name, rw)
    if example_inputs is not None:
        ff.get_compiled(example_inputs if isinstance(example_inputs, tuple)
                        else (example_inputs,))
    return ff


__all__ = ["freeze", "FrozenFunction"]
