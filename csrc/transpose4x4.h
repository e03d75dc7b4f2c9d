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

}  // namespace tf
