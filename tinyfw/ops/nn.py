"""Fused nn ops: softmax / log_softmax, cross-entropy with class indices, layer norm,
batch norm (batch statistics) and dropout.

Each op is one Function whose forward calls a backend primitive.  Its backward calls the
matching backward primitive through another Function, whose own backward is written with
tinyfw ops, so gradients of gradients work (gradgradcheck) while a plain backward pays
for one fused kernel.  Convolution and pooling live in ``nn_conv.py``; the public API
with validation of user arguments is ``tinyfw.nn.functional``.
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..autograd.function import Function, GradMode
from ..backend import device_of, host
from ..random import Generator, default_generator
from ._opmeta import no_flops, per_input, per_output
from ..dispatch import casts_inputs
from ._util import Tensor, _wrap_dim, apply, ensure_tensor, reshape_array
from .elementwise import where

_make = Tensor._make


def check_float(x: Tensor, op: str, what: str = "input") -> None:
    """Raise TypeError unless x is a floating-point tensor."""
    if not x.dtype.is_floating_point:
        raise TypeError(f"{op}: {what} must be a floating-point tensor, got {x.dtype.name} "
                        f"(shape {tuple(x.shape)})")


def check_same_dtype(x: Tensor, other: Tensor, op: str, what: str, fn=None) -> None:
    """Raise TypeError unless `other` has x's dtype (no silent promotion inside kernels);
    mixed float dtypes pass when autocast will cast both for op `fn`."""
    if other.dtype is not x.dtype and not (
            fn is not None and casts_inputs(fn, x) and casts_inputs(fn, other)):
        raise TypeError(f"{op}: {what} dtype {other.dtype.name} does not match the input's "
                        f"{x.dtype.name}")


# -- softmax / log_softmax ----------------------------------------------------------------
# FLOPs: about five per element (max, subtract, exp, sum, divide), backward likewise
_SOFTMAX_FLOPS = per_input(5)


def _softmax_onnx(op: str) -> staticmethod:
    def to_onnx(b, n, ins: list, out: str) -> None:
        b.add(op, ins, [out], axis=int(n.attrs["dim"]))

    return staticmethod(to_onnx)


class Softmax(Function):
    autocast = "float32"
    onnx = _softmax_onnx("Softmax")
    flops = _SOFTMAX_FLOPS
    vector_kernel = True  # eager: a vectorised row kernel (csrc/nn_rows.h)
    save_output = True

    @staticmethod
    def forward(ctx, B, x, dim):
        ctx.dim = dim
        return B.softmax(x, dim)

    def backward(self, g):
        return apply(SoftmaxBackward, (self.output, g), {"dim": self.dim})


class SoftmaxBackward(Function):
    """gx = y * (g - sum(g * y)); inputs (y, g)."""
    autocast = None

    flops = _SOFTMAX_FLOPS
    vector_kernel = True  # eager: a vectorised row kernel (csrc/nn_rows.h)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, y, g, dim):
        ctx.dim = dim
        return B.softmax_backward(y, g, dim)

    def backward(self, v):
        y, g = self.saved_inputs
        d = self.dim
        gy = gg = None
        if self.next[0] is not None:
            # d/dy_k of sum_i v_i y_i (g_i - s), s = sum_j g_j y_j
            gy = v * (g - (g * y).sum(d, keepdim=True)) - g * (v * y).sum(d, keepdim=True)
        if self.next[1] is not None:
            # the Jacobian y_i (delta_ik - y_k) is symmetric: the same map applied to v
            gg = apply(SoftmaxBackward, (y, v), {"dim": d})
        return gy, gg


class LogSoftmax(Function):
    autocast = "float32"
    onnx = _softmax_onnx("LogSoftmax")
    flops = _SOFTMAX_FLOPS
    vector_kernel = True  # eager: a vectorised row kernel (csrc/nn_rows.h)
    save_output = True

    @staticmethod
    def forward(ctx, B, x, dim):
        ctx.dim = dim
        return B.log_softmax(x, dim)

    def backward(self, g):
        return apply(LogSoftmaxBackward, (self.output, g), {"dim": self.dim})


class LogSoftmaxBackward(Function):
    """gx = g - exp(y) * sum(g); inputs (y, g)."""
    autocast = None

    flops = _SOFTMAX_FLOPS
    vector_kernel = True  # eager: a vectorised row kernel (csrc/nn_rows.h)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, y, g, dim):
        ctx.dim = dim
        return B.log_softmax_backward(y, g, dim)

    def backward(self, v):
        y, g = self.saved_inputs
        d = self.dim
        p = y.exp()
        gy = -v * p * g.sum(d, keepdim=True) if self.next[0] is not None else None
        gg = v - (v * p).sum(d, keepdim=True) if self.next[1] is not None else None
        return gy, gg


def _softmax_args(x, dim, dtype, op: str):
    x = ensure_tensor(x, op)
    if dtype is not None:
        x = x.to(dtype)
    if not x.dtype.is_floating_point:
        x = x.to(_dt.get_default_dtype())
    if dim is None:
        # PyTorch's legacy implicit choice: dim 0 for 0-, 1- and 3-d inputs, else 1
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return x, _wrap_dim(dim, x.ndim, op)


def softmax(x, dim: int | None = None, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim`, fused and stable (shifted by the max)."""
    x, d = _softmax_args(x, dim, dtype, "softmax")
    if x.ndim == 0:
        return apply(Softmax, (x.reshape(1),), {"dim": 0}).reshape(())
    return apply(Softmax, (x,), {"dim": d})


def log_softmax(x, dim: int | None = None, dtype=None) -> Tensor:
    """x - logsumexp(x) along `dim`, fused and stable."""
    x, d = _softmax_args(x, dim, dtype, "log_softmax")
    if x.ndim == 0:
        return apply(LogSoftmax, (x.reshape(1),), {"dim": 0}).reshape(())
    return apply(LogSoftmax, (x,), {"dim": d})


# -- cross-entropy with class indices ----------------------------------------------------------
def _ce_coefficients(target: Tensor, weight: Tensor | None, ignore_index: int,
                     label_smoothing: float, n_classes: int, dtype: _dt.DType) -> Tensor:
    """q of the loss sum_c q[n, c] * (lse[n] - z[n, c]) (see ref_nn.cross_entropy_forward),
    in tinyfw ops: (1 - eps) * w[t] at each row's target, plus eps / C * w, 0 on ignored
    rows."""
    valid = target != ignore_index
    t = where(valid, target, 0)
    w = (target.new_ones(n_classes, dtype=dtype) if weight is None
         else weight.detach().to(dtype))
    picked = (w[t] * (1 - label_smoothing)).unsqueeze(1)
    q = target.new_zeros((t.shape[0], n_classes), dtype=dtype).scatter(1, t.unsqueeze(1), picked)
    if label_smoothing:
        q = q + w * (label_smoothing / n_classes)
    return where(valid.unsqueeze(1), q, 0.0)


_F64 = _dt.float64.np
_F32 = _dt.float32.np
_I64 = _dt.int64.np


def _mean_denominator(B, target, weight, ignore_index: int):
    """PyTorch's 'mean' divisor for class targets, a 0-d array on the device: the summed
    weights (float64) of the non-ignored targets, or their count (int64) without weights."""
    valid = B.ne(target, B.full((), ignore_index, target.dtype))
    if weight is None:
        return B.sum(valid, (0,), False)
    t = B.where(valid, target, B.full((), 0, target.dtype))
    picked = B.index(B.cast(weight, _F64), (t,))
    return B.sum(B.where(valid, picked, B.full((), 0, _F64)), (0,), False)


def _host_number(B, a):
    """The value of 0-d array `a` as a Python number (a copy to the host)."""
    return host.to_list(B.to_host(a))


class CrossEntropy(Function):
    """Cross-entropy of (N, C) logits, inputs (logits, target[, weight]): the per-sample
    loss (N,) for reduction 'none', else its sum or PyTorch's weighted mean as a 0-d
    tensor.  Folding the reduction in saves the Sum/Div nodes (forward and backward) that
    dominate a small batch's round trip."""
    autocast = "float32"

    flops = _SOFTMAX_FLOPS
    vector_kernel = True  # eager: a vectorised row kernel (csrc/nn_rows.h)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, logits, target, *weight, ignore_index, label_smoothing, reduction):
        w = weight[0] if weight else None
        loss, lse = B.cross_entropy_forward(logits, target, w, ignore_index, label_smoothing)
        ctx.lse = lse
        ctx.attrs = {"ignore_index": ignore_index, "label_smoothing": label_smoothing,
                     "has_weight": w is not None, "reduced": reduction != "none"}
        if reduction == "none":
            return loss
        # half losses are summed in float32, as PyTorch
        acc = _F64 if loss.dtype == _F64 else _F32
        total = B.sum(loss if loss.dtype == acc else B.cast(loss, acc), (0,), False)
        if reduction == "mean":
            # all targets ignored: the loss is 0/0 = NaN (the gradient 0, see the backward)
            divisor = _mean_denominator(B, target, w, ignore_index)
            total = B.div(total, divisor if divisor.dtype == acc else B.cast(divisor, acc))
        else:
            divisor = B.full((), 1, _I64)
        # the divisor of the gradient, a 0-d array (not a number) so that a jit trace
        # reads this call's value
        ctx.divisor = divisor
        return total if total.dtype == loss.dtype else B.cast(total, loss.dtype)

    def backward(self, g):
        ins = self.saved_inputs
        extra = (_make(self.lse),)
        if self.attrs["reduced"]:
            extra += (_make(self.divisor),)
        gx = apply(CrossEntropyBackward, (*ins, *extra, g), self.attrs)
        return (gx,) + (None,) * (len(ins) - 1)


class CrossEntropyBackward(Function):
    """gx[n, c] = g_n * (softmax(z)[n, c] * sum_k q[n, k] - q[n, c]); inputs
    (logits, target[, weight], lse[, divisor], g) where g_n = g[n] per sample, or
    g_n = g / divisor for a reduced loss (g and divisor 0-d; 0 when the divisor is 0)."""
    autocast = None

    flops = _SOFTMAX_FLOPS
    vector_kernel = True  # eager: a vectorised row kernel (csrc/nn_rows.h)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, logits, target, *rest, ignore_index, label_smoothing, has_weight,
                reduced):
        weight = rest[0] if has_weight else None
        g = rest[-1]
        if reduced:
            # every sample's upstream gradient is g / divisor, computed in float64 on the
            # host from the two scalars (one kernel fills the column)
            n = logits.shape[0]
            if device_of(logits).type == "meta":  # no values: the shape is what counts
                g = B.empty((n,), g.dtype)
            else:
                d = _host_number(B, rest[-2])
                g = B.full((n,), _host_number(B, g) / d if d else 0.0, g.dtype)
        ctx.ignore_index, ctx.label_smoothing = ignore_index, label_smoothing
        ctx.has_weight, ctx.reduced = has_weight, reduced
        return B.cross_entropy_backward(logits, target, weight, ignore_index, label_smoothing,
                                        rest[1 if has_weight else 0], g)

    def backward(self, v):
        ins = self.saved_inputs
        z, target, g = ins[0], ins[1], ins[-1]
        weight = ins[2] if self.has_weight else None
        dt = _dt.float64 if z.dtype is _dt.float64 else _dt.float32
        q = _ce_coefficients(target, weight, self.ignore_index, self.label_smoothing,
                             z.shape[1], dt)
        a = q.sum(1, keepdim=True).to(z.dtype)
        qt = q.to(z.dtype)
        p = softmax(z, 1)
        # per-sample upstream gradient as a column, differentiable w.r.t. g
        if self.reduced:
            d = ins[-2].to(_dt.float64)
            scale = where(d == 0, 0.0, 1 / where(d == 0, 1.0, d)).to(g.dtype)
            gcol = g * scale
        else:
            gcol = g.unsqueeze(1)
        gz = gg = None
        if self.next[0] is not None:
            gz = apply(SoftmaxBackward, (p, v * (gcol * a)), {"dim": 1})
        if self.next[-1] is not None:
            gg = (v * (p * a - qt)).sum() * scale if self.reduced else (v * (p * a - qt)).sum(1)
        return (gz,) + (None,) * (len(ins) - 2) + (gg,)


_REDUCTIONS = ("none", "mean", "sum")


def cross_entropy_rows(logits: Tensor, target: Tensor, weight: Tensor | None,
                       ignore_index: int, label_smoothing: float,
                       reduction: str = "none") -> Tensor:
    """Cross-entropy of (N, C) logits against int64 targets (already validated): the
    per-sample loss (N,) for reduction 'none', the 0-d sum or weighted mean otherwise."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: {reduction!r} is not a valid value for reduction")
    ins = (logits, target) if weight is None else (logits, target, weight)
    return apply(CrossEntropy, ins, {"ignore_index": int(ignore_index),
                                     "label_smoothing": float(label_smoothing),
                                     "reduction": reduction})


# -- layer norm / batch norm ------------------------------------------------------------------
def _norm_onnx(b, n, ins: list, out: str) -> None:
    a = n.attrs
    if a["kind"] == "batch":
        raise NotImplementedError("onnx.export: batch norm in training mode; call "
                                  "model.eval() before exporting")
    d, dtype = n.inputs[0].shape[-1], n.outputs[0].dtype
    w = ins[1] if a["has_w"] else b.full((d,), 1.0, dtype)
    bias = ins[-1] if a["has_b"] else b.full((d,), 0.0, dtype)
    b.add("LayerNormalization", [ins[0], w, bias], [out], axis=-1, epsilon=float(a["eps"]))


class Norm(Function):
    """Layer norm of x (M, N) over dim 1, or batch norm of x (N, C, L) over dims (0, 2);
    inputs (x[, weight][, bias])."""
    autocast = "float32"

    fresh_output = True
    onnx = staticmethod(_norm_onnx)
    flops = per_input(1)
    vector_kernel = True  # eager: a vectorised row kernel (csrc/nn_rows.h)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x, *wb, kind, eps, has_w, has_b):
        w = wb[0] if has_w else None
        b = wb[-1] if has_b else None
        fwd = B.layer_norm if kind == "layer" else B.batch_norm_forward
        y, mean, rstd = fwd(x, w, b, eps)
        ctx.kind, ctx.eps, ctx.has_w, ctx.has_b = kind, eps, has_w, has_b
        ctx.mean, ctx.rstd = mean, rstd
        return y

    def backward(self, g):
        ins = self.saved_inputs
        x = ins[0]
        w = ins[1] if self.has_w else None
        stats = (_make(self.mean), _make(self.rstd))
        gx, gw, gb = apply(NormBackward, ((g, x) if w is None else (g, x, w)) + stats,
                           {"kind": self.kind, "eps": self.eps})
        want_w = self.has_w and self.next[1] is not None
        want_b = self.has_b and self.next[-1] is not None
        if (want_w or want_b) and (GradMode.enabled or gw.numel() == 0):
            # create_graph: the fused kernel's gw/gb are plain arrays, so recompute them
            # with tinyfw ops, differentiable w.r.t. g and x (weight and bias lie along dim 1)
            other = tuple(i for i in range(x.ndim) if i != 1)
            dims = _norm_dims(self.kind)
            if want_w:
                gw = (g * _normalized(x, dims, self.eps)).sum(other)
            gb = g.sum(other)
        out = [gx if self.next[0] is not None else None]
        if self.has_w:
            out.append(gw if want_w else None)
        if self.has_b:
            out.append(gb if want_b else None)
        return tuple(out)


def _norm_dims(kind: str) -> tuple:
    """The dims the statistics are taken over: features of a row, or (batch, length)."""
    return (1,) if kind == "layer" else (0, 2)


def _normalized(x: Tensor, dims: tuple, eps: float) -> Tensor:
    """(x - mean) / sqrt(biased var + eps) over `dims`, in tinyfw ops (differentiable)."""
    xc = x - x.mean(dims, keepdim=True)
    return xc * ((xc * xc).mean(dims, keepdim=True) + eps).rsqrt()


class NormBackward(Function):
    """gx of layer / batch norm (fused kernel); inputs (g, x[, weight], mean, rstd), the
    statistics being the forward's.  gw and gb come back as side outputs (empty when
    there is no weight)."""
    autocast = None

    fresh_output = True
    flops = per_input(1)
    vector_kernel = True  # eager: a vectorised row kernel (csrc/nn_rows.h)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, g, x, *rest, kind, eps):
        ctx.kind, ctx.eps = kind, eps
        bwd = B.layer_norm_backward if kind == "layer" else B.batch_norm_backward
        w = rest[0] if len(rest) == 3 else None
        gx, gw, gb = bwd(g, x, w, rest[-2], rest[-1])
        empty = B.empty((0,), g.dtype)
        return gx, empty if gw is None else gw, empty if gb is None else gb

    def backward(self, v):
        ins = self.saved_inputs
        g, x = ins[0], ins[1]
        dims = _norm_dims(self.kind)
        wb = None
        if len(ins) == 5:
            wb = ins[2].reshape(1, -1) if self.kind == "layer" else ins[2].reshape(1, -1, 1)
        n = math.prod(x.shape[d] for d in dims)
        xc = x - x.mean(dims, keepdim=True)
        r = ((xc * xc).mean(dims, keepdim=True) + self.eps).rsqrt()
        xh = xc * r

        def mean(t):
            return t.sum(dims, keepdim=True) / n

        h = g if wb is None else g * wb
        mv, mvx = mean(v), mean(v * xh)
        # gx = r * P(h) with P(u) = u - mean(u) - xh * mean(u * xh), P symmetric
        grad_h = r * (v - mv - xh * mvx)
        out = [None, None] + ([None] if wb is not None else []) + [None, None]
        if self.next[0] is not None:
            out[0] = grad_h if wb is None else grad_h * wb
        if self.next[1] is not None:
            a, bh, mvh = mean(h), mean(h * xh), mean(v * h)
            # through r and xh: dr/dx = -r^2 xh / n, dxh_i/dx_j = r (delta - 1/n - xh_i xh_j / n)
            out[1] = -(r * r) * (xh * (mvh - a * mv - 3 * bh * mvx) + mvx * (h - a)
                                 + bh * (v - mv))
        if wb is not None and self.next[2] is not None:
            other = tuple(i for i in range(x.ndim) if i != 1)
            out[2] = (grad_h * g).sum(other)
        return tuple(out)


def norm_rows(x: Tensor, weight, bias, eps: float, kind: str) -> Tensor:
    """Apply the Norm Function to x shaped (M, N) ('layer') or (N, C, L) ('batch')."""
    ins = (x,) + ((weight,) if weight is not None else ()) + ((bias,) if bias is not None else ())
    return apply(Norm, ins, {"kind": kind, "eps": float(eps), "has_w": weight is not None,
                             "has_b": bias is not None})


# -- dropout -----------------------------------------------------------------------------------
class DrawSeed(Function):
    """Draw a kernel seed (0-d int64) from `generator`, advancing it.  An op of its own so
    that traced mode records the draw as a node that draws again on every replay."""
    autocast = None

    flops = no_flops
    differentiable = False
    host_output = True  # its value is a host array whatever the device (see forward)

    @staticmethod
    def forward(ctx, B, *order, generator):
        # `order`: traced mode chains the draws of one generator through this unused input;
        # the seed is a host (CPU) value: it joins any device's op as a 0-d CPU tensor
        return host.scalar(generator.next_seed(), _dt.int64)


class Dropout(Function):
    """Inputs (x, seed): the seed is an input (a 0-d int64 tensor drawn by DrawSeed) so
    that a traced graph draws a new one on every replay."""
    autocast = None
    flops = per_output(1)

    @staticmethod
    def forward(ctx, B, x, seed, p):
        # meta arrays hold no values (nor does the seed moved there): the mask is a shape
        seed = 0 if device_of(x).type == "meta" else host.to_list(B.to_host(seed))
        y, mask = B.dropout(x, p, seed)
        ctx.mask, ctx.scale = mask, 1 / (1 - p)
        return y

    def backward(self, g):
        return g * _make(self.mask).to(g.dtype) * self.scale, None


def dropout_kernel(x: Tensor, p: float, generator: Generator | None) -> Tensor:
    """x with elements zeroed with probability p (0 < p < 1), the rest scaled by 1/(1-p);
    the seed of the kernel's stream comes from `generator` (the default one when None)."""
    seed = apply(DrawSeed, (), {"generator": generator or default_generator})
    return apply(Dropout, (x, seed), {"p": float(p)})
