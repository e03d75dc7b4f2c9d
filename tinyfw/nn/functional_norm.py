"""Normalisations beyond batch and layer norm: `group_norm`, `instance_norm`, `rms_norm`,
`local_response_norm` (and the legacy cross-channel LRN of nn.CrossMapLRN2d).
RMS norm is its own fused row op (tinyfw/ops/nn_rms.py).

Group and instance norm are layer norm of rows — (N * groups) rows of C/groups * spatial
values, or (N * C) rows of spatial values — so they run the vectorised C++ row kernel of
layer_norm (csrc/nn_rows.h) forward and backward; the per-channel affine follows."""
from __future__ import annotations

import math
from numbers import Integral

from .. import dtypes as _dt
from ..autograd.function import no_grad
from ..ops._util import Tensor, ensure_tensor
from ..ops.index import cat
from ..ops.nn import Norm as NormRows
from ..ops.nn import check_float, check_same_dtype, norm_rows
from ..ops.nn_rms import RMSNorm, rms_norm_rows


def _channel_param(t, c: int, x: Tensor, op: str, name: str):
    if t is None:
        return None
    t = ensure_tensor(t, op)
    if tuple(t.shape) != (c,):
        raise RuntimeError(f"{op}: {name} must have shape ({c},) for input {tuple(x.shape)}, "
                           f"got {tuple(t.shape)}")
    check_same_dtype(x, t, op, name, NormRows)
    return t


def _affine(y: Tensor, weight, bias) -> Tensor:
    shape = (1, y.shape[1]) + (1,) * (y.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, *) input over each group of C / num_groups channels (and all
    spatial positions) with the biased variance, then scale and shift per channel."""
    op = "group_norm"
    x = ensure_tensor(input, op)
    check_float(x, op)
    if x.ndim < 2:
        raise RuntimeError(f"{op}: expected an input of at least 2 dims (N, C, ...), got shape "
                           f"{tuple(x.shape)}")
    n, c = x.shape[0], x.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise RuntimeError(f"{op}: {c} channels are not divisible into num_groups="
                           f"{num_groups} groups")
    w = _channel_param(weight, c, x, op, "weight")
    b = _channel_param(bias, c, x, op, "bias")
    if x.numel() == 0:
        return _affine(x * 1, w, b)
    y = norm_rows(x.reshape(n * num_groups, -1), None, None, eps, "layer")
    return _affine(y.reshape(x.shape), w, b)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """Normalise each channel of each sample of (N, C, *) input over its spatial positions
    (use_input_stats), updating running_mean / running_var in place with the batch average
    of the instances' means and unbiased variances; or normalise with the running
    statistics (use_input_stats=False)."""
    op = "instance_norm"
    x = ensure_tensor(input, op)
    check_float(x, op)
    if x.ndim < 3:
        raise RuntimeError(f"{op}: expected an input of at least 3 dims (N, C, L, ...), got "
                           f"shape {tuple(x.shape)}")
    n, c = x.shape[0], x.shape[1]
    w = _channel_param(weight, c, x, op, "weight")
    b = _channel_param(bias, c, x, op, "bias")
    rm = None if running_mean is None else ensure_tensor(running_mean, op)
    rv = None if running_var is None else ensure_tensor(running_var, op)
    for name, t in (("running_mean", rm), ("running_var", rv)):
        if t is not None and tuple(t.shape) != (c,):
            raise RuntimeError(f"{op}: {name} must have shape ({c},), got {tuple(t.shape)}")
    if not use_input_stats:
        if rm is None or rv is None:
            raise RuntimeError(f"{op}: running_mean and running_var are required when "
                               "use_input_stats=False")
        shape = (1, c) + (1,) * (x.ndim - 2)
        y = (x - rm.to(x.dtype).reshape(shape)) * (rv.to(x.dtype).reshape(shape) + eps).rsqrt()
        return _affine(y, w, b)
    spatial = x.numel() // (n * c) if n * c else 0
    if spatial <= 1:
        raise ValueError(f"{op}: expected more than 1 spatial element per channel when "
                         f"training, got input of shape {tuple(x.shape)}")
    rows = x.reshape(n * c, spatial)
    y = norm_rows(rows, None, None, eps, "layer").reshape(x.shape)
    if rm is not None or rv is not None:
        with no_grad():
            xd = rows.detach().to(_dt.float64)
            if rm is not None:
                rm.copy_(rm.to(_dt.float64) * (1 - momentum)
                         + xd.mean(1).reshape(n, c).mean(0) * momentum)
            if rv is not None:
                var = xd.var(1, unbiased=True).reshape(n, c).mean(0)
                rv.copy_(rv.to(_dt.float64) * (1 - momentum) + var * momentum)
    return _affine(y, w, b)


def trailing_shape(normalized_shape, x: Tensor, op: str) -> tuple:
    """`normalized_shape` (an int or a sequence) as a tuple that must be the trailing dims
    of x (layer_norm's and rms_norm's argument)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, Integral) \
        else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise RuntimeError(f"{op}: normalized_shape {shape} does not match the trailing dims "
                           f"of input {tuple(x.shape)}")
    return shape


def rms_norm(input, normalized_shape, weight=None, eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2 over the trailing normalized_shape dims) + eps) * weight; eps None
    means the machine epsilon of the compute dtype (float32 for float16 / bfloat16), as in
    PyTorch.  The trailing dims are flattened into
    rows of the fused RMSNorm op (a vectorised C++ row kernel, csrc/nn_rms.inc)."""
    op = "rms_norm"
    x = ensure_tensor(input, op)
    check_float(x, op)
    shape = trailing_shape(normalized_shape, x, op)
    if eps is None:  # PyTorch: the epsilon of the type it computes in (float32 for halves)
        eps = _dt.finfo_eps(_dt.COMPUTE.get(x.dtype, x.dtype))
    w = None
    if weight is not None:
        w = ensure_tensor(weight, op)
        if tuple(w.shape) != shape:
            raise RuntimeError(f"{op}: weight must have shape {shape}, got {tuple(w.shape)}")
        check_same_dtype(x, w, op, "weight", RMSNorm)
    n = math.prod(shape)
    if x.numel() == 0:  # no rows, or rows of no values: nothing to normalise
        return x * 1 if w is None else x * w
    y = rms_norm_rows(x.reshape(-1, n), None if w is None else w.reshape(n), eps)
    return y.reshape(x.shape)


def _channel_window_sum(sq: Tensor, before: int, after: int) -> Tensor:
    """sum of sq over channels [c - before, c + after] (clipped to the valid channels) for
    every channel c of (N, C, *) sq: a zero-padded channel axis and `before + after + 1`
    shifted slices."""
    c = sq.shape[1]
    zeros = [sq.narrow(1, 0, 1) * 0] if c else []
    padded = cat(zeros * before + [sq] + zeros * after, dim=1)
    total = padded.narrow(1, 0, c)
    for s in range(1, before + after + 1):
        total = total + padded.narrow(1, s, c)
    return total


def local_response_norm(input, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """x / (k + alpha / size * sum of x^2 over channels [c - size // 2, c + (size - 1) // 2])
    ** beta, for (N, C, *) input with at least 3 dims."""
    op = "local_response_norm"
    x = ensure_tensor(input, op)
    check_float(x, op)
    if x.ndim < 3:
        raise ValueError(f"{op}: expected 3D or higher dimensional input, got {x.ndim}D "
                         f"input of shape {tuple(x.shape)}")
    if size <= 0:
        raise ValueError(f"{op}: size must be positive, got {size}")
    if x.numel() == 0:
        return x
    div = _channel_window_sum(x * x, size // 2, (size - 1) // 2) * (alpha / size) + k
    return x / div ** beta


def cross_map_lrn2d(input, size: int, alpha: float = 1e-4, beta: float = 0.75,
                    k: float = 1.0) -> Tensor:
    """nn.CrossMapLRN2d's normalisation of (N, C, H, W) input: x * (k + alpha / size *
    sum of x^2 over channels [c - h, c + h]) ** -beta with h = (size - 1) // 2 (an even size
    acts as size - 1).  See docs/semantics.md: PyTorch's forward also keeps channel 0 in
    the windows of the channels past h + 1, which its own backward does not."""
    op = "CrossMapLRN2d"
    x = ensure_tensor(input, op)
    check_float(x, op)
    if x.ndim != 4:
        raise ValueError(f"{op}: expected input to be 4D, got {x.ndim}D instead")
    h = math.floor((size - 1) / 2)
    scale = _channel_window_sum(x * x, h, h) * (alpha / size) + k
    return x * scale ** (-beta)
