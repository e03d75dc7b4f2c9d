"""The one place where every op reaches a kernel.

`apply(fn, inputs, attrs)` picks the backend, runs the op's forward on raw arrays, wraps
the result and, when gradients are needed, links the op's node into the graph.

Hook points (later layers plug in here, nothing below them knows about them):

- **interceptors** — objects with ``intercept(fn, inputs, attrs, run)`` that wrap the call:
  autocast casts inputs before calling ``run(inputs)``, the profiler times it, the
  tracer records ``fn``/``inputs``/``attrs``/outputs.  Install with ``push_interceptor``;
  when none is installed the hot path pays a single truthiness test.
- **backends** — ``set_backend('ref' | 'cpu')`` or the ``TINYFW_BACKEND`` environment
  variable choose the module whose primitives run CPU tensors.
"""
from __future__ import annotations

import os

import numpy as np

from .autograd.function import GradMode
from .tensor import Tensor
from . import backend as _backends

_ndarray = np.ndarray
_make = Tensor._make
_B = None  # the active CPU backend module
_interceptors: list = []


def set_backend(name: str) -> None:
    """Select the CPU backend: 'ref' (numpy, the specification) or 'cpu' (C++ kernels)."""
    global _B
    _B = _backends.load(name)


def get_backend():
    """The active CPU backend module."""
    return _B


def push_interceptor(obj) -> None:
    """Install an interceptor (see module doc); the last pushed runs outermost."""
    _interceptors.append(obj)


def pop_interceptor(obj) -> None:
    """Remove an interceptor installed with push_interceptor."""
    _interceptors.remove(obj)


def apply(fn, inputs: tuple, attrs: dict):
    """Run op `fn` (a Function subclass) on Tensors `inputs` with keyword `attrs`."""
    if _interceptors:
        return _intercepted(fn, inputs, attrs, len(_interceptors))
    return _run(fn, inputs, attrs)


def _intercepted(fn, inputs, attrs, depth):
    if depth == 0:
        return _run(fn, inputs, attrs)
    return _interceptors[depth - 1].intercept(
        fn, inputs, attrs, lambda ins: _intercepted(fn, tuple(ins), attrs, depth - 1))


def _run(fn, inputs, attrs):
    node = fn.__new__(fn)
    out = fn.forward(node, _B, *[t._data for t in inputs], **attrs)
    aux = None
    if type(out) is tuple:
        out, aux = out[0], out[1:]
    if type(out) is not _ndarray:
        out = np.asarray(out)
    record = False
    if GradMode.enabled and fn.differentiable:
        for t in inputs:
            if t.requires_grad:
                record = True
                break
    if record:
        node.next = tuple([(t.grad_fn or t) if t.requires_grad else None for t in inputs])
        if fn.save_inputs:
            node._saved = inputs
            node._versions = tuple([t._version[0] for t in inputs])
        result = _make(out, True, node)
        if fn.save_output:
            node._out = out
            node._out_version = result._version
            node._out_v = result._version[0]
    else:
        result = _make(out, False, None)
    if fn.is_view:
        base = inputs[0]
        result._version = base._version
        result._base = base._base if base._base is not None else base
        if record and fn.save_output:
            node._out_version = base._version
            node._out_v = base._version[0]
    if aux is None:
        return result
    return (result, *[_make(np.asarray(a), False, None) for a in aux])


set_backend(os.environ.get("TINYFW_BACKEND", "cpu"))
