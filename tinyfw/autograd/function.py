"""`Function`: one op's forward (on backend arrays) and backward (in tinyfw ops).

An instance of a Function subclass is also the op's node in the autograd graph: the
dispatcher creates it, runs `forward`, and when gradients are needed links it to the
nodes of its inputs through `next`.  Backward formulas are written with tinyfw ops, so
running them with grad mode on builds a graph of its own (higher-order gradients).
"""
from __future__ import annotations

import contextvars
import math
from collections.abc import Callable
from typing import Any

_FREED = object()


class _ContextFlag:
    """A boolean mode held in a `contextvars.ContextVar`, so that each thread (and each
    asyncio task) has its own: one thread under ``no_grad`` leaves another thread's
    recording alone.  Read and written as ``.enabled``."""

    __slots__ = ("_var",)

    def __init__(self, name: str, default: bool):
        self._var = contextvars.ContextVar(name, default=default)

    @property
    def enabled(self) -> bool:
        return self._var.get()

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._var.set(value)


#: whether ops record the graph (PyTorch's grad mode); per thread
GradMode = _ContextFlag("tinyfw_grad_enabled", True)


class _GradModeContext:
    __slots__ = ("mode", "token")

    def __init__(self, mode: bool):
        self.mode = mode

    def __enter__(self):
        self.token = GradMode._var.set(self.mode)
        return self

    def __exit__(self, *exc):
        GradMode._var.reset(self.token)
        return False

    def __call__(self, fn):
        import functools

        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradModeContext(mode):
                return fn(*args, **kwargs)

        return wrapper


def no_grad() -> _GradModeContext:
    """Context manager / decorator: ops inside record no graph."""
    return _GradModeContext(False)


def enable_grad() -> _GradModeContext:
    """Context manager / decorator: ops inside record the graph (inside no_grad too)."""
    return _GradModeContext(True)


class set_grad_enabled(_GradModeContext):
    """Set grad mode: as a call it takes effect at once; as a context it is restored on exit."""

    def __init__(self, mode: bool):
        super().__init__(bool(mode))
        self.prev = GradMode.enabled
        GradMode.enabled = self.mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        GradMode.enabled = self.prev
        return False

    def __call__(self, fn):
        # as a decorator it must not switch the mode at decoration time
        GradMode.enabled = self.prev
        return super().__call__(fn)


def is_grad_enabled() -> bool:
    """True when ops record the autograd graph."""
    return GradMode.enabled


class Function:
    """Base of every op.  Subclasses define

    - ``forward(ctx, B, *arrays, **attrs)``: compute with the backend module ``B`` on raw
      arrays; may store plain values on ``ctx``; returns an array (or a tuple whose first
      element is the differentiable output and the rest are integer/bool side outputs);
    - ``backward(ctx, grad)``: return one gradient Tensor (or None) per input, written
      with tinyfw ops.

    Class flags: ``save_inputs`` keeps the input Tensors for backward (checked against
    in-place modification): True for all of them, or a ``slice`` of the inputs (e.g.
    ``slice(1, None)``: the index tensors of an indexing op, not the data); ``save_output``
    keeps the output; ``save_aux`` keeps the side outputs (indices) that the backward
    reads, also version-checked since the user holds them; ``differentiable = False``
    marks ops with no gradient (comparisons, argmax, floor ...); ``is_view`` marks ops
    whose output aliases the first input (reshape, permute, slicing ...).

    Op metadata: what the jit, ONNX export and the profiler need to know about an op is
    declared here, on the op, never in a table keyed by op name elsewhere.  The defaults
    mean "no support": an op that sets none of them is never fused, its output is never
    written over, export raises NotImplementedError naming it, and the profiler counts
    one FLOP per output element.  ``tinyfw/ops/_opmeta.py`` has the helpers to write them
    and ``tests/test_op_metadata.py`` checks every op's declarations.

    - ``c_expr(args, ctype, attrs) -> str``: the C expression of one output element in a
      generated elementwise kernel (jit/kernels.py), from the C names of the input
      elements, the C type it computes in and the op's attributes; None: never fused.
      Write it with ``_opmeta.c_template("({a} + {b})")``.
    - ``c_type_input``: the input whose C type the expression computes in (``where``
      computes in its values' type: 1).
    - ``cost``: work units per element in a generated kernel, for the choice of running
      its loop on all threads: 1 for a simple op, 4 for a division or square root, 16
      for a transcendental function.
    - ``fresh_output``: forward always returns a newly allocated array, never an input or
      a view of one, so the memory plan may write a later kernel's output over it.
    - ``epilogue_producer``: a following fused elementwise group may run as an epilogue
      writing into this op's output buffer (matmul, conv2d); implies ``fresh_output``.
    - ``epilogue_consumer``: the op is ``act(y + b)`` (inputs y and b, b broadcast into
      y) and may itself run as such an epilogue: the pass adds b into the product's
      buffer and the class's ``epilogue(B, z, **attrs)`` applies the activation to it in
      place (bias_act: the activations without a C expression worth fusing).  Being
      elementwise over y, it may also run on channels-last arrays (the layout pass).
    - ``unit`` and ``commutative`` (binary ops): ``op(x, unit)`` is ``x`` (and so is
      ``op(unit, x)`` when commutative); jit simplification drops such nodes.
    - ``onnx``: how export translates the op: the name of an ONNX operator taking the
      same inputs and no attributes (``"Add"``), or ``onnx(b, node, ins, out)`` that adds
      ONNX nodes through the builder ``b`` (tinyfw/onnx.py) for the traced ``node`` with
      input names ``ins`` and output name ``out``; None: not exportable.
    - ``flops(in_shapes, out_shapes, attrs) -> int``: estimated floating-point
      operations of one call, from shapes alone (the profiler; works on any device).
    - ``vector_kernel``: the op's float32 CPU kernel is hand-vectorised (csrc's vector
      math, a vectorised row kernel), so traced mode keeps it eager instead of putting it
      into a generated kernel (jit/kernels.py, ``eager_reason``).
    - ``channels_last``: the jit layout pass (jit/passes/layout.py) has a channels-last
      (NHWC) kernel for the op (conv2d, max/avg pooling) and may run it in a chain.
    - ``autocast``: what `tinyfw.autocast` does to the op's floating inputs (float64
      inputs are never touched, as in PyTorch): ``"lower"`` casts them to the region's
      low dtype (products: matmul, conv), ``"float32"`` to float32 (exp/log/pow, softmax,
      norms, sums, losses), ``"promote"`` to the widest of them when they differ;
      ``None`` runs the op on its inputs as they are.  Every op declares it
      (tests/test_op_metadata.py); the policy itself is docs/amp.md.
    - ``accumulate_into``: per output, the keyword of ``forward`` that makes it ADD that
      output into a given array (and return it) instead of a new one; None where it
      cannot.  A traced backward hands such an op a leaf's existing ``.grad``, so that
      gradient accumulation costs no separate pass (jit/executor.py).

    Autograd nodes with ``adds_into_grads`` (a traced call's backward) get, before each
    ``backward``, ``node.grad_into``: per edge, the leaf's ``.grad`` array they may add
    that input's gradient into themselves, or None; they return ``engine.ACCUMULATED``
    for an input they did so for.
    """

    save_inputs = False
    save_output = False
    save_aux = False
    differentiable = True
    is_view = False  # output shares the first input's memory and version counter

    # op metadata (see the class doc); the defaults mean "not supported"
    c_expr: Callable[[list, str, dict], str] | None = None
    c_type_input = 0
    cost = 1
    fresh_output = False
    epilogue_producer = False
    epilogue_consumer = False
    unit: float | None = None
    commutative = False
    onnx: str | Callable | None = None
    vector_kernel = False
    channels_last = False
    autocast: str | None = None
    accumulate_into: tuple | None = None
    adds_into_grads = False

    @staticmethod
    def flops(in_shapes: list, out_shapes: list, attrs: dict) -> int:
        """One FLOP per element of the first output (right for plain elementwise ops)."""
        return math.prod(out_shapes[0]) if out_shapes else 0

    # set by the dispatcher on nodes that are part of a graph
    next: tuple
    _saved: Any
    _versions: tuple
    _out: Any
    _out_version: Any
    _aux: Any
    _aux_versions: tuple
    _pre_hooks: list | None = None

    @staticmethod
    def forward(ctx, B, *arrays, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    @classmethod
    def apply(cls, *inputs, **attrs):
        """Run this op through the dispatcher on Tensors."""
        from ..dispatch import apply

        return apply(cls, inputs, attrs)

    # -- saved values ---------------------------------------------------------------
    @property
    def saved_inputs(self) -> tuple:
        """The input Tensors, as they were at forward time (error if since modified)."""
        saved = self._saved
        if saved is _FREED:
            raise RuntimeError(
                f"{type(self).__name__}: trying to backward through the graph a second time "
                "(its saved tensors were freed by the first backward); pass "
                "retain_graph=True to the first backward() to keep them")
        for t, v in zip(saved, self._versions):
            if t._version[0] != v:  # inline: this runs in most backward formulas
                self._check_versions(saved, self._versions)
        return saved

    def saved_input(self, i: int):
        """Saved input `i` alone, checked against in-place modification alone: a backward
        that needs only some inputs for the gradients it computes (``self.next``) reads
        them this way, so a write into an input it does not need is no error (PyTorch
        saves only what the gradient needs: ``(x * 2)`` then ``x.add_(1)`` is fine)."""
        saved = self._saved
        if saved is _FREED:
            self.saved_inputs  # noqa: B018 - raises the freed-graph error
        t = saved[i]
        if t._version[0] != self._versions[i]:
            self._check_versions((t,), (self._versions[i],))
        return t

    @property
    def saved_aux(self) -> list:
        """The side outputs (indices) as they were at forward time (error if since
        modified)."""
        aux = self._aux
        if aux is _FREED:
            raise RuntimeError(
                f"{type(self).__name__}: trying to backward through the graph a second time "
                "(its saved tensors were freed by the first backward); pass "
                "retain_graph=True to the first backward() to keep them")
        self._check_versions(aux, self._aux_versions)
        return aux

    def _check_versions(self, tensors, versions) -> None:
        for t, v in zip(tensors, versions):
            if t._version[0] != v:
                raise RuntimeError(
                    f"{type(self).__name__}: a tensor of shape {tuple(t.shape)} needed for the "
                    f"gradient was modified by an in-place operation (version {v} at forward, "
                    f"{t._version[0]} now); use an out-of-place op or clone() it first")

    @property
    def output(self):
        """The op's output Tensor, linked to this node (for backward formulas like exp's)."""
        from ..tensor import Tensor

        if self._out is _FREED:
            raise RuntimeError(
                f"{type(self).__name__}: trying to backward through the graph a second time; "
                "pass retain_graph=True to the first backward()")
        if self._out_version[0] != self._out_v:
            raise RuntimeError(
                f"{type(self).__name__}: its output (shape {self._out.shape}) was modified by "
                "an in-place operation and is needed for the gradient; clone() it first")
        t = Tensor._make(self._out, True, self)
        t._version = self._out_version
        return t

    def release(self) -> None:
        """Drop saved tensors after backward (unless retain_graph)."""
        if self.save_inputs:
            self._saved = _FREED
        if self.save_output:
            self._out = _FREED
        if self.save_aux:
            self._aux = _FREED

    def register_prehook(self, hook) -> None:
        """Call ``hook(grad)`` on the gradient arriving at this node's output."""
        if self._pre_hooks is None:
            self._pre_hooks = []
        self._pre_hooks.append(hook)

    def name(self) -> str:
        """The op's name, as in profiles and traces."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"
