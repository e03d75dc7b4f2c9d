// float32 exp, expm1, log, log1p, tanh, sigmoid, silu and softplus, written once over the
// SIMD traits of vmath_simd.h (S = Avx2 or Avx512).  Included by elementwise_vmath.cpp only.
//
// Each function is a polynomial after a range reduction; special values (NaN, +-inf,
// zeros, overflow, subnormal results) come out of the same arithmetic or are blended in
// at the end.  Results that are subnormal are scaled by 2^n as the LAST step, so they
// are rounded once (sigmoid and silu for x < -87, where e^x is subnormal).  The max ulp
// errors against float64 over a dense float32 sweep are in tests/test_vmath.py.
#pragma once

#include "isa.h"

#include "vmath_simd.h"

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace vm {

template <class S> struct ExpFns {
    using V = typename S::V;
    using M = typename S::M;
    static V c(float f) { return S::set(f); }

    /// e^r - 1 for |r| <= ln2/2 (Taylor to r^7: the truncation is below 8e-9 relative).
    static V expm1_poly(V r) {
        V p = c(1.f / 5040.f);
        p = S::fma(p, r, c(1.f / 720.f));
        p = S::fma(p, r, c(1.f / 120.f));
        p = S::fma(p, r, c(1.f / 24.f));
        p = S::fma(p, r, c(1.f / 6.f));
        p = S::fma(p, r, c(0.5f));
        return S::fma(p, r * r, r);
    }
    /// e^v = (1 + q) 2^n for v in [-180, 89]: returns q, sets n.  ln2 is split in two
    /// parts (n * 0.693359375 is exact), so the reduced argument is v - n ln2 rounded once.
    static V exp_q(V v, V& n) {
        n = S::round(v * 1.44269504088896341f);
        V r = S::fnma(n, c(0.693359375f), v);
        r = S::fnma(n, c(-2.12194440e-4f), r);
        return expm1_poly(r);
    }

    // Clamps are written min(c, max(c', x)): x86 min/max return their second operand when
    // one is NaN, so a NaN x passes through the whole computation.
    static V exp(V x) {
        // clamped to [-104, 89]: e^89 overflows, e^-104 underflows, both in ldexp
        V n;
        V q = exp_q(S::min(c(89.f), S::max(c(-104.f), x)), n);
        return S::ldexp(q + 1.f, S::scale(n));
    }

    static V expm1(V x) {
        V n;
        V q = exp_q(S::min(c(30.f), S::max(c(-30.f), x)), n);
        V sc = S::pow2(n);
        // 2^n (1 + q) - 1 = 2^n q + (2^n - 1): 2^n - 1 is exact for n in [-30, 44]
        V res = S::fma(sc, q, sc - 1.f);
        M big = S::gt(x, c(20.f));
        if (S::any(big)) res = S::sel(big, exp(x), res);  // e^x - 1 rounds to e^x
        return S::sel(S::eq(x, c(0.f)), x, res);          // -0 stays -0
    }

    /// x = m 2^e with m in [sqrt(1/2), sqrt(2)) (subnormals scaled into the normal range
    /// first); returns f = m - 1, small on both sides of 0 (Cephes' logf), and sets e.
    static V log_reduce(V x, V& e) {
        M sub = S::lt(x, c(1.17549435e-38f));
        V xs = S::sel(sub, x * 8388608.f, x);
        e = S::sel(sub, c(-23.f), c(0.f));
        auto bits = S::bits(xs);
        e = e + S::to_float(S::isub(S::template srl<23>(bits), S::iset(127)));
        V m = S::from_bits(S::ior(S::iand(bits, S::iset(0x007fffff)), S::iset(0x3f800000)));
        M hi = S::gt(m, c(1.41421356f));
        m = S::sel(hi, m * 0.5f, m);
        e = S::sel(hi, e + 1.f, e);
        return m - 1.f;
    }

    /// The polynomial part of log(1 + f) for log_reduce's f (z = f^2): log(1 + f) =
    /// f - z / 2 + log_poly(f, z).
    static V log_poly(V f, V z) {
        V p = c(7.0376836292e-2f);
        p = S::fma(p, f, c(-1.1514610310e-1f));
        p = S::fma(p, f, c(1.1676998740e-1f));
        p = S::fma(p, f, c(-1.2420140846e-1f));
        p = S::fma(p, f, c(1.4249322787e-1f));
        p = S::fma(p, f, c(-1.6668057665e-1f));
        p = S::fma(p, f, c(2.0000714765e-1f));
        p = S::fma(p, f, c(-2.4999993993e-1f));
        p = S::fma(p, f, c(3.3333331174e-1f));
        return p * f * z;
    }

    static V log(V x) {
        V e;
        V f = log_reduce(x, e);
        V z = f * f;
        V y = log_poly(f, z);
        y = S::fma(e, c(-2.12194440e-4f), y);
        y = S::fma(z, c(-0.5f), y);
        V res = S::fma(e, c(0.693359375f), f + y);
        res = S::sel(S::eq(x, c(0.f)), c(-INFINITY), res);
        res = S::sel(S::lt(x, c(0.f)), c(NAN), res);
        res = S::sel(S::eq(x, c(INFINITY)), x, res);
        return S::sel(S::isnan(x), x, res);
    }

    static V log1p(V x) {
        // log(u) corrected by the rounding error of u = 1 + x: log1p(x) ~ log(u) + (x - (u - 1)) / u
        V u = x + 1.f;
        V lu = log(u);
        V res = lu + (x - (u - 1.f)) / u;
        res = S::sel(S::mor(S::le(u, c(0.f)), S::eq(u, c(INFINITY))), lu, res);
        res = S::sel(S::eq(u, c(1.f)), x, res);  // |x| below half an ulp of 1
        return S::sel(S::isnan(x), x, res);
    }

    static V tanh(V x) {
        // tanh|x| = t / (t + 2) with t = e^2|x| - 1: no cancellation near 0, one formula for
        // all |x| (clamped at 9.1, past which tanh rounds to 1); the sign of x is put back
        // (-0 included)
        V a = S::min(c(9.1f), S::abs(x));
        V n;
        V q = exp_q(a + a, n);
        V sc = S::pow2(n);
        V t = S::fma(sc, q, sc - 1.f);
        return S::bor(t / (t + 2.f), S::signbit(x));
    }

    /// k sigmoid(x): k / (1 + e) for x >= 0, k e / (1 + e) for x < 0, with e = e^-|x| =
    /// (1 + q) 2^n.  The x < 0 branch scales by 2^n last (k (1 + q) / (1 + e) is a normal
    /// number), so sigmoid and silu stay accurate where e^x is subnormal.  Past
    /// x < -120 the result is k * 0 (-0 for silu, and NaN at -inf: -inf * 0, as ref).
    static V k_sigmoid(V x, V k) {
        V n;
        V q = exp_q(S::max(c(-120.f), S::nabs(x)), n);
        auto sc = S::scale(n);
        V e = S::ldexp(q + 1.f, sc);
        M neg = S::lt(x, c(0.f));
        V m = S::sel(neg, S::fma(k, q, k), k) / (e + 1.f);
        V res = S::sel(neg, S::ldexp(m, sc), m);
        M far = S::lt(x, c(-120.f));
        if (S::any(far)) res = S::sel(far, k * 0.f, res);
        return res;
    }
    static V sigmoid(V x) { return k_sigmoid(x, c(1.f)); }
    static V silu(V x) { return k_sigmoid(x, x); }

    /// ref's formula: x where beta x > threshold, else log1p(e^min(beta x, threshold)) / beta.
    static V softplus(V x, const float* prm) {
        V b = c(prm[0]), th = c(prm[1]);
        V bx = x * b;
        V m = S::min(th, bx);  // NaN bx stays NaN: min returns its second operand then
        V res = log1p(exp(m)) / b;
        return S::sel(S::gt(bx, th), x, res);
    }
};

}  // namespace vm
TINYFW_ISA_END
}  // namespace tf
