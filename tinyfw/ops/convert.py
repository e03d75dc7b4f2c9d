"""dtype conversions: `.to()`, `.float()`, `.half()` ... (differentiable between floats)."""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function
from ..device import as_device
from ..tensor import register_method
from ._opmeta import no_flops
from ._util import Tensor, apply


def _cast_c(args: list, t: str, attrs: dict) -> str:
    # C converts a float to unsigned char by truncation (0.5 -> 0; out of range is
    # undefined): a cast to bool is a test against zero, as numpy's astype(bool).  Other
    # casts happen in the store into the typed temporary.
    return f"({args[0]} != 0)" if attrs["dtype"] is _dt.bool_ else args[0]


def _cast_onnx(b, n, ins: list, out: str) -> None:
    b.add("Cast", ins, [out], to=b.tensor_type(n.outputs[0].dtype))


class Cast(Function):
    c_expr = staticmethod(_cast_c)
    onnx = staticmethod(_cast_onnx)
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, dtype):
        ctx.src = x.dtype
        return B.cast(x, dtype.np)

    def backward(self, g):
        return g.to(_dt.from_numpy_dtype(self.src))


class Clone(Function):
    onnx = "Identity"
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x):
        # contiguous() returns its input when already row-major; a clone must not
        return x.copy() if x.flags.c_contiguous else B.contiguous(x)

    def backward(self, g):
        return g


def cast(x: Tensor, dtype) -> Tensor:
    """x converted to `dtype` (a copy; x itself when the dtype already matches)."""
    dtype = _dt.as_dtype(dtype)
    if x._data.dtype == dtype.np:
        return x
    if x._rg and not dtype.is_floating_point:
        # integer results carry no gradient, as in PyTorch
        return apply(Cast, (x.detach(),), {"dtype": dtype})
    return apply(Cast, (x,), {"dtype": dtype})


def to(x: Tensor, *args, dtype=None, device=None, copy: bool = False, non_blocking: bool = False) -> Tensor:
    """Convert dtype and/or device: ``to(dtype)``, ``to(device)``, ``to(other_tensor)``,
    ``to(device, dtype)``."""
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, _dt.DType) or (isinstance(a, str) and a in _dt._by_name) or a in (float, int, bool):
            dtype = a
        else:
            device = a
    if device is not None:
        as_device(device)
    out = x if dtype is None else cast(x, dtype)
    return clone(out) if copy and out is x else out


def clone(x: Tensor) -> Tensor:
    """A copy with its own memory (gradient passes through)."""
    return apply(Clone, (x,), {})


def type_as(x: Tensor, other: Tensor) -> Tensor:
    """x converted to other's dtype."""
    return cast(x, other.dtype)


_METHODS = {
    "to": to, "type_as": type_as, "clone": clone,
    "float": lambda x: cast(x, _dt.float32), "double": lambda x: cast(x, _dt.float64),
    "half": lambda x: cast(x, _dt.float16), "bfloat16": lambda x: cast(x, _dt.bfloat16),
    "int": lambda x: cast(x, _dt.int32), "long": lambda x: cast(x, _dt.int64),
    "bool": lambda x: cast(x, _dt.bool_), "char": lambda x: cast(x, _dt.int8),
    "cpu": lambda x: x,
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)
