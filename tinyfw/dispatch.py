"""The one place where every op reaches a kernel.

`apply(fn, inputs, attrs)` picks the backend from the inputs' device, runs the op's
forward on the backend's arrays, wraps the result and, when gradients are needed, links
the op's node into the graph.

Hook points (later layers plug in here, nothing below them knows about them):

- **interceptors** — objects with ``intercept(fn, inputs, attrs, run)`` that wrap the call:
  autocast casts inputs before calling ``run(inputs)``, the profiler times it, the
  tracer records ``fn``/``inputs``/``attrs``/outputs.  Install with ``push_interceptor``;
  they are context-local (per thread), and when none is installed the hot path pays one
  ContextVar read.
- **backends** — one per device type (`tinyfw.backend`); CPU tensors run on the module
  chosen with ``set_backend('ref' | 'cpu')`` or the ``TINYFW_BACKEND`` environment variable.

Devices: all tensor inputs of an op must be on one device, except 0-d CPU tensors (and
Python numbers, which arrive as 0-d CPU tensors), which are moved to the others' device,
as in PyTorch.  Anything else is an error naming the op and the devices.
"""
from __future__ import annotations

import contextvars
import os

from .autograd.function import GradMode
from .autograd.views import refresh as _refresh_view
from .tensor import Tensor
from . import backend as _backends

_ndarray = _backends.CPU_ARRAY
_make = Tensor._make
_new_node = object.__new__  # Function defines no __new__: the node without the lookup
_B = None  # the active CPU backend module
_grad = GradMode._var
# the interceptors of this context, innermost first (a tuple: contexts share nothing)
_interceptors: contextvars.ContextVar = contextvars.ContextVar("tinyfw_interceptors", default=())


def set_backend(name: str) -> None:
    """Select the CPU backend: 'ref' (numpy, the specification) or 'cpu' (C++ kernels)."""
    global _B
    _B = _backends.set_cpu_backend(name)


def get_backend():
    """The active CPU backend module."""
    return _B


def push_interceptor(obj) -> None:
    """Install an interceptor in this context (see module doc); the last pushed runs
    outermost, except that those with a true ``rewrites_inputs`` attribute (autocast) stay
    outside the others: the tracer and the profiler, pushed later, still see the op with
    its inputs already cast, and the casts as ops of their own."""
    ics = _interceptors.get()
    if getattr(obj, "rewrites_inputs", False):
        _interceptors.set(ics + (obj,))
        return
    n = len(ics)
    while n and getattr(ics[n - 1], "rewrites_inputs", False):
        n -= 1
    _interceptors.set(ics[:n] + (obj,) + ics[n:])


def pop_interceptor(obj) -> None:
    """Remove an interceptor installed with push_interceptor."""
    ics = list(_interceptors.get())
    ics.remove(obj)
    _interceptors.set(tuple(ics))


def interceptors() -> tuple:
    """The interceptors installed in this context, innermost first."""
    return _interceptors.get()


def casts_inputs(fn, t: Tensor) -> bool:
    """True when an installed interceptor (autocast) will cast the floating tensor `t`
    when it is an input of op `fn`: the op's wrapper then lets mixed float dtypes through
    to it instead of rejecting or promoting them first."""
    for ic in _interceptors.get():
        f = getattr(ic, "casts_inputs", None)
        if f is not None and f(fn, t):
            return True
    return False


def apply(fn, inputs: tuple, attrs: dict):
    """Run op `fn` (a Function subclass) on Tensors `inputs` with keyword `attrs`."""
    ics = _interceptors.get()
    if ics:
        return _intercepted(ics, fn, inputs, attrs, len(ics))
    return _run(fn, inputs, attrs)


def _intercepted(ics, fn, inputs, attrs, depth):
    if depth == 0:
        return _run(fn, inputs, attrs)
    return ics[depth - 1].intercept(
        fn, inputs, attrs, lambda ins: _intercepted(ics, fn, tuple(ins), attrs, depth - 1))


def _on_device(fn, arrays: list):
    """The backend for inputs not all on the CPU, with 0-d CPU arrays moved to it."""
    devices = []
    for a in arrays:
        if type(a) is not _ndarray or a.ndim:
            d = _backends.device_of(a)
            if d not in devices:
                devices.append(d)
    if len(devices) > 1:
        names = " and ".join(str(d) for d in devices)
        raise RuntimeError(f"{fn.__name__}: expected all tensors on one device, got tensors on "
                           f"{names}; move them with .to(device) first")
    if not devices:  # only 0-d CPU arrays after all
        return _B, arrays
    B = _backends.backend_for(devices[0])
    return B, [B.from_host(a) if type(a) is _ndarray else a for a in arrays]


def _run(fn, inputs, attrs):
    # (every op pays this function: it avoids what costs ~50 ns and is not needed, such as
    # a `**{}` unpacking or the gradient checks with grad mode off)
    arrays = [t._data for t in inputs]
    B = _B
    for a in arrays:
        if type(a) is not _ndarray:
            B, arrays = _on_device(fn, arrays)
            break
    node = _new_node(fn)
    try:
        out = fn.forward(node, B, *arrays, **attrs) if attrs else fn.forward(node, B, *arrays)
    except ValueError:
        # a C++ kernel refused a dtype outside its contract (uint8, int16): the cpu
        # backend's reference primitives run the op (backend/_cpu_bind.py)
        needs_ref = getattr(B, "_needs_ref", None)
        if needs_ref is None or not needs_ref(arrays, attrs):
            raise
        node = fn.__new__(fn)
        out = fn.forward(node, B._ref, *arrays, **attrs)
    aux = None
    if type(out) is tuple:
        out, aux = out[0], out[1:]
    record = False
    grad_on = _grad.get()
    if grad_on and fn.differentiable:
        for t in inputs:
            v = t._view
            if v is not None and v[5] != t._version[0]:
                _refresh_view(t)  # its base was written in place since (autograd/views.py)
            if t._rg:
                record = True
    if record:
        node.next = tuple([(t.grad_fn or t) if t._rg else None for t in inputs])
        saves = fn.save_inputs
        if saves:
            saved = inputs if saves is True else inputs[saves]
            node._saved = saved
            node._versions = tuple([t._version[0] for t in saved])
        result = _make(out, True, node)
        if fn.save_output:
            node._out = out
            node._out_version = result._version
            node._out_v = result._version[0]
    else:
        result = _make(out, False, None)
    if fn.is_view:
        base = inputs[0]
        version = base._version
        result._version = version
        result._base = base._base if base._base is not None else base
        # how the view derives from its autograd base (autograd/views.py)
        parent = base._view
        if parent is None:
            result._view = [fn, attrs, None, not grad_on, base, version[0]]
        else:
            result._view = [fn, attrs, parent, parent[3] or not grad_on, parent[4], version[0]]
        if record and fn.save_output:
            node._out_version = base._version
            node._out_v = base._version[0]
    if aux is None:
        return result
    aux = [_make(a, False, None) for a in aux]
    if record and fn.save_aux:
        # side outputs the backward reads (indices of max/sort/pooling): the user holds
        # them too and may write into them, so they are version-checked like saved inputs
        node._aux = aux
        node._aux_versions = tuple([t._version[0] for t in aux])
    return (result, *aux)


set_backend(os.environ.get("TINYFW_BACKEND", "cpu"))
