"""Separable resampling along one dim (``interpolate``'s nearest, linear and bicubic
modes): y[..., o, ...] = sum_t weight[o, t] * x[..., index[o, t], ...].

The op is linear in x with fixed (index, weight) tables, so its backward is the adjoint
primitive and the adjoint's backward the forward: gradients of any order.  The tables are
inputs (they are arrays) without gradients.
"""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..autograd.function import Function
from ..creation import tensor
from ._util import Tensor, apply


def _flops(ins: list, outs: list, attrs: dict) -> int:
    # one multiply and one add per tap and output element
    return 2 * math.prod(outs[0]) * ins[1][1]


def _resample_onnx(b, n, ins: list, out: str) -> None:
    # Gather the taps (B, O, T, I), weight them (O, T, 1), sum over the taps
    x, index, weight = ins
    taps, w3, prod = b.tmp(), b.tmp(), b.tmp()
    b.add("Gather", [x, index], [taps], axis=1)
    b.add("Unsqueeze", [weight, b.ints([2])], [w3])
    b.add("Mul", [taps, w3], [prod])
    b.reduce("ReduceSum", prod, out, [2], False)


class ResampleAxis(Function):
    """x (B, L, I) -> (B, O, I); inputs (x, index (O, T) int64, weight (O, T))."""
    autocast = None
    onnx = staticmethod(_resample_onnx)
    fresh_output = True
    flops = staticmethod(_flops)
    save_inputs = slice(1, 3)

    @staticmethod
    def forward(ctx, B, x, index, weight):
        ctx.in_size = x.shape[1]
        return B.resample_axis(x, index, weight)

    def backward(self, g):
        index, weight = self.saved_inputs
        return apply(ResampleAxisBackward, (g, index, weight), {"in_size": self.in_size}), \
            None, None


class ResampleAxisBackward(Function):
    """The adjoint: g (B, O, I) -> (B, in_size, I); inputs (g, index, weight)."""
    autocast = None
    fresh_output = True
    flops = staticmethod(lambda ins, outs, attrs: 2 * math.prod(ins[0]) * ins[1][1])
    save_inputs = slice(1, 3)

    @staticmethod
    def forward(ctx, B, g, index, weight, in_size):
        return B.resample_axis_backward(g, index, weight, in_size)

    def backward(self, v):
        index, weight = self.saved_inputs
        return apply(ResampleAxis, (v, index, weight), {}), None, None


def resample_dim(x: Tensor, dim: int, index, weight) -> Tensor:
    """Resample x along `dim` with numpy tables index (O, T) int64 and weight (O, T) (cast
    to x's dtype; float32 for the half types)."""
    shape = tuple(x.shape)
    outer, inner = math.prod(shape[:dim]), math.prod(shape[dim + 1:])
    wdt = x.dtype if x.dtype.name in ("float32", "float64") else _dt.float32
    idx = tensor(index, device=x.device)
    w = tensor(weight, dtype=wdt, device=x.device)
    y = apply(ResampleAxis, (x.reshape(outer, shape[dim], inner), idx, w), {})
    return y.reshape(*shape[:dim], index.shape[0], *shape[dim + 1:])


__all__ = ["ResampleAxis", "ResampleAxisBackward", "resample_dim"]
