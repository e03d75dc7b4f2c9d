"""The reference backend: every primitive of the contract in plain numpy.

This file is the executable specification the C++ (and CUDA) kernels are tested
against, so it favours the obvious formula over the fast one.  Conventions:

- Inputs are numpy arrays of one dtype (the ops layer has already promoted them) and
  may be non-contiguous; outputs are new arrays unless the primitive says otherwise.
- float16/bfloat16 are computed in float32 and rounded once at the end, as PyTorch's
  CPU kernels do.
- `dims` are tuples of non-negative ints; shapes were checked by the ops layer.

Elementwise primitives are defined here; reductions, copies, casts, matmul, indexing and
sorting in `ref_data.py`; the nn primitives (convolution, pooling, fused softmax /
cross-entropy, normalisation) in `ref_nn.py`; all are re-exported here.
"""
from __future__ import annotations

import math

import numpy as np

from .ref_cast import HALF_COMPUTE as _HALF, up as _up

# inf/NaN results are values, as in PyTorch, not warnings: each primitive whose IEEE
# result may be inf or NaN (log(0), 1/0, inf - inf, overflow, a value or result rounded
# to a narrower float) ignores exactly those numpy floating-point errors with np.errstate,
# so other warnings still show (e.g. NaN cast to an integer dtype: invalid value in cast)



def _unary(f):
    def prim(x):
        c = _HALF.get(x.dtype)
        if c is None:
            return np.asarray(f(x))
        return np.asarray(f(x.astype(c))).astype(x.dtype)
    prim.__name__ = f.__name__
    prim.__doc__ = f.__doc__
    return prim


def _with_out(f):
    """Give an activation an ``out=`` argument (the epilogue's in-place entry,
    jit/passes/fuse_epilogue.py): the result is written into `out`, an array of x's
    shape and the result's dtype that is x itself (in place) or shares no memory with it,
    and `out` is returned.  A partial overlap raises (an elementwise kernel would read
    elements it already overwrote); so do a wrong shape or dtype."""
    def prim(x, *args, out=None, **kw):
        r = f(x, *args, **kw)
        if out is None:
            return r
        name = f.__name__
        if not isinstance(out, np.ndarray):
            raise ValueError(f"{name}: out= must be a numpy array")
        if not out.flags.writeable:
            raise ValueError(f"{name}: out= is read-only")
        if out.dtype != r.dtype:
            raise ValueError(f"{name}: out= has dtype {out.dtype}, the result is {r.dtype}")
        if out.shape != x.shape:
            raise ValueError(f"{name}: out= must have the input's shape")
        same = out.ctypes.data == x.ctypes.data and out.strides == x.strides
        if not same and out.size and np.shares_memory(out, x):
            raise ValueError(f"{name}: out= overlaps the input without being the input "
                             "itself (in place needs the same memory and strides)")
        np.copyto(out, r)
        return out
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


@_with_out
@_unary
def tanh(x):
    """hyperbolic tangent"""
    return np.tanh(x)


@_with_out
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
@_with_out
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


@_with_out
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
    def prim(a, b, *, out=None):
        c = _HALF.get(a.dtype)
        if c is None:
            r = np.asarray(f(a, b))
        else:
            r = np.asarray(f(a.astype(c), b.astype(c)))
            r = r if r.dtype == np.bool_ else r.astype(a.dtype)
        if out is None:
            return r
        # out= is a itself (the C++ kernels' in-place contract): b broadcasts into a
        if out is not a or r.shape != a.shape:
            raise ValueError(f"{f.__name__}: out= must be a itself, with b broadcasting into a's shape")
        out[...] = r
        return out
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


from .ref_data import *  # noqa: E402,F401,F403  (reductions, copies, indexing, sorting)
from .ref_scan import *  # noqa: E402,F401,F403  (cumprod, cummax, cummin, logcumsumexp)
from .ref_index import *  # noqa: E402,F401,F403  (scatter reductions)
from .ref_nn import *  # noqa: E402,F401,F403  (the nn primitives are part of this backend)
from .ref_attention import *  # noqa: E402,F401,F403  (scaled dot-product attention)
from .ref_optim import *  # noqa: E402,F401,F403  (optimizer update primitives)
from .ref_device import *  # noqa: E402,F401,F403  (allocation, host transfer, views)
from .ref_quant import *  # noqa: E402,F401,F403  (int8 quantization primitives)
from .ref_math import *  # noqa: E402,F401,F403  (elementwise math, issue 16)
from .ref_intops import *  # noqa: E402,F401,F403  (bitwise, gcd/lcm, hash, counting: issue 16)
from .ref_linalg import *  # noqa: E402,F401,F403  (factorizations and solvers)
from .ref_conv3d import *  # noqa: E402,F401,F403  (3-d convolution)
from .ref_resample import *  # noqa: E402,F401,F403  (interpolate's separable resampling)
