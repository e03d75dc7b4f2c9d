// A vectorised float32 exp (and the log of a softmax sum) for the softmax / cross-entropy
// kernels (nn_fused.inc, nn_ce.inc), on the vectors of nn_rows.h: 16 lanes under AVX-512,
// 8 under AVX2, 4 otherwise.
//
// Range reduction x = n ln2 + r (|r| <= ln2/2, ln2 split in two so that n ln2 is exact)
// and the degree-7 Cephes polynomial for e^r; 2^n is built in the exponent bits.  At most
// 1 ulp from the correctly rounded value, with or without FMA (tests/test_norms_kernels.py
// sweeps it).  Lanes never interact: a value's result does not depend on its neighbours.
#pragma once

#include "isa.h"

#include <cmath>
#include <cstdint>

#include "nn_rows.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace {

typedef vec<float> vf;
typedef vec<int32_t> vi;
typedef vec<uint32_t> vu;

inline vf vf_from_bits(vu b) {
    vf f;
    std::memcpy(&f, &b, sizeof(f));
    return f;
}

/// e^r for x = n ln2 + r, |r| <= ln2/2 (the polynomial), and n = round(x / ln2) as an
/// integer, read from the bits of x / ln2 + 1.5 * 2^23 (exact for |n| < 2^22; no float to
/// int conversion, so a NaN lane gives a harmless integer, and its e^r is NaN).
inline vf vexp_reduced(vf x, vi& ni) {
    const vf magic = vsplat(12582912.0f);
    const vf t = x * vsplat(1.44269504088896341f) + magic;
    const vf n = t - magic;
    std::memcpy(&ni, &t, sizeof(ni));
    ni -= 0x4B400000;
    vf r = x - n * vsplat(0.693359375f);  // 0.693359375 has 10 bits: n * it is exact
    r = r - n * vsplat(-2.12194440e-4f);
    vf p = vsplat(1.9875691500e-4f);
    p = p * r + vsplat(1.3981999507e-3f);
    p = p * r + vsplat(8.3334519073e-3f);
    p = p * r + vsplat(4.1665795894e-2f);
    p = p * r + vsplat(1.6666665459e-1f);
    p = p * r + vsplat(5.0000001201e-1f);
    return p * (r * r) + r + vsplat(1.0f);
}

/// 2^n for integer lanes n in [-126, 127] (shifted as unsigned: defined for any lane).
inline vf vpow2i(vi n) { return vf_from_bits(__builtin_convertvector(n + 127, vu) << 23); }

/// e^x lane-wise for x <= 0 (softmax after its shift by the row max): results below
/// 2^-126 (x < -87.3) are flushed to 0, -inf gives 0, NaN gives NaN.
inline vf vexp_nonpos(vf x) {
    const vf lo = vsplat(-87.3f);
    const auto under = x < lo;
    vi n;
    const vf p = vexp_reduced(under ? lo : x, n);
    return under ? vsplat(0.0f) : p * vpow2i(n);
}

/// e^x lane-wise for every x: NaN -> NaN, +inf and x > 88.72 -> inf, -inf -> 0, subnormal
/// results rounded from the exact product p * 2^n (2^n applied in two normal halves).
inline vf vexp(vf x) {
    // clamping keeps n in [-150, 129]; beyond, e^x is 0 / inf anyway (NaN passes through:
    // both comparisons are false for it)
    x = x < vsplat(-104.0f) ? vsplat(-104.0f) : x;
    x = x > vsplat(89.0f) ? vsplat(89.0f) : x;
    vi n;
    const vf p = vexp_reduced(x, n);
    const vi n1 = n >> 1;  // n1, n - n1 in [-75, 65]: normal powers of two
    return (p * vpow2i(n1)) * vpow2i(n - n1);
}

/// log(x) lane-wise for positive normal x (softmax sums, >= 1; one per row): x = m 2^e
/// with m in [sqrt(1/2), sqrt(2)), and the Cephes polynomial for log(m).  Within 1 ulp of
/// the correctly rounded log on [1, 2^24] (tests/test_norms_kernels.py), instead of one
/// libm call per row (~25 cycles, a fifth of a 4096 x 64 log_softmax).
inline vf vlog_pos(vf x) {
    vu b;
    std::memcpy(&b, &x, sizeof(b));
    vi e = __builtin_convertvector(b >> 23, vi) - 126;  // x > 0: no sign bit
    vf m = vf_from_bits((b & 0x007fffffu) | 0x3f000000u);  // [0.5, 1)
    const auto small = m < vsplat(0.70710678118654752440f);
    e = small ? e - 1 : e;
    m = (small ? m + m : m) - vsplat(1.0f);
    const vf fe = __builtin_convertvector(e, vf), z = m * m;
    vf p = vsplat(7.0376836292e-2f);
    p = p * m + vsplat(-1.1514610310e-1f);
    p = p * m + vsplat(1.1676998740e-1f);
    p = p * m + vsplat(-1.2420140846e-1f);
    p = p * m + vsplat(1.4249322787e-1f);
    p = p * m + vsplat(-1.6668057665e-1f);
    p = p * m + vsplat(2.0000714765e-1f);
    p = p * m + vsplat(-2.4999993993e-1f);
    p = p * m + vsplat(3.3333331174e-1f);
    vf y = p * m * z + fe * vsplat(-2.12194440e-4f) - vsplat(0.5f) * z;
    return (m + y) + fe * vsplat(0.693359375f);
}

/// e^x lane-wise for double vectors: libm per lane (float64 is not vectorised).
inline vec<double> vexp(vec<double> x) {
    for (int64_t i = 0; i < Vec<double>::W; ++i) x[i] = std::exp(x[i]);
    return x;
}
inline vec<double> vexp_nonpos(vec<double> x) { return vexp(x); }
inline vec<double> vlog_pos(vec<double> x) {
    for (int64_t i = 0; i < Vec<double>::W; ++i) x[i] = std::log(x[i]);
    return x;
}

}  // namespace
TINYFW_ISA_END
}  // namespace tinyfw
