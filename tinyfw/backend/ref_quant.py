"""int8 quantization primitives of the reference backend, in plain numpy: the contract
the C++ int8 kernels are tested against for exact equality.

Codes: activations are uint8 (``qdtype="uint8"``, 0..255) or int8, weights int8 with a
per-output-channel scale and zero point 0.  Every float computation below is float32
and its order is part of the contract; "rint" is round half to even.

Quantize (as PyTorch's x86 build, checked against ``torch.quantize_per_tensor`` /
``quantize_per_channel``, which round differently from each other):

- per tensor:  q = clamp(rint(fma(x, inv, zp)), qmin, qmax), inv = float32(1 / scale),
  where fma is the fused multiply-add (one rounding of x * inv + zp to float32);
- per channel: q = clamp(rint(float32(x * inv[c]) + float32(zp[c])), qmin, qmax),
  two roundings (multiply, then add).

Dequantize: float32(q - zp) * scale.

The integer products (`qlinear`, `qconv2d`) accumulate sum (x_q - x_zp) * w_q exactly in
int32 (the caller keeps k * 255 * 128 below 2**31; `qlinear` checks it) and end in this
epilogue, no fused multiply-add anywhere (a C kernel computes it with fp-contract off):

    m[j] = float32(x_scale) * w_scale[j]          # float32, once per output channel
    y    = float32(acc) * m[j]                    # int32 -> float32 rounds to nearest even
    y    = y + bias[j]                            # when there is a bias
    y    = max(y, 0)                              # when relu
    out  = y                                      # float32 output when out_scale is None
    q    = clamp(rint(y * inv_out) + out_zp, 0, 255),  inv_out = float32(1) / float32(out_scale)
"""
from __future__ import annotations

import numpy as np

from .ref_nn import _conv_out, _pad_hw, _pool_out, _pool_pad, _windows

__all__ = ["quantize_per_tensor", "quantize_per_channel", "dequantize_per_tensor",
           "dequantize_per_channel", "fake_quantize", "qlinear", "qconv2d", "qadd",
           "qmax_pool2d", "qavg_pool2d"]

QRANGE = {"uint8": (0, 255), "int8": (-128, 127)}
_F32, _F64 = np.float32, np.float64


def _qrange(qdtype: str) -> tuple:
    if qdtype not in QRANGE:
        raise ValueError(f"quantize: qdtype must be 'uint8' or 'int8', got {qdtype!r}")
    return QRANGE[qdtype]


def _finite(x, op: str) -> None:
    if np.isnan(x).any():
        raise ValueError(f"{op}: the input holds NaN, which has no quantized value")


def _fma32(a, b, c):
    """float32(a * b + c) rounded once (a, b, c float32): a * b is exact in float64, the
    sum is held exactly as hi + lo (two-sum), and hi is rounded to float32 with lo
    breaking the one case where rounding hi alone is wrong: hi exactly halfway between
    two float32 values while lo is not zero."""
    p = a.astype(_F64) * b.astype(_F64)
    c = np.asarray(c, _F64)
    with np.errstate(over="ignore", invalid="ignore"):
        hi = p + c
        bb = hi - p
        lo = (p - (hi - bb)) + (c - bb)
        r = hi.astype(_F32)
        back = r.astype(_F64)
        diff = hi - back
        other = np.nextafter(r, np.where(diff > 0, _F32(np.inf), _F32(-np.inf)).astype(_F32))
        mid = (back + other.astype(_F64)) / 2
        toward = (diff != 0) & (hi == mid) & (lo != 0) & (np.sign(lo) == np.sign(diff))
    return np.where(toward, other, r)


def _to_codes(v, qmin: int, qmax: int, dtype):
    """clamp(v) of float values v that are already integers (or +-inf) -> code dtype."""
    return np.clip(v, qmin, qmax).astype(dtype)


def _rint_fma(x, scale: float, zero_point: int):
    inv = _F32(1) / _F32(scale)
    with np.errstate(over="ignore"):
        return np.rint(_fma32(np.asarray(x, _F32), np.full((), inv, _F32), _F32(zero_point)))


def _rint_per_channel(x, scales, zero_points, axis: int):
    shape = [1] * x.ndim
    shape[axis] = -1
    inv = (_F32(1) / np.asarray(scales, _F32)).reshape(shape)
    zp = np.asarray(zero_points).astype(_F32).reshape(shape)
    with np.errstate(over="ignore"):
        return np.rint((np.asarray(x, _F32) * inv).astype(_F32) + zp)


def quantize_per_tensor(x, scale: float, zero_point: int, qdtype: str):
    """Codes clamp(rint(fma(x, 1/scale, zero_point))) as uint8 or int8 (see module doc)."""
    qmin, qmax = _qrange(qdtype)
    _finite(x, "quantize_per_tensor")
    return _to_codes(_rint_fma(x, scale, zero_point), qmin, qmax, qdtype)


def quantize_per_channel(x, scales, zero_points, axis: int, qdtype: str):
    """Codes clamp(rint(x * (1/scales[c]) + zero_points[c])) along `axis` (two float32
    roundings, see module doc)."""
    qmin, qmax = _qrange(qdtype)
    _finite(x, "quantize_per_channel")
    return _to_codes(_rint_per_channel(x, scales, zero_points, axis), qmin, qmax, qdtype)


def dequantize_per_tensor(q, scale: float, zero_point: int):
    """float32(q - zero_point) * scale."""
    return (q.astype(np.int32) - np.int32(zero_point)).astype(_F32) * _F32(scale)


def dequantize_per_channel(q, scales, zero_points, axis: int):
    """float32(q - zero_points[c]) * scales[c] along `axis`."""
    shape = [1] * q.ndim
    shape[axis] = -1
    d = q.astype(np.int32) - np.asarray(zero_points, np.int32).reshape(shape)
    return d.astype(_F32) * np.asarray(scales, _F32).reshape(shape)


def fake_quantize(x, scales, zero_points, axis, qmin: int, qmax: int):
    """(dequantize(quantize(x)), mask) in x's float dtype: per tensor when `axis` is None
    (scales and zero_points hold one value), else per channel along `axis`, with the
    rounding of quantize_per_tensor / quantize_per_channel; `mask` is true where the
    rounded value lies in [qmin, qmax] (the straight-through gradient passes there)."""
    _finite(x, "fake_quantize")
    scales = np.asarray(scales, _F32).reshape(-1)
    zps = np.asarray(zero_points).reshape(-1)
    if axis is None:
        r = _rint_fma(x, scales[0], int(zps[0]))
        q = np.clip(r, qmin, qmax)
        y = (q - _F32(zps[0])).astype(_F32) * scales[0]
    else:
        r = _rint_per_channel(x, scales, zps, axis)
        q = np.clip(r, qmin, qmax)
        shape = [1] * x.ndim
        shape[axis] = -1
        y = (q - zps.astype(_F32).reshape(shape)).astype(_F32) * scales.reshape(shape)
    return y.astype(x.dtype), (r >= qmin) & (r <= qmax)


def _epilogue(acc, x_scale: float, w_scale, bias, out_scale, out_zp: int, relu: bool,
              channel_axis: int):
    """The requantising epilogue of the module doc on int32 accumulators."""
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    m = (_F32(x_scale) * np.asarray(w_scale, _F32)).reshape(shape)
    y = acc.astype(_F32) * m
    if bias is not None:
        y = y + np.asarray(bias, _F32).reshape(shape)
    if relu:
        y = np.maximum(y, _F32(0))
    if out_scale is None:
        return y.astype(_F32)
    inv = _F32(1) / _F32(out_scale)
    with np.errstate(over="ignore"):
        v = np.rint((y * inv).astype(_F32))
    return np.clip(v + out_zp, 0, 255).astype(np.uint8)


def _acc_bound(k: int, op: str) -> None:
    if k * 255 * 128 >= 2 ** 31:
        raise ValueError(f"{op}: a reduction over {k} products may overflow the int32 "
                         f"accumulator (at most {(2 ** 31 - 1) // (255 * 128)})")


def qlinear(x_q, x_scale: float, x_zp: int, w_q, w_scale, bias, out_scale, out_zp: int,
            relu: bool):
    """uint8 x_q [m, k] times int8 w_q [n, k]^T with int32 accumulation, then the
    epilogue (module doc): uint8 [m, n], or float32 when out_scale is None."""
    _acc_bound(x_q.shape[-1], "qlinear")
    acc = (x_q.astype(np.int32) - np.int32(x_zp)) @ w_q.astype(np.int32).T
    return _epilogue(acc, x_scale, w_scale, bias, out_scale, out_zp, relu, -1)


def qconv2d(x_q, x_scale: float, x_zp: int, w_q, w_scale, bias, stride: tuple,
            padding: tuple, dilation: tuple, groups: int, out_scale, out_zp: int,
            relu: bool):
    """Quantized cross-correlation: uint8 x_q (N, C, H, W), int8 w_q (O, C/groups, kh, kw);
    the padding holds x_zp (the code of 0.0); int32 accumulation of (x_q - x_zp) * w_q,
    then the epilogue per output channel: uint8 (N, O, OH, OW) (float32 without
    out_scale)."""
    n, c, h, wd = x_q.shape
    o, cg, kh, kw = w_q.shape
    _acc_bound(cg * kh * kw, "qconv2d")
    out = (_conv_out(h, kh, stride[0], padding[0], dilation[0]),
           _conv_out(wd, kw, stride[1], padding[1], dilation[1]))
    xs = x_q.astype(np.int32) - np.int32(x_zp)  # zero padding of xs is x_zp padding of x_q
    xp = _pad_hw(xs, padding[0], padding[0], padding[1], padding[1])
    cols = _windows(xp, (kh, kw), stride, dilation, out).reshape(
        n, groups, cg, out[0], out[1], kh, kw)
    wg = w_q.astype(np.int32).reshape(groups, o // groups, cg, kh, kw)
    acc = np.einsum("ngchwab,gocab->ngohw", cols, wg).reshape(n, o, out[0], out[1])
    return _epilogue(acc, x_scale, w_scale, bias, out_scale, out_zp, relu, 1)


def qadd(a_q, a_scale: float, a_zp: int, b_q, b_scale: float, b_zp: int, out_scale: float,
         out_zp: int, relu: bool):
    """Quantized a + b: s = dequantize(a) + dequantize(b) (float32, broadcasting),
    max(s, 0) when relu, then q = clamp(rint(s * inv_out) + out_zp, 0, 255)."""
    s = dequantize_per_tensor(a_q, a_scale, a_zp) + dequantize_per_tensor(b_q, b_scale, b_zp)
    if relu:
        s = np.maximum(s, _F32(0))
    with np.errstate(over="ignore"):
        v = np.rint((s * (_F32(1) / _F32(out_scale))).astype(_F32))
    return np.clip(v + out_zp, 0, 255).astype(np.uint8)


def qmax_pool2d(x_q, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
                ceil_mode: bool):
    """Max over each window of the codes (the order of codes is the order of the values
    they stand for, so the output keeps the input's scale and zero point); padding never
    wins (windows are checked to hold an input element)."""
    n, c, h, wd = x_q.shape
    out = tuple(_pool_out(x_q.shape[2 + i], kernel[i], stride[i], padding[i], dilation[i],
                          ceil_mode) for i in range(2))
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"qmax_pool2d: padding {padding} must be at most half the kernel "
                         f"{kernel}")
    low = np.iinfo(x_q.dtype).min
    xp = _pool_pad(x_q, kernel, stride, padding, dilation, out, low)
    return _windows(xp, kernel, stride, dilation, out).max(axis=(-2, -1)).astype(x_q.dtype)


def qavg_pool2d(x_q, zero_point: int, kernel: tuple, stride: tuple, padding: tuple,
                ceil_mode: bool, count_include_pad: bool):
    """Average of each window in the input's scale: s = sum(x_q - zero_point) (int32; the
    padding holds zero_point), q = clamp(rint(float32(s) * float32(1 / count)) +
    zero_point) in the code range, count = the window's size (or its input elements
    without count_include_pad)."""
    n, c, h, wd = x_q.shape
    out = tuple(_pool_out(x_q.shape[2 + i], kernel[i], stride[i], padding[i], 1, ceil_mode)
                for i in range(2))
    xs = x_q.astype(np.int32) - np.int32(zero_point)
    xp = _pool_pad(xs, kernel, stride, padding, (1, 1), out, 0)
    s = _windows(xp, kernel, stride, (1, 1), out).sum(axis=(-2, -1), dtype=np.int32)
    count = np.ones(out, np.int32)
    for i, size in enumerate((h, wd)):  # window taps inside the input (or its padding)
        start = np.arange(out[i]) * stride[i] - padding[i]
        lo, hi = (-padding[i], size + padding[i]) if count_include_pad else (0, size)
        taps = np.clip(start + kernel[i], lo, hi) - np.clip(start, lo, hi)
        count = count * (taps[:, None] if i == 0 else taps[None, :]).astype(np.int32)
    inv = (_F32(1) / count.astype(_F32)).astype(_F32)
    v = np.rint((s.astype(_F32) * inv).astype(_F32)) + zero_point
    lo, hi = np.iinfo(x_q.dtype).min, np.iinfo(x_q.dtype).max
    return np.clip(v, lo, hi).astype(x_q.dtype)
