"""Fused RMS norm of rows: y = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps).

One Function whose forward calls the backend primitive ``rms_norm`` (a vectorised C++ row
kernel on the CPU, csrc/nn_rms.inc) in place of the five elementwise / reduction ops of
the composition.  Its backward calls the fused ``rms_norm_backward`` through
RMSNormBackward, whose own backward is written in tinyfw ops, so gradients of gradients
work while a plain backward pays for one kernel (the layer-norm pattern of ops/nn.py).
The public API with argument checks is ``tinyfw.nn.functional.rms_norm``.
"""
from __future__ import annotations

from ..autograd.function import Function, GradMode
from ._opmeta import per_input
from ._util import Tensor, apply

_make = Tensor._make


def _rms_onnx(b, n, ins: list, out: str) -> None:
    """x / sqrt(ReduceMean(x * x, -1) + eps) (* weight): RMSNormalization is opset 23."""
    a, dtype = n.attrs, n.outputs[0].dtype
    sq, ms, se, rt = b.tmp(), b.tmp(), b.tmp(), b.tmp()
    b.add("Mul", [ins[0], ins[0]], [sq])
    b.reduce("ReduceMean", sq, ms, [-1], True)
    b.add("Add", [ms, b.scalar(float(a["eps"]), dtype)], [se])
    b.add("Sqrt", [se], [rt])
    y = b.tmp() if a["has_w"] else out
    b.add("Div", [ins[0], rt], [y])
    if a["has_w"]:
        b.add("Mul", [y, ins[1]], [out])


def _rstd(x: Tensor, eps: float) -> Tensor:
    """1 / sqrt(mean(x^2 over dim 1) + eps), (M, 1), in tinyfw ops (differentiable)."""
    return ((x * x).mean(1, keepdim=True) + eps).rsqrt()


class RMSNorm(Function):
    """RMS norm of x (M, N) over dim 1; inputs (x[, weight (N,)])."""
    autocast = "float32"

    fresh_output = True
    onnx = staticmethod(_rms_onnx)
    flops = per_input(1)
    vector_kernel = True  # eager: a vectorised row kernel (csrc/nn_rows.h)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x, *w, eps, has_w):
        y, rstd = B.rms_norm(x, w[0] if has_w else None, eps)
        ctx.eps, ctx.has_w, ctx.rstd = eps, has_w, rstd
        return y

    def backward(self, g):
        ins = self.saved_inputs
        x = ins[0]
        gx, gw = apply(RMSNormBackward, (g,) + tuple(ins) + (_make(self.rstd),),
                       {"eps": self.eps})
        if not self.has_w:
            return (gx,)
        if self.next[1] is None:
            gw = None
        elif GradMode.enabled or gw.numel() == 0:
            # create_graph: the fused kernel's gw is a plain array, so recompute it with
            # tinyfw ops, differentiable w.r.t. g and x
            gw = (g * x * _rstd(x, self.eps)).sum(0)
        return (gx if self.next[0] is not None else None), gw


class RMSNormBackward(Function):
    """gx of RMS norm (fused kernel); inputs (g, x[, weight], rstd), rstd the forward's.
    gw comes back as a side output (empty when there is no weight)."""
    autocast = None

    fresh_output = True
    flops = per_input(1)
    vector_kernel = True  # eager: a vectorised row kernel (csrc/nn_rows.h)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, g, x, *rest, eps):
        ctx.eps = eps
        w = rest[0] if len(rest) == 2 else None
        gx, gw = B.rms_norm_backward(g, x, w, rest[-1])
        return gx, B.empty((0,), g.dtype) if gw is None else gw

    def backward(self, v):
        # gx = r h - r^3 x m with r = rstd, h = g w, m = mean(h x) (means over dim 1)
        ins = self.saved_inputs
        g, x = ins[0], ins[1]
        w = ins[2] if len(ins) == 4 else None
        n = x.shape[1]
        r = _rstd(x, self.eps)
        xh = x * r

        def mean(t):
            return t.sum(1, keepdim=True) / n

        # gx is linear in h with the symmetric map P(u) = r (u - xh mean(u xh))
        grad_h = r * (v - xh * mean(v * xh))
        out = [None] * len(ins)
        if self.next[0] is not None:
            out[0] = grad_h if w is None else grad_h * w
        if self.next[1] is not None:
            h = g if w is None else g * w
            m, a, b = mean(h * x), mean(v * h), mean(v * x)
            # through r (dr/dx_j = -r^3 x_j / n) and through m (dm/dx_j = h_j / n)
            r3 = r * r * r
            out[1] = r3 * (x * (3 * r * r * m * b - a) - h * b - m * v)
        if w is not None and self.next[2] is not None:
            out[2] = (grad_h * g).sum(0)
        return tuple(out)


def rms_norm_rows(x: Tensor, weight: Tensor | None, eps: float) -> Tensor:
    """Apply the RMSNorm Function to x shaped (M, N) with weight (N,) or None."""
    ins = (x,) if weight is None else (x, weight)
    return apply(RMSNorm, ins, {"eps": float(eps), "has_w": weight is not None})
