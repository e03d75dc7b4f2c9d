"""Generate csrc/vmath_tables.h: the polynomial coefficients of the float32 erf family.

    python tools/fit_vmath.py > csrc/vmath_tables.h      (needs mpmath; ~1 min)

The vector kernels (csrc/vmath_erf.h) evaluate, for y = |x|,

    erfc(y)        = e^(-y^2)   * R(y)                      R(y) = e^(y^2) erfc(y)
    Phi(-y)        = e^(-y^2/2) * S(y)                      S(y) = e^(y^2/2) Phi(-y)
    Phi(-y) - y phi(y) = e^(-y^2/2) * (y - y0) * Q(y)       (gelu's derivative; root y0)
    erf(x)         = x * P(x^2)                  for |x| < 1
    gelu_tanh'(x)  = (x - x1) * Qt(x)            for x in [-1.25, -0.5] (root x1)

R, S and Q are smooth, slowly varying functions with no cancellation, so a polynomial
in y holds them to ~1e-9 relative; the factors (y - y0), (x - x1) carry the roots, where
the plain formulas cancel to no correct digits.  R, S, Q are piecewise, in t = y - mid,
with the interval picked per lane by a permute of a row of coefficients: for AVX-512
(16-entry permutes) the quarter octaves of y + 1 ([0, .25) [.25, .5) .. [13, 15)) with
degree 6, for AVX2 (8 entries) its half octaves ([0, .5) [.5, 1) [1, 2) .. [11, 15)) with
degree 8 -- the interval is read off the exponent and top mantissa bits of y + 1.

Fits: relative-error least squares on 300 Chebyshev nodes (near minimax), values from
mpmath at 40 digits.  Coefficients are rounded to float32 one at a time, each refit
absorbing the rounding of the ones before; the constant term is kept as two floats
(hi + lo), since its rounding alone would be up to half an ulp everywhere near `mid`.
The max relative error of each fit (float32 coefficients, checked on 1500 other points)
is printed in the header.
"""
from __future__ import annotations

import mpmath as mp
import numpy as np

mp.mp.dps = 40
C = 1 / mp.sqrt(2 * mp.pi)     # phi(0)
K = mp.sqrt(2 / mp.pi)         # gelu_tanh's constants
CT = mp.mpf("0.044715")

R_END = 10.25    # erfc(10.2) < 2^-150: the kernel clamps |x| to 10.2
S_END = 14.65    # gelu and its derivative underflow to zero past 14.6


def R(y):
    return mp.exp(y * y) * mp.erfc(y)


def S(y):
    return mp.exp(y * y / 2) * mp.ncdf(-y)


Y0 = mp.findroot(lambda y: S(y) - C * y, 0.75)


def Q(y):
    if abs(y - Y0) < mp.mpf(10) ** -30:
        return mp.diff(lambda t: S(t) - C * t, Y0)
    return (S(y) - C * y) / (y - Y0)


def P(z):
    if z == 0:
        return 2 / mp.sqrt(mp.pi)
    x = mp.sqrt(z)
    return mp.erf(x) / x


def gelu_tanh_d(x):
    s = 1 / (1 + mp.exp(-2 * K * (x + CT * x ** 3)))
    return s + 2 * x * K * (1 + 3 * CT * x * x) * s * (1 - s)


X1 = mp.findroot(gelu_tanh_d, -0.75)


def Qt(x):
    if abs(x - X1) < mp.mpf(10) ** -30:
        return mp.diff(gelu_tanh_d, X1)
    return gelu_tanh_d(x) / (x - X1)


def nodes(a: float, b: float, n: int) -> list:
    a, b = mp.mpf(a), mp.mpf(b)
    return [a + (b - a) * (1 - mp.cos(mp.pi * (k + mp.mpf(0.5)) / n)) / 2 for k in range(n)] + [a, b]


def fit(f, a: float, b: float, deg: int) -> tuple[float, list, float]:
    """(mid, [c0 as float64, c1..c_deg as float32 values], max relative error)."""
    mid = float(np.float32((a + b) / 2))
    xs = nodes(a, b, 300)
    x = np.array([float(v) for v in xs])
    fv = np.array([float(f(v)) for v in xs])
    t, w = x - mid, 1 / np.abs(fv)
    V = np.vander(t, deg + 1, increasing=True)
    coef: list = []
    for k in range(deg + 1):
        rest = fv - (V[:, :k] @ np.array(coef) if k else 0)
        sol, *_ = np.linalg.lstsq(V[:, k:] * w[:, None], rest * w, rcond=None)
        coef.append(float(sol[0]) if k == 0 else float(np.float32(sol[0])))
    chk = nodes(a, b, 1499)
    xc = np.array([float(v) for v in chk])
    fc = np.array([float(f(v)) for v in chk])
    err = float(np.max(np.abs(np.polynomial.polynomial.polyval(xc - mid, coef) / fc - 1)))
    return mid, coef, err


def split(v: float) -> tuple[float, float]:
    hi = float(np.float32(v))
    return hi, float(np.float32(v - hi))


def lit(v: float) -> str:
    t = f"{np.float32(v).item():.9g}"
    return t + ("f" if any(ch in t for ch in ".e") else ".0f")


def intervals(per_octave: int, end: float) -> list:
    """The intervals of y whose y + 1 are the 1/per_octave octaves of [1, 16), cut at end."""
    out = []
    for o in range(4):
        for q in range(per_octave):
            a, b = 2 ** o * (1 + q / per_octave) - 1, 2 ** o * (1 + (q + 1) / per_octave) - 1
            if a < end:
                out.append((a, min(b, end)))
    return out


def table(name: str, f, end: float, per_octave: int, deg: int) -> str:
    """Rows mid, c0 lo, c0 hi, c1..c_deg; one column per interval (zeros past `end`)."""
    cols = 4 * per_octave
    # each fit reaches a little past its interval: y + 1 is rounded before its bits pick one
    ivs = [(max(a - 2 ** -20 * (a + 1), 0), b + 2 ** -20 * (b + 1)) for a, b in intervals(per_octave, end)]
    fits = [fit(f, a, b, deg) for a, b in ivs]
    rows = [[m for m, _, _ in fits], [split(c[0])[1] for _, c, _ in fits],
            [split(c[0])[0] for _, c, _ in fits]] + [[c[k] for _, c, _ in fits] for k in range(1, deg + 1)]
    errs = max(e for _, _, e in fits)
    out = [f"// {len(ivs)} intervals, degree {deg}: max relative error {errs:.1e}",
           f"alignas(64) constexpr float {name}[{len(rows)}][{cols}] = {{"]
    for r in rows:
        out.append("    {" + ", ".join(lit(v) for v in r + [0.0] * (cols - len(r))) + "},")
    out.append("};")
    return "\n".join(out)


def single(name: str, f, a: float, b: float, deg: int) -> str:
    mid, c, err = fit(f, a, b, deg)
    hi, lo = split(c[0])
    vals = [mid, lo, hi] + c[1:]
    return (f"// on [{a}, {b}], max relative error {err:.1e}\n"
            f"constexpr float {name}[{len(vals)}] = {{" + ", ".join(lit(v) for v in vals) + "};")


def main() -> None:
    y0, x1 = split(float(Y0)), split(float(X1))
    y0 = (y0[0], float(np.float32(Y0 - mp.mpf(y0[0]))))
    x1 = (x1[0], float(np.float32(X1 - mp.mpf(x1[0]))))
    print("// Generated by tools/fit_vmath.py (do not edit): coefficients of the float32 erf family.")
    print("// Tables: rows mid, c0 (lo part), c0 (hi part), c1, c2, ...; columns: the intervals of")
    print("// y = |x| (see the tool's docstring; unused columns are zero).")
    print("#pragma once\n\nnamespace tf {\nnamespace vm {\n")
    print(f"constexpr float kErfcClamp = 10.2f;  // erfc(10.2) rounds to 0")
    print(f"constexpr float kGeluClamp = 14.6f;  // gelu and gelu' round to -0 / 1 past it")
    print(f"constexpr float kY0[2] = {{{lit(y0[0])}, {lit(y0[1])}}};  // root of Phi(-y) - y phi(y)")
    print(f"constexpr float kX1[2] = {{{lit(x1[0])}, {lit(x1[1])}}};  // root of gelu_tanh'")
    print()
    for name, f, end, what in (("R", R, R_END, "R(y) = e^(y^2) erfc(y)"),
                               ("S", S, S_END, "S(y) = e^(y^2/2) Phi(-y)"),
                               ("Q", Q, S_END, "Q(y) = (S(y) - y phi(0)) / (y - y0)")):
        print(f"// {what}, for AVX-512 and for AVX2")
        print(table(f"kTab{name}16", f, end, 4, 6))
        print(table(f"kTab{name}8", f, end, 2, 8))
    print("// erf(x) / x as a polynomial in z = x^2 (mid, c0 lo, c0 hi, c1, ...)")
    print(single("kErfP", P, 0, 1, 6))
    print("// gelu_tanh'(x) / (x - x1) (mid, c0 lo, c0 hi, c1, ...)")
    print(single("kQt", Qt, -1.25, -0.5, 8))
    print("\n}  // namespace vm\n}  // namespace tf")


if __name__ == "__main__":
    main()
