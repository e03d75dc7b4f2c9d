"""Bitwise ops on integer and bool tensors (issue 16): and/or/xor/not, the shifts, gcd and
lcm, their operators (``& | ^ ~ << >>``, reflected and in-place forms) and Tensor methods.

PyTorch's rules: operands promote as in arithmetic (bool & int gives the int; a Python int
joins a tensor's dtype); floating-point operands are refused (the ops have no meaning for
them), and so are bools for the shifts, gcd and lcm.  Integer results wrap modulo 2**bits.
None of these ops has a gradient.
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function
from ..tensor import register_method
from . import elementwise as E
from ._opmeta import per_input, per_output
from ._util import (Tensor, _NOATTRS, apply, binary_operands, broadcast_shapes, dims_of,
                    ensure_tensor)

__all__ = ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift",
           "bitwise_right_shift", "gcd", "lcm", "gcd_", "lcm_", "hash_tensor"]


def _onnx_bitwise(name: str):
    """An ONNX exporter of an integer op (bools take the logical ops, see bitwise_and):
    ONNX has Bitwise* from opset 18."""
    def export(b, node, ins: list, out: str) -> None:
        if b.opset >= 18:
            b.add(name, ins, [out])
        else:
            raise NotImplementedError(f"ONNX export: {name} on integers needs opset 18 or later "
                                      f"(opset_version={b.opset})")
    return staticmethod(export)


def _binary_class(name: str, prim: str, onnx) -> type:
    def forward(ctx, B, a, b):
        return getattr(B, prim)(a, b)
    cls = type(name, (Function,), {
        "__module__": __name__, "__doc__": f"{prim}(a, b) elementwise; no gradient.",
        "autocast": None, "c_expr": None, "differentiable": False, "fresh_output": True,
        "onnx": onnx, "flops": per_output(1), "forward": staticmethod(forward)})
    return cls


BitwiseAnd = _binary_class("BitwiseAnd", "bitwise_and", _onnx_bitwise("BitwiseAnd"))
BitwiseOr = _binary_class("BitwiseOr", "bitwise_or", _onnx_bitwise("BitwiseOr"))
BitwiseXor = _binary_class("BitwiseXor", "bitwise_xor", _onnx_bitwise("BitwiseXor"))
# ONNX's BitShift is defined for unsigned types only: no export for the signed shifts
BitwiseLeftShift = _binary_class("BitwiseLeftShift", "bitwise_left_shift", None)
BitwiseRightShift = _binary_class("BitwiseRightShift", "bitwise_right_shift", None)
Gcd = _binary_class("Gcd", "gcd", None)
Lcm = _binary_class("Lcm", "lcm", None)


class BitwiseNot(Function):
    """~x elementwise (logical not for bool); no gradient."""
    autocast = None
    c_expr = None
    differentiable = False
    fresh_output = True
    onnx = _onnx_bitwise("BitwiseNot")
    flops = per_output(1)

    @staticmethod
    def forward(ctx, B, x):
        return B.bitwise_not(x)


def _int_operands(a, b, op: str, bools: bool):
    a, b = binary_operands(a, b, op)
    dt = a.dtype
    if dt.is_floating_point or (dt is _dt.bool_ and not bools):
        kinds = "integer or bool" if bools else "integer"
        raise TypeError(f"{op}: expected {kinds} tensors, got {dt.name} (after promotion)")
    if a._data.shape != b._data.shape:
        broadcast_shapes(a._data.shape, b._data.shape, op=op)
    return a, b


# bool operands run the logical ops (same values): their C templates and ONNX operators
# keep masks fused in traced graphs and exportable at every opset, as before issue 16
def bitwise_and(input, other) -> Tensor:
    """input & other elementwise (integer or bool tensors, or a tensor and a Python int)."""
    a, b = _int_operands(input, other, "bitwise_and", True)
    return E.logical_and(a, b) if a.dtype is _dt.bool_ else apply(BitwiseAnd, (a, b), _NOATTRS)


def bitwise_or(input, other) -> Tensor:
    """input | other elementwise (integer or bool)."""
    a, b = _int_operands(input, other, "bitwise_or", True)
    return E.logical_or(a, b) if a.dtype is _dt.bool_ else apply(BitwiseOr, (a, b), _NOATTRS)


def bitwise_xor(input, other) -> Tensor:
    """input ^ other elementwise (integer or bool)."""
    a, b = _int_operands(input, other, "bitwise_xor", True)
    return E.logical_xor(a, b) if a.dtype is _dt.bool_ else apply(BitwiseXor, (a, b), _NOATTRS)


def bitwise_not(input) -> Tensor:
    """~input elementwise: every bit flipped (logical not for bool tensors)."""
    x = ensure_tensor(input, "bitwise_not")
    if x.dtype.is_floating_point:
        raise TypeError(f"bitwise_not: expected an integer or bool tensor, got {x.dtype.name}")
    return E.logical_not(x) if x.dtype is _dt.bool_ else apply(BitwiseNot, (x,), _NOATTRS)


def bitwise_left_shift(input, other) -> Tensor:
    """input << other elementwise (integers; a count outside [0, bits) gives 0)."""
    return apply(BitwiseLeftShift, _int_operands(input, other, "bitwise_left_shift", False),
                 _NOATTRS)


def bitwise_right_shift(input, other) -> Tensor:
    """input >> other elementwise, arithmetic for signed types (a count outside [0, bits)
    gives 0 or -1, the sign fill)."""
    return apply(BitwiseRightShift, _int_operands(input, other, "bitwise_right_shift", False),
                 _NOATTRS)


def _tensor_operands(input, other, op: str):
    # torch.gcd/lcm take two tensors (a Python number is a TypeError there too)
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError(f"{op}: expected two tensors, got {type(input).__name__} and "
                        f"{type(other).__name__}")
    return _int_operands(input, other, op, False)


def gcd(input: Tensor, other: Tensor) -> Tensor:
    """The greatest common divisor of |input| and |other| elementwise (gcd(0, 0) = 0)."""
    return apply(Gcd, _tensor_operands(input, other, "gcd"), _NOATTRS)


def lcm(input: Tensor, other: Tensor) -> Tensor:
    """The least common multiple of |input| and |other| elementwise (0 when either is 0)."""
    return apply(Lcm, _tensor_operands(input, other, "lcm"), _NOATTRS)


class HashTensor(Function):
    """The xor of the elements' 64-bit patterns over dims; no gradient."""
    autocast = None
    differentiable = False
    flops = per_input(1)

    @staticmethod
    def forward(ctx, B, x, dims, keepdim):
        return B.hash_tensor(x, dims, keepdim)


def hash_tensor(input: Tensor, dim=None, *, keepdim: bool = False, mode: int = 0) -> Tensor:
    """PyTorch's hash_tensor (mode 0, the only one): each element widened to 64 bits
    (floats to float64, integers and bools to int64) and its bit pattern xor-reduced over
    `dim` (all dims when None).  PyTorch returns uint64; tinyfw has no uint64 and returns
    int64 tensors holding the same 64 bits (docs/semantics.md, "Integers and sampling")."""
    x = ensure_tensor(input, "hash_tensor")
    if mode != 0:
        raise RuntimeError(f"hash_tensor: unknown mode {mode} (only 0, the xor reduction)")
    if dim is None and x.numel() == 0:
        raise RuntimeError("hash_tensor: the reduction dim must be given for an empty input")
    dims = dims_of(dim, x.ndim, "hash_tensor") if x.ndim else ()
    for d in dims:
        if x.shape[d] == 0:
            raise IndexError(f"hash_tensor: reduction dim {d} has size 0")
    return apply(HashTensor, (x,), {"dims": dims, "keepdim": bool(keepdim)})


def _inplace_op(fn, name: str):
    from .inplace import _inplace

    return _inplace(fn, name)


def gcd_(input: Tensor, other: Tensor) -> Tensor:
    """In-place gcd: writes into input and returns it."""
    return _inplace_op(gcd, "gcd_")(input, other)


def lcm_(input: Tensor, other: Tensor) -> Tensor:
    """In-place lcm: writes into input and returns it."""
    return _inplace_op(lcm, "lcm_")(input, other)


def _reflected(fn):
    return lambda a, b: fn(b, a)


def _register() -> None:
    from .inplace import _inplace

    methods = {
        "bitwise_and": bitwise_and, "bitwise_or": bitwise_or, "bitwise_xor": bitwise_xor,
        "bitwise_not": bitwise_not, "bitwise_left_shift": bitwise_left_shift,
        "bitwise_right_shift": bitwise_right_shift, "gcd": gcd, "lcm": lcm,
        "hash_tensor": hash_tensor, "__and__": bitwise_and, "__rand__": _reflected(bitwise_and),
        "__or__": bitwise_or, "__ror__": _reflected(bitwise_or),
        "__xor__": bitwise_xor, "__rxor__": _reflected(bitwise_xor),
        "__invert__": bitwise_not,
        "__lshift__": bitwise_left_shift, "__rlshift__": _reflected(bitwise_left_shift),
        "__rshift__": bitwise_right_shift, "__rrshift__": _reflected(bitwise_right_shift),
    }
    inplace = {
        "bitwise_and_": bitwise_and, "bitwise_or_": bitwise_or, "bitwise_xor_": bitwise_xor,
        "bitwise_not_": bitwise_not, "bitwise_left_shift_": bitwise_left_shift,
        "bitwise_right_shift_": bitwise_right_shift, "gcd_": gcd, "lcm_": lcm,
        "__iand__": bitwise_and, "__ior__": bitwise_or, "__ixor__": bitwise_xor,
        "__ilshift__": bitwise_left_shift, "__irshift__": bitwise_right_shift,
    }
    for name, fn in methods.items():
        register_method(name, fn)
    for name, fn in inplace.items():
        register_method(name, _inplace(fn, name))


_register()
