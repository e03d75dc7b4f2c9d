"""CUDA primitives, part 1: elementwise ops and reductions (ref.py / ref_data.py semantics).

Shapes, broadcasting and output dtypes are decided here; each kernel gets its operands
as arrays of the output's shape (broadcast ones as stride-0 views) and writes a new
row-major output.  Integer ops that ref refuses for some values (negative integer
powers, integer division by zero) check them first, which waits for the device: the
error must come from the call that caused it.
"""
from __future__ import annotations

import numpy as np

from . import ref as _ref
from .cuda import _cuda, empty, expand, permute, to_host, view

__all__ = []  # filled below: every primitive defined here

_BOOL = np.dtype(np.bool_)
_I64 = np.dtype(np.int64)
_BIG = 1 << 31  # operands this large that are not contiguous are copied first (32-bit offsets)


def _prim(f):
    __all__.append(f.__name__)
    return f


def contiguous(x):
    """x itself when row-major, else a row-major copy."""
    if x.contiguous:
        return x
    out = empty(x.shape, x.dtype)
    _cuda.copy(out, x)
    return out


__all__.append("contiguous")


def _operands(arrays, shape):
    """`arrays` broadcast to `shape` (stride-0 views), copied when huge and strided."""
    out = []
    for a in arrays:
        if a.shape != tuple(shape):
            a = expand(a, shape)
        if a.size >= _BIG and not a.contiguous:
            a = contiguous(a)
        out.append(a)
    return out


# -- unary ----------------------------------------------------------------------------------------
def _unary(name: str, out_dtype=None, a0: float = 0.0, a1: float = 0.0):
    op = _cuda.UNARY[name]

    def prim(x):
        out = empty(x.shape, out_dtype or x.dtype)
        (x,) = _operands([x], x.shape)
        _cuda.unary(op, out, x, a0, a1)
        return out
    return prim


for _n in ("neg", "abs", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin", "cos",
           "tanh", "sigmoid", "relu", "silu", "erf", "erfc", "sign", "floor", "ceil", "round"):
    globals()[_n] = _unary(_n)
    globals()[_n].__name__ = _n
    globals()[_n].__doc__ = getattr(_ref, _n).__doc__
    __all__.append(_n)
for _n in ("logical_not", "isnan", "isinf"):
    globals()[_n] = _unary(_n, _BOOL)
    globals()[_n].__name__ = _n
    globals()[_n].__doc__ = getattr(_ref, _n).__doc__
    __all__.append(_n)


@_prim
def gelu(x, approximate: str = "none"):
    """x * Phi(x) (or the tanh form), in float64 rounded once, as ref.gelu."""
    return _unary("gelu_tanh" if approximate == "tanh" else "gelu")(x)


@_prim
def leaky_relu(x, negative_slope: float):
    """x if x > 0 else negative_slope * x"""
    return _unary("leaky_relu", None, float(negative_slope))(x)


@_prim
def softplus(x, beta: float, threshold: float):
    """log(1 + e**(beta x)) / beta, linear where beta x > threshold"""
    return _unary("softplus", None, float(beta), float(threshold))(x)


@_prim
def clamp(x, lo, hi):
    """min(max(x, lo), hi); a None bound is absent"""
    return _unary("clamp", None, -np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))(x)


# -- binary ---------------------------------------------------------------------------------------
_PREDICATES = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"}


def _same_dtype(a, b, name: str):
    if a.dtype == b.dtype:
        return a, b
    if name.startswith("logical_"):  # any dtypes: compared with zero, so bool loses nothing
        return cast(a, _BOOL), cast(b, _BOOL)
    raise TypeError(f"{name} on cuda: operands of different dtypes ({a.dtype}, {b.dtype}); "
                    "the ops layer promotes them to one dtype first")


def _binary(name: str, op_name: str | None = None):
    op = _cuda.BINARY[op_name or name]
    pred = name in _PREDICATES

    def prim(a, b, *, out=None):
        if out is not None:  # the in-place contract (ref._binary): out= is a, b broadcasts
            r = prim(a, b)  # into it; computed whole, then copied (a may be any view)
            if out is not a or r.shape != a.shape or r.dtype != a.dtype:
                raise ValueError(f"{name}: out= must be a itself, with b broadcasting into "
                                 "a's shape")
            _cuda.copy(a, r)
            return a
        a, b = _same_dtype(a, b, name)
        sa, sb = a.shape, b.shape
        shape = sa if sa == sb else np.broadcast_shapes(sa, sb)  # ~3 us saved on equal shapes
        out = empty(shape, _BOOL if pred else a.dtype)
        a, b = _operands([a, b], shape)
        _cuda.binary(op, out, a, b)
        return out
    prim.__name__ = name
    prim.__doc__ = getattr(_ref, name).__doc__
    __all__.append(name)
    return prim


for _n in ("add", "sub", "mul", "div", "maximum", "minimum", "atan2", "eq", "ne", "lt", "le", "gt",
           "ge", "logical_and", "logical_or", "logical_xor", "tanh_backward", "sigmoid_backward",
           "silu_backward"):
    globals()[_n] = _binary(_n)

_pow, _floor_divide, _remainder = _binary("pow"), _binary("floor_divide"), _binary("remainder")
__all__ += ["pow", "floor_divide", "remainder"]


def _any_true(x) -> bool:
    return bool(to_host(any(x, tuple(range(x.ndim)), False)))


def pow(a, b):  # noqa: A001
    """a ** b"""
    if a.dtype.kind in "iu" and _any_true(lt(b, _zero(b))):
        raise ValueError("pow: integers to negative integer powers are not allowed")
    return _pow(a, b)


def floor_divide(a, b):
    """floor(a / b)"""
    if a.dtype.kind in "iu" and _any_true(eq(b, _zero(b))):
        raise ZeroDivisionError("floor_divide: integer division by zero")
    return _floor_divide(a, b)


def remainder(a, b):
    """a - floor(a / b) * b (sign of b, as Python and PyTorch)"""
    if a.dtype.kind in "iu" and _any_true(eq(b, _zero(b))):
        raise ZeroDivisionError("remainder: integer division by zero")
    return _remainder(a, b)


def _zero(like):
    z = empty((), like.dtype)
    _cuda.fill(z, 0.0, 0, True)
    return z


@_prim
def gelu_backward(grad, x, approximate: str = "none"):
    """grad * gelu'(x), in float64 rounded once (ref.gelu_backward)."""
    dt = np.result_type(grad.dtype, x.dtype)
    grad, x = cast_if(grad, dt), cast_if(x, dt)
    return _binary("gelu_backward", "gelu_tanh_backward" if approximate == "tanh" else "gelu_backward")(grad, x)


@_prim
def where(cond, a, b):
    """a where cond else b, broadcasting all three"""
    dt = np.result_type(a.dtype, b.dtype)
    a, b, cond = cast_if(a, dt), cast_if(b, dt), cast_if(cond, _BOOL)
    shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    out = empty(shape, dt)
    cond, a, b = _operands([cond, a, b], shape)
    _cuda.where(out, cond, a, b)
    return out


@_prim
def masked_fill(x, mask, value):
    """x with `value` where mask is True."""
    from .cuda import full

    with np.errstate(over="ignore"):
        v = x.dtype.type(value)
    return where(mask, full((), v, x.dtype), x)


# -- casts ------------------------------------------------------------------------------------------
@_prim
def cast(x, dtype):
    """x converted to `dtype` by tinyfw's conversion rules (ref_cast.py)."""
    out = empty(x.shape, np.dtype(dtype))
    _cuda.copy(out, x)
    return out


def cast_if(x, dtype):
    """x, or x cast to `dtype` when it has another dtype."""
    return x if x.dtype == dtype else cast(x, dtype)


# -- reductions -------------------------------------------------------------------------------------
def _split(x, dims: tuple, keepdim: bool):
    """x viewed as [kept..., reduced...], and the output shape with and without keepdim."""
    dims = tuple(sorted(set(d % x.ndim for d in dims))) if x.ndim else ()
    kept = [d for d in range(x.ndim) if d not in dims]
    xv = permute(x, tuple(kept + list(dims)))
    shape = tuple(x.shape[d] for d in kept)
    full_shape = tuple(1 if d in dims else x.shape[d] for d in range(x.ndim))
    return xv, len(kept), shape, full_shape if keepdim else shape


def _reduce(name: str, out_dtype=None, needs_elements=False):
    op = _cuda.REDUCE[name]

    def prim(x, dims: tuple, keepdim: bool):
        xv, n_kept, shape, out_shape = _split(x, dims, keepdim)
        if needs_elements and x.size == 0 and 0 not in shape:
            raise ValueError(f"zero-size array to reduction operation {name} which has no identity")
        dt = out_dtype(x.dtype) if out_dtype else x.dtype
        out = empty(shape, dt)
        if xv.size >= _BIG and not xv.contiguous:
            xv = contiguous(xv)
        _cuda.reduce(op, out, xv, n_kept)
        return out if out_shape == shape else view(out, out_shape)
    prim.__name__ = name
    prim.__doc__ = getattr(_ref, name).__doc__
    __all__.append(name)
    return prim


def _sum_dtype(dt):
    return _I64 if dt.kind in "biu" else dt


sum = _reduce("sum", _sum_dtype)  # noqa: A001
prod = _reduce("prod", _sum_dtype)
amax = _reduce("amax", None, True)
amin = _reduce("amin", None, True)
any = _reduce("any", lambda dt: _BOOL)  # noqa: A001
all = _reduce("all", lambda dt: _BOOL)  # noqa: A001


def _arg(is_max: bool, name: str):
    def prim(x, dim: int, keepdim: bool):
        if x.ndim == 0:
            return _zeros_i64(())
        xv, _, shape, out_shape = _split(x, (dim,), keepdim)
        if x.shape[dim % x.ndim] == 0:
            raise ValueError(f"attempt to get {name} of an empty sequence")
        out = empty(shape, _I64)
        if xv.size >= _BIG and not xv.contiguous:
            xv = contiguous(xv)
        _cuda.arg_reduce(is_max, out, xv)
        return out if out_shape == shape else view(out, out_shape)
    prim.__name__ = name
    prim.__doc__ = getattr(_ref, name).__doc__
    __all__.append(name)
    return prim


def _zeros_i64(shape):
    out = empty(shape, _I64)
    _cuda.fill(out, 0.0, 0, True)
    return out


argmax = _arg(True, "argmax")
argmin = _arg(False, "argmin")


# -- what is not implemented on cuda yet ---------------------------------------------------------
def install_missing(namespace: dict) -> list[str]:
    """Define every primitive of ref that the CUDA backend lacks as a function raising
    NotImplementedError naming the op and the device (never a silent CPU fallback);
    returns their names."""
    from . import primitives

    missing = sorted(n for n in primitives(_ref) if n not in namespace)
    for n in missing:
        def prim(*args, _name=n, **kwargs):
            raise NotImplementedError(f"{_name}: not implemented on the cuda device yet (CUDA backend "
                                      "part 1 has the elementwise, reduction, copy and index kernels; "
                                      "see docs/cuda.md); move the tensors to the CPU with .cpu() for this op")
        prim.__name__ = n
        prim.__qualname__ = n
        prim.__module__ = __name__
        prim.__doc__ = f"Not implemented on cuda: raises NotImplementedError ({n})."
        prim.not_implemented = True
        namespace[n] = prim
    namespace["NOT_IMPLEMENTED"] = tuple(missing)
    return missing

