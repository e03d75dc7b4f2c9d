// Building blocks of the GEMMs: the float/double register-tiled micro-kernel and its
// cache blocking, per-thread packing buffers and the error hand-off out of a parallel
// region; shared by gemm.cpp and the half-precision GEMM (gemm_half.cpp), whose
// convert-while-packing path feeds the same float32 micro-kernel.
#pragma once

#include <immintrin.h>

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <new>

#include "gemm.h"
#include "isa.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace gemm_simd {

// ---- SIMD traits: a vector type and the five operations the micro-kernel needs --------
template <typename T> struct Simd;

#if defined(__AVX512F__)
template <> struct Simd<float> {
    using V = __m512;
    static constexpr int W = 16, MR = 12, NV = 2;
    static V zero() { return _mm512_setzero_ps(); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static V bcast(const float* p) { return _mm512_set1_ps(*p); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static float hsum(V v) { return _mm512_reduce_add_ps(v); }
};
template <> struct Simd<double> {
    using V = __m512d;
    static constexpr int W = 8, MR = 12, NV = 2;
    static V zero() { return _mm512_setzero_pd(); }
    static V load(const double* p) { return _mm512_loadu_pd(p); }
    static V bcast(const double* p) { return _mm512_set1_pd(*p); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    static V add(V a, V b) { return _mm512_add_pd(a, b); }
    static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
    static double hsum(V v) { return _mm512_reduce_add_pd(v); }
};
#elif defined(__AVX2__) && defined(__FMA__)
// 6 x 16 floats: 12 accumulators + 2 B vectors + 1 broadcast fit the 16 ymm registers.
template <> struct Simd<float> {
    using V = __m256;
    static constexpr int W = 8, MR = 6, NV = 2;
    static V zero() { return _mm256_setzero_ps(); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static float hsum(V v) {
        __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        x = _mm_add_ps(x, _mm_movehl_ps(x, x));
        return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
    }
};
template <> struct Simd<double> {
    using V = __m256d;
    static constexpr int W = 4, MR = 6, NV = 2;
    static V zero() { return _mm256_setzero_pd(); }
    static V load(const double* p) { return _mm256_loadu_pd(p); }
    static V bcast(const double* p) { return _mm256_broadcast_sd(p); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
    static double hsum(V v) {
        __m128d x = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        return _mm_cvtsd_f64(_mm_add_sd(x, _mm_unpackhi_pd(x, x)));
    }
};
#else
// Portable build: scalar "vectors"; the compiler auto-vectorises what it can.
template <typename T> struct ScalarSimd {
    using V = T;
    static constexpr int W = 1, MR = 4, NV = 8;
    static V zero() { return T(0); }
    static V load(const T* p) { return *p; }
    static V bcast(const T* p) { return *p; }
    static V fma(V a, V b, V c) { return a * b + c; }
    static V add(V a, V b) { return a + b; }
    static void store(T* p, V v) { *p = v; }
    static T hsum(V v) { return v; }
};
template <> struct Simd<float> : ScalarSimd<float> {};
template <> struct Simd<double> : ScalarSimd<double> {};
#endif

template <typename T> struct Blocking {
    static constexpr int MR = Simd<T>::MR;
    static constexpr int NR = Simd<T>::NV * Simd<T>::W;
    // KC: the B micro-panel (KC x NR) takes about 16 KiB of L1.
    static constexpr int64_t KC = 256;
    // MC: the packed A block (MC x KC) about 128 KiB of L2, a multiple of MR.
    static constexpr int64_t MC = std::max<int64_t>(MR, (131072 / (KC * (int64_t)sizeof(T))) / MR * MR);
    // NC: the packed B block (KC x NC) a few MiB of L3, a multiple of NR.
    static constexpr int64_t NC = 4096 / NR * NR;
    // Above kBigC bytes of C, k slices of up to KC_BIG and a B block of KC_BIG x NC_BIG
    // (at most 8 MiB of float; gemm.cpp's gemm_serial says why)
    static constexpr int64_t KC_BIG = 1024, NC_BIG = 2048 / NR * NR;
    static constexpr int64_t kBigC = int64_t(4) << 20;
};

// C tile (MR x NR) = (or +=) A block (MR x kc) @ B panel (kc x NR, rows brs apart: NR when
// packed), where element (i, p) of A is pa[i * ars + p * acs]; only C's first `rows` rows
// are stored (the GEMMs' last panel of A, zero-padded past them, goes straight to C).
// The GEMMs pass packed A panels (ars 1, acs MR: micro_kernel below); the fused attention
// (attention.cpp) passes blocks it has just computed (probabilities, score gradients) as
// rows (ars = row length, acs = 1) or transposed (ars = 1, acs = row length) without
// packing them.
// MR_: the rows computed (fewer than MR for a short last panel: micro_kernel_rows).
template <typename T, int MR_ = Simd<T>::MR>
inline void micro_kernel_strided_a(int64_t kc, const T* __restrict pa, int64_t ars, int64_t acs,
                                   const T* __restrict pb, T* __restrict c, int64_t rsc, bool acc,
                                   int64_t brs = Simd<T>::NV * Simd<T>::W, int64_t rows = MR_) {
    using S = Simd<T>;
    using V = typename S::V;
    constexpr int MR = MR_, NV = S::NV, W = S::W, NR = NV * W;
    V r[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) r[i][j] = S::zero();
#pragma GCC unroll 2
    for (int64_t p = 0; p < kc; ++p) {
        V bv[NV];
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) bv[j] = S::load(pb + j * W);
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            const V ai = S::bcast(pa + i * ars);
#pragma GCC unroll 4
            for (int j = 0; j < NV; ++j) r[i][j] = S::fma(ai, bv[j], r[i][j]);
        }
        pa += acs;
        pb += brs;
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
        if (i >= rows) break;
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) {
            T* cp = c + i * rsc + j * W;
            S::store(cp, acc ? S::add(S::load(cp), r[i][j]) : r[i][j]);
        }
    }
}

// The same for a panel of `rows` <= MR rows: the kernel for rows rounded up to even, so
// that at most one row of the panel's zero padding is multiplied (the MLP's 10-row
// dW = g.T @ x ran 12 rows of FMAs for 10: 0.80 -> 0.90x numpy, SPR, 1 thread).  Each
// row's sums are those of the full kernel.
template <typename T>
inline void micro_kernel_rows(int64_t kc, const T* __restrict pa, int64_t ars, int64_t acs,
                              const T* __restrict pb, T* __restrict c, int64_t rsc, bool acc,
                              int64_t brs, int64_t rows) {
    constexpr int MR = Simd<T>::MR;
    const int64_t even = (rows + 1) / 2 * 2;
    if constexpr (MR > 2) if (even == 2) return micro_kernel_strided_a<T, 2>(kc, pa, ars, acs, pb, c, rsc, acc, brs, rows);
    if constexpr (MR > 4) if (even == 4) return micro_kernel_strided_a<T, 4>(kc, pa, ars, acs, pb, c, rsc, acc, brs, rows);
    if constexpr (MR > 6) if (even == 6) return micro_kernel_strided_a<T, 6>(kc, pa, ars, acs, pb, c, rsc, acc, brs, rows);
    if constexpr (MR > 8) if (even == 8) return micro_kernel_strided_a<T, 8>(kc, pa, ars, acs, pb, c, rsc, acc, brs, rows);
    if constexpr (MR > 10) if (even == 10) return micro_kernel_strided_a<T, 10>(kc, pa, ars, acs, pb, c, rsc, acc, brs, rows);
    micro_kernel_strided_a<T>(kc, pa, ars, acs, pb, c, rsc, acc, brs, rows);
}

// C tile (MR x NR) = (or +=) packed A panel (MR x kc) @ packed B panel (kc x NR).
template <typename T>
inline void micro_kernel(int64_t kc, const T* __restrict pa, const T* __restrict pb,
                         T* __restrict c, int64_t rsc, bool acc) {
    micro_kernel_strided_a(kc, pa, 1, Simd<T>::MR, pb, c, rsc, acc);
}

// Per-thread packing buffers, kept across calls so page faults are paid once.
struct Buffers {
    void* p[3] = {nullptr, nullptr, nullptr};
    size_t cap[3] = {0, 0, 0};
    ~Buffers() {
        for (void* q : p) std::free(q);
    }
    template <typename T> T* get(int which, int64_t n) {
        const size_t bytes = ((size_t)n * sizeof(T) + 63) / 64 * 64;
        if (cap[which] < bytes) {
            std::free(p[which]);
            p[which] = std::aligned_alloc(64, bytes);
            if (!p[which]) throw std::bad_alloc();
            cap[which] = bytes;
        }
        return static_cast<T*>(p[which]);
    }
};

// The first exception thrown by any thread of a parallel region (a packing buffer that
// could not be allocated), rethrown by the calling thread after the region: an exception
// that escapes a region terminates the process instead of becoming a MemoryError.
struct RegionError {
    std::exception_ptr first;
    void record() {
#pragma omp critical(tinyfw_gemm_region_error)
        if (!first) first = std::current_exception();
    }
    void rethrow() const {
        if (first) std::rethrow_exception(first);
    }
};

/// Run `block(i0, i1, j0, j1)` (row and column ranges of C, never empty) on `nt` threads:
/// C's mr x nr tiles split over the grid gemm_grid chooses.  Shared by the float, half and
/// int8 GEMMs; an exception thrown in a block is rethrown here, after the region.
template <class Block>
void parallel_tiles(int nt, int64_t m, int64_t n, int64_t k, int64_t mr, int64_t nr, const Block& block) {
    const int64_t mu = (m + mr - 1) / mr, nu = (n + nr - 1) / nr;
    int tm, tn;
    gemm_grid(nt, m, n, k, mu, nu, tm, tn);
    RegionError err;
#pragma omp parallel num_threads(tm * tn)
    {
        const int t = omp_get_thread_num();
        int64_t i0, i1, j0, j1;
        gemm_split(mu, tm, t / tn, i0, i1);
        gemm_split(nu, tn, t % tn, j0, j1);
        i0 *= mr, j0 *= nr;
        i1 = std::min(i1 * mr, m), j1 = std::min(j1 * nr, n);
        try {
            if (i1 > i0 && j1 > j0) block(i0, i1, j0, j1);
        } catch (...) {
            err.record();  // an exception leaving a parallel region would terminate
        }
    }
    err.rethrow();
}

}  // namespace gemm_simd
TINYFW_ISA_END
}  // namespace tinyfw
