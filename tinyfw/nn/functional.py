"""``tinyfw.nn.functional``: activations, losses, convolution, pooling, normalisation,
dropout and friends, with PyTorch's names, arguments and semantics.

User arguments are validated here, before any kernel, with messages naming the op and
the shapes; the Functions behind them live in ``tinyfw/ops/nn.py`` (fused softmax,
cross-entropy, norms, dropout) and ``tinyfw/ops/nn_conv.py`` (conv2d, pooling).
"""
from __future__ import annotations

import math
from numbers import Integral

from .. import dtypes as _dt
from ..autograd.function import no_grad
from ..creation import arange
from ..dispatch import casts_inputs
from ..ops._util import Tensor, ensure_tensor
from ..ops.elementwise import (gelu, leaky_relu, relu, sigmoid, silu, softplus,  # noqa: F401
                               tanh, where)
from ..ops.linalg import linear  # noqa: F401
from ..ops.nn import (check_float, check_same_dtype, dropout_kernel, log_softmax,  # noqa: F401
                      norm_rows, softmax)
from ..ops.nn import Norm as NormRows
from ..ops.nn_conv import (Conv2d, avg_pool2d_raw, conv2d_nobias, max_pool2d_indices,
                            pool_out_size)
from ..random import Generator
from ._attention import scaled_dot_product_attention  # noqa: F401
from ._mha import multi_head_attention_forward  # noqa: F401,E402
from .functional_norm import (group_norm, instance_norm, local_response_norm,  # noqa: F401
                              rms_norm, trailing_shape)
from .functional_grouped_mm import grouped_mm  # noqa: F401
from .functional_embedding import embedding, embedding_bag  # noqa: F401
from .functional_distance import bilinear, cosine_similarity, pairwise_distance, pdist  # noqa: F401
from .functional_conv import (conv1d, conv3d, conv_tbc, conv_transpose1d,  # noqa: F401
                              conv_transpose2d, conv_transpose3d)
from .functional_fold import (channel_shuffle, fold, native_channel_shuffle,  # noqa: F401
                              pixel_shuffle, pixel_unshuffle, unfold)
from .functional_pad import pad  # noqa: F401  (every mode; ops.index.pad is constant-only)
from ._losses import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401
                      cross_entropy, int_bounds, kl_div, l1_loss, mse_loss, nll_loss, read,
                      smooth_l1_loss, softplus_neg)


# -- activations -----------------------------------------------------------------------------
def softmin(input, dim: int | None = None, dtype=None) -> Tensor:
    """softmax(-input) along `dim`."""
    x = ensure_tensor(input, "softmin")
    if dtype is not None:
        x = x.to(dtype)
    return softmax(-x, dim)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """input clamped to [min_val, max_val]; the gradient is 1 strictly inside, else 0."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} is greater than max_val {max_val}")
    x = ensure_tensor(input, "hardtanh")
    inside = (x > min_val) & (x < max_val)
    out = where(inside, x, x.detach().clamp(min_val, max_val))
    return _maybe_inplace(x, out, inplace)


def relu6(input, inplace: bool = False) -> Tensor:
    """min(max(input, 0), 6)."""
    return hardtanh(input, 0.0, 6.0, inplace)


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """input where input > 0, else alpha * (exp(input) - 1)."""
    x = ensure_tensor(input, "elu")
    neg = where(x <= 0, x, 0.0)  # keeps expm1 finite on the branch that is not taken
    # NaN takes the linear branch: its gradient passes, as PyTorch's
    return _maybe_inplace(x, where(x <= 0, neg.expm1() * alpha, x), inplace)


def logsigmoid(input) -> Tensor:
    """log(sigmoid(input)), stable for large |input|."""
    x = ensure_tensor(input, "logsigmoid")
    check_float(x, "logsigmoid")
    return -softplus_neg(x)


def _maybe_inplace(x: Tensor, out: Tensor, inplace: bool) -> Tensor:
    if not inplace:
        return out
    return x.copy_(out)


# -- argument helpers ----------------------------------------------------------------------
def _pair(v, op: str, name: str, minimum: int) -> tuple:
    """An int or a pair of ints as a validated 2-tuple."""
    t = (v, v) if isinstance(v, Integral) else tuple(v)
    if len(t) == 1:
        t = (t[0], t[0])
    if len(t) != 2 or not all(isinstance(i, Integral) for i in t):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    if any(i < minimum for i in t):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return (int(t[0]), int(t[1]))


def _image(input, op: str) -> tuple:
    """(4-d float input, whether a batch dim was added) for a (C, H, W) or (N, C, H, W) input."""
    x = ensure_tensor(input, op)
    check_float(x, op)
    if x.ndim not in (3, 4):
        raise RuntimeError(f"{op}: expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got "
                           f"shape {tuple(x.shape)}")
    return (x.unsqueeze(0), True) if x.ndim == 3 else (x, False)


# -- convolution ----------------------------------------------------------------------------------
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """2-d cross-correlation of (N, C, H, W) input with (O, C/groups, kh, kw) weight, plus
    bias (O,); padding is an int, a pair, 'valid' or 'same' (stride 1 only)."""
    op = "conv2d"
    x, unbatched = _image(input, op)
    w = ensure_tensor(weight, op)
    check_same_dtype(x, w, op, "weight", Conv2d)
    if w.ndim != 4:
        raise RuntimeError(f"{op}: weight must be 4-d (out_channels, in_channels/groups, kh, "
                           f"kw), got shape {tuple(w.shape)}")
    if not isinstance(groups, Integral) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    o, cg, kh, kw = w.shape
    c = x.shape[1]
    if o % groups:
        raise RuntimeError(f"{op}: groups={groups} does not divide the {o} output channels of "
                           f"weight {tuple(w.shape)}")
    if cg * groups != c:
        raise RuntimeError(f"{op}: input {tuple(x.shape)} has {c} channels but weight "
                           f"{tuple(w.shape)} with groups={groups} expects {cg * groups}")
    stride = _pair(stride, op, "stride", 1)
    dilation = _pair(dilation, op, "dilation", 1)
    eff = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided "
                                 f"convolutions (stride {stride})")
            total = (eff[0] - 1, eff[1] - 1)
            padding = (total[0] // 2, total[1] // 2)
            extra = (total[0] - 2 * padding[0], total[1] - 2 * padding[1])
            if any(extra):  # even kernels: the odd pixel of padding goes bottom / right
                x = pad(x, (0, extra[1], 0, extra[0]))
        else:
            raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got "
                             f"{padding!r}")
    else:
        padding = _pair(padding, op, "padding", 0)
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if padded[0] < eff[0] or padded[1] < eff[1]:
        raise RuntimeError(f"{op}: the (dilated) kernel size {eff} is larger than the padded "
                           f"input size {padded} (input {tuple(x.shape)}, padding {padding})")
    y = conv2d_nobias(x, w, stride, padding, dilation, int(groups))
    if bias is not None:
        b = ensure_tensor(bias, op)
        if b.shape != (o,):
            raise RuntimeError(f"{op}: bias must have shape ({o},), got {tuple(b.shape)}")
        check_same_dtype(x, b, op, "bias", Conv2d)
        if b.dtype is not y.dtype and casts_inputs(Conv2d, b):
            # autocast: the bias joins the convolution's precision (one op in PyTorch)
            b = b.to(y.dtype)
        y = y + b.reshape(1, o, 1, 1)
    return y.squeeze(0) if unbatched else y


# -- pooling ---------------------------------------------------------------------------------
def _pool_args(x: Tensor, kernel_size, stride, padding, dilation, ceil_mode, op: str) -> tuple:
    kernel = _pair(kernel_size, op, "kernel_size", 1)
    stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) \
        else _pair(stride, op, "stride", 1)
    padding = _pair(padding, op, "padding", 0)
    dilation = _pair(dilation, op, "dilation", 1)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half of the kernel size "
                         f"{kernel}")
    out = tuple(pool_out_size(x.shape[2 + i], kernel[i], stride[i], padding[i], dilation[i],
                              ceil_mode) for i in range(2))
    if out[0] < 1 or out[1] < 1:
        raise RuntimeError(f"{op}: input {tuple(x.shape)} is too small for kernel {kernel} "
                           f"(dilation {dilation}, padding {padding}): the output would be "
                           f"{out}")
    return kernel, stride, padding, dilation


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over kernel_size windows (padding counts as -inf); with return_indices also the
    flat index h * W + w of each maximum in its (H, W) plane."""
    op = "max_pool2d"
    x, unbatched = _image(input, op)
    kernel, stride, padding, dilation = _pool_args(x, kernel_size, stride, padding, dilation,
                                                   ceil_mode, op)
    y, idx = max_pool2d_indices(x, kernel, stride, padding, dilation, bool(ceil_mode))
    if unbatched:
        y, idx = y.squeeze(0), idx.squeeze(0)
    return (y, idx) if return_indices else y


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over kernel_size windows (zero padding, counted in the divisor when
    count_include_pad), or the window sum over divisor_override."""
    op = "avg_pool2d"
    x, unbatched = _image(input, op)
    kernel, stride, padding, _ = _pool_args(x, kernel_size, stride, padding, 1, ceil_mode, op)
    if divisor_override is not None:
        if not isinstance(divisor_override, Integral) or divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be a non-zero int, got "
                             f"{divisor_override!r}")
        divisor_override = int(divisor_override)
    y = avg_pool2d_raw(x, kernel, stride, padding, bool(ceil_mode), bool(count_include_pad),
                       divisor_override)
    return y.squeeze(0) if unbatched else y


# adaptive_avg_pool2d: functional_pool.py (with the 1-d and 3-d forms)


# -- embedding, one_hot, normalize ---------------------------------------------------------------
def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """int64 tensor of shape (*tensor.shape, num_classes) with a 1 at each class index."""
    op = "one_hot"
    t = ensure_tensor(tensor, op)
    if t.dtype is not _dt.int64:
        raise TypeError(f"{op}: only int64 index tensors are accepted, got {t.dtype.name}")
    bounds = int_bounds(t)
    if bounds is not None and bounds[0] < 0:
        raise RuntimeError(f"{op}: class values must be non-negative, got {bounds[0]}")
    if num_classes == -1:
        if t.numel() == 0:
            raise RuntimeError(f"{op}: cannot infer num_classes from an empty tensor")
        if bounds is None:
            raise RuntimeError(f"{op}: num_classes must be given for a tensor on the meta "
                               "device (it has no values to infer it from)")
        num_classes = bounds[1] + 1
    if bounds is not None and bounds[1] >= num_classes:
        raise RuntimeError(f"{op}: class value {bounds[1]} is not smaller than num_classes "
                           f"{num_classes}")
    classes = arange(num_classes, device=t.device)
    return (t.detach().unsqueeze(-1) == classes).to(_dt.int64)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """input / max(||input||_p along dim, eps)."""
    x = ensure_tensor(input, "normalize")
    check_float(x, "normalize")
    return x / x.norm(p, dim, keepdim=True).clamp(min=eps)


# -- dropout ---------------------------------------------------------------------------------------
def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,
            generator: Generator | None = None) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only);
    the mask comes from `generator` (tinyfw's default generator when None)."""
    x = ensure_tensor(input, "dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return x
    check_float(x, "dropout")
    out = x * 0.0 if p == 1.0 else dropout_kernel(x, p, generator)
    return _maybe_inplace(x, out, inplace)


# -- normalisation ----------------------------------------------------------------------------
def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing dims `normalized_shape` (biased variance), then scale by
    weight and shift by bias (both of shape normalized_shape)."""
    op = "layer_norm"
    x = ensure_tensor(input, op)
    check_float(x, op)
    shape = trailing_shape(normalized_shape, x, op)
    n = math.prod(shape)
    wb = []
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            t = ensure_tensor(t, op)
            if tuple(t.shape) != shape:
                raise RuntimeError(f"{op}: {name} must have shape {shape}, got "
                                   f"{tuple(t.shape)}")
            check_same_dtype(x, t, op, name, NormRows)
            t = t.reshape(n)
        wb.append(t)
    y = norm_rows(x.reshape(-1, n), wb[0], wb[1], eps, "layer")
    return y.reshape(x.shape)


def batch_norm(input, running_mean, running_var, weight=None, bias=None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation of (N, C, *) input per channel.  Training: batch statistics
    (biased variance), and running_mean / running_var (if given) are updated in place with
    momentum, the variance unbiased, as PyTorch.  Eval: the running statistics are used."""
    op = "batch_norm"
    x = ensure_tensor(input, op)
    check_float(x, op)
    if x.ndim < 2:
        raise RuntimeError(f"{op}: expected an input of at least 2 dims (N, C, ...), got shape "
                           f"{tuple(x.shape)}")
    c = x.shape[1]
    params = {}
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t is not None:
            t = ensure_tensor(t, op)
            if t.shape != (c,):
                raise RuntimeError(f"{op}: {name} must have shape ({c},) for input "
                                   f"{tuple(x.shape)}, got {tuple(t.shape)}")
            if name in ("weight", "bias"):
                check_same_dtype(x, t, op, name, NormRows)
        params[name] = t
    bshape = (1, c) + (1,) * (x.ndim - 2)
    if not training:
        rm, rv = params["running_mean"], params["running_var"]
        if rm is None or rv is None:
            raise RuntimeError(f"{op}: running_mean and running_var are required when "
                               "training=False")
        y = (x - rm.to(x.dtype).reshape(bshape)) * (rv.to(x.dtype).reshape(bshape) + eps).rsqrt()
        if params["weight"] is not None:
            y = y * params["weight"].reshape(bshape)
        if params["bias"] is not None:
            y = y + params["bias"].reshape(bshape)
        return y
    count = x.numel() // c if c else 0
    if count <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got "
                         f"input of shape {tuple(x.shape)}")
    x3 = x.reshape(x.shape[0], c, -1)
    y = norm_rows(x3, params["weight"], params["bias"], eps, "batch")
    _update_running(x3, params["running_mean"], params["running_var"], momentum, count)
    return y.reshape(x.shape)


def _update_running(x3: Tensor, rm, rv, momentum: float, count: int) -> None:
    """running = (1 - momentum) * running + momentum * batch statistic, in place."""
    if rm is None and rv is None:
        return
    with no_grad():
        xd = x3.detach().to(_dt.float64)
        mean = xd.mean((0, 2))
        if rm is not None:
            rm.copy_(rm.to(_dt.float64) * (1 - momentum) + mean * momentum)
        if rv is not None:
            var = xd.var((0, 2), unbiased=True)
            rv.copy_(rv.to(_dt.float64) * (1 - momentum) + var * momentum)


# -- issue 16: pooling and resampling (tinyfw/nn/functional_pool*.py, functional_resample.py)
from .functional_pool import *  # noqa: E402,F401,F403
from .functional_pool_more import *  # noqa: E402,F401,F403
from .functional_resample import *  # noqa: E402,F401,F403
from .functional_grid import *  # noqa: E402,F401,F403
# -- issue 16: activations, losses, dropout variants (their own files) -----------------------
from ._losses_ctc import ctc_loss  # noqa: E402,F401
from ._losses_linear_ce import linear_cross_entropy  # noqa: E402,F401
# (mse_loss, l1_loss, softmax, log_softmax, softmin are re-bound here to forms with
# PyTorch's full signatures: weight=, _stacklevel)
from ._losses_more import (cosine_embedding_loss, gaussian_nll_loss,  # noqa: E402,F401
                           hinge_embedding_loss, huber_loss, l1_loss, margin_ranking_loss,
                           mse_loss, multi_margin_loss, multilabel_margin_loss,
                           multilabel_soft_margin_loss, poisson_nll_loss, soft_margin_loss,
                           triplet_margin_loss, triplet_margin_with_distance_loss)
from .functional_activation import (celu, celu_, elu_, glu, gumbel_softmax,  # noqa: E402,F401
                                    hardshrink, hardsigmoid, hardswish, hardtanh_,
                                    leaky_relu_, log_softmax, mish, prelu, relu_, rrelu,
                                    rrelu_, selu, selu_, softmax, softmin, softshrink, softsign,
                                    tanhshrink, threshold, threshold_)
from .functional_dropout import (alpha_dropout, dropout1d, dropout2d,  # noqa: E402,F401
                                 dropout3d, feature_alpha_dropout)
