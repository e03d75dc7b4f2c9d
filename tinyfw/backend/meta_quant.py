"""Shapes and dtypes of the int8 quantization primitives on the meta device (values:
``ref_quant``)."""
from __future__ import annotations

import numpy as np

__all__ = ["quantize_per_tensor", "quantize_per_channel", "dequantize_per_tensor",
           "dequantize_per_channel", "fake_quantize", "qlinear", "qconv2d", "qadd",
           "qmax_pool2d", "qavg_pool2d"]
_U8, _F32, _BOOL = np.dtype(np.uint8), np.dtype(np.float32), np.dtype(np.bool_)


def _new(shape, dtype):
    from .meta import MetaArray

    return MetaArray(shape, dtype)


def quantize_per_tensor(x, scale, zero_point, qdtype: str):
    """x's shape, the code dtype."""
    return _new(x.shape, np.dtype(qdtype))


def quantize_per_channel(x, scales, zero_points, axis: int, qdtype: str):
    """x's shape, the code dtype."""
    return _new(x.shape, np.dtype(qdtype))


def dequantize_per_tensor(q, scale, zero_point):
    """q's shape, float32."""
    return _new(q.shape, _F32)


def dequantize_per_channel(q, scales, zero_points, axis: int):
    """q's shape, float32."""
    return _new(q.shape, _F32)


def fake_quantize(x, scales, zero_points, axis, qmin: int, qmax: int):
    """(x's shape and dtype, bool mask)."""
    return _new(x.shape, x.dtype), _new(x.shape, _BOOL)


def qlinear(x_q, x_scale, x_zp, w_q, w_scale, bias, out_scale, out_zp, relu):
    """(m, n): uint8, float32 without out_scale."""
    return _new(x_q.shape[:-1] + (w_q.shape[0],), _F32 if out_scale is None else _U8)


def qconv2d(x_q, x_scale, x_zp, w_q, w_scale, bias, stride, padding, dilation, groups,
            out_scale, out_zp, relu):
    """(N, O, OH, OW): uint8, float32 without out_scale."""
    from .meta import _conv_out

    n, _, h, wd = x_q.shape
    o, _, kh, kw = w_q.shape
    return _new((n, o, _conv_out(h, kh, stride[0], padding[0], dilation[0]),
                 _conv_out(wd, kw, stride[1], padding[1], dilation[1])),
                _F32 if out_scale is None else _U8)


def qadd(a_q, a_scale, a_zp, b_q, b_scale, b_zp, out_scale, out_zp, relu):
    """The broadcast shape, uint8."""
    return _new(np.broadcast_shapes(a_q.shape, b_q.shape), _U8)


def qmax_pool2d(x_q, kernel, stride, padding, dilation, ceil_mode):
    """(N, C, OH, OW), the codes' dtype."""
    from .meta import _pool_out

    n, c, h, w = x_q.shape
    return _new((n, c, _pool_out(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode),
                 _pool_out(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)),
                x_q.dtype)


def qavg_pool2d(x_q, zero_point, kernel, stride, padding, ceil_mode, count_include_pad):
    """(N, C, OH, OW), the codes' dtype."""
    return qmax_pool2d(x_q, kernel, stride, padding, (1, 1), ceil_mode)
