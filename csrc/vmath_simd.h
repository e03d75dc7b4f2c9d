// SIMD traits for the float32 vector math (vmath_exp.h, vmath_erf.h): one small set of
// operations per instruction set, so that each function is written once and compiled
// for 8 lanes (AVX2 + FMA) and 16 lanes (AVX-512 F).
//
//   V  a vector of floats         M  a lane mask (AVX2: a vector of all-ones/zero lanes;
//   I  a vector of int32             AVX-512: a mask register)
//   D2 a vector of floats widened to two vectors of doubles
//
// The AVX-512 traits use what that ISA adds where it is simpler: mask registers for
// compares, blends and the tails (masked loads and stores), `scalef` for m * 2^n with one
// rounding (subnormal results included), 16-entry permutes for coefficient tables.
// Only AVX-512 F instructions are used.
#pragma once

#include "isa.h"

#include <cstdint>
#include <immintrin.h>

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace vm {

#if defined(__AVX2__) && defined(__FMA__)
struct Avx2 {
    static constexpr int W = 8;
    static constexpr const char* name = "avx2";
    using V = __m256;
    using M = __m256;
    using I = __m256i;
    using D = __m256d;

    static V set(float f) { return _mm256_set1_ps(f); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    // tails of n < W elements go through a zero-padded buffer: the same code, the same values
    static V load_tail(const float* p, int64_t n) {
        alignas(32) float b[W] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t i = 0; i < n; ++i) b[i] = p[i];
        return _mm256_load_ps(b);
    }
    static void store_tail(float* p, V v, int64_t n) {
        alignas(32) float b[W];
        _mm256_store_ps(b, v);
        for (int64_t i = 0; i < n; ++i) p[i] = b[i];
    }

    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V div(V a, V b) { return _mm256_div_ps(a, b); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }   // a b + c
    static V fnma(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); } // c - a b
    static V fms(V a, V b, V c) { return _mm256_fmsub_ps(a, b, c); }   // a b - c
    // min/max return their SECOND operand when either is NaN (x86 semantics)
    static V min(V a, V b) { return _mm256_min_ps(a, b); }
    static V max(V a, V b) { return _mm256_max_ps(a, b); }
    static V abs(V x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
    static V signbit(V x) { return _mm256_and_ps(x, _mm256_set1_ps(-0.0f)); }
    static V nabs(V x) { return _mm256_or_ps(x, _mm256_set1_ps(-0.0f)); }  // -|x|
    static V bor(V a, V b) { return _mm256_or_ps(a, b); }
    static V round(V x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

    static M lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
    static M le(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
    static M gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
    static M ge(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
    static M eq(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
    static M isnan(V x) { return _mm256_cmp_ps(x, x, _CMP_UNORD_Q); }
    static M nlt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_NLT_UQ); }  // !(a < b): NaN too
    static M signneg(V x) { return x; }  // lanes with the sign bit set (blendv reads only it)
    static M mor(M a, M b) { return _mm256_or_ps(a, b); }
    static M mand(M a, M b) { return _mm256_and_ps(a, b); }
    static bool any(M m) { return _mm256_movemask_ps(m) != 0; }
    static V sel(M m, V yes, V no) { return _mm256_blendv_ps(no, yes, m); }

    // integers and bits
    static I bits(V x) { return _mm256_castps_si256(x); }
    static V from_bits(I i) { return _mm256_castsi256_ps(i); }
    static I iset(int32_t v) { return _mm256_set1_epi32(v); }
    static I iadd(I a, I b) { return _mm256_add_epi32(a, b); }
    static I isub(I a, I b) { return _mm256_sub_epi32(a, b); }
    static I iand(I a, I b) { return _mm256_and_si256(a, b); }
    static I ior(I a, I b) { return _mm256_or_si256(a, b); }
    static I imin(I a, I b) { return _mm256_min_epi32(a, b); }
    static I imax(I a, I b) { return _mm256_max_epi32(a, b); }
    template <int k> static I srl(I a) { return _mm256_srli_epi32(a, k); }
    template <int k> static I sra(I a) { return _mm256_srai_epi32(a, k); }
    template <int k> static I sll(I a) { return _mm256_slli_epi32(a, k); }
    static I to_int(V x) { return _mm256_cvtps_epi32(x); }  // x holds integers
    static V to_float(I i) { return _mm256_cvtepi32_ps(i); }

    static V pow2i(I n) { return from_bits(sll<23>(iadd(n, iset(127)))); }
    /// 2^n for integral n in [-126, 127], exact.
    static V pow2(V n) { return pow2i(to_int(n)); }
    /// 2^n for integral n in [-252, 254] as factors for ldexp: one when every lane's n is in
    /// [-126, 126] (a normal 2^n: m 2^n rounds once, into the subnormals too), else the two
    /// halves 2^(n/2), 2^(n - n/2) (m 2^(n/2) is exact for the m the callers pass, normal).
    /// One Scale serves several ldexp of the same n.
    struct Scale {
        V s1, s2;
        bool two;
    };
    static Scale scale(V n) {
        I ni = to_int(n);
        if (!_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_abs_epi32(ni), iset(126)))))
            return {pow2i(ni), set(1.f), false};
        I n1 = sra<1>(ni);
        return {pow2i(n1), pow2i(isub(ni, n1)), true};
    }
    static V ldexp(V m, const Scale& s) { return s.two ? mul(mul(m, s.s1), s.s2) : mul(m, s.s1); }
    /// Per-lane tab[idx] for idx in [0, W) (the first W entries of a 16-float row).
    static V lookup(const float* tab, I idx) { return _mm256_permutevar8x32_ps(_mm256_load_ps(tab), idx); }

    // doubles: the two halves of a V
    struct D2 {
        D lo, hi;
    };
    static D2 widen(V x) {
        return {_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))};
    }
    static V narrow(D2 d) { return _mm256_set_m128(_mm256_cvtpd_ps(d.hi), _mm256_cvtpd_ps(d.lo)); }
    static D dset(double v) { return _mm256_set1_pd(v); }
    static D dadd(D a, D b) { return _mm256_add_pd(a, b); }
    static D dsub(D a, D b) { return _mm256_sub_pd(a, b); }
    static D dmul(D a, D b) { return _mm256_mul_pd(a, b); }
    static D dfma(D a, D b, D c) { return _mm256_fmadd_pd(a, b, c); }
    static D dmax(D a, D b) { return _mm256_max_pd(a, b); }
    static D dmin(D a, D b) { return _mm256_min_pd(a, b); }
    static D ddiv(D a, D b) { return _mm256_div_pd(a, b); }
    static D dsel_neg(D x, D yes, D no) { return _mm256_blendv_pd(no, yes, x); }  // by x's sign bit
    static D dround(D x) { return _mm256_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
};
#endif

#if defined(__AVX512F__)
struct Avx512 {
    static constexpr int W = 16;
    static constexpr const char* name = "avx512";
    using V = __m512;
    using M = __mmask16;
    using I = __m512i;
    using D = __m512d;

    static V set(float f) { return _mm512_set1_ps(f); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    // tails: masked loads/stores (lanes past n read as 0 and are never written)
    static M first(int64_t n) { return M((1u << n) - 1u); }
    static V load_tail(const float* p, int64_t n) { return _mm512_maskz_loadu_ps(first(n), p); }
    static void store_tail(float* p, V v, int64_t n) { _mm512_mask_storeu_ps(p, first(n), v); }

    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
    static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    static V div(V a, V b) { return _mm512_div_ps(a, b); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V fnma(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
    static V fms(V a, V b, V c) { return _mm512_fmsub_ps(a, b, c); }
    static V min(V a, V b) { return _mm512_min_ps(a, b); }
    static V max(V a, V b) { return _mm512_max_ps(a, b); }
    static V abs(V x) { return _mm512_abs_ps(x); }
    static V signbit(V x) {
        return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN)));
    }
    static V bor(V a, V b) { return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b))); }
    static V nabs(V x) { return bor(x, _mm512_set1_ps(-0.0f)); }
    static V round(V x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

    static M lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
    static M le(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
    static M gt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
    static M ge(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
    static M eq(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
    static M isnan(V x) { return _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q); }
    static M nlt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_NLT_UQ); }
    static M signneg(V x) { return _mm512_cmplt_epi32_mask(_mm512_castps_si512(x), _mm512_setzero_si512()); }
    static M mor(M a, M b) { return M(a | b); }
    static M mand(M a, M b) { return M(a & b); }
    static bool any(M m) { return m != 0; }
    static V sel(M m, V yes, V no) { return _mm512_mask_blend_ps(m, no, yes); }

    static I bits(V x) { return _mm512_castps_si512(x); }
    static V from_bits(I i) { return _mm512_castsi512_ps(i); }
    static I iset(int32_t v) { return _mm512_set1_epi32(v); }
    static I iadd(I a, I b) { return _mm512_add_epi32(a, b); }
    static I isub(I a, I b) { return _mm512_sub_epi32(a, b); }
    static I iand(I a, I b) { return _mm512_and_si512(a, b); }
    static I ior(I a, I b) { return _mm512_or_si512(a, b); }
    static I imin(I a, I b) { return _mm512_min_epi32(a, b); }
    static I imax(I a, I b) { return _mm512_max_epi32(a, b); }
    template <int k> static I srl(I a) { return _mm512_srli_epi32(a, k); }
    template <int k> static I sra(I a) { return _mm512_srai_epi32(a, k); }
    template <int k> static I sll(I a) { return _mm512_slli_epi32(a, k); }
    static I to_int(V x) { return _mm512_cvtps_epi32(x); }
    static V to_float(I i) { return _mm512_cvtepi32_ps(i); }

    static V pow2(V n) { return _mm512_scalef_ps(_mm512_set1_ps(1.f), n); }
    // scalef: m 2^floor(n) in one rounding, overflow to inf and underflow handled by the unit
    using Scale = V;
    static Scale scale(V n) { return n; }
    static V ldexp(V m, Scale n) { return _mm512_scalef_ps(m, n); }
    static V lookup(const float* tab, I idx) { return _mm512_permutexvar_ps(idx, _mm512_load_ps(tab)); }

    struct D2 {
        D lo, hi;
    };
    // (maskz forms and explicit zeros: GCC 12's plain casts/conversions read an
    // "undefined" register, and -Wall warns about it at every inlined use)
    static D2 widen(V x) {
        __m512d xd = _mm512_castps_pd(x);
        __m256 lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xf, xd, 0));
        __m256 hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xf, xd, 1));
        return {_mm512_maskz_cvtps_pd(0xff, lo), _mm512_maskz_cvtps_pd(0xff, hi)};
    }
    static V narrow(D2 d) {
        __m256d lo = _mm256_castps_pd(_mm512_maskz_cvtpd_ps(0xff, d.lo));
        __m256d hi = _mm256_castps_pd(_mm512_maskz_cvtpd_ps(0xff, d.hi));
        return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_insertf64x4(_mm512_setzero_pd(), lo, 0), hi, 1));
    }
    static D dset(double v) { return _mm512_set1_pd(v); }
    static D dadd(D a, D b) { return _mm512_add_pd(a, b); }
    static D dsub(D a, D b) { return _mm512_sub_pd(a, b); }
    static D dmul(D a, D b) { return _mm512_mul_pd(a, b); }
    static D dfma(D a, D b, D c) { return _mm512_fmadd_pd(a, b, c); }
    static D dmax(D a, D b) { return _mm512_max_pd(a, b); }
    static D dmin(D a, D b) { return _mm512_min_pd(a, b); }
    static D ddiv(D a, D b) { return _mm512_div_pd(a, b); }
    static D dsel_neg(D x, D yes, D no) {
        return _mm512_mask_blend_pd(_mm512_cmplt_epi64_mask(_mm512_castpd_si512(x), _mm512_setzero_si512()), no, yes);
    }
    static D dround(D x) { return _mm512_roundscale_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
};
#endif

}  // namespace vm
TINYFW_ISA_END
}  // namespace tf
