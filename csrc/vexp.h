// A vectorised float32 exp for the softmax / cross-entropy kernels, written with GCC
// vector extensions so the same code becomes AVX2 / AVX-512 / SSE instructions.
//
// Range reduction x = n ln2 + r (|r| <= ln2/2, ln2 split in two for accuracy) and the
// degree-7 Cephes polynomial for e^r; 2^n is built in the exponent bits.  Accurate to
// about 2 ulp.  Inputs below -87.3 give 0 (no subnormal results), the caller guarantees
// inputs are <= 0 and not NaN (softmax shifts by the row max and checks for NaN first).
#pragma once

#include "isa.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

inline v8f v8_splat(float v) { return v8f{v, v, v, v, v, v, v, v}; }

inline v8f v8_load(const float* p) {
    v8f v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}
inline void v8_store(float* p, v8f v) { std::memcpy(p, &v, sizeof(v)); }

/// e^x lane-wise for x <= 0 (not NaN).
inline v8f v8_exp_nonpos(v8f x) {
    const v8f lo = v8_splat(-87.3f);
    const v8i under = x < lo;
    x = under ? lo : x;
    // n = round(x / ln2) through the 1.5 * 2^23 trick (exact for |n| < 2^22)
    const v8f magic = v8_splat(12582912.0f);
    const v8f t = x * v8_splat(1.44269504088896341f) + magic;
    const v8f n = t - magic;
    v8f r = x - n * v8_splat(0.693359375f);
    r = r - n * v8_splat(-2.12194440e-4f);
    v8f p = v8_splat(1.9875691500e-4f);
    p = p * r + v8_splat(1.3981999507e-3f);
    p = p * r + v8_splat(8.3334519073e-3f);
    p = p * r + v8_splat(4.1665795894e-2f);
    p = p * r + v8_splat(1.6666665459e-1f);
    p = p * r + v8_splat(5.0000001201e-1f);
    p = p * (r * r) + r + v8_splat(1.0f);
    v8i ti;
    std::memcpy(&ti, &t, sizeof(ti));
    const v8i bits = (ti - 0x4B400000 + 127) << 23;  // 2^n
    v8f scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    const v8f res = p * scale;
    return under ? v8_splat(0.0f) : res;
}

inline float v8_hsum(v8f v) {
    float s = 0;
    for (int i = 0; i < 8; ++i) s += v[i];
    return s;
}

/// y[i] = e^(x[i] - shift), returns sum(y); x[i] - shift must be <= 0 and not NaN.
inline float exp_shifted(const float* x, float* y, int64_t n, float shift) {
    const v8f sh = v8_splat(shift);
    v8f acc = v8_splat(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const v8f e = v8_exp_nonpos(v8_load(x + i) - sh);
        v8_store(y + i, e);
        acc += e;
    }
    float s = v8_hsum(acc);
    if (i < n) {
        float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const int64_t rem = n - i;
        for (int64_t j = 0; j < rem; ++j) buf[j] = x[i + j] - shift;
        for (int64_t j = rem; j < 8; ++j) buf[j] = -100.0f;  // e^-100 is flushed to 0
        const v8f e = v8_exp_nonpos(v8_load(buf));
        for (int64_t j = 0; j < rem; ++j) {
            y[i + j] = e[j];
            s += e[j];
        }
    }
    return s;
}

/// (max, has_nan) of x[0..n).
inline float max_nan(const float* x, int64_t n, bool& has_nan) {
    v8f m = v8_splat(-INFINITY);
    v8i nan = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const v8f v = v8_load(x + i);
        m = v > m ? v : m;
        nan |= v != v;
    }
    float r = -INFINITY;
    bool any = false;
    for (int j = 0; j < 8; ++j) {
        r = m[j] > r ? m[j] : r;
        any |= nan[j] != 0;
    }
    for (; i < n; ++i) {
        r = x[i] > r ? x[i] : r;
        any |= x[i] != x[i];
    }
    has_nan = any;
    return r;
}

TINYFW_ISA_END
}  // namespace tinyfw
