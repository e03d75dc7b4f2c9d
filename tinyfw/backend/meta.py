"""The meta device: tensors with a shape and a dtype and no data.

Every primitive here computes only its output's shape and dtype, by the same rules as the
reference kernels (the conformance suite checks that against ref), so any model runs on
meta without allocating: shape inference, `summary`, parameter counts and flops of a
billion-parameter model in a second.  Reading values (`item`, `.cpu()`, printing data) is
an error naming the device.
"""
from __future__ import annotations

import builtins as _b
import math

import numpy as np

from ..device import Device

DEVICE = Device("meta")
_I64 = np.dtype(np.int64)
_BOOL = np.dtype(np.bool_)
_F32 = np.dtype(np.float32)
_HALF = (np.dtype(np.float16), np.dtype("bfloat16"))


def _row_major(shape: tuple, itemsize: int) -> tuple:
    strides, s = [], itemsize
    for n in reversed(shape):
        strides.append(s)
        s *= max(n, 1)
    return tuple(reversed(strides))


class MetaArray:
    """Shape, dtype and strides of an array that has no memory."""

    __slots__ = ("shape", "dtype", "strides", "writeable", "__weakref__")
    device = DEVICE

    def __init__(self, shape: tuple, dtype, strides: tuple | None = None, writeable: bool = True):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.strides = _row_major(self.shape, self.dtype.itemsize) if strides is None else strides
        self.writeable = writeable

    @property
    def backend(self):
        return _this

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))
    itemsize = property(lambda self: self.dtype.itemsize)

    def __array__(self, *args, **kwargs):
        raise TypeError("a 'meta' tensor has no data to convert to a numpy array")

    def __repr__(self) -> str:
        return f"MetaArray(shape={self.shape}, dtype={self.dtype})"


def _new(shape, dtype) -> MetaArray:
    return MetaArray(shape, dtype)


def _compute(dtype):
    return _F32 if dtype in _HALF else dtype


def _bshape(*shapes) -> tuple:
    nd = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(nd):
        size = 1
        for s in shapes:
            j = i - (nd - len(s))
            if j >= 0 and s[j] != 1:
                size = s[j]
        out.append(size)
    return tuple(out)


def _reduced(shape: tuple, dims, keepdim: bool) -> tuple:
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def _int_to_i64(dtype):
    return _I64 if dtype.kind in "biu" else dtype


# -- device contract -----------------------------------------------------------------------------
def unavailable(device) -> str:
    """Why `device` cannot run here ('' when it can)."""
    return "" if device.index in (None, 0) else "the meta device has one instance, index 0"


def from_host(a: np.ndarray) -> MetaArray:
    """A meta array with host array `a`'s shape and dtype (its values are dropped)."""
    return _new(a.shape, a.dtype)


def to_host(a: MetaArray):
    """Meta tensors have no values: always an error."""
    raise RuntimeError(f"a tensor on the 'meta' device (shape {a.shape}) has no data; "
                       "create it on a real device to read values")


def empty(shape: tuple, dtype) -> MetaArray:
    """A meta array of `shape` and `dtype`."""
    return _new(shape, dtype)


def full(shape: tuple, value, dtype) -> MetaArray:
    """A meta array of `shape` and `dtype` (the value is dropped)."""
    return _new(shape, dtype)


def view(x: MetaArray, shape: tuple):
    """x with a new shape when it is row-major (else None: the caller copies)."""
    return MetaArray(shape, x.dtype) if is_contiguous(x) else None


def permute(x: MetaArray, dims: tuple) -> MetaArray:
    """x with its dims reordered."""
    return MetaArray(tuple(x.shape[d] for d in dims), x.dtype,
                     tuple(x.strides[d] for d in dims), x.writeable)


def expand(x: MetaArray, shape: tuple) -> MetaArray:
    """x broadcast to `shape`, read-only."""
    lead = len(shape) - x.ndim
    strides = (0,) * lead + tuple(0 if n == 1 and s != 1 else st for s, n, st in
                                  zip(shape[lead:], x.shape, x.strides))
    return MetaArray(shape, x.dtype, strides, False)


def _stand_in(x: MetaArray) -> np.ndarray:
    # a numpy array with x's shape and strides over one element: numpy computes the shape
    # and strides of an index of it without reading memory (for advanced indices, strides
    # are zeroed so the copy reads the one element)
    return np.lib.stride_tricks.as_strided(np.zeros(1, x.dtype), x.shape, x.strides)


def slice_view(x: MetaArray, index: tuple) -> MetaArray:
    """Basic indexing (ints, slices, None, Ellipsis): numpy's rule on a stand-in."""
    r = _stand_in(x)[index if Ellipsis in index else index + (Ellipsis,)]
    return MetaArray(r.shape, x.dtype, r.strides, x.writeable)


def as_strided(x: MetaArray, shape: tuple, strides: tuple, offset: int) -> MetaArray:
    """x's (absent) memory seen with `shape` and element `strides`."""
    return MetaArray(shape, x.dtype, tuple(s * x.itemsize for s in strides), x.writeable)


def storage_offset(x: MetaArray) -> int:
    """Meta arrays stand for their own memory: 0."""
    return 0


def is_contiguous(x: MetaArray) -> bool:
    """True when x's strides are row-major (ignoring dims of size 1)."""
    want = _row_major(x.shape, x.itemsize)
    return _b.all(n == 1 or s == w for n, s, w in zip(x.shape, x.strides, want))


def is_writeable(x: MetaArray) -> bool:
    """False for expanded views."""
    return x.writeable


def is_dense(x: MetaArray) -> bool:
    """Meta arrays hold no memory; row-major counts as dense."""
    return is_contiguous(x)


def memory_owner(x: MetaArray):
    """Each meta array stands for its own (absent) memory."""
    return x


def synchronize() -> None:
    """Nothing runs on meta."""


def memory_allocated() -> int:
    """Meta tensors allocate nothing."""
    return 0


max_memory_allocated = memory_reserved = memory_allocated


def empty_cache() -> None:
    """Nothing is cached."""


def reset_peak_memory_stats() -> None:
    """Nothing is counted."""


# -- elementwise ------------------------------------------------------------------------------------
def _same(x, *a, **k) -> MetaArray:
    return _new(x.shape, x.dtype)


def _to_bool(x, *a, **k) -> MetaArray:
    return _new(x.shape, _BOOL)


def _binary(a, b, *, out=None) -> MetaArray:
    if out is not None:  # the in-place contract (ref._binary): out= is a itself
        if out is not a or _bshape(a.shape, b.shape) != a.shape:
            raise ValueError("out= must be a itself, with b broadcasting into a's shape")
        return a
    return _new(_bshape(a.shape, b.shape), a.dtype)


def _compare(a, b) -> MetaArray:
    return _new(_bshape(a.shape, b.shape), _BOOL)


for _n in ("neg", "abs", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin",
           "cos", "tanh", "sigmoid", "silu", "erf", "gelu", "relu", "leaky_relu", "softplus",
           "ceil", "floor", "round", "sign", "contiguous", "softmax", "log_softmax", "flip",
           "tril", "triu", "clamp", "erfc"):
    globals()[_n] = _same
for _n in ("isnan", "isinf", "logical_not"):
    globals()[_n] = _to_bool
for _n in ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "atan2", "floor_divide",
           "remainder"):
    globals()[_n] = _binary
for _n in ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"):
    globals()[_n] = _compare


def where(cond, a, b) -> MetaArray:
    """Broadcast of the three shapes, a's dtype."""
    return _new(_bshape(cond.shape, a.shape, b.shape), a.dtype)


def masked_fill(x, mask, value) -> MetaArray:
    """x's shape broadcast with the mask's."""
    return _new(_bshape(x.shape, mask.shape), x.dtype)


def cast(x, dtype) -> MetaArray:
    """x's shape in `dtype`."""
    return _new(x.shape, dtype)


def cumsum(x, dim: int) -> MetaArray:
    """x's shape; integers accumulate in int64."""
    return _new(x.shape, _int_to_i64(x.dtype))


def cumprod(x, dim: int) -> MetaArray:
    """x's shape; integers accumulate in int64."""
    return _new(x.shape, _int_to_i64(x.dtype))


def cummax(x, dim: int) -> tuple:
    """(values, int64 indices), both x's shape (cummin too)."""
    return _new(x.shape, x.dtype), _new(x.shape, _I64)


cummin = cummax


def logcumsumexp(x, dim: int) -> MetaArray:
    """x's shape and dtype."""
    return _new(x.shape, x.dtype)


def gelu_backward(g, x, *a, **k) -> MetaArray:
    """The broadcast of g and x, in g's dtype (the activations' one-kernel backwards)."""
    return _new(_bshape(g.shape, x.shape), g.dtype)


tanh_backward = sigmoid_backward = silu_backward = gelu_backward


def softmax_backward(y, g, dim: int) -> MetaArray:
    """y's shape and dtype."""
    return _new(y.shape, y.dtype)


log_softmax_backward = softmax_backward


# -- reductions -------------------------------------------------------------------------------------
def sum(x, dims: tuple, keepdim: bool) -> MetaArray:  # noqa: A001
    """Reduced shape; integers and bools sum to int64."""
    return _new(_reduced(x.shape, dims, keepdim), _int_to_i64(x.dtype))


prod = sum


def amax(x, dims: tuple, keepdim: bool) -> MetaArray:
    """Reduced shape, x's dtype."""
    return _new(_reduced(x.shape, dims, keepdim), x.dtype)


amin = amax


def any(x, dims: tuple, keepdim: bool) -> MetaArray:  # noqa: A001
    """Reduced shape, bool."""
    return _new(_reduced(x.shape, dims, keepdim), _BOOL)


all = any  # noqa: A001


def argmax(x, dim: int, keepdim: bool) -> MetaArray:
    """Reduced shape along one dim, int64."""
    return _new(_reduced(x.shape, dim, keepdim), _I64)


argmin = argmax


# -- products, shapes, indexing -------------------------------------------------------------------
def matmul(a, b) -> MetaArray:
    """(..., m, k) @ (..., k, n) with broadcast batch dims; 1-d operands as numpy does."""
    sa, sb = a.shape, b.shape
    if len(sa) == 1 and len(sb) == 1:
        return _new((), a.dtype)
    if len(sa) == 1:
        return _new(sb[:-2] + sb[-1:], a.dtype)
    if len(sb) == 1:
        return _new(sa[:-1], a.dtype)
    return _new(_bshape(sa[:-2], sb[:-2]) + (sa[-2], sb[-1]), a.dtype)


def cat(arrays: list, dim: int) -> MetaArray:
    """The arrays joined along `dim`."""
    first = arrays[0]
    shape = list(first.shape)
    shape[dim] = _b.sum(a.shape[dim] for a in arrays)
    return _new(tuple(shape), first.dtype)


def pad(x, pads: tuple, value) -> MetaArray:
    """Each dim grown by its (before, after) pair."""
    if x.ndim == 0:
        return _new((), x.dtype)
    return _new(tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pads)), x.dtype)


def tile(x, reps: tuple) -> MetaArray:
    """numpy's tile rule: the shorter of shape and reps padded with leading ones."""
    nd = max(x.ndim, len(reps))
    shape = (1,) * (nd - x.ndim) + x.shape
    reps = (1,) * (nd - len(reps)) + tuple(reps)
    return _new(tuple(n * r for n, r in zip(shape, reps)), x.dtype)


def sort(x, dim: int, descending: bool) -> tuple:
    """(values, int64 indices), both x's shape."""
    return _new(x.shape, x.dtype), _new(x.shape, _I64)


def index(x, idx: tuple) -> MetaArray:
    """Advanced indexing: numpy's shape rule, with integer index arrays as zeros; a bool
    mask's result size depends on its values, which meta does not have."""
    parts = []
    for i in idx:
        if isinstance(i, MetaArray):
            if i.dtype == _BOOL:
                raise RuntimeError("meta: indexing with a boolean mask gives a shape that "
                                   "depends on the mask's values, which meta tensors do not have")
            i = np.lib.stride_tricks.as_strided(np.zeros(1, np.intp), i.shape, (0,) * i.ndim)
        parts.append(i)
    flat = np.lib.stride_tricks.as_strided(np.zeros(1, np.bool_), x.shape, (0,) * x.ndim)
    return _new(flat[tuple(parts)].shape, x.dtype)


def index_put(x, idx: tuple, values, accumulate: bool) -> MetaArray:
    """x's shape and dtype."""
    return _new(x.shape, x.dtype)


def index_put_(x, idx: tuple, values, accumulate: bool) -> None:
    """Nothing to write (in place)."""


def gather(x, dim: int, index) -> MetaArray:
    """The index's shape, x's dtype."""
    return _new(index.shape, x.dtype)


def scatter(x, dim: int, index, src) -> MetaArray:
    """x's shape and dtype."""
    return _new(x.shape, x.dtype)


scatter_add = scatter


def scatter_reduce(x, dim: int, index, src, reduce: str, include_self: bool) -> MetaArray:
    """x's shape and dtype."""
    return _new(x.shape, x.dtype)


index_reduce = scatter_reduce


def fill_(x, value) -> None:
    """Nothing to write."""


def copy_(dst, src) -> None:
    """Nothing to copy."""


# -- nn -------------------------------------------------------------------------------------------
def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv2d(x, w, stride: tuple, padding: tuple, dilation: tuple, groups: int) -> MetaArray:
    """(N, O, OH, OW)."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    return _new((n, o, _conv_out(h, kh, stride[0], padding[0], dilation[0]),
                 _conv_out(wd, kw, stride[1], padding[1], dilation[1])), x.dtype)


def conv2d_backward_input(g, w, x_shape: tuple, *a) -> MetaArray:
    """x_shape, g's dtype."""
    return _new(x_shape, g.dtype)


def conv2d_backward_weight(g, x, w_shape: tuple, *a) -> MetaArray:
    """w_shape, g's dtype."""
    return _new(w_shape, g.dtype)


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    eff = d * (k - 1) + 1
    if ceil_mode:
        out = -(-(size + 2 * p - eff) // s) + 1
        if (out - 1) * s >= size + p:
            out -= 1
        return out
    return (size + 2 * p - eff) // s + 1


def max_pool2d(x, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
               ceil_mode: bool) -> tuple:
    """(y, int64 indices), both (N, C, OH, OW)."""
    n, c, h, w = x.shape
    shape = (n, c, _pool_out(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode),
             _pool_out(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode))
    return _new(shape, x.dtype), _new(shape, _I64)


def max_pool2d_backward(g, indices, x_shape: tuple) -> MetaArray:
    """x_shape, g's dtype."""
    return _new(x_shape, g.dtype)


def avg_pool2d(x, kernel: tuple, stride: tuple, padding: tuple, ceil_mode: bool,
               count_include_pad: bool, divisor_override) -> MetaArray:
    """(N, C, OH, OW)."""
    n, c, h, w = x.shape
    return _new((n, c, _pool_out(h, kernel[0], stride[0], padding[0], 1, ceil_mode),
                 _pool_out(w, kernel[1], stride[1], padding[1], 1, ceil_mode)), x.dtype)


def avg_pool2d_backward(g, x_shape: tuple, *a) -> MetaArray:
    """x_shape, g's dtype."""
    return _new(x_shape, g.dtype)


def layer_norm(x, weight, bias, eps: float) -> tuple:
    """(y, mean (M,), rstd (M,)); statistics in the compute dtype."""
    stat = _compute(x.dtype)
    return _new(x.shape, x.dtype), _new(x.shape[:1], stat), _new(x.shape[:1], stat)


def _norm_backward(g, x, weight, *a) -> tuple:
    gx = _new(x.shape, x.dtype)
    if weight is None:
        return gx, None, None
    return gx, _new(weight.shape, weight.dtype), _new(weight.shape, weight.dtype)


layer_norm_backward = batch_norm_backward = _norm_backward


def gelu_add_layer_norm(h, b, x, weight, bias, eps: float, approximate: str = "none") -> tuple:
    """(y, r, mean (M,), rstd (M,)), all float32 (the kernel's only dtype)."""
    return _new(h.shape, h.dtype), _new(h.shape, h.dtype), _new(h.shape[:1], h.dtype), \
        _new(h.shape[:1], h.dtype)


def gelu_add_layer_norm_backward(g, r, weight, mean, rstd, h, b, approximate="none",
                                 gx_into=None, gh_into=None) -> tuple:
    """(gx, gh, gweight, gbias, gb): r's shape twice (gx_into / gh_into where given), then
    weight's twice and b's (or None where there is no weight / no b)."""
    def like(t):
        return None if t is None else _new(t.shape, t.dtype)

    return (_new(r.shape, r.dtype) if gx_into is None else gx_into,
            _new(r.shape, r.dtype) if gh_into is None else gh_into, like(weight), like(weight), like(b))


def rms_norm(x, weight, eps: float) -> tuple:
    """(y, rstd (M,)); rstd in the compute dtype."""
    return _new(x.shape, x.dtype), _new(x.shape[:1], _compute(x.dtype))


def rms_norm_backward(g, x, weight, rstd) -> tuple:
    """(gx, gw): x's shape and dtype, weight's (None without one)."""
    gx = _new(x.shape, x.dtype)
    return gx, None if weight is None else _new(weight.shape, weight.dtype)


def batch_norm_forward(x, weight, bias, eps: float) -> tuple:
    """(y, mean (C,), invstd (C,)); statistics in the compute dtype."""
    stat = _compute(x.dtype)
    return _new(x.shape, x.dtype), _new(x.shape[1:2], stat), _new(x.shape[1:2], stat)


def cross_entropy_forward(logits, target, weight, ignore_index: int,
                          label_smoothing: float) -> tuple:
    """(loss (N,), lse (N,)); lse in the compute dtype."""
    n = logits.shape[0]
    return _new((n,), logits.dtype), _new((n,), _compute(logits.dtype))


def cross_entropy_backward(logits, *a) -> MetaArray:
    """The logits' shape and dtype."""
    return _new(logits.shape, logits.dtype)


def sdpa_forward(q, k, v, mask, scale: float, is_causal: bool) -> tuple:
    """(out (B, H, L, Ev) in q's dtype, lse (B, H, L) in the compute dtype)."""
    return _new(q.shape[:-1] + v.shape[-1:], q.dtype), _new(q.shape[:-1], _compute(q.dtype))


def sdpa_backward(g, q, k, v, *a) -> tuple:
    """(gq, gk, gv): the shapes and dtypes of q, k and v."""
    return _new(q.shape, q.dtype), _new(k.shape, k.dtype), _new(v.shape, v.dtype)


def dropout(x, p: float, seed: int) -> tuple:
    """(y, bool mask)."""
    return _new(x.shape, x.dtype), _new(x.shape, _BOOL)


def _optimizer_step(*a, **k) -> None:
    """Parameters on meta have no values to update."""


sgd_step = adam_step = rmsprop_step = adagrad_step = _optimizer_step

from .meta_quant import *  # noqa: E402,F401,F403  (int8 quantization primitives)
from .meta_math import *  # noqa: E402,F401,F403  (elementwise math, issue 16)
from .meta_intops import *  # noqa: E402,F401,F403  (bitwise, gcd/lcm, counting: issue 16)
from .meta_linalg import *  # noqa: E402,F401,F403  (factorizations and solvers)
from .meta_conv3d import *  # noqa: E402,F401,F403  (3-d convolution)
from .meta_resample import *  # noqa: E402,F401,F403  (interpolate's resampling)

import sys as _sys  # noqa: E402

_this = _sys.modules[__name__]
