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

#if defined(__AVX512F__)
// A 16 x 16 block of 4-byte items through zmm registers (a build for AVX-512 only): dst
// rows j = 0..15 (ldd items apart) get src's columns: dst[j][r] = src[r][j].  Four rounds
// of 16 shuffles: pairs of rows interleaved, then 4 x 4 blocks inside each 128-bit lane
// (register 4 m + c: column 4 L + c of rows 4 m.. in lane L), then the 128-bit lanes
// transposed between the four registers of each c.  A quarter of the 4 x 4 blocks'
// shuffles per item.
static inline void transpose16x16(float* dst, int64_t ldd, const float* src, int64_t lds) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int k = 0; k < 8; ++k) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int m = 0; m < 4; ++m) {
        r[4 * m + 0] = _mm512_shuffle_ps(t[4 * m], t[4 * m + 2], 0x44);
        r[4 * m + 1] = _mm512_shuffle_ps(t[4 * m], t[4 * m + 2], 0xEE);
        r[4 * m + 2] = _mm512_shuffle_ps(t[4 * m + 1], t[4 * m + 3], 0x44);
        r[4 * m + 3] = _mm512_shuffle_ps(t[4 * m + 1], t[4 * m + 3], 0xEE);
    }
    for (int c = 0; c < 4; ++c) {
        const __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
        const __m512 v2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
        const __m512 v3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
        _mm512_storeu_ps(dst + c * ldd, _mm512_shuffle_f32x4(v0, v2, 0x88));
        _mm512_storeu_ps(dst + (4 + c) * ldd, _mm512_shuffle_f32x4(v1, v3, 0x88));
        _mm512_storeu_ps(dst + (8 + c) * ldd, _mm512_shuffle_f32x4(v0, v2, 0xDD));
        _mm512_storeu_ps(dst + (12 + c) * ldd, _mm512_shuffle_f32x4(v1, v3, 0xDD));
    }
}
#endif

// dst[p * ldd + r] = src[r * lds + p] for r < rows, p < kc: a panel whose rows are the
// source's columns (GEMM packing of row-major A or transposed B, attention's Kᵀ panels).
// 4-byte types go through 16 x 16 blocks where the build has AVX-512, else (and for the
// rest) through the 4 x 4 blocks (the element loop was a third of x @ W.T's
// time at 128 x 784 x 512); the rows past the last multiple of 4, other types and a build
// without SSE, element by element.
template <typename T>
static void transpose_into_panel(int64_t rows, int64_t kc, const T* src, int64_t lds, T* dst, int64_t ldd) {
    int64_t r0 = 0;
    // rows r .. r + 3, columns from p on
    auto four_rows = [&](int64_t r, int64_t p) {
        for (; p + 4 <= kc; p += 4)
            transpose4x4(reinterpret_cast<char*>(dst + p * ldd + r), ldd * 4,
                         reinterpret_cast<const char*>(src + r * lds + p), lds * 4);
        for (; p < kc; ++p)
            for (int64_t i = r; i < r + 4; ++i) dst[p * ldd + i] = src[i * lds + p];
    };
#if defined(__AVX512F__)
    // (16 x 16 blocks: x @ W.T at 128 x 784 x 512, whose packing transposes W, 837 -> 803 us
    // on one Sapphire Rapids core; the SDPA forward's Kᵀ panels ~1%)
    if constexpr (sizeof(T) == 4)
        for (; r0 + 16 <= rows; r0 += 16) {
            int64_t p = 0;
            for (; p + 16 <= kc; p += 16)
                transpose16x16(reinterpret_cast<float*>(dst + p * ldd + r0), ldd,
                               reinterpret_cast<const float*>(src + r0 * lds + p), lds);
            if (p < kc)
                for (int64_t r = r0; r < r0 + 16; r += 4) four_rows(r, p);
        }
#endif
    if constexpr (sizeof(T) == 4 && kHasTranspose4x4)
        for (; r0 + 4 <= rows; r0 += 4) four_rows(r0, 0);
    for (int64_t r = r0; r < rows; ++r)
        for (int64_t p = 0; p < kc; ++p) dst[p * ldd + r] = src[r * lds + p];
}

}  // namespace tf
