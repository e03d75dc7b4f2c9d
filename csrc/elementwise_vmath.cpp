// float32 transcendental functions over contiguous arrays (vm_unary / vm_binary, see
// elementwise_vmath.h): the vector code of vmath_exp.h, vmath_erf.h and vmath_gelu.h for
// the widest instruction set the compiler targets (AVX-512 F, else AVX2 + FMA), and a
// scalar path otherwise (TINYFW_PORTABLE builds).
//
// The scalar path evaluates each function in float64 with libm and rounds once: the
// readable formulas of backend/ref.py, accurate to within an ulp of float32 (the same
// <= 4 ulp sweep tests hold it too).
// No FMA contraction in the scalar formulas (as in the other elementwise files); the
// vector code states its FMAs explicitly.
#pragma GCC optimize("fp-contract=off")

#include "elementwise_vmath.h"

#include <algorithm>
#include <cmath>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include "vmath_gelu.h"
#include "vmath_math.h"
#endif

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace ew {
namespace {

// ------------------------------------------------------------------ scalar (float64) path
inline double sigmoid_d(double x) { return 1.0 / (1.0 + std::exp(-x)); }
// gelu'(x) = Phi(x) + x phi(x) (both terms underflow past x = -38: the zero keeps the sign)
inline double dgelu_erf_d(double x) {
    const double d = 0.5 * std::erfc(-x * kSqrt1_2) + x * (std::exp(-0.5 * x * x) * kInvSqrt2Pi);
    return d != 0 ? d : std::copysign(0.0, x - kGeluRoot);
}
// tanh form: d/dx x sigmoid(2u) = s (1 + w (1 - s)), s = sigmoid(2u), w = 2 x u'
inline double dgelu_tanh_d(double x) {
    const double u2 = kK2 * x * (1.0 + 0.044715 * x * x);
    const double w = kK2 * x * (1.0 + 3 * 0.044715 * x * x);
    return sigmoid_d(u2) * (1.0 + w * sigmoid_d(-u2));
}

// f(x) in float64 (the caller rounds once)
double scalar_of(VFn f, float xf, const float* prm) {
    const double x = xf;
    switch (f) {
        case VExp: return std::exp(x);
        case VLog: return std::log(x);
        case VLog1p: return std::log1p(x);
        case VExpm1: return std::expm1(x);
        case VTanh: return std::tanh(x);
        case VSigmoid: return sigmoid_d(x);
        case VSilu: return x * sigmoid_d(x);
        case VErf: return std::erf(x);
        case VErfc: return std::erfc(x);
        case VGeluErf: return 0.5 * x * std::erfc(-x * kSqrt1_2);
        case VGeluTanh: return x * sigmoid_d(kK2 * x * (1.0 + 0.044715 * x * x));
        case VSoftplus: {  // ref's formula: beta x and the threshold test in float32
            const float bx = xf * prm[0];
            const float m = bx < prm[1] || bx != bx ? bx : prm[1];
            return bx > prm[1] ? xf : std::log1p(std::exp(double(m))) / prm[0];
        }
        case VExp2: return std::exp2(x);
        case VLog2: return std::log2(x);
        case VSinh: return std::sinh(x);
        case VCosh: return std::cosh(x);
        case VGeluBwdErf: return dgelu_erf_d(x);
        case VGeluBwdTanh: return dgelu_tanh_d(x);
        case VSiluBwd: {  // ref's float32 formula on the rounded sigmoid
            const float s = float(sigmoid_d(x));
            return s * (1.f + xf * (1.f - s));
        }
        case VNone: break;
    }
    return x;
}

template <VFn F> void scalar_loop(const float* x, float* y, int64_t n, const float* prm) {
    for (int64_t i = 0; i < n; ++i) y[i] = float(scalar_of(F, x[i], prm));
}
template <VFn F> void scalar_loop2(const float* g, const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = float(double(g[i]) * scalar_of(F, x[i], nullptr));
}

// ------------------------------------------------------------------ vector path
#if defined(__AVX512F__)
using S = vm::Avx512;
#elif defined(__AVX2__) && defined(__FMA__)
using S = vm::Avx2;
#endif

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define TF_VMATH 1
using V = S::V;

template <VFn F> inline V vapply(V x, const float* prm) {
    using Ex = vm::ExpFns<S>;
    using Er = vm::ErfFns<S>;
    using Ge = vm::GeluFns<S>;
    if constexpr (F == VExp) return Ex::exp(x);
    else if constexpr (F == VLog) return Ex::log(x);
    else if constexpr (F == VLog1p) return Ex::log1p(x);
    else if constexpr (F == VExpm1) return Ex::expm1(x);
    else if constexpr (F == VTanh) return Ex::tanh(x);
    else if constexpr (F == VSigmoid) return Ex::sigmoid(x);
    else if constexpr (F == VSilu) return Ex::silu(x);
    else if constexpr (F == VErf) return Er::erf(x);
    else if constexpr (F == VErfc) return Er::erfc(x);
    else if constexpr (F == VGeluErf) return Ge::gelu_erf(x);
    else if constexpr (F == VGeluTanh) return Ge::gelu_tanh(x);
    else if constexpr (F == VExp2) return vm::MathFns<S>::exp2(x);
    else if constexpr (F == VLog2) return vm::MathFns<S>::log2(x);
    else if constexpr (F == VSinh) return vm::MathFns<S>::sinh(x);
    else if constexpr (F == VCosh) return vm::MathFns<S>::cosh(x);
    else if constexpr (F == VGeluBwdErf) return Ge::dgelu_erf(x);
    else if constexpr (F == VGeluBwdTanh) return Ge::dgelu_tanh(x);
    else if constexpr (F == VSiluBwd) {
        const V s = Ex::sigmoid(x);
        return s * (1.f + x * (1.f - s));
    }
    else return Ex::softplus(x, prm);
}

template <VFn F> void vector_loop(const float* x, float* y, int64_t n, const float* prm) {
    int64_t i = 0;
    for (; i + S::W <= n; i += S::W) S::store(y + i, vapply<F>(S::load(x + i), prm));
    // the tail through the same code on a zero-padded vector: the same values
    if (i < n) S::store_tail(y + i, vapply<F>(S::load_tail(x + i, n - i), prm), n - i);
}
template <VFn F> void vector_loop2(const float* g, const float* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + S::W <= n; i += S::W) S::store(y + i, S::load(g + i) * vapply<F>(S::load(x + i), nullptr));
    if (i < n) {
        const int64_t m = n - i;
        S::store_tail(y + i, S::load_tail(g + i, m) * vapply<F>(S::load_tail(x + i, m), nullptr), m);
    }
}
#define TF_VLOOP vector_loop
#define TF_VLOOP2 vector_loop2
#else
#define TF_VMATH 0
#define TF_VLOOP scalar_loop
#define TF_VLOOP2 scalar_loop2
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
        case VErf: return TF_VLOOP<VErf>(x, y, n, prm);
        case VErfc: return TF_VLOOP<VErfc>(x, y, n, prm);
        case VGeluErf: return TF_VLOOP<VGeluErf>(x, y, n, prm);
        case VGeluTanh: return TF_VLOOP<VGeluTanh>(x, y, n, prm);
        case VSoftplus: return TF_VLOOP<VSoftplus>(x, y, n, prm);
        case VExp2: return TF_VLOOP<VExp2>(x, y, n, prm);
        case VLog2: return TF_VLOOP<VLog2>(x, y, n, prm);
        case VSinh: return TF_VLOOP<VSinh>(x, y, n, prm);
        case VCosh: return TF_VLOOP<VCosh>(x, y, n, prm);
        default: break;
    }
}

void vm_binary(VFn f, const float* g, const float* x, float* y, int64_t n) {
    if (f == VGeluBwdErf) return TF_VLOOP2<VGeluBwdErf>(g, x, y, n);
    if (f == VGeluBwdTanh) return TF_VLOOP2<VGeluBwdTanh>(g, x, y, n);
    if (f == VSiluBwd) return TF_VLOOP2<VSiluBwd>(g, x, y, n);
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

void vm_row2(int64_t n, char** p, const int64_t* s, const void* ctx) {
    const VCtx& v = *static_cast<const VCtx*>(ctx);
    if (s[0] == 4 && s[1] == 4 && s[2] == 4)
        return vm_binary(v.f, reinterpret_cast<const float*>(p[1]), reinterpret_cast<const float*>(p[2]),
                         reinterpret_cast<float*>(p[0]), n);
    float g[kBlock], x[kBlock];
    for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
        const int64_t m = std::min(kBlock, n - i0);
        for (int64_t i = 0; i < m; ++i) {
            g[i] = *reinterpret_cast<const float*>(p[1] + (i0 + i) * s[1]);
            x[i] = *reinterpret_cast<const float*>(p[2] + (i0 + i) * s[2]);
        }
        vm_binary(v.f, g, x, g, m);
        for (int64_t i = 0; i < m; ++i) *reinterpret_cast<float*>(p[0] + (i0 + i) * s[0]) = g[i];
    }
}

const char* vm_isa() {
#if TF_VMATH
    return S::name;
#else
    return "scalar";
#endif
}

}  // namespace ew
TINYFW_ISA_END
}  // namespace tf
