"""Batch-norm folding for inference: conv2d or linear followed by an eval-mode
batch_norm becomes one conv2d / linear.

Eval batch_norm computes ``(y - mean) * rsqrt(var + eps) * gamma + beta`` per channel
(nn.functional.batch_norm), so with ``s = gamma * rsqrt(var + eps)``::

    bn(conv(x, w) + b) = conv(x, w * s[:, None, None, None]) + (b - mean) * s + beta

The folded weight and bias are computed *in the graph* from the parameters, so the
rewrite is exact for any parameter values seen at call time and gradients still reach
gamma, beta, w and b; under jit.freeze the parameters are constants and constant folding
computes the folded weight once.  The folds are registered ``freeze_only`` (as PyTorch
folds only when freezing): on a live model they would recompute the folded weight on
every call; ``jit.trace(model, x, rewrites=FOLDS)`` applies them to a live trace.  The results differ from the unfolded graph by rounding
only (the products are reassociated).

The pattern leaves the convolution's stride/padding/dilation/groups, the epsilon and the
shapes of the per-channel views free; the filter checks that the views put the channel on
axis 1 of the product (NCHW for conv, (N, C) for linear) and that every tensor has one
floating dtype.  Training-mode batch norm is a different op (norm_rows) and never matches.
"""
from __future__ import annotations

import numpy as np

from ..nn import functional as F
from .rewrite import Match, Rewrite, register_rewrite

_CONV_ATTRS = ("stride", "padding", "dilation", "groups")


def _bn(y, rm, rv, g, beta):
    return F.batch_norm(y, rm, rv, g, beta, training=False)


def _conv_bias_pattern(x, w, b, rm, rv, g, beta):
    return _bn(F.conv2d(x, w, b), rm, rv, g, beta)


def _conv_pattern(x, w, rm, rv, g, beta):
    return _bn(F.conv2d(x, w), rm, rv, g, beta)


def _linear_bias_pattern(x, w, b, rm, rv, g, beta):
    return _bn(F.linear(x, w, b), rm, rv, g, beta)


def _linear_pattern(x, w, rm, rv, g, beta):
    return _bn(F.linear(x, w), rm, rv, g, beta)


def _scale(rv, g, match: Match):
    return g * (rv + match.const(0)).rsqrt()


def _conv_args(match: Match) -> dict:
    a = match.node("Conv2d").attrs
    return {k: a[k] for k in _CONV_ATTRS}


def _conv_bias(x, w, b, rm, rv, g, beta, *, match: Match):
    s = _scale(rv, g, match)
    return F.conv2d(x, w * s.reshape(-1, 1, 1, 1), (b - rm) * s + beta, **_conv_args(match))


def _conv(x, w, rm, rv, g, beta, *, match: Match):
    s = _scale(rv, g, match)
    return F.conv2d(x, w * s.reshape(-1, 1, 1, 1), beta - rm * s, **_conv_args(match))


def _linear_bias(x, w, b, rm, rv, g, beta, *, match: Match):
    s = _scale(rv, g, match)
    return F.linear(x, w * s.reshape(-1, 1), (b - rm) * s + beta)


def _linear(x, w, rm, rv, g, beta, *, match: Match):
    s = _scale(rv, g, match)
    return F.linear(x, w * s.reshape(-1, 1), beta - rm * s)


def _channel_filter(rank: int):
    """Accept a match when the product has `rank` dims, C channels on axis 1, every
    per-channel tensor has shape (C,), every View of them is (1, C, 1, ...), and all
    tensors share one floating dtype."""

    def ok(m: Match) -> bool:
        prod = m.values["x"]
        y = m.anchor.outputs[0]
        if len(y.shape) != rank or len(prod.shape) != rank:
            return False
        c = y.shape[1]
        per_channel = [m.values[k] for k in ("rm", "rv", "g", "beta", "b") if k in m.values]
        if any(tuple(v.shape) != (c,) for v in per_channel):
            return False
        if m.values["w"].shape[0] != c:
            return False
        want = (1, c) + (1,) * (rank - 2)
        if any(tuple(n.outputs[0].shape) != want for n in m.nodes if n.op == "View"):
            return False
        dts = {np.dtype(v.dtype) for v in m.values.values()}
        return len(dts) == 1 and next(iter(dts)).kind == "f"

    return ok


_X4, _W4, _X2, _W2, _C = (2, 3, 5, 5), (4, 3, 3, 3), (3, 6), (4, 6), (4,)
FOLDS = [
    Rewrite(_conv_bias_pattern, _conv_bias, _channel_filter(4), name="conv_bn_fold",
            example_inputs=[_X4, _W4, _C, _C, _C, _C, _C], ignore_attrs=_CONV_ATTRS + ("shape",),
            free_consts=True, freeze_only=True),
    Rewrite(_conv_pattern, _conv, _channel_filter(4), name="conv_nobias_bn_fold",
            example_inputs=[_X4, _W4, _C, _C, _C, _C], ignore_attrs=_CONV_ATTRS + ("shape",),
            free_consts=True, freeze_only=True),
    Rewrite(_linear_bias_pattern, _linear_bias, _channel_filter(2), name="linear_bn_fold",
            example_inputs=[_X2, _W2, _C, _C, _C, _C, _C], ignore_attrs=("shape",),
            free_consts=True, freeze_only=True),
    Rewrite(_linear_pattern, _linear, _channel_filter(2), name="linear_nobias_bn_fold",
            example_inputs=[_X2, _W2, _C, _C, _C, _C], ignore_attrs=("shape",),
            free_consts=True, freeze_only=True),
]

for _r in FOLDS:
    register_rewrite(_r, builtin=True)
