"""dtype conversions: `.to()`, `.float()`, `.half()` ... (differentiable between floats)."""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import Function
from ..backend import backend_for, device_of
from ..device import Device, as_device, cpu
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
    autocast = None
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
    autocast = None
    onnx = "Identity"
    flops = no_flops

    @staticmethod
    def forward(ctx, B, x):
        out = B.empty(x.shape, x.dtype)
        B.copy_(out, x)
        return out

    def backward(self, g):
        return g


class ToDevice(Function):
    """A copy on another device; the gradient goes back to the source device."""
    autocast = None

    flops = no_flops

    @staticmethod
    def forward(ctx, B, x, device: Device):
        ctx.src = device_of(x)
        dst = backend_for(device)
        if dst is B:
            out = B.empty(x.shape, x.dtype)
            B.copy_(out, x)
            return out
        return dst.from_host(B.to_host(x))

    def backward(self, g):
        return to(g, device=self.src)


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
    out = x if dtype is None else cast(x, dtype)
    if device is not None:
        device = as_device(device)
        if device != out.device:
            return apply(ToDevice, (out,), {"device": device})
    return clone(out) if copy and out is x else out


def cpu_(x: Tensor) -> Tensor:
    """This tensor on the CPU (itself if already there)."""
    return to(x, device=cpu)


def cuda(x: Tensor, device=None) -> Tensor:
    """This tensor on a CUDA device (the current one, index 0, by default)."""
    return to(x, device=Device("cuda", device) if isinstance(device, int) or device is None
              else device)


def clone(x: Tensor) -> Tensor:
    """A copy with its own memory (gradient passes through)."""
    return apply(Clone, (x,), {})


def type_as(x: Tensor, other: Tensor) -> Tensor:
    """x converted to other's dtype."""
    return cast(x, other.dtype)


_METHODS = {
    "to": to, "type_as": type_as, "clone": clone, "cpu": cpu_, "cuda": cuda,
    "float": lambda x: cast(x, _dt.float32), "double": lambda x: cast(x, _dt.float64),
    "half": lambda x: cast(x, _dt.float16), "bfloat16": lambda x: cast(x, _dt.bfloat16),
    "int": lambda x: cast(x, _dt.int32), "long": lambda x: cast(x, _dt.int64),
    "bool": lambda x: cast(x, _dt.bool_), "char": lambda x: cast(x, _dt.int8),
    "byte": lambda x: cast(x, _dt.uint8), "short": lambda x: cast(x, _dt.int16),
}
for _name, _fn in _METHODS.items():
    register_method(_name, _fn)
