"""Lab 3: ops with a backward, and the check that proves a backward right.

A tinyfw op is a `Function`: ``forward(ctx, B, *arrays, **attrs)`` computes on raw arrays
(numpy arrays on the CPU) and may keep plain values on ``ctx``; ``backward(self, g)``
returns the gradient of each input written with tinyfw ops — so the backward is itself
differentiable (second derivatives for free).  ``save_inputs = True`` keeps the input
tensors (``self.saved_inputs``), ``save_output = True`` the output (``self.output``);
attributes set on ``ctx`` in forward are there in backward (``self.dim``).
``Op.apply(x, dim=1)`` runs an op on tensors.

Your work: every function below that raises NotImplementedError("TODO ...") (README.md
lists the tasks).  Grade it with: python -m tinyfw.labs grade 3 --src <this folder>
"""
from __future__ import annotations

import numpy as np

import tinyfw
from tinyfw.autograd.function import Function


# -- 3.1 -----------------------------------------------------------------------------------
def numerical_gradient(f, x, eps: float = 1e-6) -> np.ndarray:
    """TASK 3.1 — d f(x) / d x by central differences: f maps a float64 tensor to a
    scalar tensor; perturb each element of a copy of x by +-eps in turn.  Returns a numpy
    array of x's shape."""
    raise NotImplementedError("TODO 3.1: numerical_gradient")


def worst_gradient_error(f, x, eps: float = 1e-6) -> tuple:
    """TASK 3.1 — (largest |autograd - numerical| over x's elements, its index): compare
    autograd's gradient of the scalar f(x) with numerical_gradient."""
    raise NotImplementedError("TODO 3.1: worst_gradient_error")


# -- 3.2 -----------------------------------------------------------------------------------
class Softmax(Function):
    """softmax along `dim`."""
    save_output = True

    @staticmethod
    def forward(ctx, B, x, dim):
        """TASK 3.2 — exp(x - max) / sum(exp(x - max)) along dim, in numpy (subtracting
        the max keeps exp from overflowing)."""
        raise NotImplementedError("TODO 3.2: forward")

    def backward(self, g):
        """TASK 3.2 — the vector-Jacobian product y * (g - sum(g * y)), in tinyfw ops."""
        raise NotImplementedError("TODO 3.2: backward")


def softmax(x, dim: int = -1):
    """Softmax of tensor x along dim."""
    return Softmax.apply(x, dim=dim % x.ndim)


# -- 3.3 -----------------------------------------------------------------------------------
class LayerNorm(Function):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last dim (biased variance)."""
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x, w, b, eps):
        """TASK 3.3 — the normalised rows, scaled and shifted, in numpy."""
        raise NotImplementedError("TODO 3.3: forward")

    def backward(self, g):
        """TASK 3.3 — (grad x, grad weight, grad bias) in tinyfw ops: with xhat the
        normalised x and r = 1/sqrt(var + eps), gxhat = g * w and
        gx = r * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat))."""
        raise NotImplementedError("TODO 3.3: backward")


def layer_norm(x, weight, bias, eps: float = 1e-5):
    """Layer norm of tensor x over its last dim."""
    return LayerNorm.apply(x, weight, bias, eps=eps)


# -- 3.4 -----------------------------------------------------------------------------------
def im2col(x, kh: int, kw: int, stride: int = 1, padding: int = 0):
    """TASK 3.4 — the patches of x (N, C, H, W) as columns (N, C*kh*kw, OH*OW), written
    with tinyfw ops (pad, then indexing with index tensors) so that autograd derives the
    backward; row c*kh*kw + i*kw + j of column (oh, ow) is x[n, c, oh*stride + i - padding,
    ow*stride + j - padding] (0 outside)."""
    raise NotImplementedError("TODO 3.4: im2col")


def conv2d(x, weight, bias=None, stride: int = 1, padding: int = 0):
    """TASK 3.4 — conv2d of x (N, C, H, W) with weight (O, C, kh, kw) as one matrix
    product with im2col's columns; (N, O, OH, OW)."""
    raise NotImplementedError("TODO 3.4: conv2d")
