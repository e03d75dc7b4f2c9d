// float32 exp2, log2, sinh and cosh (issue 16), written once over the SIMD traits of
// vmath_simd.h with the range reduction and polynomials of vmath_exp.h.  Included by
// elementwise_vmath.cpp only.  Max ulp errors against float64 over a dense float32 sweep
// are in tests/test_vmath_math.py.
#pragma once

#include "isa.h"

#include "vmath_exp.h"

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace vm {

template <class S> struct MathFns {
    using V = typename S::V;
    using M = typename S::M;
    using Ex = ExpFns<S>;
    static V c(float f) { return S::set(f); }

    /// 2^x = (1 + q) 2^n with n = round(x) and q = e^(r ln2) - 1 for r = x - n: r is
    /// exact (|r| <= 1/2), r ln2 is rounded once (0.35 ulp of the result at most), and the
    /// scaling by 2^n is exact or the final rounding of a subnormal result.  x is clamped
    /// to [-151, 129], past which 2^x is 0 or inf; NaN passes the clamps.
    static V exp2(V x) {
        V v = S::min(c(129.f), S::max(c(-151.f), x));
        V n = S::round(v);
        V r = v - n;
        V q = Ex::expm1_poly(S::fma(r, c(0.693147182f), r * c(-1.90465421e-9f)));
        return S::ldexp(q + 1.f, S::scale(n));
    }

    /// log2 x = e + log(m) / ln2 with x = m 2^e, m in [sqrt(1/2), sqrt(2)): log(m) by
    /// vmath_exp.h's polynomial, then one fused multiply-add onto the exact e (so that
    /// log2 of a power of two is exact).
    static V log2(V x) {
        V e;
        V f = Ex::log_reduce(x, e);
        V z = f * f;
        V y = S::fma(z, c(-0.5f), Ex::log_poly(f, z));  // log(m) - f
        // (f + y) / ln2 with 1/ln2 in two parts: f's term carries the most weight
        V res = S::fma(f, c(1.44269502f), S::fma(f, c(1.92596299e-8f), y * c(1.44269504f)));
        res = res + e;
        res = S::sel(S::eq(x, c(0.f)), c(-INFINITY), res);
        res = S::sel(S::lt(x, c(0.f)), c(NAN), res);
        res = S::sel(S::eq(x, c(INFINITY)), x, res);
        return S::sel(S::isnan(x), x, res);
    }

    /// e^a = (1 + q) 2^n for a = |x| clamped to 90 (cosh and sinh overflow from 89.42):
    /// (1 + q) 2^(n-1) is e^a / 2 without overflowing where e^a alone would.
    static V half_exp(V a, V& q, V& n) {
        q = Ex::exp_q(a, n);
        return S::ldexp(q + 1.f, S::scale(n - 1.f));
    }

    /// cosh x = (E + 1/E) / 2 with E = e^|x| for |x| < 9, e^|x| / 2 beyond (where e^-|x|
    /// is below half an ulp of it): both terms positive, no cancellation.
    static V cosh(V x) {
        V a = S::min(c(90.f), S::abs(x));
        V q, n;
        V h = half_exp(a, q, n);
        V big = S::ldexp(q + 1.f, S::scale(S::min(n, c(20.f))));  // e^a, finite for a < 9
        V small = (big + 1.f / big) * 0.5f;
        return S::sel(S::lt(a, c(9.f)), small, h);
    }

    /// sinh |x| = (t + t / (t + 1)) / 2 with t = e^|x| - 1 (expm1's reduction: no
    /// cancellation near 0) for |x| < 9, e^|x| / 2 beyond; the sign of x is put back.
    static V sinh(V x) {
        V a = S::min(c(90.f), S::abs(x));
        V q, n;
        V h = half_exp(a, q, n);
        V sc = S::pow2(S::min(n, c(20.f)));
        V t = S::fma(sc, q, sc - 1.f);  // 2^n - 1 exact for n <= 20
        V small = (t + t / (t + 1.f)) * 0.5f;
        return S::bor(S::sel(S::lt(a, c(9.f)), small, h), S::signbit(x));
    }
};

}  // namespace vm
TINYFW_ISA_END
}  // namespace tf
