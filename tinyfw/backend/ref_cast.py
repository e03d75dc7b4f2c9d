"""tinyfw's dtype conversion rules, written out: the specification of ``cast`` (and of
every primitive that converts values to another dtype).  docs/semantics.md, "Casts",
states them in words; the C++ kernels implement them in csrc/core.h (``convert``).

numpy's ``astype`` is not the specification.  Converting NaN or an out-of-range float
to an integer is undefined behaviour in C, so numpy's result depends on which SIMD
path ran (bfloat16 300.5 -> int8 gave 0 from ml_dtypes on an AVX-512 machine, 44 from
scalar x86 code), and a float64 -> bfloat16 conversion that goes through float32 rounds
twice.  Here each rule is explicit numpy arithmetic that gives the same bits on every
machine:

- to a float type: the exact value rounded once to nearest, ties to even (overflow gives
  +-inf, NaN stays NaN);
- float -> int8/int16/int32/int64/uint8: truncation toward zero; NaN, +-inf and values
  outside the 32-bit range (int8, int16, int32) or the 64-bit range (int64, uint8) give
  that width's minimum, and int8/int16/uint8 keep the low bits of that wide result
  (PyTorch on x86: float64 3e9 + 1 gives uint8 1, the low bits of int64, and int16 0);
- int/bool -> int: the low bits (two's complement wrap-around);
- anything -> bool: ``x != 0`` (NaN is True).
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from ..dtypes import COMPUTE

BF16 = np.dtype(ml_dtypes.bfloat16)
# numpy dtype -> the dtype it is computed in (float32 for float16/bfloat16)
HALF_COMPUTE = {d.np: c.np for d, c in COMPUTE.items()}


def up(x):
    """x in its compute dtype (float32 for the half types; exact); None stays None."""
    if x is None:
        return None
    c = HALF_COMPUTE.get(x.dtype)
    return x if c is None else x.astype(c)


def _is_bf16(dt: np.dtype) -> bool:
    return dt == BF16


def _as_float32_exact(x: np.ndarray) -> np.ndarray:
    """float16/bfloat16 values as float32 (exact)."""
    if _is_bf16(x.dtype):
        return (x.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return x.astype(np.float32)


def _float32_round_odd(d: np.ndarray) -> np.ndarray:
    """float64 `d` rounded to float32 "to odd": truncated, the last bit set when inexact.

    Float32 keeps at least 13 more bits than float16 or bfloat16, so rounding this to
    either to nearest even gives the once-rounded result of `d`."""
    with np.errstate(over="ignore", invalid="ignore"):
        f = d.astype(np.float32)
        back = f.astype(np.float64)
    inexact = (back != d) & ~np.isnan(d)
    u = f.view(np.uint32).copy()
    u[inexact & (np.abs(back) > np.abs(d))] -= np.uint32(1)  # rounded away from zero: step back
    u[inexact] |= np.uint32(1)
    return u.view(np.float32)


def _float32_round_odd_int(v: np.ndarray) -> np.ndarray:
    """Integers rounded to float32 "to odd", exactly (int64 is not exact in float64)."""
    v = v.astype(np.int64)
    neg = v < 0
    a = np.where(neg, (-(v + 1)).astype(np.uint64) + np.uint64(1), v.astype(np.uint64))
    # bit length: frexp of the rounded float64 is right or one too high (a rounded up to 2^e)
    e = np.frexp(a.astype(np.float64))[1].astype(np.int64)
    e -= (e > 0) & ((a >> np.maximum(e - 1, 0).astype(np.uint64)) == 0)
    sh = np.maximum(e - 24, 0).astype(np.uint64)
    t = (a >> sh) | ((a & ((np.uint64(1) << sh) - np.uint64(1))) != 0).astype(np.uint64)
    f = np.ldexp(t.astype(np.float32), sh.astype(np.int32))  # t < 2^24 and a power of 2: exact
    return np.where(neg, -f, f).astype(np.float32)


def _float32_to_bf16(f: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 rounded to nearest even; NaN stays a (quiet) NaN."""
    u = f.view(np.uint32).astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, (u >> 16) | 0x40, r).astype(np.uint16).view(BF16)


def _to_float32_for_half(x: np.ndarray) -> np.ndarray:
    """A float32 array whose round-to-nearest into float16/bfloat16 is x's correct one."""
    k = x.dtype.kind
    if k == "b":
        return x.astype(np.float32)
    if k in "iu":
        return _float32_round_odd_int(x)
    if x.dtype == np.float64:
        return _float32_round_odd(x)
    return _as_float32_exact(x) if x.dtype != np.float32 else x


def _float_to_int(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    f = x.astype(np.float64) if x.dtype != BF16 else _as_float32_exact(x).astype(np.float64)
    wide = np.int64 if dtype == np.int64 or dtype == np.uint8 else np.int32
    lim = 2.0 ** (63 if wide is np.int64 else 31)
    with np.errstate(invalid="ignore"):
        ok = (f >= -lim) & (f < lim)  # False for NaN
    w = np.asarray(np.trunc(np.where(ok, f, 0.0))).astype(wide)  # 0-d stays an array
    w[~ok] = np.iinfo(wide).min
    return w.astype(dtype)  # int32 -> int8/int16, int64 -> uint8 keep the low bits


def convert(x: np.ndarray, dtype) -> np.ndarray:
    """x's values converted to `dtype` by tinyfw's rules (a new array, x's memory order)."""
    x = np.asarray(x)
    dtype = np.dtype(dtype)
    src = x.dtype
    if src == dtype:
        return x.copy(order="K")
    if dtype == np.bool_:
        v = _as_float32_exact(x) if src == BF16 or src == np.float16 else x
        r = v != 0
    elif dtype.kind in "iu":
        r = _float_to_int(x, dtype) if src.kind == "f" or src == BF16 else x.astype(dtype)
    elif dtype == BF16:
        r = _float32_to_bf16(np.ascontiguousarray(_to_float32_for_half(x)))
    elif dtype == np.float16:
        with np.errstate(over="ignore"):
            r = _to_float32_for_half(x).astype(np.float16)
    else:  # float32 / float64: one IEEE rounding (int64 -> float32 included)
        v = _as_float32_exact(x) if src == BF16 else x
        with np.errstate(over="ignore"):
            r = v.astype(dtype)
    out = np.empty_like(x, dtype=dtype)  # astype's order='K'
    out[...] = r
    return out
