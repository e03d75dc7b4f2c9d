"""Functional forms of the nn ops (activations, losses, convolution, pooling, norms)."""
from __future__ import annotations

from ..ops.elementwise import gelu, leaky_relu, relu, sigmoid, silu, softplus, tanh  # noqa: F401
from ..ops.index import pad  # noqa: F401
from ..ops.linalg import linear  # noqa: F401
