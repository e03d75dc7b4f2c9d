"""Integer primitives of the reference backend (issue 16): bitwise logic and shifts, gcd
and lcm, hash_tensor's xor reduction, and the counting kernels of bincount, histc and
histogram.  Raw numpy arrays in, a new array out; the ops in tinyfw/ops/bitwise.py and
tinyfw/ops/histogram.py check dtypes and shapes before calling them.

Integer arithmetic wraps modulo 2**bits as PyTorch's C++ does (numpy's integer ufuncs
wrap silently too); the shift rules are PyTorch's: a count outside [0, bits) shifts every
bit out (0 for <<, the sign fill for >>).
"""
from __future__ import annotations

import numpy as np

__all__ = ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift",
           "bitwise_right_shift", "gcd", "lcm", "hash_tensor", "bincount", "histc", "histogram"]


def bitwise_and(a, b):
    """a & b (integers or bools)"""
    return np.asarray(np.bitwise_and(a, b))


def bitwise_or(a, b):
    """a | b (integers or bools)"""
    return np.asarray(np.bitwise_or(a, b))


def bitwise_xor(a, b):
    """a ^ b (integers or bools)"""
    return np.asarray(np.bitwise_xor(a, b))


def bitwise_not(x):
    """~x: every bit flipped (logical not for bools)"""
    return np.asarray(np.invert(x))


def _shift_counts(a, b):
    """(a, b, in_range): b as a's dtype's shift count where 0 <= b < bits, else 0."""
    bits = 8 * a.dtype.itemsize
    ok = (b >= 0) & (b < bits)
    return np.where(ok, b, 0).astype(a.dtype), ok


def bitwise_left_shift(a, b):
    """a << b; a count outside [0, bits) gives 0 (PyTorch's rule; C's is undefined)"""
    b, ok = _shift_counts(a, b)
    return np.asarray(np.where(ok, np.left_shift(a, b), 0).astype(a.dtype))


def bitwise_right_shift(a, b):
    """a >> b, arithmetic for signed types; a count outside [0, bits) gives the sign fill
    (0 or -1), as shifting by bits - 1"""
    bits = 8 * a.dtype.itemsize
    b, ok = _shift_counts(a, b)
    full = np.right_shift(a, np.asarray(bits - 1, a.dtype))
    return np.asarray(np.where(ok, np.right_shift(a, b), full).astype(a.dtype))


def _gcd(a, b):
    """Euclid's algorithm as PyTorch's C++ runs it in the operands' dtype: |a| and |b|
    wrap (int8 |-128| is -128) and % truncates toward zero, so a wrapped minimum can give
    a negative divisor (int8 gcd(-128, -127) is -1, as in PyTorch)."""
    a, b = np.broadcast_arrays(np.abs(a), np.abs(b))
    a, b = a.copy(), b.copy()
    while True:
        nz = a != 0
        if not nz.any():
            return b
        # b % -1 is 0; numpy's MIN % -1 would overflow (and C's traps), so it is not asked
        r = np.where(a == -1, 0, np.fmod(b, np.where(nz & (a != -1), a, 1)))
        b = np.where(nz, a, b)
        a = np.where(nz, r, 0).astype(a.dtype)


def gcd(a, b):
    """The greatest common divisor of |a| and |b| elementwise (gcd(0, 0) = 0), with
    PyTorch's wrap-around at the dtype's minimum (see _gcd)"""
    with np.errstate(over="ignore"):
        return np.asarray(_gcd(a, b))


def lcm(a, b):
    """|a / gcd(a, b) * b| (0 when the gcd is 0), computed as PyTorch's C++ does: types
    narrower than int32 in int (then wrapped into the dtype), int32 and int64 wrapping in
    their own width before the absolute value"""
    dt = np.result_type(a, b)
    g = _gcd(a, b)
    wide = np.int64 if dt.itemsize < 4 else dt
    a, b, g = (np.asarray(v).astype(wide) for v in (a, b, g))
    with np.errstate(over="ignore"):
        safe = np.where((g == 0) | (g == -1), 1, g)
        q = (a - np.fmod(a, safe)) // safe  # exact: g divides a
        q = np.where(g == -1, np.negative(a), q)  # a / -1 without MIN // -1's overflow
        out = np.abs(q * b)
    return np.asarray(np.where(g == 0, 0, out).astype(dt))


def hash_tensor(x, dims: tuple, keepdim: bool):
    """The xor of the 64-bit patterns of x's elements over `dims` (floats as float64,
    integers and bools as int64), as int64 holding those bits"""
    wide = x.astype(np.float64) if x.dtype.kind == "f" or x.dtype.kind == "V" else x.astype(np.int64)
    bits = wide.copy(order="C").view(np.int64)  # (ascontiguousarray makes 0-d arrays 1-d)
    return np.asarray(np.bitwise_xor.reduce(bits, axis=dims, keepdims=keepdim))


def bincount(x, weights, length: int):
    """Counts (int64) or summed weights of each value 0 .. length-1 of 1-d int array x;
    weights sum in float64 unless they are float32 (PyTorch's output dtypes)"""
    if weights is None:
        return np.bincount(x.astype(np.int64), minlength=length).astype(np.int64)[:length]
    out_dt = np.float32 if weights.dtype == np.float32 else np.float64
    out = np.zeros(length, out_dt)
    np.add.at(out, x.astype(np.int64), weights.astype(out_dt))
    return out


def histc(x, bins: int, lo: float, hi: float):
    """torch.histc's counts in x's dtype: equal-width bins over [lo, hi] (lo < hi, finite);
    the bin of v is trunc((v - lo) * bins / (hi - lo)) computed in x's dtype, hi counts in
    the last bin, values outside [lo, hi] and NaN are not counted"""
    dt = x.dtype
    calc = np.float32 if dt.itemsize < 4 else dt.type
    # float16/bfloat16 arithmetic rounds each operation to the type, as c10::Half's does
    r = (lambda a: a.astype(dt).astype(calc)) if dt.itemsize < 4 else (lambda a: a)
    v = x.reshape(-1).astype(calc)
    lo_c, hi_c = np.asarray(lo, dt).astype(calc), np.asarray(hi, dt).astype(calc)
    with np.errstate(invalid="ignore"):
        keep = (v >= lo_c) & (v <= hi_c)
    v = v[keep]
    pos = r(r(r(v - lo_c) * r(np.asarray(bins, calc))) / r(hi_c - lo_c)).astype(np.int64)
    pos = np.minimum(pos, bins - 1)
    return np.bincount(pos, minlength=bins)[:bins].astype(dt)


def histogram(x, edges, weight, density: bool):
    """torch.histogram's counts (or summed weights) of x in the bins between consecutive
    `edges` (increasing, x's dtype): [e_i, e_i+1), the last bin closed; values outside and
    NaN are not counted; `density` divides by the total and by each bin's width"""
    dt = x.dtype
    calc = np.float32 if dt.itemsize < 4 else dt.type
    v, e = x.reshape(-1).astype(calc), edges.astype(calc)
    w = None if weight is None else weight.reshape(-1).astype(calc)
    nb = e.size - 1
    with np.errstate(invalid="ignore"):
        keep = (v >= e[0]) & (v <= e[-1])
    v = v[keep]
    pos = np.minimum(np.searchsorted(e, v, side="right") - 1, nb - 1)
    out = np.zeros(nb, calc)
    np.add.at(out, pos, calc(1) if w is None else w[keep])
    if density:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = out / out.sum() / np.diff(e)
    return out.astype(dt)
