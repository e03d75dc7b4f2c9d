"""The built-in subgraph rewrites (registered at import; tinyfw.jit.rewrite has the API).

Textbook identities, each into an op tinyfw has a kernel for:

- ``x * sigmoid(x)`` -> ``silu(x)`` (one vectorised pass instead of two and a temporary);
- ``log(softmax(x, d))`` -> ``log_softmax(x, d)`` (no -inf where softmax underflows);
- ``exp(x) - 1`` -> ``expm1(x)``, ``log(1 + x)`` -> ``log1p(x)`` (accurate near 0);
- ``-(-x)`` -> ``x``, ``relu(relu(x))`` -> ``relu(x)``.

(There is no square op, x*x stays; double transposes are simplify's.)

Inference folding (rewrites_fold.py): conv2d / linear followed by an eval-mode
batch_norm become one conv2d / linear whose weight and bias are computed from the
parameters in the graph (constant-folded away under jit.freeze).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..nn import functional as F
from .rewrite import Match, Rewrite, register_rewrite


def _float(m: Match) -> bool:
    """Every bound value is a floating tensor of one dtype."""
    dts = {np.dtype(v.dtype) for v in m.values.values()}
    return len(dts) == 1 and next(iter(dts)).kind == "f"


def _silu_pattern(x):
    return x * ops.sigmoid(x)


def _silu(x):
    return ops.silu(x)


def _log_softmax_pattern(x):
    return ops.log(F.softmax(x, dim=-1))


def _log_softmax(x, *, match: Match):
    return F.log_softmax(x, dim=match.node("Softmax").attrs["dim"])


def _expm1_pattern(x):
    return ops.exp(x) - 1


def _expm1(x):
    return ops.expm1(x)


def _log1p_pattern(x):
    return ops.log(x + 1)


def _log1p(x):
    return ops.log1p(x)


def _neg_neg_pattern(x):
    return -(-x)


def _identity(x):
    return x


def _relu_relu_pattern(x):
    return ops.relu(ops.relu(x))


def _relu(x):
    return ops.relu(x)


def _same_shape(m: Match) -> bool:
    """The anchor's output has the shape of x (the constant broadcast nothing)."""
    return _float(m) and tuple(m.anchor.outputs[0].shape) == tuple(m.values["x"].shape)


IDENTITIES = [
    Rewrite(_silu_pattern, _silu, _float, name="silu"),
    Rewrite(_log_softmax_pattern, _log_softmax, _float, name="log_softmax",
            ignore_attrs=("dim",)),
    Rewrite(_expm1_pattern, _expm1, _same_shape, name="expm1"),
    Rewrite(_log1p_pattern, _log1p, _same_shape, name="log1p"),
    Rewrite(_neg_neg_pattern, _identity, name="neg_neg"),
    Rewrite(_relu_relu_pattern, _relu, name="relu_relu"),
]

for _r in IDENTITIES:
    register_rewrite(_r, builtin=True)

from . import rewrites_fold  # noqa: E402,F401  (registers the inference folding)
from . import rewrites_attention  # noqa: E402,F401  (registers the attention rewrites)
from . import rewrites_epilogue  # noqa: E402,F401  (registers the bias + activation epilogues)
from . import rewrites_norm  # noqa: E402,F401  (registers the GELU + residual + layer norm rewrite)
