// transpose4x4: a 4 x 4 block of 4-byte items moved through SSE registers (x86-64's
// baseline, so no dispatch): dst rows q = 0..3 (contiguous, ds0 bytes apart) get src's
// columns (src rows k = 0..3 contiguous, ss1 bytes apart): dst[q][k] = src[k][q].  False
// (and nothing done) where SSE is missing.  Element loops that read one side with a large
// stride ran at a third of memcpy's speed (copy.cpp) and made GEMM packing of a transposed
// operand its largest cost (gemm.cpp).
//
// Static: every translation unit, each compiled for its ISA level, keeps its own copy (an
// inline function shared between them could be the AVX-512 build's VEX-encoded one on a
// machine without AVX).
#pragma once

#include <cstdint>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace tf {

#if defined(__SSE2__)
constexpr bool kHasTranspose4x4 = true;  // callers that ignore the result test this first
#else
constexpr bool kHasTranspose4x4 = false;
#endif

static inline bool transpose4x4(char* dst, int64_t ds0, const char* src, int64_t ss1) {
#if defined(__SSE2__)
    __m128 r0 = _mm_loadu_ps(reinterpret_cast<const float*>(src));
    __m128 r1 = _mm_loadu_ps(reinterpret_cast<const float*>(src + ss1));
    __m128 r2 = _mm_loadu_ps(reinterpret_cast<const float*>(src + 2 * ss1));
    __m128 r3 = _mm_loadu_ps(reinterpret_cast<const float*>(src + 3 * ss1));
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);  // shuffles only: any 4-byte bit pattern survives
    _mm_storeu_ps(reinterpret_cast<float*>(dst), r0);
    _mm_storeu_ps(reinterpret_cast<float*>(dst + ds0), r1);
    _mm_storeu_ps(reinterpret_cast<float*>(dst + 2 * ds0), r2);
    _mm_storeu_ps(reinterpret_cast<float*>(dst + 3 * ds0), r3);
    return true;
#else
    (void)dst, (void)ds0, (void)src, (void)ss1;
    return false;
#endif
}

// dst[p * ldd + r] = src[r * lds + p] for r < rows, p < kc: a panel whose rows are the
// source's columns (GEMM packing of row-major A or transposed B, attention's Kᵀ panels).
// 4-byte types go through the 4 x 4 blocks (the element loop was a third of x @ W.T's
// time at 128 x 784 x 512); the rows past the last multiple of 4, other types and a build
// without SSE, element by element.
template <typename T>
static void transpose_into_panel(int64_t rows, int64_t kc, const T* src, int64_t lds, T* dst, int64_t ldd) {
    int64_t r0 = 0;
    if constexpr (sizeof(T) == 4 && kHasTranspose4x4)
        for (; r0 + 4 <= rows; r0 += 4) {
            int64_t p = 0;
            for (; p + 4 <= kc; p += 4)
                transpose4x4(reinterpret_cast<char*>(dst + p * ldd + r0), ldd * 4,
                             reinterpret_cast<const char*>(src + r0 * lds + p), lds * 4);
            for (; p < kc; ++p)
                for (int64_t r = r0; r < r0 + 4; ++r) dst[p * ldd + r] = src[r * lds + p];
        }
    for (int64_t r = r0; r < rows; ++r)
        for (int64_t p = 0; p < kc; ++p) dst[p * ldd + r] = src[r * lds + p];
}

}  // namespace tf
