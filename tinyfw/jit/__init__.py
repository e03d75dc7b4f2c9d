"""tinyfw.jit: traced mode.  Record a function at the dispatch point into a graph
(forward and backward), optimize it (DCE, CSE, constant folding, simplification,
elementwise and epilogue fusion, memory planning) and replay it.

    f = tinyfw.jit.trace(model, (x,))      # or @tinyfw.jit.compile on a function
    y = f(x); y.sum().backward()            # gradients reach model parameters as in eager
    tinyfw.jit.explain(model, x)            # what each pass did
"""
from __future__ import annotations

from .api import TracedFunction, compile, trace  # noqa: A004
from .explain import explain
from .ir import Graph, Node, Value
from .tracer import TraceError

__all__ = ["trace", "compile", "explain", "TracedFunction", "TraceError", "Graph", "Node",
           "Value"]
