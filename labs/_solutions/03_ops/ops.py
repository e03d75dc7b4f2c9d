"""Lab 3: ops with a backward, and the check that proves a backward right.

A tinyfw op is a `Function`: ``forward(ctx, B, *arrays, **attrs)`` computes on raw arrays
(numpy arrays on the CPU) and may keep plain values on ``ctx``; ``backward(self, g)``
returns the gradient of each input written with tinyfw ops — so the backward is itself
differentiable (second derivatives for free).  ``save_inputs = True`` keeps the input
tensors (``self.saved_inputs``), ``save_output = True`` the output (``self.output``);
attributes set on ``ctx`` in forward are there in backward (``self.dim``).
``Op.apply(x, dim=1)`` runs an op on tensors.
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
    base = x.detach().numpy().astype(np.float64)
    grad = np.zeros_like(base)
    for i in np.ndindex(base.shape):
        hi, lo = base.copy(), base.copy()
        hi[i] += eps
        lo[i] -= eps
        grad[i] = (float(f(tinyfw.tensor(hi))) - float(f(tinyfw.tensor(lo)))) / (2 * eps)
    return grad


def worst_gradient_error(f, x, eps: float = 1e-6) -> tuple:
    """TASK 3.1 — (largest |autograd - numerical| over x's elements, its index): compare
    autograd's gradient of the scalar f(x) with numerical_gradient."""
    leaf = tinyfw.tensor(x.detach().numpy().astype(np.float64), requires_grad=True)
    f(leaf).backward()
    diff = np.abs(leaf.grad.numpy() - numerical_gradient(f, x, eps))
    i = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else ()
    return (float(diff[i]) if diff.size else 0.0), tuple(int(v) for v in i)


# -- 3.2 -----------------------------------------------------------------------------------
class Softmax(Function):
    """softmax along `dim`."""
    save_output = True

    @staticmethod
    def forward(ctx, B, x, dim):
        """TASK 3.2 — exp(x - max) / sum(exp(x - max)) along dim, in numpy (subtracting
        the max keeps exp from overflowing)."""
        ctx.dim = dim
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        return e / e.sum(axis=dim, keepdims=True)

    def backward(self, g):
        """TASK 3.2 — the vector-Jacobian product y * (g - sum(g * y)), in tinyfw ops."""
        y = self.output
        return y * (g - (g * y).sum(self.dim, keepdim=True))


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
        ctx.eps = eps
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w + b

    def backward(self, g):
        """TASK 3.3 — (grad x, grad weight, grad bias) in tinyfw ops: with xhat the
        normalised x and r = 1/sqrt(var + eps), gxhat = g * w and
        gx = r * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat))."""
        x, w, _ = self.saved_inputs
        mu = x.mean(-1, keepdim=True)
        r = (((x - mu) * (x - mu)).mean(-1, keepdim=True) + self.eps).rsqrt()
        xhat = (x - mu) * r
        gxhat = g * w
        gx = r * (gxhat - gxhat.mean(-1, keepdim=True)
                  - xhat * (gxhat * xhat).mean(-1, keepdim=True))
        batch = tuple(range(x.ndim - 1))
        return gx, (g * xhat).sum(batch), g.sum(batch)


def layer_norm(x, weight, bias, eps: float = 1e-5):
    """Layer norm of tensor x over its last dim."""
    return LayerNorm.apply(x, weight, bias, eps=eps)


# -- 3.4 -----------------------------------------------------------------------------------
def im2col(x, kh: int, kw: int, stride: int = 1, padding: int = 0):
    """TASK 3.4 — the patches of x (N, C, H, W) as columns (N, C*kh*kw, OH*OW), written
    with tinyfw ops (pad, then indexing with index tensors) so that autograd derives the
    backward; row c*kh*kw + i*kw + j of column (oh, ow) is x[n, c, oh*stride + i - padding,
    ow*stride + j - padding] (0 outside)."""
    n, c, h, w = x.shape
    if padding:
        x = tinyfw.nn.functional.pad(x, (padding, padding, padding, padding))
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    i = np.arange(kh).reshape(kh, 1, 1, 1) + stride * np.arange(oh).reshape(1, 1, oh, 1)
    j = np.arange(kw).reshape(1, kw, 1, 1) + stride * np.arange(ow).reshape(1, 1, 1, ow)
    rows = tinyfw.tensor(np.broadcast_to(i, (kh, kw, oh, ow)).copy())
    cols = tinyfw.tensor(np.broadcast_to(j, (kh, kw, oh, ow)).copy())
    patches = x[:, :, rows, cols]  # (N, C, kh, kw, OH, OW)
    return patches.reshape(n, c * kh * kw, oh * ow)


def conv2d(x, weight, bias=None, stride: int = 1, padding: int = 0):
    """TASK 3.4 — conv2d of x (N, C, H, W) with weight (O, C, kh, kw) as one matrix
    product with im2col's columns; (N, O, OH, OW)."""
    n, _, h, w = x.shape
    o, c, kh, kw = weight.shape
    cols = im2col(x, kh, kw, stride, padding)
    out = weight.reshape(o, c * kh * kw) @ cols  # (N, O, OH*OW)
    if bias is not None:
        out = out + bias.reshape(1, o, 1)
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    return out.reshape(n, o, oh, ow)
