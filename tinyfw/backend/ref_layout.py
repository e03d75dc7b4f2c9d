"""Reference (numpy) kernels of the channels-last layout: the executable spec of
csrc/layout_conv.cpp and csrc/layout_ops.cpp, used by the traced mode's layout pass
(tinyfw/jit/passes/layout.py) when the C++ kernels are not there.

Each NHWC op is defined as the NCHW reference op (ref_nn) with its input and output
transposed, so the two layouts compute the same function by construction.  These are not
backend primitives (no autograd op reaches them; only traced inference graphs do), so they
live outside the primitive set that every backend must provide; `kernels()` picks the
compiled versions from ``tinyfw._C`` when they exist.

The packed filter of ``conv2d_nhwc`` holds output-channel blocks of `block` channels:
``wp[ob, a, b, c, k] = w[ob * block + k, c, a, b]``, zero past the last channel.
"""
from __future__ import annotations

import numpy as np

from . import ref_nn

__all__ = ["nchw_to_nhwc", "nhwc_to_nchw", "conv2d_nhwc_block", "conv2d_nhwc_pack",
           "conv2d_nhwc", "max_pool2d_nhwc", "avg_pool2d_nhwc", "kernels"]


def _check4(x, op: str) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: input must be a numpy array, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be 4-d, got shape {x.shape}")


def nchw_to_nhwc(x):
    """(N, C, H, W) -> C-contiguous (N, H, W, C)."""
    _check4(x, "nchw_to_nhwc")
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def nhwc_to_nchw(x):
    """(N, H, W, C) -> C-contiguous (N, C, H, W)."""
    _check4(x, "nhwc_to_nchw")
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def conv2d_nhwc_block(out_channels: int, dtype) -> int:
    """The output-channel block of the packed filter: the reference runs any block, so one
    block holds every channel."""
    if out_channels < 1:
        raise ValueError(f"conv2d_nhwc_block: out_channels must be >= 1, got {out_channels}")
    return int(out_channels)


def conv2d_nhwc_pack(w, block: int):
    """(O, C, kh, kw) filter -> (ceil(O / block), kh, kw, C, block), zero past O."""
    if not isinstance(w, np.ndarray) or w.ndim != 4:
        raise ValueError(f"conv2d_nhwc_pack: weight must be a 4-d array (O, C, kh, kw), got "
                         f"{getattr(w, 'shape', type(w).__name__)}")
    if block < 1:
        raise ValueError(f"conv2d_nhwc_pack: block must be >= 1, got {block}")
    o, c, kh, kw = w.shape
    nob = -(-o // block)
    full = np.zeros((nob * block, c, kh, kw), w.dtype)
    full[:o] = w
    return np.ascontiguousarray(full.reshape(nob, block, c, kh, kw).transpose(0, 3, 4, 2, 1))


def _unpack(wp, out_channels: int):
    nob, kh, kw, c, block = wp.shape
    if out_channels < 1 or nob != -(-out_channels // block):
        raise ValueError(f"conv2d_nhwc: packed weight {wp.shape} does not hold {out_channels} "
                         "output channels")
    return wp.transpose(0, 4, 3, 1, 2).reshape(nob * block, c, kh, kw)[:out_channels]


def conv2d_nhwc(x, wp, out_channels: int, stride: tuple, padding: tuple, dilation: tuple,
                x_layout: str = "nhwc", y_layout: str = "nhwc", bias=None, residual=None,
                relu: bool = False):
    """conv2d (no bias, groups 1) of x with a packed filter.  x is NHWC, or NCHW with
    ``x_layout="nchw"``; the output is NHWC, or NCHW with ``y_layout="nchw"``.

    The epilogue, in this order, each step rounded to the dtype as the separate ops
    would: ``+ bias`` (`out_channels` values), ``+ residual`` (an array of the output's
    shape and layout), ``relu`` (negatives to +0; NaN and -0 kept, as ``Relu``'s kernel)."""
    _check4(x, "conv2d_nhwc")
    for name, lay in (("x_layout", x_layout), ("y_layout", y_layout)):
        if lay not in ("nhwc", "nchw"):
            raise ValueError(f"conv2d_nhwc: {name} must be 'nhwc' or 'nchw', got {lay!r}")
    xc = x if x_layout == "nchw" else nhwc_to_nchw(x)
    if wp.ndim != 5 or wp.shape[3] != xc.shape[1]:
        raise ValueError(f"conv2d_nhwc: packed weight {wp.shape} does not fit input {x.shape}")
    w = np.ascontiguousarray(_unpack(wp, out_channels))
    y = ref_nn.conv2d(xc, w, tuple(stride), tuple(padding), tuple(dilation), 1)
    if bias is not None:
        b = np.asarray(bias)
        if b.dtype != y.dtype or b.size != out_channels:
            raise ValueError(f"conv2d_nhwc: bias must hold {out_channels} values of the "
                             f"input's dtype, got {b.dtype}{list(b.shape)}")
        y = y + b.reshape(1, -1, 1, 1)
    y = y if y_layout == "nchw" else nchw_to_nhwc(y)
    if residual is not None:
        r = np.asarray(residual)
        if r.dtype != y.dtype or r.shape != y.shape:
            raise ValueError(f"conv2d_nhwc: residual must have the output's shape "
                             f"{list(y.shape)} and dtype {y.dtype}, got {r.dtype}{list(r.shape)}")
        y = y + r
    if relu:
        y = np.where(y < 0, y.dtype.type(0), y)
    return np.ascontiguousarray(y)


def max_pool2d_nhwc(x, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
                    ceil_mode: bool):
    """max_pool2d's values (no indices) of NHWC x, NHWC out."""
    _check4(x, "max_pool2d_nhwc")
    y, _ = ref_nn.max_pool2d(nhwc_to_nchw(x), kernel, stride, padding, dilation, ceil_mode)
    return nchw_to_nhwc(y)


def avg_pool2d_nhwc(x, kernel: tuple, stride: tuple, padding: tuple, ceil_mode: bool,
                    count_include_pad: bool, divisor_override):
    """avg_pool2d of NHWC x, NHWC out."""
    _check4(x, "avg_pool2d_nhwc")
    y = ref_nn.avg_pool2d(nhwc_to_nchw(x), kernel, stride, padding, ceil_mode,
                          count_include_pad, divisor_override)
    return nchw_to_nhwc(y)


def kernels(backend):
    """The namespace of layout kernels for `backend`: tinyfw._C's compiled ones when the
    backend is the CPU backend with them built, else these references."""
    C = getattr(backend, "_C", None)
    if C is not None and hasattr(C, "conv2d_nhwc"):
        return C
    import sys

    return sys.modules[__name__]
