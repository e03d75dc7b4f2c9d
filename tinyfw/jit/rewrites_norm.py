"""``layer_norm(gelu(h + b) + x)`` -- a transformer MLP's bias, GELU, residual add and
layer norm -- into the one-kernel ``gelu_add_layer_norm`` (ops/add_norm.py), in training
and inference traces alike: its forward writes each row once instead of four times, its
backward makes the gradients of h, x, b and the norm's parameters in one pass.

The pattern is ``F.layer_norm(F.gelu(h + b, approximate=a) + x, (N,), weight, bias, eps)``
with both GELU forms, any eps, and any leading dims (the reshapes around the norm are
matched whatever their shapes; the filter checks that the norm runs over h's last dim).
The filter wants float32 tensors, h and x of one shape, and b, weight and bias of shape
(N,); on CUDA the op runs the composition itself.  Values: those of the composition bit
for bit, but b's gradient, a column sum rounded in its own order (tests/test_add_norm.py).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..nn import functional as F
from .rewrite import Match, Rewrite, register_rewrite

_F32 = np.dtype(np.float32)


def _pattern(h, b, x, w, beta):
    return F.layer_norm(F.gelu(h + b) + x, (4,), w, beta)


def _replacement(h, b, x, w, beta, *, match: Match):
    return ops.gelu_add_layer_norm(h, b, x, w, beta, match.node("Norm").attrs["eps"],
                                   match.node("Gelu").attrs["approximate"])


def _filter(m: Match) -> bool:
    v = m.values
    h, x = v["h"], v["x"]
    if any(np.dtype(t.dtype) != _F32 for t in v.values()) or len(h.shape) < 1:
        return False
    if tuple(h.shape) != tuple(x.shape) or tuple(m.anchor.outputs[0].shape) != tuple(h.shape):
        return False
    n = h.shape[-1]
    if any(tuple(v[k].shape) != (n,) for k in ("b", "w", "beta")):
        return False
    norm = m.node("Norm")
    return norm.attrs.get("kind") == "layer" and norm.inputs[0].shape[-1] == n


GELU_ADD_NORM = Rewrite(_pattern, _replacement, _filter, name="gelu_add_layer_norm",
                        example_inputs=[(4, 4), (4,), (4, 4), (4,), (4,)],
                        ignore_attrs=("approximate", "eps", "shape"))

register_rewrite(GELU_ADD_NORM, builtin=True)
