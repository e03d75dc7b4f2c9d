// Vector helpers for the row kernels of nn_fused.inc (softmax), nn_ce.inc (cross-entropy),
// nn_norm.inc (layer norm) and nn_bnorm.inc (batch norm): a float/double vector type whose
// width follows the compile target, tails, row reductions, and how many threads a row
// loop gets.
//
// Width: 16 floats under AVX-512F, 8 under AVX2+FMA, 4 (SSE2 / generic) otherwise.  The
// code is written once with GCC vector extensions; a file compiled once per ISA gets
// the matching width from its -m flags.  Everything here has internal linkage (an
// anonymous namespace), so the copies of different ISA builds of one file never merge
// at link time into one (possibly unsupported) variant.
#pragma once

#include "isa.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif

template <class T> struct Vec {
    typedef T type __attribute__((vector_size(kVecBytes)));
    static constexpr int64_t W = kVecBytes / int64_t(sizeof(T));
};
/// A vector of Vec<T>::W lanes of T.
template <class T> using vec = typename Vec<T>::type;

template <class T> inline vec<T> vsplat(T v) { return vec<T>{} + v; }
template <class T> inline vec<T> vload(const T* p) {
    vec<T> v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}
template <class T> inline void vstore(T* p, vec<T> v) { std::memcpy(p, &v, sizeof(v)); }

/// The first k (< W) lanes from p, the others `fill`: the tail of a row, never reading
/// past its end.  AVX-512 and AVX2 use masked loads (no fault on masked-off lanes).
template <class T> inline vec<T> vload_n(const T* p, int64_t k, T fill) {
    T b[Vec<T>::W];
    for (int64_t i = 0; i < Vec<T>::W; ++i) b[i] = i < k ? p[i] : fill;
    return vload<T>(b);
}
/// The first k (< W) lanes of v to p.
template <class T> inline void vstore_n(T* p, vec<T> v, int64_t k) {
    for (int64_t i = 0; i < k; ++i) p[i] = v[i];
}
#if defined(__AVX512F__)
template <> inline vec<float> vload_n<float>(const float* p, int64_t k, float fill) {
    return vec<float>(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), __mmask16((1u << k) - 1), p));
}
template <> inline vec<double> vload_n<double>(const double* p, int64_t k, double fill) {
    return vec<double>(_mm512_mask_loadu_pd(_mm512_set1_pd(fill), __mmask8((1u << k) - 1), p));
}
template <> inline void vstore_n<float>(float* p, vec<float> v, int64_t k) {
    _mm512_mask_storeu_ps(p, __mmask16((1u << k) - 1), __m512(v));
}
template <> inline void vstore_n<double>(double* p, vec<double> v, int64_t k) {
    _mm512_mask_storeu_pd(p, __mmask8((1u << k) - 1), __m512d(v));
}
#elif defined(__AVX2__) && defined(__FMA__)
/// Lanes i < k set (all bits), as the AVX2 masked moves want; 32-bit lanes.
inline __m256i lanes_below(int64_t k) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
/// The same for 64-bit lanes.
inline __m256i lanes_below64(int64_t k) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
}
template <> inline vec<float> vload_n<float>(const float* p, int64_t k, float fill) {
    const __m256i m = lanes_below(k);
    return vec<float>(_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m)));
}
template <> inline vec<double> vload_n<double>(const double* p, int64_t k, double fill) {
    const __m256i m = lanes_below64(k);
    return vec<double>(_mm256_blendv_pd(_mm256_set1_pd(fill), _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m)));
}
template <> inline void vstore_n<float>(float* p, vec<float> v, int64_t k) {
    _mm256_maskstore_ps(p, lanes_below(k), __m256(v));
}
template <> inline void vstore_n<double>(double* p, vec<double> v, int64_t k) {
    _mm256_maskstore_pd(p, lanes_below64(k), __m256d(v));
}
#endif
/// Elements j .. j+k of a row, k <= W (full vectors take the plain load).
template <class T> inline vec<T> vload_k(const T* p, int64_t k, T fill) {
    return k == Vec<T>::W ? vload<T>(p) : vload_n<T>(p, k, fill);
}
template <class T> inline void vstore_k(T* p, vec<T> v, int64_t k) {
    if (k == Vec<T>::W) vstore<T>(p, v);
    else vstore_n<T>(p, v, k);
}

/// Fold of the lanes with op (+ or max): halves combined until one pair is left, a fixed
/// tree (the result does not depend on the caller), in registers (vextract + op).
template <class T, int Bytes> struct Fold {
    typedef T V __attribute__((vector_size(Bytes)));
    template <class Op> static T run(V v, Op op) {
        constexpr int n = Bytes / int(sizeof(T));
        if constexpr (n == 2) {
            return op(v[0], v[1]);
        } else {
            typedef T H __attribute__((vector_size(Bytes / 2)));
            H lo, hi;
#if defined(__clang__) || __GNUC__ >= 12
            if constexpr (n == 16) {
                lo = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
                hi = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
            } else if constexpr (n == 8) {
                lo = __builtin_shufflevector(v, v, 0, 1, 2, 3), hi = __builtin_shufflevector(v, v, 4, 5, 6, 7);
            } else {
                lo = __builtin_shufflevector(v, v, 0, 1), hi = __builtin_shufflevector(v, v, 2, 3);
            }
#else
            std::memcpy(&lo, &v, sizeof(H));
            std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof(H), sizeof(H));
#endif
            return Fold<T, Bytes / 2>::run(op(lo, hi), op);
        }
    }
};
/// Sum of the lanes.
template <class T> inline T vhsum(vec<T> v) {
    return Fold<T, kVecBytes>::run(v, [](auto a, auto b) { return a + b; });
}
/// Largest lane (of lanes without NaN: vmax accumulators, which skip NaN inputs).
template <class T> inline T vhmax(vec<T> v) {
    return Fold<T, kVecBytes>::run(v, [](auto a, auto b) { return a > b ? a : b; });
}
/// v, opaque to the optimiser: a product passed through it is rounded before it is added
/// (no FMA contraction across it, under -ffp-contract=fast), as the reference rounds it.
/// Where the sum cancels exactly in the reference (layer norm's h - mean(h) on a row of
/// one element), a contracted product leaves its rounding error, scaled by rstd.
template <class V> inline V rounded(V v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    asm("" : "+v"(v));
#else
    volatile V keep = v;
    v = keep;
#endif
    return v;
}

/// Lane-wise a > b ? a : b (one vmaxps; a NaN in a is skipped).
template <class T> inline vec<T> vmax(vec<T> a, vec<T> b) { return a > b ? a : b; }

/// sum over [0, n) of the vectors term(j, k) (elements j .. j+k-1, k <= W; lanes from k
/// on must be 0), in double.  Four vector accumulators of T run over blocks of 64
/// vectors, and each block's total is added in double: each float lane sums at most 16
/// terms, as accurate as numpy's pairwise float32 sums and at a vector add per term.
/// The order of the additions depends only on n (and the vector width).
template <class T, class F> inline double reduce_row(int64_t n, F&& term) {
    constexpr int64_t W = Vec<T>::W, B = 64 * W;
    double total = 0;
    for (int64_t b = 0; b < n; b += B) {
        const int64_t e = std::min(n, b + B);
        vec<T> a0{}, a1{}, a2{}, a3{};
        int64_t j = b;
        for (; j + 4 * W <= e; j += 4 * W) {
            a0 += term(j, W);
            a1 += term(j + W, W);
            a2 += term(j + 2 * W, W);
            a3 += term(j + 3 * W, W);
        }
        for (; j + W <= e; j += W) a0 += term(j, W);
        if (j < e) a1 += term(j, e - j);
        total += double(vhsum<T>((a0 + a1) + (a2 + a3)));
    }
    return total;
}

/// out[s] += sum over [0, n) of the S sums that term(j, k, acc) adds into acc[0 .. S)
/// (elements j .. j+k-1 as in reduce_row); two accumulator sets, blocks added in double.
template <class T, int S, class F> inline void reduce_row_n(int64_t n, double* out, F&& term) {
    constexpr int64_t W = Vec<T>::W, B = 64 * W;
    for (int64_t b = 0; b < n; b += B) {
        const int64_t e = std::min(n, b + B);
        vec<T> a0[S] = {}, a1[S] = {};
        int64_t j = b;
        for (; j + 2 * W <= e; j += 2 * W) {
            term(j, W, a0);
            term(j + W, W, a1);
        }
        if (j + W <= e) term(j, W, a0), j += W;
        if (j < e) term(j, e - j, a1);
        for (int s = 0; s < S; ++s) out[s] += double(vhsum<T>(a0[s] + a1[s]));
    }
}

/// f(j, k) over the vectors of [0, n): k == W but for a shorter last one.
template <class T, class F> inline void for_vectors(int64_t n, F&& f) {
    constexpr int64_t W = Vec<T>::W;
    int64_t j = 0;
    for (; j + W <= n; j += W) f(j, W);
    if (j < n) f(j, n - j);
}

// -- threads ----------------------------------------------------------------------------
/// Element-passes one thread should have before a row loop is split.  A parallel region
/// costs a few us while the workers still spin after the last one (GOMP_SPINCOUNT, see
/// backend/cpu.py) and a wake-up of 5-50 us once they sleep (after a pause in the work, or
/// on a busy machine): the threshold assumes the wake-up.  These kernels run at ~0.12-0.16 ns per element-pass (CPU time,
/// Sapphire Rapids: layer_norm / softmax of 4096x64 float32), so 2^17 is ~15-20 us of
/// work per thread: a 4096x64 softmax or layer norm (3-4 passes) splits in two, a 512x64
/// one stays on one thread.
constexpr double kRowWork = 131072;

/// Threads for a loop over `units` independent pieces costing `work` element-passes in
/// all: 1 when the work does not pay for waking another thread, or inside a parallel
/// region.  Each thread then gets about kRowWork or more.
inline int plan_threads(int64_t units, double work) {
    if (units <= 1 || omp_in_parallel()) return 1;
    const int64_t by_work = int64_t(work / kRowWork);
    return int(std::max<int64_t>(1, std::min<int64_t>({int64_t(omp_get_max_threads()), by_work, units})));
}

/// f(begin, end) over [0, n) split into nt equal contiguous ranges, one per thread (the
/// split depends only on n and nt; per-row results depend on neither).
template <class F> inline void for_ranges(int64_t n, int nt, F&& f) {
    if (n <= 0) return;
    if (nt <= 1) {
        f(int64_t(0), n);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const int64_t b = n * t / T, e = n * (t + 1) / T;
        if (b < e) f(b, e);
    }
}

}  // namespace
TINYFW_ISA_END
}  // namespace tinyfw
