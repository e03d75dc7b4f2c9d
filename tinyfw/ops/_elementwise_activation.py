"""Activation functions: relu, leaky_relu, gelu, silu, softplus (sigmoid and tanh live
with the unary math), and the one-kernel backward ops of gelu, silu, tanh and sigmoid.

Part of `tinyfw.ops.elementwise` (import from there); `tinyfw.nn.functional` re-exports
them.
"""
from __future__ import annotations

import math

from ..autograd.function import Function
from ._elementwise_binary import _unary, where
from ._opmeta import (C_SIGMOID, COST_TRANSCENDENTAL, TRANSCENDENTAL_FLOPS, c_template, cfun,
                      clit, per_output)
from ._util import Tensor

__all__ = ["Relu", "LeakyRelu", "Gelu", "GeluBackward", "Silu", "SiluBackward", "Softplus",
           "TanhBackward", "SigmoidBackward", "relu", "leaky_relu", "gelu", "silu", "softplus"]


# -- metadata helpers (see Function) ----------------------------------------------------------
def _leaky_relu_c(args: list, t: str, attrs: dict) -> str:
    a = args[0]
    return f"({a} > 0 ? {a} : {a} * {clit(attrs['negative_slope'], t)})"


def _leaky_relu_onnx(b, n, ins: list, out: str) -> None:
    b.add("LeakyRelu", ins, [out], alpha=float(n.attrs["negative_slope"]))


def _gelu_c(args: list, t: str, attrs: dict) -> str:
    a = args[0]
    if attrs["approximate"] == "tanh":
        k = clit(math.sqrt(2 / math.pi), t)
        return (f"({clit(0.5, t)} * {a} * (1 + {cfun('tanh', t)}({k} * ({a} + "
                f"{clit(0.044715, t)} * {a} * {a} * {a}))))")
    return f"({clit(0.5, t)} * {a} * (1 + {cfun('erf', t)}({a} * {clit(math.sqrt(0.5), t)})))"


def _gelu_onnx(b, n, ins: list, out: str) -> None:
    # opset 17 has no Gelu: x/2 * (1 + erf(x/sqrt(2))), or the tanh form
    x, dtype = ins[0], n.outputs[0].dtype
    half, one = b.scalar(0.5, dtype), b.scalar(1.0, dtype)
    t1, t2, t3 = b.tmp(), b.tmp(), b.tmp()
    if n.attrs["approximate"] == "tanh":
        c, k = b.scalar(0.044715, dtype), b.scalar(math.sqrt(2 / math.pi), dtype)
        x3, u, v, w = b.tmp(), b.tmp(), b.tmp(), b.tmp()
        b.add("Mul", [x, x], [x3 + "a"])
        b.add("Mul", [x3 + "a", x], [x3])
        b.add("Mul", [x3, c], [u])
        b.add("Add", [x, u], [v])
        b.add("Mul", [v, k], [w])
        b.add("Tanh", [w], [t1])
    else:
        r, s = b.scalar(math.sqrt(0.5), dtype), b.tmp()
        b.add("Mul", [x, r], [s])
        b.add("Erf", [s], [t1])
    b.add("Add", [t1, one], [t2])
    b.add("Mul", [x, half], [t3])
    b.add("Mul", [t3, t2], [out])


def _silu_onnx(b, n, ins: list, out: str) -> None:
    t = b.tmp()
    b.add("Sigmoid", ins, [t])
    b.add("Mul", [ins[0], t], [out])


class Relu(Function):
    autocast = None
    # <= 0: relu(-0.0) is +0.0 in eager's kernels (a < 0 kept -0.0); NaN passes through
    c_expr = c_template("({a} <= 0 ? ({t})0 : {a})")
    fresh_output = True
    onnx = "Relu"
    save_output = True

    @staticmethod
    def forward(ctx, B, x):
        return B.relu(x)

    def backward(self, g):
        # a select, as PyTorch's threshold_backward: a NaN gradient stays out of the
        # zeros, and a NaN input (NaN output) passes its gradient, as in PyTorch
        return where(self.output <= 0, g.new_zeros(()), g)


class LeakyRelu(Function):
    autocast = None
    c_expr = staticmethod(_leaky_relu_c)
    onnx = staticmethod(_leaky_relu_onnx)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x, negative_slope):
        ctx.slope = negative_slope
        return B.leaky_relu(x, negative_slope)

    def backward(self, g):
        x = self.saved_inputs[0]
        # the slope is applied to g, not put into a where() of two Python scalars, which
        # would round it to the default float dtype
        return where(x > 0, g, g * self.slope)


class Gelu(Function):
    autocast = None
    c_expr = staticmethod(_gelu_c)
    vector_kernel = True  # eager: csrc vector math, both forms (csrc/vmath_gelu.h)
    cost = COST_TRANSCENDENTAL
    fresh_output = True
    onnx = staticmethod(_gelu_onnx)
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x, approximate):
        ctx.approximate = approximate
        return B.gelu(x, approximate)

    def backward(self, g):
        # one kernel (B.gelu_backward) instead of ~10 elementwise passes
        return GeluBackward.apply(g, self.saved_inputs[0], approximate=self.approximate)


class GeluBackward(Function):
    """g * gelu'(x), GELU's backward as one op; its own backward (double backward) is
    composed from tinyfw ops."""
    autocast = None
    # one vectorised kernel in eager (csrc/elementwise_backward.cpp): traced graphs keep it
    c_expr = None
    vector_kernel = True
    fresh_output = True
    save_inputs = True

    @staticmethod
    def forward(ctx, B, g, x, approximate):
        ctx.approximate = approximate
        return B.gelu_backward(g, x, approximate)

    def backward(self, gg):
        g, x = self.saved_inputs
        # d/dg: gelu'(x), the same kernel with gg for g; d/dx: gg g gelu''(x)
        dg = dx = None
        if self.next[0] is not None:
            dg = GeluBackward.apply(gg, x, approximate=self.approximate)
        if self.next[1] is not None:
            dx = gg * g * _gelu_second(x, self.approximate)
        return dg, dx


def _gelu_second(x: Tensor, approximate: str) -> Tensor:
    """gelu''(x) in tinyfw ops (differentiable again)."""
    if approximate == "tanh":
        # gelu = x s, s = sigmoid(a), a = 2u = 2 sqrt(2/pi) (x + 0.044715 x^3):
        # gelu'' = 2 s' + x s'', s' = a' s (1 - s), s'' = a'' s (1 - s) + a'^2 s (1 - s) (1 - 2 s)
        # with 1 - s = sigmoid(-a) (1 - s cancels to 0 in float32 for x > 4.5)
        k2 = 2 * math.sqrt(2 / math.pi)
        a = x * (x * x * 0.044715 + 1) * k2
        s, sm = a.sigmoid(), (-a).sigmoid()
        s1 = s * sm
        a1 = (x * x * (3 * 0.044715) + 1) * k2
        a2 = x * (6 * 0.044715 * k2)
        return a1 * s1 * 2 + x * (a2 * s1 + a1 * a1 * s1 * (sm - s))
    # (Phi + x phi)' = 2 phi - x^2 phi
    phi = (x * x * -0.5).exp() * (1 / math.sqrt(2 * math.pi))
    return phi * (2 - x * x)


class Silu(Function):
    autocast = None
    c_expr = c_template("({a} * " + C_SIGMOID + ")")
    vector_kernel = True  # eager: csrc vector math (see _opmeta)
    cost = COST_TRANSCENDENTAL
    fresh_output = True
    onnx = staticmethod(_silu_onnx)
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x):
        return B.silu(x)

    def backward(self, g):
        return SiluBackward.apply(g, self.saved_inputs[0])


# -- backward ops: g * f'(.) in one kernel; their own backward (double backward) in tinyfw ops
class SiluBackward(Function):
    """g * (s * (1 + x * (1 - s))), s = sigmoid(x): silu's backward."""
    autocast = None
    # one vectorised kernel in eager (csrc/elementwise_backward.cpp): traced graphs keep it
    c_expr = None
    vector_kernel = True
    fresh_output = True
    save_inputs = True

    @staticmethod
    def forward(ctx, B, g, x):
        return B.silu_backward(g, x)

    def backward(self, gg):
        g, x = self.saved_inputs
        dg = dx = None
        if self.next[0] is not None:
            dg = SiluBackward.apply(gg, x)
        if self.next[1] is not None:  # silu'' = s (1 - s) (2 + x (1 - 2 s)), 1 - s = sigmoid(-x)
            s, sm = x.sigmoid(), (-x).sigmoid()
            dx = gg * g * (s * sm * (x * (sm - s) + 2))
        return dg, dx


class TanhBackward(Function):
    """g * (1 - y * y) from tanh's output y."""
    autocast = None
    # one vectorised kernel in eager (csrc/elementwise_backward.cpp): traced graphs keep it
    c_expr = None
    vector_kernel = True
    fresh_output = True
    save_inputs = True

    @staticmethod
    def forward(ctx, B, g, y):
        return B.tanh_backward(g, y)

    def backward(self, gg):
        g, y = self.saved_inputs
        dg = TanhBackward.apply(gg, y) if self.next[0] is not None else None
        dy = gg * g * y * -2 if self.next[1] is not None else None
        return dg, dy


class SigmoidBackward(Function):
    """g * y * (1 - y) from sigmoid's output y."""
    autocast = None
    # one vectorised kernel in eager (csrc/elementwise_backward.cpp): traced graphs keep it
    c_expr = None
    vector_kernel = True
    fresh_output = True
    save_inputs = True

    @staticmethod
    def forward(ctx, B, g, y):
        return B.sigmoid_backward(g, y)

    def backward(self, gg):
        g, y = self.saved_inputs
        dg = SigmoidBackward.apply(gg, y) if self.next[0] is not None else None
        dy = gg * g * (1 - y * 2) if self.next[1] is not None else None
        return dg, dy


class Softplus(Function):
    autocast = "float32"
    c_expr = None  # no C template yet
    vector_kernel = True  # eager: csrc vector math (see _opmeta)
    flops = per_output(TRANSCENDENTAL_FLOPS)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x, beta, threshold):
        ctx.beta, ctx.threshold = beta, threshold
        return B.softplus(x, beta, threshold)

    def backward(self, g):
        x = self.saved_inputs[0]
        bx = x * self.beta
        return g * where(bx > self.threshold, 1.0, bx.sigmoid()).to(g.dtype)


def relu(x) -> Tensor:
    """max(x, 0)."""
    return _unary(Relu, x, "relu", floats=False)


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return _unary(LeakyRelu, x, "leaky_relu", negative_slope=float(negative_slope))


def gelu(x, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF; approximate='tanh' for the tanh form."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _unary(Gelu, x, "gelu", approximate=approximate)


def silu(x) -> Tensor:
    """x * sigmoid(x) (a.k.a. swish)."""
    return _unary(Silu, x, "silu")


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e ** (beta x)) / beta, linear where beta x > threshold."""
    return _unary(Softplus, x, "softplus", beta=float(beta), threshold=float(threshold))


