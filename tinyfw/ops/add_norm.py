"""``gelu_add_layer_norm(h, b, x, weight, bias)``: ``layer_norm(gelu(h + b) + x)`` over the
last dim as one op: a transformer MLP's bias, GELU, residual add and layer norm.

Run one op at a time they are four passes over the activation, each reading and writing
all of it, and their backward four more; the fused kernels (csrc/nn_add_norm.inc) make
each row in L1 and write it once: forward y and the norm's input r, backward the
gradients of x and h with the column sums of the weight, bias and b.  The traced graph
gets it from the built-in rewrite (jit/rewrites_norm.py); called directly, it is the
composition's values bit for bit (the same row routines: the eager add, GELU and layer
norm kernels) except b's gradient, a column sum rounded in its own order.

The kernels take float32 off the GPU: other dtypes, and CUDA tensors (no GPU kernel), run
the composition itself.
"""
from __future__ import annotations

import math

from ..autograd.function import Function, GradMode
from ._elementwise_activation import _gelu_onnx
from ._opmeta import TRANSCENDENTAL_FLOPS
from ._util import Tensor, apply

__all__ = ["GeluAddNorm", "GeluAddNormBackward", "gelu_add_layer_norm"]

_make = Tensor._make


def _onnx(b, n, ins: list, out: str) -> None:
    """Add (bias), the GELU formula, Add (residual), LayerNormalization."""
    a, dtype = n.attrs, n.outputs[0].dtype
    h, x = ins[0], ins[1]
    rest = ins[2:]
    if a["has_b"]:
        u = b.tmp()
        b.add("Add", [h, rest[0]], [u])
        rest = rest[1:]
    else:
        u = h
    g, r = b.tmp(), b.tmp()
    _gelu_onnx(b, n, [u], g)
    b.add("Add", [g, x], [r])
    d = n.inputs[0].shape[-1]
    w = rest[0] if a["has_w"] else b.full((d,), 1.0, dtype)
    beta = rest[-1] if a["has_beta"] else b.full((d,), 0.0, dtype)
    b.add("LayerNormalization", [r, w, beta], [out], axis=-1, epsilon=float(a["eps"]))


def _flops(in_shapes: list, out_shapes: list, attrs: dict) -> int:
    """The composition's: two adds, one GELU, the layer norm's ~5 per element."""
    return math.prod(out_shapes[0]) * (7 + TRANSCENDENTAL_FLOPS) if out_shapes else 0


def _unpack(rest: tuple, has_b: bool, has_w: bool, has_beta: bool) -> tuple:
    """(b, weight, bias) from the optional trailing inputs, None where absent."""
    it = iter(rest)
    return (next(it) if has_b else None, next(it) if has_w else None,
            next(it) if has_beta else None)


class GeluAddNorm(Function):
    """layer_norm(gelu(h + b) + x) of (M, N) rows; inputs (h, x[, b][, weight][, bias])."""
    autocast = None  # the rewrite matches float32 ops only

    fresh_output = True
    onnx = staticmethod(_onnx)
    flops = staticmethod(_flops)
    vector_kernel = True  # eager: a vectorised row kernel (csrc/nn_add_norm.inc)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, h, x, *rest, has_b, has_w, has_beta, eps, approximate):
        b, w, beta = _unpack(rest, has_b, has_w, has_beta)
        y, r, mean, rstd = B.gelu_add_layer_norm(h, b, x, w, beta, eps, approximate)
        ctx.has_b, ctx.has_w, ctx.has_beta = has_b, has_w, has_beta
        ctx.eps, ctx.approximate = eps, approximate
        ctx.r, ctx.mean, ctx.rstd = r, mean, rstd
        return y

    def backward(self, g):
        ins = self.saved_inputs
        h, x = ins[0], ins[1]
        b, w, beta = _unpack(ins[2:], self.has_b, self.has_w, self.has_beta)
        if GradMode.enabled:
            # create_graph: the kernel's gradients are plain arrays, so differentiate the
            # composition instead (second derivatives through tinyfw ops)
            return _composition_grads(g, ins, b, w, beta, self.eps, self.approximate)
        extra = tuple(t for t in (w, b) if t is not None)
        gx, gh, gw, gbeta, gb = apply(
            GeluAddNormBackward, (g, _make(self.r), _make(self.mean), _make(self.rstd), h) + extra,
            {"has_w": w is not None, "has_b": b is not None, "approximate": self.approximate})
        out = [gh, gx]
        if b is not None:
            out.append(gb)
        if w is not None:
            out.append(gw)
        if beta is not None:  # the kernel sums g only beside a weight: else as Norm does
            out.append(gbeta if w is not None else g.sum(0))
        return tuple(t if nx is not None else None for t, nx in zip(out, self.next))


def _composition(h, b, x, w, beta, eps, approximate) -> Tensor:
    """The op written out in tinyfw ops (its meaning; run where the kernels are not)."""
    from ..nn import functional as F

    u = h if b is None else h + b
    return F.layer_norm(F.gelu(u, approximate=approximate) + x, (h.shape[-1],), w, beta, eps)


def _composition_grads(g, ins, b, w, beta, eps, approximate) -> tuple:
    """Gradients of the composition w.r.t. every input, with the graph kept."""
    from ..autograd.engine import grad

    y = _composition(ins[0], b, ins[1], w, beta, eps, approximate)
    wanted = [t for t in ins if t.requires_grad]
    got = iter(grad([y], wanted, [g], create_graph=True, allow_unused=True))
    return tuple(next(got) if t.requires_grad else None for t in ins)


class GeluAddNormBackward(Function):
    """(gx, gh, gweight, gbias, gb) of GeluAddNorm (fused kernel); inputs (g, r, mean, rstd,
    h[, weight][, b]); the side outputs are empty where the forward had no such input."""
    autocast = None

    fresh_output = True
    flops = staticmethod(_flops)
    vector_kernel = True
    differentiable = False  # GeluAddNorm's backward differentiates the composition instead
    # per output, the keyword that adds it into a given array instead (a traced backward
    # whose gradients accumulate into existing .grad: jit/executor.py)
    accumulate_into = ("gx_into", "gh_into", None, None, None)

    @staticmethod
    def forward(ctx, B, g, r, mean, rstd, h, *rest, has_w, has_b, approximate, gx_into=None,
                gh_into=None):
        w = rest[0] if has_w else None
        b = rest[-1] if has_b else None
        outs = B.gelu_add_layer_norm_backward(g, r, w, mean, rstd, h, b, approximate,
                                              gx_into, gh_into)
        empty = B.empty((0,), g.dtype)
        return tuple(empty if o is None else o for o in outs)


def gelu_add_layer_norm(h: Tensor, b: Tensor | None, x: Tensor, weight: Tensor | None,
                        bias: Tensor | None, eps: float = 1e-5,
                        approximate: str = "none") -> Tensor:
    """``layer_norm(gelu(h + b) + x, (N,), weight, bias, eps)`` with N the last dim: h and
    x of one shape, b, weight and bias of shape (N,) or None."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu_add_layer_norm: approximate must be 'none' or 'tanh', "
                         f"got {approximate!r}")
    if not isinstance(h, Tensor) or not isinstance(x, Tensor):
        raise TypeError("gelu_add_layer_norm: h and x must be Tensors")
    if tuple(h.shape) != tuple(x.shape) or h.ndim < 1:
        raise ValueError(f"gelu_add_layer_norm: h {list(h.shape)} and x {list(x.shape)} must "
                         "have one shape")
    n = h.shape[-1]
    opt = (b, weight, bias)
    for name, t in zip(("b", "weight", "bias"), opt):
        if t is not None and (not isinstance(t, Tensor) or tuple(t.shape) != (n,)):
            raise ValueError(f"gelu_add_layer_norm: {name} must be a Tensor of shape ({n},)")
    ts = (h, x) + tuple(t for t in opt if t is not None)
    if any(t.dtype.name != "float32" or t.device.type == "cuda" for t in ts):
        return _composition(h, b, x, weight, bias, eps, approximate)
    shape = h.shape
    y = apply(GeluAddNorm, (h.reshape(-1, n), x.reshape(-1, n)) + ts[2:],
              {"has_b": b is not None, "has_w": weight is not None,
               "has_beta": bias is not None, "eps": float(eps), "approximate": approximate})
    return y.reshape(shape)
