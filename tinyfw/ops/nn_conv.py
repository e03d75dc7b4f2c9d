"""Convolution and pooling ops (2-d, NCHW) on the backend's conv/pool primitives.

conv2d is bilinear in (input, weight) and pooling is linear in its input, so every
backward is again one of these primitives applied to other operands: each backward
Function's own backward calls the forward or the other backward primitive, which makes
gradients of any order available.  Arguments arrive validated (``tinyfw.nn.functional``).
"""
from __future__ import annotations

import math

from ..autograd.function import Function
from ._opmeta import per_first_input
from ._util import Tensor, apply
from .elementwise import where
from .index import Gather


def _conv_flops(g_shape: tuple, w_shape: tuple) -> int:
    # 2 FLOPs per (output-gradient element, weight element of one output channel)
    return 2 * math.prod(g_shape) * math.prod(w_shape[1:])


def _conv_onnx(b, n, ins: list, out: str) -> None:
    a = n.attrs
    ph, pw = a["padding"]
    b.add("Conv", ins, [out], strides=list(a["stride"]), pads=[ph, pw, ph, pw],
          dilations=list(a["dilation"]), group=int(a["groups"]))


def _max_pool_onnx(b, n, ins: list, out: str) -> None:
    a = n.attrs
    ph, pw = a["padding"]
    b.add("MaxPool", ins, [out], kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
          pads=[ph, pw, ph, pw], dilations=list(a["dilation"]), ceil_mode=int(a["ceil_mode"]))


def _avg_pool_onnx(b, n, ins: list, out: str) -> None:
    a = n.attrs
    if a.get("divisor_override"):
        raise NotImplementedError("onnx.export: avg_pool2d divisor_override has no ONNX "
                                  "translation")
    ph, pw = a["padding"]
    b.add("AveragePool", ins, [out], kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
          pads=[ph, pw, ph, pw], ceil_mode=int(a["ceil_mode"]),
          count_include_pad=int(a["count_include_pad"]))


def _conv_attrs(node) -> dict:
    return {"stride": node.stride, "padding": node.padding, "dilation": node.dilation,
            "groups": node.groups}


class Conv2d(Function):
    """y = conv2d(x, w) (no bias); inputs (x, w)."""
    autocast = "lower"

    fresh_output = True
    channels_last = True  # jit/passes/layout.py has its NHWC kernel
    epilogue_producer = True
    onnx = staticmethod(_conv_onnx)
    flops = staticmethod(lambda ins, outs, attrs: _conv_flops(outs[0], ins[1]))
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x, w, stride, padding, dilation, groups):
        ctx.stride, ctx.padding, ctx.dilation, ctx.groups = stride, padding, dilation, groups
        return B.conv2d(x, w, stride, padding, dilation, groups)

    def backward(self, g):
        x, w = self.saved_inputs
        attrs = _conv_attrs(self)
        gx = gw = None
        if self.next[0] is not None:
            gx = apply(Conv2dBackwardInput, (g, w), {"x_shape": x.shape, **attrs})
        if self.next[1] is not None:
            gw = apply(Conv2dBackwardWeight, (g, x), {"w_shape": w.shape, **attrs})
        return gx, gw


class Conv2dBackwardInput(Function):
    """gx = conv2d's input gradient (the transposed convolution of g by w); inputs (g, w)."""
    autocast = None

    fresh_output = True
    flops = staticmethod(lambda ins, outs, attrs: _conv_flops(ins[0], ins[1]))
    save_inputs = True

    @staticmethod
    def forward(ctx, B, g, w, x_shape, stride, padding, dilation, groups):
        ctx.stride, ctx.padding, ctx.dilation, ctx.groups = stride, padding, dilation, groups
        return B.conv2d_backward_input(g, w, x_shape, stride, padding, dilation, groups)

    def backward(self, v):
        g, w = self.saved_inputs
        attrs = _conv_attrs(self)
        # <v, gx(g, w)> = <g, conv2d(v, w)>: the adjoint of the adjoint, and bilinear
        gg = apply(Conv2d, (v, w), attrs) if self.next[0] is not None else None
        gw = (apply(Conv2dBackwardWeight, (g, v), {"w_shape": w.shape, **attrs})
              if self.next[1] is not None else None)
        return gg, gw


class Conv2dBackwardWeight(Function):
    """gw = conv2d's weight gradient; inputs (g, x)."""
    autocast = None

    fresh_output = True
    flops = staticmethod(lambda ins, outs, attrs: _conv_flops(ins[0], outs[0]))
    save_inputs = True

    @staticmethod
    def forward(ctx, B, g, x, w_shape, stride, padding, dilation, groups):
        ctx.stride, ctx.padding, ctx.dilation, ctx.groups = stride, padding, dilation, groups
        return B.conv2d_backward_weight(g, x, w_shape, stride, padding, dilation, groups)

    def backward(self, v):
        g, x = self.saved_inputs
        attrs = _conv_attrs(self)
        # <v, gw(g, x)> = <g, conv2d(x, v)>
        gg = apply(Conv2d, (x, v), attrs) if self.next[0] is not None else None
        gx = (apply(Conv2dBackwardInput, (g, v), {"x_shape": x.shape, **attrs})
              if self.next[1] is not None else None)
        return gg, gx


def conv2d_nobias(x: Tensor, w: Tensor, stride: tuple, padding: tuple, dilation: tuple,
                  groups: int) -> Tensor:
    """conv2d of validated (N, C, H, W) x and (O, C/groups, kh, kw) w, no bias."""
    return apply(Conv2d, (x, w), {"stride": stride, "padding": padding, "dilation": dilation,
                                  "groups": groups})


# -- max pooling ---------------------------------------------------------------------------------
class MaxPool2d(Function):
    autocast = None
    channels_last = True  # jit/passes/layout.py has its NHWC kernel
    save_aux = True  # the argmax indices (returned to the user too): backward reads them
    onnx = staticmethod(_max_pool_onnx)
    flops = per_first_input

    @staticmethod
    def forward(ctx, B, x, kernel, stride, padding, dilation, ceil_mode):
        y, idx = B.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
        ctx.x_shape = x.shape
        return y, idx

    def backward(self, g):
        idx, = self.saved_aux
        return apply(MaxPool2dBackward, (g, idx), {"x_shape": self.x_shape})


class MaxPool2dBackward(Function):
    """Scatter g to the argmax positions; linear in g.  Inputs (g, indices): the indices
    (flat positions in each (H, W) plane, -1 for a window without input elements)."""
    autocast = None

    save_inputs = slice(1, 2)  # the indices

    fresh_output = True
    flops = per_first_input

    @staticmethod
    def forward(ctx, B, g, indices, x_shape):
        return B.max_pool2d_backward(g, indices, x_shape)

    def backward(self, v):
        idx, = self.saved_inputs
        n, c, oh, ow = idx.shape
        flat = idx.reshape(n, c, oh * ow)
        picked = apply(Gather, (v.reshape(n, c, -1), flat.clamp(min=0)), {"dim": 2})
        # windows without input elements (index -1) pass nothing back
        picked = where(flat >= 0, picked, 0.0)
        return picked.reshape(n, c, oh, ow), None


def max_pool2d_indices(x: Tensor, kernel: tuple, stride: tuple, padding: tuple,
                       dilation: tuple, ceil_mode: bool) -> tuple:
    """(values, int64 indices) of max pooling a validated (N, C, H, W) tensor."""
    return apply(MaxPool2d, (x,), {"kernel": kernel, "stride": stride, "padding": padding,
                                   "dilation": dilation, "ceil_mode": ceil_mode})


# -- average pooling ------------------------------------------------------------------------------
def _avg_attrs(node) -> dict:
    return {"kernel": node.kernel, "stride": node.stride, "padding": node.padding,
            "ceil_mode": node.ceil_mode, "count_include_pad": node.count_include_pad,
            "divisor_override": node.divisor_override}


def _keep_avg_attrs(ctx, kernel, stride, padding, ceil_mode, count_include_pad,
                    divisor_override) -> None:
    ctx.kernel, ctx.stride, ctx.padding = kernel, stride, padding
    ctx.ceil_mode, ctx.count_include_pad = ceil_mode, count_include_pad
    ctx.divisor_override = divisor_override


class AvgPool2d(Function):
    channels_last = True  # jit/passes/layout.py has its NHWC kernel
    autocast = None
    onnx = staticmethod(_avg_pool_onnx)
    flops = per_first_input

    @staticmethod
    def forward(ctx, B, x, **attrs):
        _keep_avg_attrs(ctx, **attrs)
        ctx.x_shape = x.shape
        return B.avg_pool2d(x, *_avg_attrs(ctx).values())

    def backward(self, g):
        return apply(AvgPool2dBackward, (g,), {"x_shape": self.x_shape, **_avg_attrs(self)})


class AvgPool2dBackward(Function):
    """Spread g / divisor over each window; linear in g, the adjoint of avg_pool2d."""
    autocast = None

    fresh_output = True
    flops = per_first_input

    @staticmethod
    def forward(ctx, B, g, x_shape, **attrs):
        _keep_avg_attrs(ctx, **attrs)
        return B.avg_pool2d_backward(g, x_shape, *_avg_attrs(ctx).values())

    def backward(self, v):
        return apply(AvgPool2d, (v,), _avg_attrs(self))


def avg_pool2d_raw(x: Tensor, kernel: tuple, stride: tuple, padding: tuple, ceil_mode: bool,
                   count_include_pad: bool, divisor_override) -> Tensor:
    """Average pooling of a validated (N, C, H, W) tensor."""
    return apply(AvgPool2d, (x,), {"kernel": kernel, "stride": stride, "padding": padding,
                                   "ceil_mode": ceil_mode,
                                   "count_include_pad": count_include_pad,
                                   "divisor_override": divisor_override})


def pool_out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output length (see ref_nn._pool_out)."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


__all__ = ["Conv2d", "Conv2dBackwardInput", "Conv2dBackwardWeight", "MaxPool2d",
           "MaxPool2dBackward", "AvgPool2d", "AvgPool2dBackward", "conv2d_nobias",
           "max_pool2d_indices", "avg_pool2d_raw", "pool_out_size"]
