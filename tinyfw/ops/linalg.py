"""Matrix products: matmul (1-d, 2-d, batched with broadcasting), mm, bmm, linear ..."""
from __future__ import annotations

import math

from ..autograd.function import Function
from ..dispatch import casts_inputs
from ..tensor import register_method
from ._util import Tensor, apply, binary_operands, broadcast_shapes, unbroadcast


def _matmul_flops(in_shapes: list, out_shapes: list, attrs: dict) -> int:
    # a multiply and an add per output element and step of the contracted dim
    a = in_shapes[0]
    return 2 * math.prod(out_shapes[0]) * (a[-1] if a else 1)


class Matmul(Function):
    autocast = "lower"
    fresh_output = True
    epilogue_producer = True
    onnx = "MatMul"
    flops = staticmethod(_matmul_flops)
    save_inputs = True

    @staticmethod
    def forward(ctx, B, a, b):
        return B.matmul(a, b)

    def backward(self, g):
        a, b = self.saved_inputs
        na, nb = self.next
        ga = gb = None
        flat = g.ndim == 2  # both operands 2-d: no batch dims to sum
        if na is not None:
            ga = (b @ g.mT).mT if flat and _transposed(a) else unbroadcast(g @ b.mT, a.shape)
        if nb is not None:
            gb = (g.mT @ a).mT if flat and _transposed(b) else unbroadcast(a.mT @ g, b.shape)
        return ga, gb


def _transposed(t: Tensor) -> bool:
    """True for a 2-d operand laid out column-major (a transposed view, like linear's
    weight.mT): its gradient is then computed in that layout, so that the gradient of the
    untransposed tensor comes out row-major and the leaf can keep it without a copy."""
    d = t._data
    if d.ndim != 2:
        return False
    (m, n), (s0, s1), size = d.shape, d.strides, d.itemsize
    # numpy's contiguity flags, from the strides (dims of size 1 may have any stride)
    col = (m == 1 or s0 == size) and (n == 1 or s1 == size * m)
    row = (n == 1 or s1 == size) and (m == 1 or s0 == size * n)
    return col and not row


def matmul(a, b) -> Tensor:
    """Matrix product as numpy/PyTorch define it: 1-d operands are vectors, leading dims
    of >2-d operands are batch dims and broadcast."""
    if type(a) is Tensor and type(b) is Tensor:
        # two matrices of one (non-bool) dtype whose inner sizes agree (every linear layer's
        # product and its backward's): the checks below, in their cheapest order
        ad, bd = a._data, b._data
        if (ad.ndim == 2 and bd.ndim == 2 and ad.shape[1] == bd.shape[0] and ad.dtype == bd.dtype
                and ad.dtype.kind != "b"):
            return apply(Matmul, (a, b), {})
    if not (type(a) is Tensor and type(b) is Tensor and a._data.dtype != b._data.dtype
            and casts_inputs(Matmul, a) and casts_inputs(Matmul, b)):
        # (under autocast mixed floats go to the interceptor as they are: promoting first
        # would cast a low-precision operand up only for autocast to cast it back down)
        a, b = binary_operands(a, b, "matmul")
    # the checks read the arrays' own attributes: this wrapper runs before every
    # product, and for the MLP's thin ones (~15 us) Tensor properties were a visible share
    ad, bd = a._data, b._data
    nda, ndb = ad.ndim, bd.ndim
    if nda == 0 or ndb == 0:
        raise RuntimeError(f"matmul: both operands need at least 1 dim, got shapes "
                           f"{ad.shape} and {bd.shape}")
    if ad.dtype == bool:
        raise TypeError("matmul: bool tensors are not supported; convert with .float()")
    k_a = ad.shape[-1]
    k_b = bd.shape[-2] if ndb > 1 else bd.shape[0]
    if k_a != k_b:
        raise RuntimeError(f"matmul: {ad.shape} @ {bd.shape}: inner dimensions "
                           f"{k_a} and {k_b} differ")
    if nda > 2 or ndb > 2:
        broadcast_shapes(ad.shape[:-2], bd.shape[:-2] if ndb > 1 else (), op="matmul batch dims")
    va, vb = nda == 1, ndb == 1
    if va:
        a = a.reshape(1, k_a)
    if vb:
        b = b.reshape(k_b, 1)
    out = apply(Matmul, (a, b), {})
    if va and vb:
        return out.reshape(())
    if va:
        return out.squeeze(-2)
    if vb:
        return out.squeeze(-1)
    return out


def mm(a, b) -> Tensor:
    """Product of two 2-d matrices."""
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(f"mm: expects 2-d tensors, got shapes {tuple(a.shape)} and "
                           f"{tuple(b.shape)}")
    return matmul(a, b)


def bmm(a, b) -> Tensor:
    """Batched product of two 3-d tensors with equal batch sizes."""
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise RuntimeError(f"bmm: expects 3-d tensors with equal batch sizes, got shapes "
                           f"{tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def dot(a, b) -> Tensor:
    """Inner product of two 1-d tensors."""
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"dot: expects 1-d tensors, got shapes {tuple(a.shape)} and "
                           f"{tuple(b.shape)}")
    return matmul(a, b)


def outer(a, b) -> Tensor:
    """Outer product of two 1-d tensors."""
    return a.reshape(-1, 1) * b.reshape(1, -1)


def linear(x, weight, bias=None) -> Tensor:
    """x @ weight.T + bias (weight: out_features × in_features)."""
    if weight.ndim != 2:
        raise RuntimeError(f"linear: weight must be 2-d (out, in), got {tuple(weight.shape)}")
    if x.shape[-1:] != weight.shape[1:]:
        raise RuntimeError(f"linear: input {tuple(x.shape)} has {x.shape[-1] if x.ndim else 0} "
                           f"features but weight {tuple(weight.shape)} expects {weight.shape[1]}")
    out = matmul(x, weight.mT)
    if bias is None:
        return out
    if bias.dtype is not out.dtype and casts_inputs(Matmul, bias):
        # autocast: the bias joins the product's precision (PyTorch's linear is one op),
        # through the interceptor's weight cache
        bias = bias.to(out.dtype)
    return out + bias


_METHODS = {"matmul": matmul, "__matmul__": matmul, "__rmatmul__": lambda a, b: matmul(b, a),
            "mm": mm, "bmm": bmm, "dot": dot, "outer": outer}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)
