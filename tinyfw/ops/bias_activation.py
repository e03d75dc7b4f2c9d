"""``bias_act(y, b, act)``: ``act(y + b)`` as one op, the fused form of a product's bias +
activation epilogue (the built-in rewrite in tinyfw/jit/rewrites_epilogue.py makes it).

Eager, it is exactly the composition: ``B.add`` then the activation's own kernel (the
vectorised float32 kernels of csrc/elementwise_unary.cpp), so the values are those of
``gelu(y + b)`` bit for bit.  Its point is traced inference: when ``y`` comes from a
matmul or conv2d (``Function.epilogue_producer``) that nothing else reads, the epilogue
pass (jit/passes/fuse_epilogue.py) runs product, bias add and activation as one node:
the pass adds the bias into the product's buffer and ``epilogue`` below applies the
activation there through the kernels' ``out=`` entry: no array is allocated after the
product.

The backward recomputes ``z = y + b`` (the same add, so the same z) instead of saving it,
then uses the activation's one-kernel backward op: the gradients are those of the
composition, bit for bit.
"""
from __future__ import annotations

import math

from ..autograd.function import Function
from ._elementwise_activation import GeluBackward, SigmoidBackward, SiluBackward, TanhBackward
from ._opmeta import TRANSCENDENTAL_FLOPS
from ._util import Tensor, broadcast_shapes, unbroadcast

__all__ = ["BiasAct", "bias_act", "ACTIVATIONS"]

ACTIVATIONS = ("gelu", "silu", "tanh", "sigmoid")


def _act(B, z, act: str, approximate: str, out=None):
    """The activation's backend kernel on z (into `out` when given)."""
    kw = {} if out is None else {"out": out}
    if act == "gelu":
        return B.gelu(z, approximate, **kw)
    return getattr(B, act)(z, **kw)


class BiasAct(Function):
    """act(y + b), b broadcast into y's shape (a linear's (N,), a conv's (1, C, 1, 1))."""

    autocast = None  # the rewrite matched ops already on their final dtypes
    fresh_output = True
    save_inputs = True
    # act(y + b): fuse_epilogue may add b into the buffer of y's producer and run
    # `epilogue` over it
    epilogue_consumer = True

    @staticmethod
    def flops(in_shapes: list, out_shapes: list, attrs: dict) -> int:
        """One add and one transcendental function per element (as the composition)."""
        return math.prod(out_shapes[0]) * (1 + TRANSCENDENTAL_FLOPS) if out_shapes else 0

    @staticmethod
    def forward(ctx, B, y, b, act, approximate):
        ctx.act, ctx.approximate, ctx.b_shape = act, approximate, b.shape
        return _act(B, B.add(y, b), act, approximate)

    @staticmethod
    def epilogue(B, z, act: str, approximate: str):
        """The activation applied in place to z = y + b (a product's own buffer, the
        bias already added there by the epilogue pass): the kernel's out= entry."""
        return _act(B, z, act, approximate, out=z)

    def backward(self, g):
        y, b = self.saved_inputs
        z = y + b
        if self.act == "gelu":
            dz = GeluBackward.apply(g, z, approximate=self.approximate)
        elif self.act == "silu":
            dz = SiluBackward.apply(g, z)
        elif self.act == "tanh":
            dz = TanhBackward.apply(g, z.tanh())
        else:
            dz = SigmoidBackward.apply(g, z.sigmoid())
        db = unbroadcast(dz, self.b_shape) if self.next[1] is not None else None
        return dz, db


def bias_act(y: Tensor, b: Tensor, act: str, approximate: str = "none") -> Tensor:
    """``act(y + b)`` for act in gelu (``approximate`` 'none' or 'tanh'), silu, tanh,
    sigmoid; b must broadcast into y's shape without enlarging it."""
    if act not in ACTIVATIONS:
        raise ValueError(f"bias_act: act must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
    if act == "gelu" and approximate not in ("none", "tanh"):
        raise ValueError(f"bias_act: approximate must be 'none' or 'tanh', got {approximate!r}")
    if not isinstance(y, Tensor) or not isinstance(b, Tensor):
        raise TypeError("bias_act: y and b must be Tensors")
    try:
        fits = broadcast_shapes(tuple(y.shape), tuple(b.shape)) == tuple(y.shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"bias_act: the bias {list(b.shape)} does not broadcast into y's "
                         f"shape {list(y.shape)}")
    return BiasAct.apply(y, b, act=act, approximate=approximate if act == "gelu" else "none")
