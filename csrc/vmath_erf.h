// float32 erf and erfc over the SIMD traits of vmath_simd.h, and the pieces the GELU
// kernels (vmath_gelu.h) share with them: e^(-y^2) and e^(-y^2/2) as (1 + q) 2^n with
// y^2 split exactly in two floats, and the per-interval polynomials of vmath_tables.h.
//
//   erfc(y) = e^(-y^2) R(y) for y = |x|, erfc(x) = 2 - erfc(|x|) for x < 0;
//   erf(x)  = x P(x^2) for |x| < 1, else sign(x) (1 - erfc(|x|)).
//
// R is smooth and has no cancellation, so erfc is accurate in its whole tail (down to
// the subnormals, where 2^n is applied last); the only subtraction, 1 - erfc or
// 2 - erfc, loses nothing because erfc(|x|) <= 0.16 there.  Max ulp errors against
// float64 over a dense sweep: tests/test_vmath.py.
#pragma once

#include "isa.h"

#include "vmath_exp.h"
#include "vmath_tables.h"

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace vm {

template <class S> struct ErfFns {
    using V = typename S::V;
    using M = typename S::M;
    using I = typename S::I;
    using E = ExpFns<S>;
    static V c(float f) { return S::set(f); }

    /// The polynomial of y's interval in `tab` (rows: mid, c0 lo, c0 hi, c1..; y in [0, 15)):
    /// the interval is the quarter (16 columns, AVX-512) or half (8 columns, AVX2) octave
    /// of y + 1, read off its exponent and top mantissa bits.
    template <int Rows, int Cols> static V table(const float (&tab)[Rows][Cols], V y) {
        static_assert(Cols == S::W, "one column per lane of a permute");
        constexpr int shift = Cols == 16 ? 21 : 22, bias = Cols == 16 ? 127 * 4 : 127 * 2;
        I idx = S::isub(S::template srl<shift>(S::bits(y + 1.f)), S::iset(bias));
        V t = y - S::lookup(tab[0], idx);
        V p = S::lookup(tab[Rows - 1], idx);
        for (int k = Rows - 2; k >= 3; --k) p = S::fma(p, t, S::lookup(tab[k], idx));
        p = S::fma(p, t, S::lookup(tab[1], idx));
        return p + S::lookup(tab[2], idx);
    }
    static const auto& tabR() {
        if constexpr (S::W == 16) return kTabR16;
        else return kTabR8;
    }
    static const auto& tabS() {
        if constexpr (S::W == 16) return kTabS16;
        else return kTabS8;
    }
    static const auto& tabQ() {
        if constexpr (S::W == 16) return kTabQ16;
        else return kTabQ8;
    }
    /// One polynomial (mid, c0 lo, c0 hi, c1.. c[n-3]) at z.
    template <int N> static V poly(const float (&cf)[N], V z) {
        V t = z - cf[0];
        V p = c(cf[N - 1]);
        for (int k = N - 2; k >= 3; --k) p = S::fma(p, t, c(cf[k]));
        p = S::fma(p, t, c(cf[1]));
        return p + cf[2];
    }
    /// e^(-y^2 / d) = (1 + q) 2^n for y >= 0 (d = 1 or 2): returns q, sets n.  y^2 = h + l
    /// exactly (l from an FMA), so the reduced argument carries no rounding of y^2, which
    /// e^(-y^2) would otherwise amplify by y^2 (~100 ulp at y = 10).
    static V exp_neg_sq(V y, float d, V& n) {
        V h = y * y;
        V l = S::fms(y, y, h);  // y^2 - h, exactly
        V v = h * (-1.f / d);
        n = S::round(v * 1.44269504088896341f);
        V r = S::fnma(n, c(0.693359375f), v);
        r = S::fnma(n, c(-2.12194440e-4f), r);
        return E::expm1_poly(S::fnma(l, c(1.f / d), r));
    }

    /// erfc(|x|) for |x| clamped to kErfcClamp, where it has rounded to 0.
    static V erfc_abs(V x) {
        V y = S::min(S::abs(x), c(kErfcClamp));
        V n;
        V q = exp_neg_sq(y, 1.f, n);
        V r = table(tabR(), y);
        return S::ldexp(S::fma(r, q, r), S::scale(n));
    }

    static V erfc(V x) {
        V t = erfc_abs(x);
        return S::sel(S::lt(x, c(0.f)), c(2.f) - t, S::sel(S::isnan(x), x, t));
    }

    static V erf(V x) {
        V a = S::abs(x);
        M small = S::lt(a, c(1.f));
        V res = x * poly(kErfP, x * x);
        M big = S::mor(S::ge(a, c(1.f)), S::isnan(x));
        if (S::any(big)) {
            V one_minus = S::bor(c(1.f) - erfc_abs(x), S::signbit(x));
            res = S::sel(small, res, one_minus);
        }
        return S::sel(S::isnan(x), x, res);
    }
};

}  // namespace vm
TINYFW_ISA_END
}  // namespace tf
