"""The ops the layout pass (passes/layout.py) puts into a traced inference graph: layout
conversions, the channels-last conv / pooling kernels and the conv filter packing.

They are graph-only ops: eager code never applies them, they have no backward (the pass
only rewrites forward graphs without one), and their forwards call the kernels of
``tinyfw.backend.ref_layout.kernels(B)`` (tinyfw._C's when built, else numpy's).
"""
from __future__ import annotations

from ..autograd.function import Function
from ..backend.ref_layout import kernels


class ToNHWC(Function):
    """(N, C, H, W) -> (N, H, W, C), C-contiguous: a chain's entry conversion."""

    fresh_output = True

    @staticmethod
    def forward(ctx, B, x):
        return kernels(B).nchw_to_nhwc(x)


class ToNCHW(Function):
    """(N, H, W, C) -> (N, C, H, W), C-contiguous: a chain's exit conversion."""

    fresh_output = True

    @staticmethod
    def forward(ctx, B, x):
        return kernels(B).nhwc_to_nchw(x)


class PackConvFilter(Function):
    """(O, C, kh, kw) filter -> the packed blocks conv2d_nhwc reads (ref_layout's
    docstring); a constant filter (a frozen graph) is packed once, by the pass."""

    fresh_output = True

    @staticmethod
    def forward(ctx, B, w, block):
        return kernels(B).conv2d_nhwc_pack(w, block)


class Conv2dNHWC(Function):
    """conv2d (no bias, groups 1) of an NHWC input (or an NCHW one, read in place, with
    ``x_layout="nchw"``: a chain entry only convs read) with a packed filter; NHWC output.

    With ``bias`` / ``residual`` set, the inputs after the packed filter are a per-channel
    bias and / or a residual of the output's shape, added (in that order) as each output
    row is stored, then ``relu``: the layout pass folds a following bias add, residual
    add and relu in (passes/layout_epilogue.py), so no pass over the output remains.
    ``y_layout="nchw"``: the conv writes NCHW (its residual NCHW too), for a chain's exit.
    Otherwise a following elementwise group runs as its epilogue
    (passes/fuse_epilogue.py), as for the NCHW conv."""

    fresh_output = True
    epilogue_producer = True

    @staticmethod
    def forward(ctx, B, x, wp, *extra, out_channels, stride, padding, dilation,
                x_layout="nhwc", y_layout="nhwc", bias=False, residual=False, relu=False):
        extra = list(extra)
        b = extra.pop(0) if bias else None
        r = extra.pop(0) if residual else None
        return kernels(B).conv2d_nhwc(x, wp, out_channels, stride, padding, dilation,
                                      x_layout, y_layout, b, r, relu)


class MaxPool2dNHWC(Function):
    """max_pool2d's values of an NHWC input (inference: no argmax indices)."""

    fresh_output = True

    @staticmethod
    def forward(ctx, B, x, kernel, stride, padding, dilation, ceil_mode):
        return kernels(B).max_pool2d_nhwc(x, kernel, stride, padding, dilation, ceil_mode)


class AvgPool2dNHWC(Function):
    """avg_pool2d of an NHWC input."""

    fresh_output = True

    @staticmethod
    def forward(ctx, B, x, kernel, stride, padding, ceil_mode, count_include_pad,
                divisor_override):
        return kernels(B).avg_pool2d_nhwc(x, kernel, stride, padding, ceil_mode,
                                          count_include_pad, divisor_override)

