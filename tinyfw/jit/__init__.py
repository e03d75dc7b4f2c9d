"""tinyfw.jit: traced mode.  Record a function at the dispatch point into a graph
(forward and backward), optimize it (DCE, CSE, constant folding, simplification,
elementwise and epilogue fusion, memory planning) and replay it.

    f = tinyfw.jit.trace(model, (x,))      # or @tinyfw.jit.compile on a function
    y = f(x); y.sum().backward()            # gradients reach model parameters as in eager
    tinyfw.jit.explain(model, x)            # what each pass did
    g = tinyfw.jit.freeze(f)                # inference: parameters folded as constants
    tinyfw.jit.register_rewrite(tinyfw.jit.Rewrite(pattern_fn, replacement_fn))
"""
from __future__ import annotations

from .api import TracedFunction, compile, trace  # noqa: A004
from .explain import explain
from .ir import Graph, Node, Value
from .rewrite import Match, Rewrite, register_rewrite, registered_rewrites, unregister_rewrite
from . import rewrites_builtin  # noqa: F401  (registers the built-in rewrites)
from .freeze import FrozenFunction, freeze
from .passes.prepack import register_prepack
from .tracer import TraceError

__all__ = ["trace", "compile", "explain", "TracedFunction", "TraceError", "Graph", "Node",
           "Value", "Rewrite", "Match", "register_rewrite", "unregister_rewrite",
           "registered_rewrites", "freeze", "FrozenFunction", "register_prepack"]
