"""Bias + activation epilogues: ``act(y + b)`` after a matmul or conv2d becomes
``bias_act(y, b, act)`` (tinyfw/ops/bias_activation.py), for act in gelu (both forms),
silu, tanh and sigmoid.

``x @ w + b``, ``F.linear(x, w, b)`` and ``F.conv2d(x, w, b)`` all trace to a product
followed by an Add of the bias (a linear's (N,) bias, a conv's bias viewed as (1, C, 1,
1)), so one pattern per activation covers them; the filter asks that ``y`` comes from an
op declaring ``epilogue_producer`` (Matmul, Conv2d, the NHWC conv) and that the bias
does not enlarge it.  Relu, leaky_relu and clamp are not here: they have C expressions
that the elementwise fusion already puts into the product's epilogue.  These four have
hand-vectorised kernels that stay out of generated code (jit/kernels.py, eager_reason),
so without the rewrite the activation is a separate eager op allocating its output; with
it the epilogue pass runs product, bias and activation as one node over the product's
buffer.  Eager values are bit-identical: bias_act runs the same add and the same kernel.

Only where no gradient flows (no_grad traces, jit.freeze, parameters without
requires_grad): in training the product must be kept for bias_act's backward, so the
epilogue could not overwrite it and the rewrite would only add a recomputed add to the
backward.  ``jit.trace(f, x, rewrites=[...])`` with ``make(act, training=True)`` applies
it to a training trace anyway (the gradients are the composition's: tests check them).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..autograd.function import GradMode
from .rewrite import Match, Rewrite, register_rewrite

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _needs_grad(v) -> bool:
    """Some leaf upstream of `v` is a tensor that requires grad, with grad mode on."""
    if not GradMode.enabled:
        return False
    stack, seen = [v], set()
    while stack:
        v = stack.pop()
        if v.id in seen:
            continue
        seen.add(v.id)
        if v.producer is None:
            if v.kind in ("input", "param") and getattr(v.data, "_rg", False):
                return True
        else:
            stack.extend(v.producer.inputs)
    return False


def _filter(training: bool):
    def ok(m: Match) -> bool:
        y, b = m.values["y"], m.values["b"]
        p = y.producer
        if p is None or p.fn is None or not p.fn.epilogue_producer:
            return False
        if np.dtype(y.dtype) not in _FLOATS or np.dtype(b.dtype) != np.dtype(y.dtype):
            return False
        if tuple(m.anchor.outputs[0].shape) != tuple(y.shape):
            return False  # the bias would enlarge y: not an epilogue of the product
        return training or not (_needs_grad(y) or _needs_grad(b))
    return ok


def _pattern(act: str):
    if act == "gelu":
        return lambda y, b: ops.gelu(y + b)
    return lambda y, b: getattr(ops, act)(y + b)


def _replacement(act: str):
    if act == "gelu":
        def gelu_rep(y, b, *, match: Match):
            approx = match.node("Gelu").attrs["approximate"]
            return ops.bias_act(y, b, "gelu", approx)
        return gelu_rep
    return lambda y, b: ops.bias_act(y, b, act)


def make(act: str, training: bool = False) -> Rewrite:
    """The rewrite of ``act(y + b)`` into ``bias_act``; `training` drops the no-grad
    condition (for a trace's own ``rewrites=``)."""
    return Rewrite(_pattern(act), _replacement(act), _filter(training),
                   name=f"bias_{act}_epilogue" + ("_training" if training else ""),
                   example_inputs=[(4, 4), (4,)],
                   ignore_attrs=("approximate",) if act == "gelu" else ())


EPILOGUES = [make(a) for a in ops.bias_activation.ACTIVATIONS]

for _r in EPILOGUES:
    register_rewrite(_r, builtin=True)
