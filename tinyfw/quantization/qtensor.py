"""`QTensor`: quantized values (uint8/int8 codes) with their scale and zero point.

tinyfw has no uint8 dtype and quantized values are not a dtype of `tinyfw.Tensor` on
purpose: a code means nothing without its scale and zero point, no float op may touch it
(an ``add`` of two code arrays is wrong unless their scales agree), and autograd has
nothing to do with it.  So a quantized activation is this small value class, on the CPU
(a numpy array), passed from one quantized module to the next; `dequantize()` turns it
back into a float32 Tensor.  Weights are int8 Tensors (buffers), which tinyfw stores.
"""
from __future__ import annotations

import numpy as np

from ..dispatch import get_backend
from ..tensor import Tensor


class QTensor:
    """Codes ``int_repr`` (numpy uint8/int8) standing for ``(int_repr - zero_point) *
    scale``: per tensor (``axis`` None, float scale, int zero point) or per channel
    along ``axis`` (float32 scales, int32 zero points)."""

    __slots__ = ("int_repr", "scale", "zero_point", "axis")

    def __init__(self, int_repr: np.ndarray, scale, zero_point, axis: int | None = None):
        if int_repr.dtype not in (np.uint8, np.int8):
            raise TypeError(f"QTensor: codes must be uint8 or int8, got {int_repr.dtype}")
        self.int_repr = int_repr
        self.axis = axis
        if axis is None:
            self.scale, self.zero_point = float(scale), int(zero_point)
        else:
            self.scale = np.asarray(scale, np.float32)
            self.zero_point = np.asarray(zero_point, np.int32)

    @classmethod
    def quantize(cls, x: Tensor, scale: float, zero_point: int, qdtype: str = "uint8"
                 ) -> "QTensor":
        """Per-tensor affine quantization of a float tensor (rounding as PyTorch's)."""
        return cls(get_backend().quantize_per_tensor(_host(x), scale, zero_point, qdtype),
                   scale, zero_point)

    @classmethod
    def quantize_per_channel(cls, x: Tensor, scales, zero_points, axis: int,
                             qdtype: str = "int8") -> "QTensor":
        """Per-channel affine quantization along `axis`."""
        s, z = np.asarray(scales, np.float32), np.asarray(zero_points, np.int32)
        return cls(get_backend().quantize_per_channel(_host(x), s, z, axis, qdtype), s, z, axis)

    def dequantize(self) -> Tensor:
        """The float32 Tensor the codes stand for."""
        from ..creation import from_numpy

        B = get_backend()
        if self.axis is None:
            a = B.dequantize_per_tensor(self.int_repr, self.scale, self.zero_point)
        else:
            a = B.dequantize_per_channel(self.int_repr, self.scale, self.zero_point, self.axis)
        return from_numpy(np.ascontiguousarray(a))

    @property
    def shape(self) -> tuple:
        return self.int_repr.shape

    @property
    def ndim(self) -> int:
        return self.int_repr.ndim

    def _same(self, codes: np.ndarray) -> "QTensor":
        if self.axis is not None:
            raise ValueError("QTensor: reshaping a per-channel quantized tensor is not supported")
        return QTensor(codes, self.scale, self.zero_point)

    def reshape(self, *shape) -> "QTensor":
        """The same codes in another shape (per-tensor quantization only)."""
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return self._same(self.int_repr.reshape(shape))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "QTensor":
        """Dimensions start_dim..end_dim merged into one."""
        s = self.int_repr.shape
        nd = len(s)
        a, b = start_dim % nd, end_dim % nd
        return self.reshape(s[:a] + (int(np.prod(s[a:b + 1])),) + s[b + 1:])

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def __repr__(self) -> str:
        q = f"scale={self.scale}, zero_point={self.zero_point}" if self.axis is None else \
            f"per-channel axis={self.axis}"
        return f"QTensor(shape={self.shape}, dtype={self.int_repr.dtype}, {q})"


def _host(x) -> np.ndarray:
    """x's values as a float32 numpy array (a QTensor works on the CPU only)."""
    if isinstance(x, Tensor):
        if x.device.type != "cpu":
            raise ValueError(f"quantization: tensors must be on the CPU, got {x.device}")
        x = x.detach().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)
