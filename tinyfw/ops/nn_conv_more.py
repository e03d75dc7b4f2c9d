"""3-d convolution Functions (NCDHW) on the backend's conv3d primitives.

The same structure as conv2d in ``nn_conv.py``: conv3d is bilinear in (input, weight),
so each backward is one of the three primitives applied to other operands and every
backward Function's own backward calls the forward or the other backward, which gives
gradients of any order.  conv_transpose3d is ``Conv3dBackwardInput`` applied to the
user's input (``tinyfw/nn/functional_conv.py``).  Arguments arrive validated.
"""
from __future__ import annotations

import math

from ..autograd.function import Function
from ._util import Tensor, apply


def _flops(g_shape: tuple, w_shape: tuple) -> int:
    # 2 FLOPs per (output-gradient element, weight element of one output channel)
    return 2 * math.prod(g_shape) * math.prod(w_shape[1:])


def _onnx(b, n, ins: list, out: str) -> None:
    a = n.attrs
    b.add("Conv", ins, [out], strides=list(a["stride"]), pads=list(a["padding"]) * 2,
          dilations=list(a["dilation"]), group=int(a["groups"]))


def _attrs(node) -> dict:
    return {"stride": node.stride, "padding": node.padding, "dilation": node.dilation,
            "groups": node.groups}


def _keep(ctx, stride, padding, dilation, groups) -> None:
    ctx.stride, ctx.padding, ctx.dilation, ctx.groups = stride, padding, dilation, groups


class Conv3d(Function):
    """y = conv3d(x, w) (no bias); inputs (x, w)."""
    autocast = "lower"
    fresh_output = True
    onnx = staticmethod(_onnx)
    flops = staticmethod(lambda ins, outs, attrs: _flops(outs[0], ins[1]))
    save_inputs = True

    @staticmethod
    def forward(ctx, B, x, w, stride, padding, dilation, groups):
        _keep(ctx, stride, padding, dilation, groups)
        return B.conv3d(x, w, stride, padding, dilation, groups)

    def backward(self, g):
        x, w = self.saved_inputs
        attrs = _attrs(self)
        gx = gw = None
        if self.next[0] is not None:
            gx = apply(Conv3dBackwardInput, (g, w), {"x_shape": x.shape, **attrs})
        if self.next[1] is not None:
            gw = apply(Conv3dBackwardWeight, (g, x), {"w_shape": w.shape, **attrs})
        return gx, gw


class Conv3dBackwardInput(Function):
    """gx = conv3d's input gradient (the transposed convolution of g by w); inputs (g, w)."""
    autocast = None
    fresh_output = True
    flops = staticmethod(lambda ins, outs, attrs: _flops(ins[0], ins[1]))
    save_inputs = True

    @staticmethod
    def forward(ctx, B, g, w, x_shape, stride, padding, dilation, groups):
        _keep(ctx, stride, padding, dilation, groups)
        return B.conv3d_backward_input(g, w, x_shape, stride, padding, dilation, groups)

    def backward(self, v):
        g, w = self.saved_inputs
        attrs = _attrs(self)
        # <v, gx(g, w)> = <g, conv3d(v, w)>: the adjoint of the adjoint, and bilinear
        gg = apply(Conv3d, (v, w), attrs) if self.next[0] is not None else None
        gw = (apply(Conv3dBackwardWeight, (g, v), {"w_shape": w.shape, **attrs})
              if self.next[1] is not None else None)
        return gg, gw


class Conv3dBackwardWeight(Function):
    """gw = conv3d's weight gradient; inputs (g, x)."""
    autocast = None
    fresh_output = True
    flops = staticmethod(lambda ins, outs, attrs: _flops(ins[0], outs[0]))
    save_inputs = True

    @staticmethod
    def forward(ctx, B, g, x, w_shape, stride, padding, dilation, groups):
        _keep(ctx, stride, padding, dilation, groups)
        return B.conv3d_backward_weight(g, x, w_shape, stride, padding, dilation, groups)

    def backward(self, v):
        g, x = self.saved_inputs
        attrs = _attrs(self)
        # <v, gw(g, x)> = <g, conv3d(x, v)>
        gg = apply(Conv3d, (x, v), attrs) if self.next[0] is not None else None
        gx = (apply(Conv3dBackwardInput, (g, v), {"x_shape": x.shape, **attrs})
              if self.next[1] is not None else None)
        return gg, gx


def conv3d_nobias(x: Tensor, w: Tensor, stride: tuple, padding: tuple, dilation: tuple,
                  groups: int) -> Tensor:
    """conv3d of validated (N, C, D, H, W) x and (O, C/groups, kd, kh, kw) w, no bias."""
    return apply(Conv3d, (x, w), {"stride": stride, "padding": padding, "dilation": dilation,
                                  "groups": groups})


def conv_transpose_nobias(x: Tensor, w: Tensor, out_shape: tuple, stride: tuple,
                          padding: tuple, dilation: tuple, groups: int) -> Tensor:
    """The transposed convolution of validated (N, Cin, *spatial) x by (Cin, Cout/groups,
    *kernel) w into `out_shape` (N, Cout, *out): conv's input gradient with x in the place
    of the output gradient (2-d or 3-d)."""
    from .nn_conv import Conv2dBackwardInput

    fn = Conv2dBackwardInput if x.ndim == 4 else Conv3dBackwardInput
    return apply(fn, (x, w), {"x_shape": tuple(out_shape), "stride": stride,
                              "padding": padding, "dilation": dilation, "groups": groups})


__all__ = ["Conv3d", "Conv3dBackwardInput", "Conv3dBackwardWeight", "conv3d_nobias",
           "conv_transpose_nobias"]
