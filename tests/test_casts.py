"""Casts against a model of tinyfw's conversion rules (docs/semantics.md, "Casts").

The model below is exact Python arithmetic (integers and fractions), written from the
rules, not from ref_cast.py and not from numpy's astype: numpy's answer for NaN or
out-of-range floats converted to integers depends on the machine, and a conversion that
goes through float32 rounds twice.  Both backends (ref, the specification, and the C++
kernel of the ISA level this process runs) must give the model's bits.
"""
from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import tinyfw
from helpers import npy
from tinyfw.backend import cpu, ref

BF16 = np.dtype(ml_dtypes.bfloat16)
INTS = {np.dtype(np.int8): 8, np.dtype(np.int16): 16, np.dtype(np.int32): 32,
        np.dtype(np.int64): 64, np.dtype(np.uint8): 8}
# the width a float is truncated to before an integer keeps its low bits (PyTorch on x86)
WIDE = {np.dtype(np.int64): 64, np.dtype(np.uint8): 64}
# (significand bits with the implicit one, lowest normal exponent, highest exponent)
FLOATS = {np.dtype(np.float16): (11, -14, 15), BF16: (8, -126, 127), np.dtype(np.float32): (24, -126, 127)}
BACKENDS = [pytest.param(ref, id="ref"), pytest.param(cpu, id="cpu")]


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


# ---------------------------------------------------------------------------- the model
def model_to_int(v: float, bits: int, wide: int = 32, signed: bool = True) -> int:
    """float -> intN: truncate; NaN/inf/not fitting `wide` bits (32 for int8, int16,
    int32; 64 for int64 and uint8) gives that width's minimum; the narrow types keep the
    low bits of that result."""
    t = math.trunc(v) if math.isfinite(v) else None
    if t is None or not -(2 ** (wide - 1)) <= t < 2 ** (wide - 1):
        t = -(2 ** (wide - 1))
    return _wrap(t, bits, signed)


def _wrap(t: int, bits: int, signed: bool) -> int:
    """t modulo 2**bits, as a signed or unsigned value."""
    return (t + 2 ** (bits - 1)) % 2 ** bits - 2 ** (bits - 1) if signed else t % 2 ** bits


def model_round(x: Fraction | int, neg_zero: bool, fmt: tuple) -> float:
    """The exact value x rounded once to nearest even in a binary format (p significand
    bits, normal exponents emin..emax, subnormals below): as a float64, which holds every
    value of these formats exactly (inf on overflow)."""
    p, emin, emax = fmt
    if x == 0:
        return -0.0 if neg_zero else 0.0
    a = abs(Fraction(x))
    e = a.numerator.bit_length() - a.denominator.bit_length()  # floor(log2(a)) or one more
    if Fraction(2) ** e > a:
        e -= 1
    ulp = Fraction(2) ** (max(e, emin) - p + 1)
    q = a / ulp
    n = math.floor(q)
    if q - n > Fraction(1, 2) or (q - n == Fraction(1, 2) and n % 2 == 1):
        n += 1
    r = n * ulp
    if r > (2 - Fraction(2) ** (1 - p)) * Fraction(2) ** emax:
        return -math.inf if x < 0 else math.inf
    return -float(r) if x < 0 else float(r)  # a negative value rounded to zero is -0.0


def model_cast(v: np.ndarray, dst: np.dtype) -> np.ndarray:
    """The model's result for every element of v, as an array of dst."""
    flat = v.reshape(-1)
    if v.dtype.kind in "iub":
        vals = [int(t) for t in flat]
    else:
        vals = [float(t) for t in flat.astype(np.float64)]  # exact for every float dtype
    if dst == np.bool_:
        return np.array([t != 0 for t in vals], np.bool_).reshape(v.shape)  # NaN != 0
    if dst in INTS:
        b, w, sg = INTS[dst], WIDE.get(dst, 32), dst.kind == "i"
        out = [_wrap(t, b, sg) if isinstance(t, int) else model_to_int(t, b, w, sg) for t in vals]
        return np.array(out, dst).reshape(v.shape)
    if dst == np.float64:
        out = [float(t) if isinstance(t, int) else t for t in vals]  # int -> float64: one rounding
        return np.array(out, np.float64).reshape(v.shape)
    res = []
    for t in vals:
        if isinstance(t, float) and math.isnan(t):
            res.append(math.nan)
        elif isinstance(t, float) and math.isinf(t):
            res.append(t)
        else:
            neg_zero = isinstance(t, float) and t == 0 and math.copysign(1, t) < 0
            res.append(model_round(Fraction(t), neg_zero, FLOATS[dst]))
    with np.errstate(over="ignore"):
        return np.array(res, np.float64).astype(dst).reshape(v.shape)  # exact: representable


def _assert_cast(B, v: np.ndarray, dst: np.dtype) -> None:
    out, exp = B.cast(v, dst), model_cast(v, dst)
    assert out.dtype == dst
    differ = _bits(out).reshape(-1) != _bits(exp).reshape(-1)
    if dst.kind == "f" or dst == BF16:  # any NaN is the rule's NaN
        nan = np.isnan(exp.astype(np.float32)).reshape(-1)
        assert np.array_equal(np.isnan(out.astype(np.float32)).reshape(-1), nan), f"NaN positions differ for {v.dtype} -> {dst}"
        differ &= ~nan
    bad = np.nonzero(differ)[0]
    assert not len(bad), (f"{v.dtype} -> {dst}: {len(bad)} values differ, e.g. {v.reshape(-1)[bad[:5]]} "
                          f"gave {out.reshape(-1)[bad[:5]]}, the rule says {exp.reshape(-1)[bad[:5]]}")


# ---------------------------------------------------------------------------- the tests
SPECIAL = [np.nan, np.inf, -np.inf, 1e10, -1e10, 3e9, 300.5, -129.7, 2.0 ** 31, -2.0 ** 31,
           -2.0 ** 31 - 0.5, 2.0 ** 31 - 1, 2.0 ** 63, -2.0 ** 63, 2.0 ** 62, 1e20, -0.9, 127.9,
           255.5, -0.0, 0.0, 128.0, -128.0, -128.9, 65504.0, 65520.0, -65519.99, 1e-8, 6e-8, 3e-8]


@pytest.mark.parametrize("B", BACKENDS)
@pytest.mark.parametrize("src", [np.float64, np.float32, np.float16, BF16], ids=str)
@pytest.mark.parametrize("dst", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_], ids=str)
def test_float_to_int_special_values(B, src, dst):
    with np.errstate(all="ignore"):
        v = np.array(SPECIAL, np.float64).astype(src)
    _assert_cast(B, v, np.dtype(dst))
    rng = np.random.default_rng(0)  # random magnitudes around every width's edges
    with np.errstate(all="ignore"):
        w = (rng.standard_normal(3000) * 2.0 ** rng.integers(0, 70, 3000)).astype(src)
    _assert_cast(B, w, np.dtype(dst))


@pytest.mark.parametrize("B", BACKENDS)
def test_documented_int8_examples(B):
    """The examples of docs/semantics.md (bfloat16 rounds 300.5 to 300 and 127.9 to 128)."""
    v = np.array([300.5, -129.7, 127.9, 1e10, np.nan], np.float32)
    np.testing.assert_array_equal(B.cast(v, np.dtype(np.int8)), [44, 127, 127, 0, 0])
    np.testing.assert_array_equal(B.cast(v.astype(BF16), np.dtype(np.int8)), [44, 126, -128, 0, 0])


@pytest.mark.parametrize("B", BACKENDS)
@pytest.mark.parametrize("dst", [np.float16, BF16, np.float32], ids=str)
def test_float64_to_narrower_rounds_once(B, dst):
    rng = np.random.default_rng(1)
    x = np.concatenate([np.array(SPECIAL), np.array([690.0000188, 1 + 2 ** -11 + 2 ** -30, -(1 + 2 ** -11 + 2 ** -30),
                                                     65519.99, 3.3895313892515355e38, 1e-40, -1e-45, 1e-300]),
                        rng.standard_normal(4000) * 1000, rng.standard_normal(1000) * 1e-6])
    # values just off the midpoints between neighbours of the target: double rounding's trap
    mids = model_cast(rng.standard_normal(500) * 100, np.dtype(dst)).astype(np.float64)
    extra_bits = {np.dtype(np.float16): 13, BF16: 16, np.dtype(np.float32): 0}[np.dtype(dst)]  # vs float32
    step = np.spacing(mids.astype(np.float32)).astype(np.float64) * 2.0 ** extra_bits
    x = np.concatenate([x, mids + step / 2 * (1 + 2 ** -30), mids + step / 2 * (1 - 2 ** -30)])
    _assert_cast(B, x, np.dtype(dst))
    _assert_cast(B, x[::-3], np.dtype(dst))  # the strided loop converts one element at a time


@pytest.mark.parametrize("B", BACKENDS)
@pytest.mark.parametrize("src", [np.int32, np.int64, np.int16, np.uint8], ids=str)
@pytest.mark.parametrize("dst", [BF16, np.float16, np.float32, np.float64], ids=str)
def test_int_to_float_rounds_once(B, src, dst):
    info = np.iinfo(src)
    rng = np.random.default_rng(2)
    edge = [0, 1, -1, 0x01010001, -0x01010001, 0x01018001, 2 ** 24 + 1, 65519, 65520, info.max, info.min, info.max - 1]
    v = np.concatenate([np.array(edge, np.int64),
                        (rng.integers(-2 ** 62, 2 ** 62, 3000) >> rng.integers(0, 62, 3000))]).astype(src)
    _assert_cast(B, v, np.dtype(dst))


@pytest.mark.parametrize("B", BACKENDS)
def test_int_and_bool_wrap(B):
    v = np.array([0, 1, -1, 127, 128, 255, 256, 300, -129, 2 ** 31, -(2 ** 31) - 1, 2 ** 40 + 5], np.int64)
    for dst in (np.int8, np.int16, np.int32, np.uint8, np.bool_):
        _assert_cast(B, v, np.dtype(dst))
    _assert_cast(B, np.array([True, False]), np.dtype(np.int8))
    _assert_cast(B, np.array([True, False]), np.dtype(np.uint8))
    for src in (np.uint8, np.int16):  # from the new dtypes to every integer one
        w = np.array([0, 1, 127, 128, 200, 255] if src == np.uint8 else [0, -1, 300, -32768, 32767], src)
        for dst in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_):
            _assert_cast(B, w, np.dtype(dst))


def test_copy_and_index_put_convert_by_the_rules():
    """Converting copies and writes follow the cast rules in both backends."""
    v = np.array([300.5, np.nan, -1e10, 2.5], np.float32)
    for dt in (np.int8, np.uint8, np.int16):
        exp = model_cast(v, np.dtype(dt))
        for B in (ref, cpu):
            dst = np.zeros(4, dt)
            B.copy_(dst, v)
            np.testing.assert_array_equal(dst, exp)
            if B is ref or dt == np.int8:  # no C++ kernel takes uint8/int16: the op path below
                np.testing.assert_array_equal(B.index_put(np.zeros(4, dt), (np.arange(4),), v, False), exp)
        x = tinyfw.zeros(4, dtype=tinyfw.dtypes.from_numpy_dtype(np.dtype(dt)))
        x[tinyfw.arange(4)] = tinyfw.tensor(v)  # the active backend's index_put, through the op
        np.testing.assert_array_equal(npy(x), exp)
