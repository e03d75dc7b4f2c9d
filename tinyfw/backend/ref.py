"""The reference backend: every primitive of the contract in plain numpy.

This file is the executable specification the C++ (and CUDA) kernels are tested
against, so it favours the obvious formula over the fast one.  Conventions:

- Inputs are numpy arrays of one dtype (the ops layer has already promoted them) and
  may be non-contiguous; outputs are new arrays unless the primitive says otherwise.
- float16/bfloat16 are computed in float32 and rounded once at the end, as PyTorch's
  CPU kernels do.
- `dims` are tuples of non-negative ints; shapes were checked by the ops layer.

The nn primitives (convolution, pooling, fused softmax / cross-entropy, normalisation)
live in `ref_nn.py` and are re-exported here.
"""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import COMPUTE
from .ref_cast import convert as _convert

# inf/NaN results are values, as in PyTorch, not warnings: each primitive whose IEEE
# result may be inf or NaN (log(0), 1/0, inf - inf, overflow, a value or result rounded
# to a narrower float) ignores exactly those numpy floating-point errors with np.errstate,
# so other warnings still show (e.g. NaN cast to an integer dtype: invalid value in cast)

_HALF = {d.np: c.np for d, c in COMPUTE.items()}


def _up(x: np.ndarray) -> np.ndarray:
    """The array in its compute dtype (float32 for half types)."""
    c = _HALF.get(x.dtype)
    return x if c is None else x.astype(c)


def _unary(f):
    def prim(x):
        c = _HALF.get(x.dtype)
        if c is None:
            return np.asarray(f(x))
        return np.asarray(f(x.astype(c))).astype(x.dtype)
    prim.__name__ = f.__name__
    prim.__doc__ = f.__doc__
    return prim


# -- elementwise unary ------------------------------------------------------------------
@_unary
def neg(x):
    """-x"""
    return np.negative(x)


@_unary
def abs(x):
    """|x|"""
    return np.abs(x)


@np.errstate(over="ignore")
@_unary
def exp(x):
    """e**x"""
    return np.exp(x)


@np.errstate(divide="ignore", invalid="ignore")
@_unary
def log(x):
    """natural logarithm"""
    return np.log(x)


@np.errstate(divide="ignore", invalid="ignore")
@_unary
def log1p(x):
    """log(1 + x)"""
    return np.log1p(x)


@np.errstate(over="ignore")
@_unary
def expm1(x):
    """e**x - 1"""
    return np.expm1(x)


@np.errstate(invalid="ignore")
@_unary
def sqrt(x):
    """square root"""
    return np.sqrt(x)


@np.errstate(divide="ignore", invalid="ignore")
@_unary
def rsqrt(x):
    """1 / sqrt(x)"""
    return 1 / np.sqrt(x)


@np.errstate(divide="ignore", over="ignore")
@_unary
def reciprocal(x):
    """1 / x"""
    return np.reciprocal(x)


@np.errstate(invalid="ignore")
@_unary
def sin(x):
    """sine"""
    return np.sin(x)


@np.errstate(invalid="ignore")
@_unary
def cos(x):
    """cosine"""
    return np.cos(x)


@_unary
def tanh(x):
    """hyperbolic tangent"""
    return np.tanh(x)


@_unary
def sigmoid(x):
    """1 / (1 + e**-x), without overflow for large |x|"""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


@_unary
def relu(x):
    """max(x, 0)"""
    return np.maximum(x, 0)


@np.errstate(invalid="ignore")
@_unary
def silu(x):
    """x * sigmoid(x)"""
    return x * sigmoid(x)


def _erf(x):
    from scipy.special import erf as _scipy_erf

    return _scipy_erf(x)


@_unary
def erf(x):
    """the error function"""
    return _erf(x)


# GELU's constants, and erfc in float64 from libm (math.erfc): scipy's float64 erfc is off
# by up to ~10^2 ulp in the tail, which a float64 kernel cannot be checked against
_SQRT1_2 = 0.7071067811865476      # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi) = phi(0)
_K2 = 1.5957691216057308            # 2 sqrt(2 / pi): tanh(u) = 2 sigmoid(2u) - 1
_GELU_ROOT = -0.7517915246935645    # gelu'(root) = 0
_erfc64 = np.vectorize(math.erfc, otypes=[np.float64])


def _sigmoid_2u(v):
    # sigmoid(2u) for GELU's tanh form, u = sqrt(2/pi) (v + 0.044715 v^3)
    return 1 / (1 + np.exp(-(_K2 * v * (1 + 0.044715 * v * v))))


def erfc(x):
    """1 - erf(x), without its cancellation: float64 erfc rounded once to x's dtype"""
    return np.asarray(_erfc64(x.astype(np.float64))).astype(x.dtype)


@_unary
def sign(x):
    """-1, 0 or 1"""
    return np.sign(x)


@_unary
def floor(x):
    """round towards -inf"""
    return np.floor(x)


@_unary
def ceil(x):
    """round towards +inf"""
    return np.ceil(x)


@_unary
def round(x):
    """round half to even (as PyTorch)"""
    return np.round(x)


def logical_not(x):
    """not x, as bool"""
    return np.asarray(np.logical_not(x))


def isnan(x):
    """x != x, as bool"""
    return np.asarray(np.isnan(_up(x)))


def isinf(x):
    """|x| == inf, as bool"""
    return np.asarray(np.isinf(_up(x)))


@np.errstate(over="ignore", invalid="ignore")
def gelu(x, approximate: str = "none"):
    """x * Phi(x), Phi the standard normal CDF; 'tanh': 0.5 x (1 + tanh(u)) with
    u = sqrt(2/pi) (x + 0.044715 x^3).

    Evaluated in float64 and rounded once to x's dtype, in forms without cancellation:
    Phi(x) = erfc(-x / sqrt2) / 2 (1 + erf(..) loses every digit for x << 0) and
    0.5 (1 + tanh(u)) = sigmoid(2u).  -inf gives NaN (-inf * 0), as PyTorch.
    """
    v = x.astype(np.float64)
    if approximate == "tanh":
        out = v * _sigmoid_2u(v)
    else:
        out = 0.5 * v * _erfc64(-v * _SQRT1_2)
    return np.asarray(out).astype(x.dtype)


@np.errstate(over="ignore", invalid="ignore")
def gelu_backward(grad, x, approximate: str = "none"):
    """grad * gelu'(x): Phi(x) + x phi(x), or for 'tanh' s (1 + w (1 - s)) with
    s = sigmoid(2u), w = 2 x u' (and 1 - s computed as sigmoid(-2u)).

    Evaluated in float64 and rounded once to the result dtype (grad and x broadcast);
    +-inf give NaN (inf * 0), as PyTorch's formula.  gelu' < 0 below its root -0.7518: a
    zero from float64 underflow there (x < -38) is -0.
    """
    g, v = grad.astype(np.float64), x.astype(np.float64)
    if approximate == "tanh":
        w = _K2 * v * (1 + 3 * 0.044715 * v * v)
        d = _sigmoid_2u(v) * (1 + w * _sigmoid_2u(-v))
    else:
        d = 0.5 * _erfc64(-v * _SQRT1_2) + v * (np.exp(-0.5 * v * v) * _INV_SQRT_2PI)
        d = np.where(d == 0, np.copysign(0.0, v - _GELU_ROOT), d)
    return np.asarray(g * d).astype(np.result_type(grad, x))


@np.errstate(invalid="ignore")
def leaky_relu(x, negative_slope: float):
    """x if x > 0 else negative_slope * x"""
    return _unary(lambda v: np.where(v > 0, v, v * v.dtype.type(negative_slope)))(x)


@np.errstate(over="ignore")
def softplus(x, beta: float, threshold: float):
    """log(1 + e**(beta x)) / beta, linear where beta x > threshold"""
    def f(v):
        bx = v * beta
        return np.where(bx > threshold, v, np.log1p(np.exp(np.minimum(bx, threshold))) / beta)
    return _unary(f)(x)


def clamp(x, lo, hi):
    """min(max(x, lo), hi); a None bound is absent"""
    def f(v):
        if lo is not None:
            v = np.maximum(v, v.dtype.type(lo))
        if hi is not None:
            v = np.minimum(v, v.dtype.type(hi))
        return v
    return _unary(f)(x)


# -- elementwise binary, broadcasting -----------------------------------------------------
def _binary(f):
    def prim(a, b):
        c = _HALF.get(a.dtype)
        if c is None:
            return np.asarray(f(a, b))
        r = np.asarray(f(a.astype(c), b.astype(c)))
        return r if r.dtype == np.bool_ else r.astype(a.dtype)
    prim.__name__ = f.__name__
    prim.__doc__ = f.__doc__
    return prim


@np.errstate(over="ignore", invalid="ignore")
@_binary
def add(a, b):
    """a + b"""
    return np.add(a, b)


@np.errstate(over="ignore", invalid="ignore")
@_binary
def sub(a, b):
    """a - b"""
    return np.subtract(a, b)


@np.errstate(over="ignore", invalid="ignore")
@_binary
def mul(a, b):
    """a * b"""
    return np.multiply(a, b)


@np.errstate(divide="ignore", over="ignore", invalid="ignore")
@_binary
def div(a, b):
    """a / b (true division; integer inputs are promoted by the ops layer)"""
    return np.true_divide(a, b)


@np.errstate(divide="ignore", over="ignore", invalid="ignore")
@_binary
def pow(a, b):
    """a ** b"""
    if a.dtype.kind in "iu" and np.any(b < 0):
        raise ValueError("pow: integers to negative integer powers are not allowed")
    return np.power(a, b)


@_binary
def maximum(a, b):
    """elementwise max; NaN wins"""
    return np.maximum(a, b)


@_binary
def minimum(a, b):
    """elementwise min; NaN wins"""
    return np.minimum(a, b)


@_binary
def atan2(a, b):
    """the angle of the point (b, a) in radians, in [-pi, pi]: atan(a / b) by quadrant"""
    return np.arctan2(a, b)


@np.errstate(divide="ignore", over="ignore", invalid="ignore")
@_binary
def floor_divide(a, b):
    """floor(a / b)"""
    if a.dtype.kind in "iu" and np.any(b == 0):
        raise ZeroDivisionError("floor_divide: integer division by zero")
    return np.floor_divide(a, b)


@np.errstate(divide="ignore", invalid="ignore")
@_binary
def remainder(a, b):
    """a - floor(a / b) * b (sign of b, as Python and PyTorch)"""
    if a.dtype.kind in "iu" and np.any(b == 0):
        raise ZeroDivisionError("remainder: integer division by zero")
    return np.remainder(a, b)


@_binary
def eq(a, b):
    """a == b"""
    return np.equal(a, b)


@_binary
def ne(a, b):
    """a != b"""
    return np.not_equal(a, b)


@_binary
def lt(a, b):
    """a < b"""
    return np.less(a, b)


@_binary
def le(a, b):
    """a <= b"""
    return np.less_equal(a, b)


@_binary
def gt(a, b):
    """a > b"""
    return np.greater(a, b)


@_binary
def ge(a, b):
    """a >= b"""
    return np.greater_equal(a, b)


def logical_and(a, b):
    """a and b, as bool"""
    return np.asarray(np.logical_and(a, b))


def logical_or(a, b):
    """a or b, as bool"""
    return np.asarray(np.logical_or(a, b))


def logical_xor(a, b):
    """a xor b, as bool"""
    return np.asarray(np.logical_xor(a, b))


def where(cond, a, b):
    """a where cond else b, broadcasting all three"""
    return np.asarray(np.where(cond, a, b))  # 0-d array, not a numpy scalar


# activation backwards from the op's output or input (one pass instead of the composed
# formula's several; the same float operations)
@np.errstate(over="ignore", invalid="ignore")
@_binary
def tanh_backward(grad, y):
    """grad * (1 - y * y): tanh's backward from its output y"""
    return grad * (1 - y * y)


@np.errstate(over="ignore", invalid="ignore")
@_binary
def sigmoid_backward(grad, y):
    """grad * y * (1 - y): sigmoid's backward from its output y"""
    return grad * y * (1 - y)


@np.errstate(over="ignore", invalid="ignore")
@_binary
def silu_backward(grad, x):
    """grad * (s * (1 + x * (1 - s))), s = sigmoid(x): silu's backward"""
    s = sigmoid(x)
    return grad * (s * (1 + x * (1 - s)))


# -- reductions -------------------------------------------------------------------------------
def _acc(x):
    # sums of small ints accumulate in int64 and of half floats in float32, as PyTorch
    if x.dtype.kind == "b" or x.dtype.kind in "iu":
        return np.int64
    return _HALF.get(x.dtype, x.dtype)


@np.errstate(over="ignore", invalid="ignore")
def sum(x, dims: tuple, keepdim: bool):
    """Sum over `dims`; bool/int inputs give int64, half floats accumulate in float32."""
    acc = _acc(x)
    r = np.sum(x, axis=dims, dtype=acc, keepdims=keepdim)
    out = np.int64 if x.dtype.kind in "biu" else x.dtype
    return np.asarray(r).astype(out, copy=False)


@np.errstate(over="ignore", invalid="ignore")
def prod(x, dims: tuple, keepdim: bool):
    """Product over `dims`, with sum's accumulation and result dtypes."""
    acc = _acc(x)
    r = np.prod(x, axis=dims, dtype=acc, keepdims=keepdim)
    out = np.int64 if x.dtype.kind in "biu" else x.dtype
    return np.asarray(r).astype(out, copy=False)


def amax(x, dims: tuple, keepdim: bool):
    """Maximum over `dims` (NaN propagates); dims must be non-empty."""
    return np.asarray(np.max(_up(x), axis=dims, keepdims=keepdim)).astype(x.dtype, copy=False)


def amin(x, dims: tuple, keepdim: bool):
    """Minimum over `dims` (NaN propagates); dims must be non-empty."""
    return np.asarray(np.min(_up(x), axis=dims, keepdims=keepdim)).astype(x.dtype, copy=False)


def argmax(x, dim: int, keepdim: bool):
    """Index of the first maximum along `dim`, int64 (NaN counts as the maximum)."""
    return np.asarray(np.argmax(_up(x), axis=dim, keepdims=keepdim)).astype(np.int64)


def argmin(x, dim: int, keepdim: bool):
    """Index of the first minimum along `dim`, int64 (NaN counts as the minimum)."""
    return np.asarray(np.argmin(_up(x), axis=dim, keepdims=keepdim)).astype(np.int64)


def any(x, dims: tuple, keepdim: bool):
    """True where any element along `dims` is non-zero."""
    return np.asarray(np.any(x, axis=dims, keepdims=keepdim))


def all(x, dims: tuple, keepdim: bool):
    """True where every element along `dims` is non-zero."""
    return np.asarray(np.all(x, axis=dims, keepdims=keepdim))


# -- copies, casts, matmul ---------------------------------------------------------------
def cast(x, dtype: np.dtype):
    """x converted to `dtype` by tinyfw's conversion rules (ref_cast.py,
    docs/semantics.md: floats round once; float -> int truncates, NaN and out-of-range
    values give the 32/64-bit minimum)."""
    return _convert(x, dtype)


def _same_dtype(v, dtype: np.dtype):
    """An array argument converted to `dtype` by the cast rules (scalars as they are)."""
    return _convert(v, dtype) if isinstance(v, np.ndarray) and v.dtype != dtype else v


def contiguous(x):
    """x itself when row-major, else a row-major copy (0-d arrays stay 0-d, unlike
    np.ascontiguousarray)."""
    return np.asarray(x, order="C")


@np.errstate(over="ignore")
def matmul(a, b):
    """Batched matrix product with broadcast batch dims (a: ...×m×k, b: ...×k×n);
    half inputs are accumulated in float32."""
    c = _HALF.get(a.dtype)
    if c is None:
        return np.matmul(a, b)
    return np.matmul(a.astype(c), b.astype(c)).astype(a.dtype)


def cat(arrays: list, dim: int):
    """Concatenate along `dim`."""
    return np.concatenate(arrays, axis=dim)


@np.errstate(over="ignore")
def pad(x, pads: tuple, value):
    """Constant padding; `pads` is ((before, after), ...) per dim, all >= 0."""
    if x.ndim == 0:
        return x.copy()
    return np.pad(x, pads, mode="constant", constant_values=value)


def flip(x, dims: tuple):
    """A copy with `dims` reversed."""
    return np.array(np.flip(x, axis=dims))  # a copy; 0-d array, not a numpy scalar


def tile(x, reps: tuple):
    """x repeated `reps` times along each dim (PyTorch's Tensor.repeat)."""
    return np.tile(x, reps)


def index(x, idx: tuple):
    """Advanced indexing x[idx] (integer arrays, bool masks, slices): a copy."""
    return np.asarray(x[idx])


def index_put(x, idx: tuple, values, accumulate: bool):
    """A copy of x with x[idx] = values (or += with `accumulate`, summing duplicates)."""
    out = x.copy()
    index_put_(out, idx, values, accumulate)
    return out


def index_put_(x, idx: tuple, values, accumulate: bool) -> None:
    """In place: x[idx] = values (or += with `accumulate`, summing duplicates), values
    broadcast to the indexed shape and cast to x's dtype; x must be writeable.  (Tensor
    assignment ``x[mask] = v`` without autograd: only the addressed elements are touched.)"""
    if accumulate:
        # values broadcast explicitly: numpy 2.4's ufunc.at reads garbage when it has to
        # broadcast them against a multi-dimensional index (seen: -5e23 from 4 small adds)
        np.add.at(x, idx, np.broadcast_to(values, x[idx].shape))
    else:
        x[idx] = _same_dtype(values, x.dtype)


def _corner(x, index, dim: int):
    """The part of x that `index` addresses: index may be smaller than x in every dim
    but `dim` (PyTorch's rule), while numpy's *_along_axis want equal sizes there."""
    return x[tuple(slice(None) if k == dim else slice(0, s) for k, s in enumerate(index.shape))]


def gather(x, dim: int, index):
    """out[i][j][k] = x[i][index[i][j][k]][k] for dim=1, and so on; index.shape[k] <=
    x.shape[k] for k != dim."""
    return np.take_along_axis(_corner(x, index, dim), index, axis=dim)


def scatter_add(x, dim: int, index, src):
    """A copy of x with src added at `index` along `dim` (duplicates summed)."""
    out = x.copy()
    idx = list(np.indices(index.shape, sparse=True))
    idx[dim] = index
    np.add.at(out, tuple(idx), src[tuple(slice(0, s) for s in index.shape)])
    return out


def scatter(x, dim: int, index, src):
    """A copy of x with src written at `index` along `dim` (last write wins)."""
    out, src = x.copy(), _same_dtype(src, x.dtype)
    np.put_along_axis(_corner(out, index, dim), index, src[tuple(slice(0, s) for s in index.shape)],
                      axis=dim)
    return out


@np.errstate(over="ignore")
def masked_fill(x, mask, value):
    """x with `value` where mask is True."""
    return np.where(mask, x.dtype.type(value), x)


@np.errstate(over="ignore")
def fill_(x, value) -> None:
    """In place: every element of x becomes value."""
    x[...] = value


@np.errstate(over="ignore")
def copy_(dst, src) -> None:
    """In place: dst[...] = src, broadcasting src and casting to dst's dtype (the cast
    rules; a Python scalar as numpy converts it)."""
    np.copyto(dst, _same_dtype(src, dst.dtype), casting="unsafe")


def triu(x, k: int):
    """Upper triangle of the last two dims, from diagonal k."""
    return np.triu(x, k)


def tril(x, k: int):
    """Lower triangle of the last two dims, up to diagonal k."""
    return np.tril(x, k)


@np.errstate(over="ignore", invalid="ignore")
def cumsum(x, dim: int):
    """Running sum along `dim`."""
    out = np.int64 if x.dtype.kind in "biu" else x.dtype
    return np.cumsum(_up(x), axis=dim).astype(out)


def sort(x, dim: int, descending: bool):
    """(values, int64 indices) sorted along `dim`, stable."""
    key = -_up(x) if descending else _up(x)
    idx = np.argsort(key, axis=dim, kind="stable")
    return np.take_along_axis(x, idx, axis=dim), idx.astype(np.int64)


from .ref_nn import *  # noqa: E402,F401,F403  (the nn primitives are part of this backend)
from .ref_optim import *  # noqa: E402,F401,F403  (optimizer update primitives)
from .ref_device import *  # noqa: E402,F401,F403  (allocation, host transfer, views)
