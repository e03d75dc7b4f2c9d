"""conv1d, conv3d, the transposed convolutions and conv_tbc, with PyTorch's arguments.

How each one runs (no new arithmetic, only routing):

- conv1d is conv2d on a (N, C, 1, L) view of the input (and a (O, C/g, 1, k) view of the
  weight): the 2-d im2col + GEMM kernel, no copy;
- conv3d has its own Functions (``tinyfw/ops/nn_conv_more.py``) on the conv3d primitives;
- conv_transpose{1,2,3}d IS convolution's input gradient with the user's input in the place
  of the output gradient, so it applies ``Conv2dBackwardInput`` / ``Conv3dBackwardInput``;
  its backward is then the convolution forward (input) and the weight gradient (weight);
- conv_tbc is conv1d on permuted (time, batch, channel) views.
"""
from __future__ import annotations

from numbers import Integral

from ..dispatch import casts_inputs
from ..ops._util import Tensor, ensure_tensor
from ..ops.index import pad as _constant_pad
from ..ops.nn import check_float, check_same_dtype
from ..ops.nn_conv import Conv2d
from ..ops.nn_conv_more import Conv3d, conv3d_nobias, conv_transpose_nobias


def ntuple(v, n: int, op: str, name: str, minimum: int) -> tuple:
    """An int or n ints (a 1-sequence is repeated) as a validated n-tuple."""
    t = (v,) * n if isinstance(v, Integral) else tuple(v)
    if len(t) == 1:
        t = t * n
    if len(t) != n or not all(isinstance(i, Integral) and not isinstance(i, bool) for i in t):
        raise ValueError(f"{op}: {name} must be an int or {n} ints, got {v!r}")
    if any(i < minimum for i in t):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return tuple(int(i) for i in t)


def _batched(input, nd: int, op: str) -> tuple:
    """(float input with a batch dim, whether one was added) for nd spatial dims."""
    x = ensure_tensor(input, op)
    check_float(x, op)
    if x.ndim not in (nd + 1, nd + 2):
        names = ("L", "H, W", "D, H, W")[nd - 1]
        raise RuntimeError(f"{op}: expected a {nd + 1}-d (C, {names}) or {nd + 2}-d "
                           f"(N, C, {names}) input, got shape {tuple(x.shape)}")
    return (x.unsqueeze(0), True) if x.ndim == nd + 1 else (x, False)


def _weight(x: Tensor, weight, nd: int, groups, op: str, fn) -> Tensor:
    w = ensure_tensor(weight, op)
    check_same_dtype(x, w, op, "weight", fn)
    if w.ndim != nd + 2:
        raise RuntimeError(f"{op}: weight must be {nd + 2}-d, got shape {tuple(w.shape)}")
    if not isinstance(groups, Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    return w


def _add_bias(y: Tensor, bias, channels: int, op: str, fn) -> Tensor:
    if bias is None:
        return y
    b = ensure_tensor(bias, op)
    if b.shape != (channels,):
        raise RuntimeError(f"{op}: bias must have shape ({channels},), got {tuple(b.shape)}")
    check_same_dtype(y, b, op, "bias", fn)
    if b.dtype is not y.dtype and casts_inputs(fn, b):
        b = b.to(y.dtype)  # autocast: the bias joins the convolution's precision
    return y + b.reshape((1, channels) + (1,) * (y.ndim - 2))


def _check_groups(x: Tensor, w: Tensor, groups: int, op: str) -> None:
    o, cg = w.shape[:2]
    if o % groups:
        raise RuntimeError(f"{op}: groups={groups} does not divide the {o} output channels of "
                           f"weight {tuple(w.shape)}")
    if cg * groups != x.shape[1]:
        raise RuntimeError(f"{op}: input {tuple(x.shape)} has {x.shape[1]} channels but weight "
                           f"{tuple(w.shape)} with groups={groups} expects {cg * groups}")


def conv_padding(x: Tensor, w: Tensor, padding, stride: tuple, dilation: tuple, op: str):
    """(x, padding tuple) for an int/tuple/'valid'/'same' padding; 'same' with an even
    dilated kernel pads the odd element at the end of x, as PyTorch."""
    nd = len(stride)
    if not isinstance(padding, str):
        return x, ntuple(padding, nd, op, "padding", 0)
    if padding == "valid":
        return x, (0,) * nd
    if padding != "same":
        raise ValueError(f"{op}: padding must be an int, a tuple, 'valid' or 'same', got "
                         f"{padding!r}")
    if any(s != 1 for s in stride):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                         f"(stride {stride})")
    total = [d * (k - 1) for d, k in zip(dilation, w.shape[2:])]
    extra = [t % 2 for t in total]
    if any(extra):
        pairs = []
        for e in reversed(extra):
            pairs += [0, e]
        x = _constant_pad(x, tuple(pairs))
    return x, tuple(t // 2 for t in total)


def _check_fits(x: Tensor, w: Tensor, padding: tuple, dilation: tuple, op: str) -> None:
    eff = tuple(d * (k - 1) + 1 for d, k in zip(dilation, w.shape[2:]))
    padded = tuple(s + 2 * p for s, p in zip(x.shape[2:], padding))
    if any(p < e for p, e in zip(padded, eff)):
        raise RuntimeError(f"{op}: the (dilated) kernel size {eff} is larger than the padded "
                           f"input size {padded} (input {tuple(x.shape)}, padding {padding})")


def mode_padding(padding, kernel: tuple, dilation: tuple) -> tuple:
    """F.pad's argument (last dim first, (before, after) pairs) for a conv padding that a
    padding_mode other than 'zeros' applies before a padding-free convolution; 'same'
    puts the odd element at the end, as PyTorch."""
    pairs = []
    for i in reversed(range(len(kernel))):
        if padding == "same":
            total = dilation[i] * (kernel[i] - 1)
            pairs += [total // 2, total - total // 2]
        elif padding == "valid":
            pairs += [0, 0]
        else:
            pairs += [padding[i], padding[i]]
    return tuple(pairs)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """1-d cross-correlation of (N, C, L) (or (C, L)) input with (O, C/groups, k) weight,
    plus bias (O,); padding is an int, 'valid' or 'same' (stride 1 only)."""
    from .functional import conv2d

    op = "conv1d"
    x, unbatched = _batched(input, 1, op)
    w = _weight(x, weight, 1, groups, op, Conv2d)
    _check_groups(x, w, groups, op)
    stride = ntuple(stride, 1, op, "stride", 1)
    dilation = ntuple(dilation, 1, op, "dilation", 1)
    if isinstance(padding, str):
        conv_padding(x, w, padding, stride, dilation, op)  # validates the string
        pad2 = padding
    else:
        pad2 = (0,) + ntuple(padding, 1, op, "padding", 0)
        _check_fits(x, w, pad2[1:], dilation, op)
    y = conv2d(x.unsqueeze(2), w.unsqueeze(2), bias, (1,) + stride, pad2, (1,) + dilation,
               groups).squeeze(2)
    return y.squeeze(0) if unbatched else y


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """3-d cross-correlation of (N, C, D, H, W) (or (C, D, H, W)) input with
    (O, C/groups, kd, kh, kw) weight, plus bias (O,); padding as conv1d."""
    op = "conv3d"
    x, unbatched = _batched(input, 3, op)
    w = _weight(x, weight, 3, groups, op, Conv3d)
    _check_groups(x, w, groups, op)
    stride = ntuple(stride, 3, op, "stride", 1)
    dilation = ntuple(dilation, 3, op, "dilation", 1)
    x, padding = conv_padding(x, w, padding, stride, dilation, op)
    _check_fits(x, w, padding, dilation, op)
    y = _add_bias(conv3d_nobias(x, w, stride, padding, dilation, int(groups)), bias,
                  w.shape[0], op, Conv3d)
    return y.squeeze(0) if unbatched else y


def transposed_size(size: int, k: int, s: int, p: int, op_: int, d: int) -> int:
    """Output length of a transposed convolution (PyTorch's formula)."""
    return (size - 1) * s - 2 * p + d * (k - 1) + op_ + 1


def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation,
                    nd: int, op: str) -> Tensor:
    x, unbatched = _batched(input, nd, op)
    fn = Conv3d if nd == 3 else Conv2d
    w = _weight(x, weight, nd, groups, op, fn)
    cin, cout_g = w.shape[:2]
    if cin != x.shape[1]:
        raise RuntimeError(f"{op}: input {tuple(x.shape)} has {x.shape[1]} channels but "
                           f"weight {tuple(w.shape)} expects {cin} (weight is (in_channels, "
                           f"out_channels/groups, *kernel))")
    if cin % groups:
        raise RuntimeError(f"{op}: groups={groups} does not divide the {cin} input channels")
    stride = ntuple(stride, nd, op, "stride", 1)
    padding = ntuple(padding, nd, op, "padding", 0)
    outpad = ntuple(output_padding, nd, op, "output_padding", 0)
    dilation = ntuple(dilation, nd, op, "dilation", 1)
    for s, d, o in zip(stride, dilation, outpad):
        if o >= s and o >= d:
            raise ValueError(f"{op}: output_padding {outpad} must be smaller than either "
                             f"stride {stride} or dilation {dilation}")
    if nd == 1:  # the 2-d kernels on (N, C, 1, L) and (Cin, Cout/g, 1, k): views
        x, w = x.unsqueeze(2), w.unsqueeze(2)
        stride, padding, outpad, dilation = ((1,) + stride, (0,) + padding, (0,) + outpad,
                                             (1,) + dilation)
    kernel = w.shape[2:]
    out = tuple(transposed_size(n, k, s, p, o, d) for n, k, s, p, o, d in
                zip(x.shape[2:], kernel, stride, padding, outpad, dilation))
    if any(o < 1 for o in out):
        raise RuntimeError(f"{op}: input {tuple(x.shape)} with weight {tuple(w.shape)}, stride "
                           f"{stride}, padding {padding} gives a non-positive output size {out}")
    # the convolution of the output back has exactly x's spatial size, except when an
    # output_padding >= stride (allowed with dilation) adds a row it reads: zero rows of x
    back = [(o + 2 * p - d * (k - 1) - 1) // s + 1 - n for o, p, d, k, s, n in
            zip(out, padding, dilation, kernel, stride, x.shape[2:])]
    if any(back):
        pairs = []
        for b in reversed(back):
            pairs += [0, b]
        x = _constant_pad(x, tuple(pairs))
    y = conv_transpose_nobias(x, w, (x.shape[0], cout_g * groups) + out, stride, padding,
                              dilation, int(groups))
    y = _add_bias(y, bias, cout_g * groups, op, fn)
    if nd == 1:
        y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1) -> Tensor:
    """Transposed 1-d convolution of (N, Cin, L) input with (Cin, Cout/groups, k) weight:
    the gradient of conv1d w.r.t. its input."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1, "conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1) -> Tensor:
    """Transposed 2-d convolution of (N, Cin, H, W) input with (Cin, Cout/groups, kh, kw)
    weight: the gradient of conv2d w.r.t. its input."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2, "conv_transpose2d")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1) -> Tensor:
    """Transposed 3-d convolution of (N, Cin, D, H, W) input with (Cin, Cout/groups, kd, kh,
    kw) weight: the gradient of conv3d w.r.t. its input."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 3, "conv_transpose3d")


def conv_tbc(input, weight, bias, pad: int = 0) -> Tensor:
    """1-d convolution in (time, batch, channel) layout: input (T, B, Cin), weight
    (k, Cin, Cout), bias (Cout,) -> (T + 2 * pad - k + 1, B, Cout)."""
    op = "conv_tbc"
    x, w = ensure_tensor(input, op), ensure_tensor(weight, op)
    if x.ndim != 3 or w.ndim != 3:
        raise RuntimeError(f"{op}: input must be 3-d (time, batch, channel) and weight 3-d "
                           f"(k, in, out), got {tuple(x.shape)} and {tuple(w.shape)}")
    if w.shape[1] != x.shape[2]:
        raise RuntimeError(f"{op}: input {tuple(x.shape)} has {x.shape[2]} channels, weight "
                           f"{tuple(w.shape)} expects {w.shape[1]}")
    y = conv1d(x.permute(1, 2, 0), w.permute(2, 1, 0), bias, 1, pad)
    return y.permute(2, 0, 1)


__all__ = ["conv1d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "conv_tbc"]
