// float32 transcendental functions over contiguous arrays (vm_unary, see elementwise.h).
// The scalar formulas below are the specification's (backend/ref.py) evaluated per
// element with libm; they are the TINYFW_PORTABLE path.
// No FMA contraction in the scalar formulas (as in the other elementwise files); the
// vector code states its FMAs explicitly.
#pragma GCC optimize("fp-contract=off")

#include "elementwise_vmath.h"

#include <algorithm>
#include <cmath>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace ew {
namespace {

inline float sigmoid_s(float x) {
    const float e = std::exp(-std::abs(x));
    return x >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
}
inline float erf_s(float x) { return float(std::erf(double(x))); }  // as scipy's f->f loop

float scalar_of(VFn f, float x, const float* prm) {
    switch (f) {
        case VExp: return std::exp(x);
        case VLog: return std::log(x);
        case VLog1p: return std::log1p(x);
        case VExpm1: return std::expm1(x);
        case VTanh: return std::tanh(x);
        case VSigmoid: return sigmoid_s(x);
        case VSilu: return x * sigmoid_s(x);
        case VErf: return erf_s(x);
        case VGeluErf: return 0.5f * x * (1.f + erf_s(x / 1.4142135623730951f));
        case VGeluTanh: {
            const float inner = 0.7978845608028654f * (x + 0.044715f * std::pow(x, 3.f));
            return 0.5f * x * (1.f + std::tanh(inner));
        }
        case VSoftplus: {
            const float bx = x * prm[0];
            return bx > prm[1] ? x : std::log1p(std::exp((bx < prm[1] || bx != bx ? bx : prm[1]))) / prm[0];
        }
        case VNone: break;
    }
    return x;
}

template <VFn F> void scalar_loop(const float* x, float* y, int64_t n, const float* prm) {
    for (int64_t i = 0; i < n; ++i) y[i] = scalar_of(F, x[i], prm);
}


#if defined(__AVX2__) && defined(__FMA__)
// ------------------------------------------------------------------ AVX2 + FMA versions
// Each function is a polynomial after a range reduction; special values (NaN, +-inf,
// zeros, overflow, subnormal results) are produced by the same arithmetic or blended in
// at the end.  Max ulp errors vs float64 are measured over a dense sweep of the float32
// range in tests/test_elementwise_kernels.py.
using V = __m256;

inline V vset(float f) { return _mm256_set1_ps(f); }
inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V vabs(V x) { return _mm256_andnot_ps(vset(-0.0f), x); }
inline V vsel(V mask, V yes, V no) { return _mm256_blendv_ps(no, yes, mask); }
inline V visnan(V x) { return _mm256_cmp_ps(x, x, _CMP_UNORD_Q); }
inline V vpow2i(__m256i n) {  // 2^n for n in [-126, 127]
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}

// e^r - 1 for |r| <= ln2/2 (Taylor to r^8: the truncation is below 1e-9 relative)
inline V expm1_reduced(V r) {
    V p = vset(1.f / 40320.f);
    p = vfma(p, r, vset(1.f / 5040.f));
    p = vfma(p, r, vset(1.f / 720.f));
    p = vfma(p, r, vset(1.f / 120.f));
    p = vfma(p, r, vset(1.f / 24.f));
    p = vfma(p, r, vset(1.f / 6.f));
    p = vfma(p, r, vset(0.5f));
    return vfma(p, _mm256_mul_ps(r, r), r);
}

// x = n ln2 + r, |r| <= ln2/2 (ln2 in two parts, so r is exact to float precision)
inline V reduce_ln2(V x, V& n) {
    n = _mm256_round_ps(_mm256_mul_ps(x, vset(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V r = vfma(n, vset(-0.693359375f), x);
    return vfma(n, vset(2.12194440e-4f), r);
}

V vexp(V x) {
    // clamped so that 2^n splits into two normal factors; +-inf and overflow/underflow
    // come out of the arithmetic (e^89 -> inf, e^-104 -> 0), NaN is blended back
    V xc = _mm256_min_ps(_mm256_max_ps(x, vset(-104.f)), vset(89.f));
    V n;
    V r = reduce_ln2(xc, n);
    V p = _mm256_add_ps(expm1_reduced(r), vset(1.f));
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    // (p 2^n1) is exact; the product with 2^n2 rounds once (also into the subnormals)
    V res = _mm256_mul_ps(_mm256_mul_ps(p, vpow2i(n1)), vpow2i(n2));
    return vsel(visnan(x), x, res);
}

V vexpm1(V x) {
    V xc = _mm256_min_ps(_mm256_max_ps(x, vset(-30.f)), vset(30.f));
    V n;
    V r = reduce_ln2(xc, n);
    V p = expm1_reduced(r);
    V sc = vpow2i(_mm256_cvtps_epi32(n));
    // 2^n (1 + p) - 1 = 2^n p + (2^n - 1): 2^n - 1 is exact for n in [-30, 44]
    V res = vfma(sc, p, _mm256_sub_ps(sc, vset(1.f)));
    V big = _mm256_cmp_ps(x, vset(20.f), _CMP_GT_OQ);
    if (_mm256_movemask_ps(big)) res = vsel(big, vexp(x), res);  // e^x - 1 rounds to e^x
    return vsel(visnan(x), x, res);
}

V vlog(V x) {
    // subnormals scaled into the normal range first
    V sub = _mm256_cmp_ps(x, vset(1.17549435e-38f), _CMP_LT_OQ);
    V xs = vsel(sub, _mm256_mul_ps(x, vset(8388608.f)), x);
    V eadj = vsel(sub, vset(-23.f), vset(0.f));
    __m256i bits = _mm256_castps_si256(xs);
    __m256i ei = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
    V m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                              _mm256_set1_epi32(0x3f800000)));
    V e = _mm256_add_ps(_mm256_cvtepi32_ps(ei), eadj);
    // m in [sqrt(1/2), sqrt(2)): f = m - 1 small on both sides of 0
    V hi = _mm256_cmp_ps(m, vset(1.41421356f), _CMP_GT_OQ);
    m = vsel(hi, _mm256_mul_ps(m, vset(0.5f)), m);
    e = _mm256_add_ps(e, _mm256_and_ps(hi, vset(1.f)));
    V f = _mm256_sub_ps(m, vset(1.f));
    V z = _mm256_mul_ps(f, f);
    V p = vset(7.0376836292e-2f);
    p = vfma(p, f, vset(-1.1514610310e-1f));
    p = vfma(p, f, vset(1.1676998740e-1f));
    p = vfma(p, f, vset(-1.2420140846e-1f));
    p = vfma(p, f, vset(1.4249322787e-1f));
    p = vfma(p, f, vset(-1.6668057665e-1f));
    p = vfma(p, f, vset(2.0000714765e-1f));
    p = vfma(p, f, vset(-2.4999993993e-1f));
    p = vfma(p, f, vset(3.3333331174e-1f));
    V y = _mm256_mul_ps(_mm256_mul_ps(p, f), z);
    y = vfma(e, vset(-2.12194440e-4f), y);
    y = vfma(z, vset(-0.5f), y);
    V res = _mm256_add_ps(f, y);
    res = vfma(e, vset(0.693359375f), res);
    res = vsel(_mm256_cmp_ps(x, vset(0.f), _CMP_EQ_OQ), vset(-INFINITY), res);
    res = vsel(_mm256_cmp_ps(x, vset(0.f), _CMP_LT_OQ), vset(NAN), res);
    res = vsel(_mm256_cmp_ps(x, vset(INFINITY), _CMP_EQ_OQ), x, res);
    return vsel(visnan(x), x, res);
}

V vlog1p(V x) {
    // log(u) corrected by the rounding error of u = 1 + x: log1p(x) ~ log(u) + (x - (u - 1)) / u
    V u = _mm256_add_ps(x, vset(1.f));
    V lu = vlog(u);
    V c = _mm256_div_ps(_mm256_sub_ps(x, _mm256_sub_ps(u, vset(1.f))), u);
    V res = _mm256_add_ps(lu, c);
    V edge = _mm256_or_ps(_mm256_cmp_ps(u, vset(0.f), _CMP_LE_OQ), _mm256_cmp_ps(u, vset(INFINITY), _CMP_EQ_OQ));
    res = vsel(edge, lu, res);
    res = vsel(_mm256_cmp_ps(u, vset(1.f), _CMP_EQ_OQ), x, res);  // |x| below half an ulp of 1
    return vsel(visnan(x), x, res);
}

V vtanh(V x) {
    V a = vabs(x);
    // |x| < 0.625: odd polynomial (Cephes' tanhf coefficients)
    V z = _mm256_mul_ps(x, x);
    V p = vset(-5.70498872745e-3f);
    p = vfma(p, z, vset(2.06390887954e-2f));
    p = vfma(p, z, vset(-5.37397155531e-2f));
    p = vfma(p, z, vset(1.33314422036e-1f));
    p = vfma(p, z, vset(-3.33332819422e-1f));
    V small = vfma(_mm256_mul_ps(p, z), x, x);
    // otherwise 1 - 2 / (e^2|x| + 1), sign restored (inf -> 1, NaN stays NaN)
    V e = vexp(_mm256_add_ps(a, a));
    V big = _mm256_sub_ps(vset(1.f), _mm256_div_ps(vset(2.f), _mm256_add_ps(e, vset(1.f))));
    big = _mm256_or_ps(big, _mm256_and_ps(x, vset(-0.0f)));
    return vsel(_mm256_cmp_ps(a, vset(0.625f), _CMP_LT_OQ), small, big);
}

// ref's formula: e = exp(-|x|); x >= 0 ? 1 / (1 + e) : e / (1 + e)
V vsigmoid(V x) {
    V e = vexp(_mm256_sub_ps(vset(0.f), vabs(x)));
    V d = _mm256_add_ps(vset(1.f), e);
    V pos = _mm256_cmp_ps(x, vset(0.f), _CMP_GE_OQ);
    V res = _mm256_div_ps(vsel(pos, vset(1.f), e), d);
    return vsel(visnan(x), x, res);
}

V vgelu_tanh(V x) {
    V x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    V inner = _mm256_mul_ps(vset(0.7978845608028654f), _mm256_add_ps(x, _mm256_mul_ps(vset(0.044715f), x3)));
    return _mm256_mul_ps(_mm256_mul_ps(vset(0.5f), x), _mm256_add_ps(vset(1.f), vtanh(inner)));
}

V vsoftplus(V x, const float* prm) {
    V b = vset(prm[0]), th = vset(prm[1]);
    V bx = _mm256_mul_ps(x, b);
    // min_nan(bx, th): _mm256_min_ps returns its second operand when one is NaN
    V m = _mm256_min_ps(th, bx);
    V res = _mm256_div_ps(vlog1p(vexp(m)), b);
    return vsel(_mm256_cmp_ps(bx, th, _CMP_GT_OQ), x, res);
}

template <VFn F> inline V vapply(V x, const float* prm) {
    if constexpr (F == VExp) return vexp(x);
    else if constexpr (F == VLog) return vlog(x);
    else if constexpr (F == VLog1p) return vlog1p(x);
    else if constexpr (F == VExpm1) return vexpm1(x);
    else if constexpr (F == VTanh) return vtanh(x);
    else if constexpr (F == VSigmoid) return vsigmoid(x);
    else if constexpr (F == VSilu) return _mm256_mul_ps(x, vsigmoid(x));
    else if constexpr (F == VGeluTanh) return vgelu_tanh(x);
    else return vsoftplus(x, prm);
}

template <VFn F> void vector_loop(const float* x, float* y, int64_t n, const float* prm) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, vapply<F>(_mm256_loadu_ps(x + i), prm));
    if (i < n) {  // the tail through a padded vector: the same code, the same values
        alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t j = i; j < n; ++j) buf[j - i] = x[j];
        _mm256_store_ps(buf, vapply<F>(_mm256_load_ps(buf), prm));
        for (int64_t j = i; j < n; ++j) y[j] = buf[j - i];
    }
}
#define TF_VLOOP vector_loop
#else
#define TF_VLOOP scalar_loop
#endif
}  // namespace

void vm_unary(VFn f, const float* x, float* y, int64_t n, const float* prm) {
    switch (f) {
        case VExp: return TF_VLOOP<VExp>(x, y, n, prm);
        case VLog: return TF_VLOOP<VLog>(x, y, n, prm);
        case VLog1p: return TF_VLOOP<VLog1p>(x, y, n, prm);
        case VExpm1: return TF_VLOOP<VExpm1>(x, y, n, prm);
        case VTanh: return TF_VLOOP<VTanh>(x, y, n, prm);
        case VSigmoid: return TF_VLOOP<VSigmoid>(x, y, n, prm);
        case VSilu: return TF_VLOOP<VSilu>(x, y, n, prm);
        case VErf: return scalar_loop<VErf>(x, y, n, prm);
        case VGeluErf: return scalar_loop<VGeluErf>(x, y, n, prm);
        case VGeluTanh: return TF_VLOOP<VGeluTanh>(x, y, n, prm);
        case VSoftplus: return TF_VLOOP<VSoftplus>(x, y, n, prm);
        case VNone: break;
    }
}

void vm_row(int64_t n, char** p, const int64_t* s, const void* ctx) {
    const VCtx& v = *static_cast<const VCtx*>(ctx);
    if (s[0] == 4 && s[1] == 4)
        return vm_unary(v.f, reinterpret_cast<const float*>(p[1]), reinterpret_cast<float*>(p[0]), n, v.prm);
    // strided rows run the same code on a staged block, so values never depend on layout
    float buf[kBlock];
    for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
        const int64_t m = std::min(kBlock, n - i0);
        for (int64_t i = 0; i < m; ++i) buf[i] = *reinterpret_cast<const float*>(p[1] + (i0 + i) * s[1]);
        vm_unary(v.f, buf, buf, m, v.prm);
        for (int64_t i = 0; i < m; ++i) *reinterpret_cast<float*>(p[0] + (i0 + i) * s[0]) = buf[i];
    }
}

}  // namespace ew
TINYFW_ISA_END
}  // namespace tf
