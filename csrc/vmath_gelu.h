// float32 GELU and its derivative, both approximations, over the SIMD traits of
// vmath_simd.h.  The derivative kernels return g * gelu'(x) (GELU's backward).
//
// Exact GELU, with y = |x|, e = e^(-y^2/2) and Phi(-y) = e S(y) (vmath_tables.h):
//   gelu(x)  = x Phi(x)         = x e S(y) for x < 0,     x (1 - e S(y)) for x >= 0
//   gelu'(x) = Phi(x) + x phi(x) = e D(y) for x < 0,      1 - e D(y) for x >= 0
// with D(y) = S(y) - y phi(0) = (y - y0) Q(y): the two terms of gelu' cancel at its root
// y0 = 0.7518 (no correct digit is left near it in float32), the factored form has no
// cancellation anywhere.  Nothing is computed as 1 + erf(x / sqrt2) (which cancels for
// x << 0) and x is never divided by sqrt2 (a rounding there is amplified by x^2).
//
// tanh GELU: gelu(x) = x sigmoid(2u), 2u = 2 sqrt(2/pi) (x + 0.044715 x^3).  For x < 0
// the result is ~ x e^(2u), whose relative error is |2u| times that of 2u (~100x at
// x = -10), so 2u is formed and reduced in float64 (the only float64 arithmetic here).
// Its derivative, with E = e^(-|2u|), D = 1 + E and w = 2x u':
//   x >= 0: (D + w E) / D^2,    x < 0: E (D + w) / D^2,
// and D + w = (1 + w) + E (1 + w in float64) cancels near the root x1 = -0.7525: on
// [-1.25, -0.5] the derivative is (x - x1) Qt(x) (vmath_tables.h) instead.
#pragma once

#include "isa.h"

#include "vmath_erf.h"

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace vm {

template <class S> struct GeluFns {
    using V = typename S::V;
    using M = typename S::M;
    using D = typename S::D;
    using Er = ErfFns<S>;
    static V c(float f) { return S::set(f); }
    static constexpr double kK2 = 1.5957691216057308;  // 2 sqrt(2/pi)
    static constexpr double kC = 0.044715;

    static V gelu_erf(V x) {
        V ax = S::abs(x);
        V y = S::min(ax, c(kGeluClamp));
        V n;
        V q = Er::exp_neg_sq(y, 2.f, n);
        V s = Er::table(Er::tabS(), y);
        V u = S::fma(s, q, s);  // S(y) (1 + q): Phi(-y) = u 2^n
        // x < 0: x u 2^n (2^n applied last); x >= 0: x - x Phi(-x), one rounding.  The sign
        // bit picks the branch, so -0 gives -0.
        M neg = S::signneg(x);
        auto sc = S::scale(n);
        V res = S::sel(neg, S::ldexp(x * u, sc), S::fnma(x, S::ldexp(u, sc), x));
        // past the clamp Phi(x) is 0 or 1: x * 0 (-0, and NaN at -inf as in ref) or x
        M far = S::gt(ax, c(kGeluClamp));
        if (S::any(far)) res = S::sel(far, S::sel(neg, x * 0.f, x), res);
        return res;
    }

    /// gelu'(x) for the exact form.
    static V dgelu_erf(V x) {
        V ax = S::abs(x);
        V y = S::min(ax, c(kGeluClamp));
        V n;
        V q = Er::exp_neg_sq(y, 2.f, n);
        V d = ((y - kY0[0]) - kY0[1]) * Er::table(Er::tabQ(), y);
        V ed = S::ldexp(S::fma(d, q, d), S::scale(n));
        V res = S::sel(S::lt(x, c(0.f)), ed, c(1.f) - ed);
        // NaN, +-inf: Phi(x) + x phi(x) is inf * 0 at +-inf (NaN), as in ref and PyTorch
        M bad = S::nlt(ax, c(INFINITY));
        if (S::any(bad)) res = S::sel(bad, x - x, res);
        return res;
    }

    /// e^(-|2u|) = (1 + q) 2^n (returns q, sets n) from 2u formed and reduced in float64;
    /// |2u| is clamped to 120 (e^-120 x 12 rounds to 0).  With `w1`, also 1 + w = 1 + 2x u'
    /// in float64 (clamped to +-1e30, which keeps it finite in float32).
    static V exp_2u(V x, V& n, typename S::D2* w1 = nullptr) {
        auto xd = S::widen(x);
        typename S::D2 nd, rd, wd;
        auto half = [](D v, D& nn, D& r, D& w) {
            D v2 = S::dmul(v, v);
            D k2x = S::dmul(S::dset(kK2), v);
            D u2 = S::dmul(k2x, S::dfma(v2, S::dset(kC), S::dset(1.0)));
            w = S::dfma(k2x, S::dfma(v2, S::dset(3 * kC), S::dset(1.0)), S::dset(1.0));
            w = S::dmax(S::dmin(w, S::dset(1e30)), S::dset(-1e30));
            D neg = S::dmax(S::dsub(S::dset(0.0), S::dmax(u2, S::dsub(S::dset(0.0), u2))), S::dset(-120.0));
            nn = S::dround(S::dmul(neg, S::dset(1.4426950408889634)));
            r = S::dfma(nn, S::dset(-0.6931471805599453), neg);
        };
        half(xd.lo, nd.lo, rd.lo, wd.lo);
        half(xd.hi, nd.hi, rd.hi, wd.hi);
        n = S::narrow(nd);
        if (w1) *w1 = wd;
        V rh = S::narrow(rd);
        auto rh_d = S::widen(rh);
        V rl = S::narrow({S::dsub(rd.lo, rh_d.lo), S::dsub(rd.hi, rh_d.hi)});
        V q = ExpFns<S>::expm1_poly(rh);
        return S::fma(rl, q + 1.f, q);  // e^(rh + rl) - 1
    }

    static V gelu_tanh(V x) {
        V n;
        V q = exp_2u(x, n);
        auto sc = S::scale(n);
        V e = S::ldexp(q + 1.f, sc);
        M neg = S::signneg(x);
        V m = S::sel(neg, S::fma(x, q, x), x) / (e + 1.f);
        V res = S::sel(neg, S::ldexp(m, sc), m);
        M far = S::mand(neg, S::le(n, c(-173.f)));  // |2u| clamped: -0, and NaN at -inf
        if (S::any(far)) res = S::sel(far, x * 0.f, res);
        return res;
    }

    /// gelu_tanh'(x).
    static V dgelu_tanh(V x) {
        V n;
        typename S::D2 w1;
        V q = exp_2u(x, n, &w1);
        auto sc = S::scale(n);
        V e = S::ldexp(q + 1.f, sc);
        // combined in float64 and rounded once: x >= 0: (1 + E (1 + w)) / D^2, x < 0:
        // (1 + q) ((1 + w) + E) / D^2, scaled by 2^n after (E = (1 + q) 2^n, D = 1 + E)
        auto xd = S::widen(x), ed = S::widen(e), qd = S::widen(q);
        auto half = [](D xx, D ee, D qq, D ww) {
            D den = S::dadd(S::dset(1.0), ee);
            D pos = S::dfma(ee, ww, S::dset(1.0));
            D neg = S::dmul(S::dadd(ww, ee), S::dadd(S::dset(1.0), qq));
            return S::ddiv(S::dsel_neg(xx, neg, pos), S::dmul(den, den));
        };
        V r = S::narrow({half(xd.lo, ed.lo, qd.lo, w1.lo), half(xd.hi, ed.hi, qd.hi, w1.hi)});
        M is_neg = S::signneg(x);
        V res = S::sel(is_neg, S::ldexp(r, sc), r);
        M root = S::mand(S::ge(x, c(-1.25f)), S::le(x, c(-0.5f)));
        if (S::any(root)) res = S::sel(root, ((x - kX1[0]) - kX1[1]) * Er::poly(kQt, x), res);
        M far = S::mand(is_neg, S::le(n, c(-173.f)));
        if (S::any(far)) res = S::sel(far, x * 0.f, res);
        M bad = S::nlt(S::abs(x), c(INFINITY));  // NaN, +-inf (inf * 0 in ref's formula)
        if (S::any(bad)) res = S::sel(bad, x - x, res);
        return res;
    }
};

}  // namespace vm
TINYFW_ISA_END
}  // namespace tf
