"""nn primitives of the reference backend: fused softmax / cross-entropy, convolution,
pooling, normalisation and dropout, in plain numpy.

This is the specification the C++ kernels of ``tinyfw._C`` are held to, so each function
spells out its formula rather than its fastest form.  Common rules (see ``ref.py``):
inputs are arrays of one floating dtype with any strides; float16/bfloat16 are computed
in float32 and rounded once; dims, sizes, strides and paddings are plain ints / tuples
already validated by the ops layer (``tinyfw/ops/nn.py``, ``tinyfw/ops/nn_conv.py``).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .ref_cast import up as _up

__all__ = ["softmax", "log_softmax", "softmax_backward", "log_softmax_backward",
           "cross_entropy_forward", "cross_entropy_backward",
           "conv2d", "conv2d_backward_input", "conv2d_backward_weight",
           "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "layer_norm", "layer_norm_backward", "gelu_add_layer_norm",
           "gelu_add_layer_norm_backward", "rms_norm", "rms_norm_backward",
           "batch_norm_forward", "batch_norm_backward",
           "dropout"]



# -- softmax family -----------------------------------------------------------------------
def _lse(z: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(z))) along `axis`, keepdims, shifted by the max (rows of -inf give -inf)."""
    m = np.max(z, axis=axis, keepdims=True, initial=-np.inf)  # an empty axis sums to 0
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True)) + m


def softmax(x, dim: int):
    """exp(x) / sum(exp(x)) along `dim`, computed as exp(x - logsumexp(x))."""
    z = _up(x)
    with np.errstate(invalid="ignore"):  # inf - inf: rows holding +inf or only -inf are NaN
        return np.exp(z - _lse(z, dim)).astype(x.dtype, copy=False)


def log_softmax(x, dim: int):
    """x - logsumexp(x) along `dim`."""
    z = _up(x)
    with np.errstate(invalid="ignore"):  # as in softmax
        return (z - _lse(z, dim)).astype(x.dtype, copy=False)


def softmax_backward(y, g, dim: int):
    """Gradient of softmax given its output y: y * (g - sum(g * y, dim))."""
    y32, g32 = _up(y), _up(g)
    return (y32 * (g32 - np.sum(g32 * y32, axis=dim, keepdims=True))).astype(y.dtype, copy=False)


def log_softmax_backward(y, g, dim: int):
    """Gradient of log_softmax given its output y: g - exp(y) * sum(g, dim)."""
    y32, g32 = _up(y), _up(g)
    return (g32 - np.exp(y32) * np.sum(g32, axis=dim, keepdims=True)).astype(y.dtype, copy=False)


# -- cross-entropy with class indices ---------------------------------------------------------
def _ce_terms(target, weight, ignore_index: int, label_smoothing: float, n_classes: int, dtype):
    """Per-row coefficients of the loss sum_c q[n, c] * (lse[n] - z[n, c]):
    q = (1 - eps) * w[t] * onehot(t) + eps / C * w, zero on ignored rows; returns (q, valid)."""
    valid = target != ignore_index
    t = np.where(valid, target, 0)
    w = np.ones(n_classes, dtype) if weight is None else weight.astype(dtype)
    q = np.zeros((t.shape[0], n_classes), dtype)
    q[np.arange(t.shape[0]), t] = (1 - label_smoothing) * w[t]
    if label_smoothing:
        q += (label_smoothing / n_classes) * w
    q[~valid] = 0
    return q, valid


def cross_entropy_forward(logits, target, weight, ignore_index: int, label_smoothing: float):
    """Per-sample loss and logsumexp of (N, C) logits against int64 class indices (N,).

    loss[n] = (1 - eps) * w[t] * (lse[n] - z[n, t]) + eps / C * sum_c w[c] * (lse[n] - z[n, c])
    with eps = label_smoothing, w = weight (ones when None), 0 where t == ignore_index;
    lse is float32 for half logits, logits' dtype otherwise.
    """
    z = _up(logits)
    lse = _lse(z, 1)
    q, _ = _ce_terms(target, _up(weight), ignore_index, label_smoothing, z.shape[1], z.dtype)
    neg_logp = lse - z
    # a zero coefficient contributes 0 even where the log-probability is -inf
    loss = np.sum(np.where(q != 0, q * neg_logp, 0), axis=1)
    return loss.astype(logits.dtype, copy=False), lse[:, 0]


def cross_entropy_backward(logits, target, weight, ignore_index: int, label_smoothing: float,
                           lse, g):
    """Gradient of cross_entropy_forward's loss w.r.t. the logits, given g (N,) = d/d loss:
    gx[n, c] = g[n] * (softmax(z)[n, c] * sum_k q[n, k] - q[n, c]) (q as in the forward)."""
    z = _up(logits)
    q, _ = _ce_terms(target, _up(weight), ignore_index, label_smoothing, z.shape[1], z.dtype)
    p = np.exp(z - lse.astype(z.dtype)[:, None])
    gx = _up(g)[:, None] * (p * q.sum(1, keepdims=True) - q)
    return gx.astype(logits.dtype, copy=False)


# -- convolution ----------------------------------------------------------------------------------
def _windows(xp, kernel: tuple, stride: tuple, dilation: tuple, out: tuple):
    """Read-only view (N, C, OH, OW, kh, kw) of the sliding windows of padded input xp."""
    n, c = xp.shape[:2]
    sn, sc, sh, sw = xp.strides
    return as_strided(xp, (n, c, out[0], out[1], kernel[0], kernel[1]),
                      (sn, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1]),
                      writeable=False)


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _pad_hw(x, top: int, bottom: int, left: int, right: int, value=0):
    if top == bottom == left == right == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def conv2d(x, w, stride: tuple, padding: tuple, dilation: tuple, groups: int):
    """Cross-correlation (no bias): y[n, o, i, j] = sum_{c, a, b} w[o, c, a, b] *
    xpad[n, g*C/G + c, i*sh + a*dh, j*sw + b*dw] for o in group g; x (N, C, H, W),
    w (O, C/groups, kh, kw); zero padding `padding` on both sides."""
    x32, w32 = _up(x), _up(w)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    out = (_conv_out(h, kh, stride[0], padding[0], dilation[0]),
           _conv_out(wd, kw, stride[1], padding[1], dilation[1]))
    xp = _pad_hw(x32, padding[0], padding[0], padding[1], padding[1])
    cols = _windows(xp, (kh, kw), stride, dilation, out).reshape(
        n, groups, cg, out[0], out[1], kh, kw)
    wg = w32.reshape(groups, o // groups, cg, kh, kw)
    y = np.einsum("ngchwab,gocab->ngohw", cols, wg, optimize=True)
    return y.reshape(n, o, out[0], out[1]).astype(x.dtype, copy=False)


def conv2d_backward_input(g, w, x_shape: tuple, stride: tuple, padding: tuple,
                          dilation: tuple, groups: int):
    """Gradient of conv2d w.r.t. its input (shape x_shape), given g = dL/dy: every kernel
    tap (a, b) sends w[:, :, a, b]^T g back to the input positions it read."""
    g32, w32 = _up(g), _up(w)
    n, c, h, wd = x_shape
    o, cg, kh, kw = w.shape
    oh, ow = g.shape[2:]
    gx = np.zeros((n, c, h + 2 * padding[0], wd + 2 * padding[1]), g32.dtype)
    gg = g32.reshape(n, groups, o // groups, oh, ow)
    wg = w32.reshape(groups, o // groups, cg, kh, kw)
    for a in range(kh):
        for b in range(kw):
            part = np.einsum("ngohw,goc->ngchw", gg, wg[..., a, b], optimize=True)
            r0, c0 = a * dilation[0], b * dilation[1]
            gx[:, :, r0:r0 + stride[0] * (oh - 1) + 1:stride[0],
               c0:c0 + stride[1] * (ow - 1) + 1:stride[1]] += part.reshape(n, c, oh, ow)
    gx = gx[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd]
    return np.ascontiguousarray(gx).astype(g.dtype, copy=False)


def conv2d_backward_weight(g, x, w_shape: tuple, stride: tuple, padding: tuple,
                           dilation: tuple, groups: int):
    """Gradient of conv2d w.r.t. its weight (shape w_shape), given g = dL/dy:
    gw[o, c, a, b] = sum_{n, i, j} g[n, o, i, j] * xpad[n, g*C/G + c, i*sh + a*dh, j*sw + b*dw]."""
    g32, x32 = _up(g), _up(x)
    n = x.shape[0]
    o, cg, kh, kw = w_shape
    oh, ow = g.shape[2:]
    xp = _pad_hw(x32, padding[0], padding[0], padding[1], padding[1])
    cols = _windows(xp, (kh, kw), stride, dilation, (oh, ow)).reshape(
        n, groups, cg, oh, ow, kh, kw)
    gg = g32.reshape(n, groups, o // groups, oh, ow)
    gw = np.einsum("ngohw,ngchwab->gocab", gg, cols, optimize=True)
    return gw.reshape(w_shape).astype(g.dtype, copy=False)


# -- pooling ---------------------------------------------------------------------------------
def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size: with ceil_mode the last window must start inside
    the input or its left padding."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_pad(x, kernel, stride, padding, dilation, out, value):
    """x padded so that every window of the (ceil-mode) output fits."""
    extra = [max(0, (out[i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1
                 - x.shape[2 + i] - padding[i]) for i in range(2)]
    return _pad_hw(x, padding[0], extra[0], padding[1], extra[1], value)


def max_pool2d(x, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
               ceil_mode: bool):
    """Max over each window's input elements -> (y, indices); indices (int64) are the flat
    positions h * W + w, in the (H, W) plane, of the window's first maximum (a NaN counts
    as the maximum).  A window holding no input element (possible with dilation) gives
    -inf and index -1, and receives no gradient."""
    x32 = _up(x)
    n, c, h, wd = x.shape
    out = tuple(_pool_out(x.shape[2 + i], kernel[i], stride[i], padding[i], dilation[i],
                          ceil_mode) for i in range(2))
    xp = _pool_pad(x32, kernel, stride, padding, dilation, out, -np.inf)
    vals = _windows(xp, kernel, stride, dilation, out).reshape(n, c, out[0], out[1],
                                                               kernel[0] * kernel[1])
    # input row / column read by tap (a, b) of output (i, j)
    rows = (np.arange(out[0])[:, None] * stride[0] - padding[0]
            + np.repeat(np.arange(kernel[0]), kernel[1])[None, :] * dilation[0])
    cols = (np.arange(out[1])[:, None] * stride[1] - padding[1]
            + np.tile(np.arange(kernel[1]), kernel[0])[None, :] * dilation[1])
    inside = (((rows >= 0) & (rows < h))[:, None, :] & ((cols >= 0) & (cols < wd))[None, :, :])
    m = np.max(vals, axis=-1, keepdims=True)
    hit = inside & ((vals == m) | np.isnan(vals))
    first = np.argmax(hit, axis=-1)
    found = np.take_along_axis(hit, first[..., None], axis=-1)[..., 0]
    flat = rows[:, None, :] * wd + cols[None, :, :]  # (OH, OW, taps)
    idx = np.take_along_axis(np.broadcast_to(flat, vals.shape), first[..., None], axis=-1)[..., 0]
    y = np.where(found, m[..., 0], -np.inf)
    return y.astype(x.dtype, copy=False), np.where(found, idx, -1).astype(np.int64)


def max_pool2d_backward(g, indices, x_shape: tuple):
    """Gradient of max_pool2d: each g element is added at its window's argmax (index -1:
    nowhere)."""
    n, c, h, wd = x_shape
    gx = np.zeros((n * c, h * wd + 1), _up(g).dtype)  # the extra column absorbs index -1
    rows = np.arange(n * c)[:, None]
    per_plane = indices.size // (n * c) if n * c else 0
    idx = indices.reshape(n * c, per_plane)
    np.add.at(gx, (rows, np.where(idx < 0, h * wd, idx)), _up(g).reshape(n * c, per_plane))
    return gx[:, :h * wd].reshape(x_shape).astype(g.dtype, copy=False)


def _avg_divisor(size: int, k: int, s: int, p: int, out: int, count_include_pad: bool):
    """Per-output-position window length along one dim (PyTorch's rule: the window is cut
    at size + padding; without count_include_pad also at the input's edges)."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def _avg_setup(shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    out = tuple(_pool_out(shape[2 + i], kernel[i], stride[i], padding[i], 1, ceil_mode)
                for i in range(2))
    if divisor_override:
        div = np.full(out, float(divisor_override))
    else:
        dh, dw = (_avg_divisor(shape[2 + i], kernel[i], stride[i], padding[i], out[i],
                               count_include_pad) for i in range(2))
        div = (dh[:, None] * dw[None, :]).astype(np.float64)
    return out, div


def avg_pool2d(x, kernel: tuple, stride: tuple, padding: tuple, ceil_mode: bool,
               count_include_pad: bool, divisor_override):
    """Sum over each window (zero padding) divided by divisor_override, or else by the
    window size counted as in `_avg_divisor`."""
    x32 = _up(x)
    out, div = _avg_setup(x.shape, kernel, stride, padding, ceil_mode, count_include_pad,
                          divisor_override)
    xp = _pool_pad(x32, kernel, stride, padding, (1, 1), out, 0)
    s = _windows(xp, kernel, stride, (1, 1), out).sum(axis=(-2, -1))
    return (s / div.astype(x32.dtype)).astype(x.dtype, copy=False)


def avg_pool2d_backward(g, x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple,
                        ceil_mode: bool, count_include_pad: bool, divisor_override):
    """Gradient of avg_pool2d: g / divisor spread over every input position of the window."""
    g32 = _up(g)
    out, div = _avg_setup(x_shape, kernel, stride, padding, ceil_mode, count_include_pad,
                          divisor_override)
    share = g32 / div.astype(g32.dtype)
    n, c, h, wd = x_shape
    hp = max(h + 2 * padding[0], (out[0] - 1) * stride[0] + kernel[0] + padding[0])
    wp = max(wd + 2 * padding[1], (out[1] - 1) * stride[1] + kernel[1] + padding[1])
    gx = np.zeros((n, c, hp, wp), g32.dtype)
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            gx[:, :, a:a + stride[0] * (out[0] - 1) + 1:stride[0],
               b:b + stride[1] * (out[1] - 1) + 1:stride[1]] += share
    gx = gx[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd]
    return np.ascontiguousarray(gx).astype(g.dtype, copy=False)


# -- normalisation ----------------------------------------------------------------------------
def layer_norm(x, weight, bias, eps: float):
    """Normalise each row of x (M, N): y = (x - mean) * rstd * weight + bias with the
    biased variance, rstd = 1 / sqrt(var + eps); returns (y, mean (M,), rstd (M,)), the
    statistics in float32 for half inputs."""
    z = _up(x)
    mean = z.mean(axis=1)
    xc = z - mean[:, None]
    rstd = 1 / np.sqrt((xc * xc).mean(axis=1) + eps)
    y = xc * rstd[:, None]
    if weight is not None:
        y = y * _up(weight)
    if bias is not None:
        y = y + _up(bias)
    return y.astype(x.dtype, copy=False), mean, rstd


def layer_norm_backward(g, x, weight, mean, rstd):
    """Gradients of layer_norm given g = dL/dy -> (gx, gw, gb); gw and gb are None when
    weight is None.  With xh = (x - mean) * rstd and h = g * weight:
    gx = rstd * (h - mean(h) - xh * mean(h * xh)) (means over each row)."""
    g32, z = _up(g), _up(x)
    xh = (z - mean[:, None]) * rstd[:, None]
    h = g32 if weight is None else g32 * _up(weight)
    gx = rstd[:, None] * (h - h.mean(1, keepdims=True) - xh * (h * xh).mean(1, keepdims=True))
    gx = gx.astype(x.dtype, copy=False)
    if weight is None:
        return gx, None, None
    gw = (g32 * xh).sum(0).astype(weight.dtype, copy=False)
    gb = g32.sum(0).astype(weight.dtype, copy=False)
    return gx, gw, gb


def gelu_add_layer_norm(h, b, x, weight, bias, eps: float, approximate: str = "none"):
    """layer_norm(gelu(h + b) + x) over the rows of (M, N) arrays (b: (N,) or None) ->
    (y, r, mean, rstd), r = gelu(h + b) + x the normalised input: this backend's own add,
    gelu and layer_norm, in that order."""
    from . import ref

    u = h if b is None else ref.add(h, b)
    r = ref.add(ref.gelu(u, approximate), x)
    y, mean, rstd = layer_norm(r, weight, bias, eps)
    return y, r, mean, rstd


def gelu_add_layer_norm_backward(g, r, weight, mean, rstd, h, b, approximate: str = "none",
                                 gx_into=None, gh_into=None):
    """Gradients of gelu_add_layer_norm given g = dL/dy -> (gx, gh, gweight, gbias, gb):
    gx = layer_norm_backward's input gradient, gh = gx * gelu'(h + b), gb = gh summed
    over rows (None without b; gweight, gbias None without a weight).  `gx_into` /
    `gh_into`: arrays of gx's shape that gx / gh are added into (gradient accumulation),
    then returned in their place; gb is still this call's own sum."""
    from . import ref

    gx, gw, gbeta = layer_norm_backward(g, r, weight, mean, rstd)
    gh = ref.gelu_backward(gx, h if b is None else ref.add(h, b), approximate)
    gb = None if b is None else gh.sum(0, dtype=np.float64).astype(gh.dtype)
    if gx_into is not None:
        gx = np.add(gx_into, gx, out=gx_into)
    if gh_into is not None:
        gh = np.add(gh_into, gh, out=gh_into)
    return gx, gh, gw, gbeta, gb


def rms_norm(x, weight, eps: float):
    """Root-mean-square norm of each row of x (M, N): y = x * rstd * weight with
    rstd = 1 / sqrt(mean(x^2) + eps); returns (y, rstd (M,)), rstd in float32 for half
    inputs."""
    z = _up(x)
    with np.errstate(divide="ignore", invalid="ignore"):  # eps 0 on a zero row, inf: NaN
        rstd = 1 / np.sqrt((z * z).mean(axis=1) + eps)
        y = z * rstd[:, None]
    if weight is not None:
        y = y * _up(weight)
    return y.astype(x.dtype, copy=False), rstd


def rms_norm_backward(g, x, weight, rstd):
    """Gradients of rms_norm given g = dL/dy -> (gx, gw); gw is None when weight is None.
    With xh = x * rstd and h = g * weight: gx = rstd * (h - xh * mean(h * xh)) (means over
    each row); gw = sum over rows of g * xh."""
    g32, z = _up(g), _up(x)
    h = g32 if weight is None else g32 * _up(weight)
    with np.errstate(invalid="ignore"):  # rows whose rstd is inf or 0 give NaN
        xh = z * rstd[:, None]
        gx = rstd[:, None] * (h - xh * (h * xh).mean(1, keepdims=True))
    gx = gx.astype(x.dtype, copy=False)
    if weight is None:
        return gx, None
    with np.errstate(invalid="ignore"):
        return gx, (g32 * xh).sum(0).astype(weight.dtype, copy=False)


def batch_norm_forward(x, weight, bias, eps: float):
    """Training-mode batch norm of x (N, C, L) with the statistics of each channel over
    (N, L): y = (x - mean) * invstd * weight + bias, invstd = 1 / sqrt(biased var + eps);
    returns (y, mean (C,), invstd (C,)), the statistics in float32 for half inputs."""
    z = _up(x)
    mean = z.mean(axis=(0, 2))
    xc = z - mean[None, :, None]
    invstd = 1 / np.sqrt((xc * xc).mean(axis=(0, 2)) + eps)
    y = xc * invstd[None, :, None]
    if weight is not None:
        y = y * _up(weight)[None, :, None]
    if bias is not None:
        y = y + _up(bias)[None, :, None]
    return y.astype(x.dtype, copy=False), mean, invstd


def batch_norm_backward(g, x, weight, mean, invstd):
    """Gradients of batch_norm_forward given g = dL/dy -> (gx, gw, gb) (gw and gb None when
    weight is None); the layer_norm formula with the means taken over (N, L) per channel."""
    g32, z = _up(g), _up(x)
    xh = (z - mean[None, :, None]) * invstd[None, :, None]
    h = g32 if weight is None else g32 * _up(weight)[None, :, None]
    gx = invstd[None, :, None] * (h - h.mean((0, 2), keepdims=True)
                                  - xh * (h * xh).mean((0, 2), keepdims=True))
    gx = gx.astype(x.dtype, copy=False)
    if weight is None:
        return gx, None, None
    gw = (g32 * xh).sum((0, 2)).astype(weight.dtype, copy=False)
    gb = g32.sum((0, 2)).astype(weight.dtype, copy=False)
    return gx, gw, gb


# -- dropout ------------------------------------------------------------------------------------------
def dropout(x, p: float, seed: int):
    """Keep each element where a uniform [0, 1) draw is >= p, scaling kept ones by 1/(1-p)
    -> (y, mask).  The draws are numpy's Generator(PCG64(seed)).random(x.shape), float64,
    in row-major order of x's shape (so a kernel must reproduce that stream exactly)."""
    u = np.random.Generator(np.random.PCG64(seed)).random(x.shape)
    mask = np.asarray(u >= p)
    z = _up(x)
    y = np.where(mask, z * z.dtype.type(1 / (1 - p)), z.dtype.type(0))
    return y.astype(x.dtype, copy=False), mask
