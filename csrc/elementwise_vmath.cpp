// float32 transcendental functions over contiguous arrays (vm_unary, see elementwise.h).
// The scalar formulas below are the specification's (backend/ref.py) evaluated per
// element with libm; they are the TINYFW_PORTABLE path.
// No FMA contraction in the scalar formulas (as in the other elementwise files); the
// vector code states its FMAs explicitly.
#pragma GCC optimize("fp-contract=off")

#include "elementwise_vmath.h"

#include <algorithm>
#include <cmath>

namespace tf {
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

}  // namespace

void vm_unary(VFn f, const float* x, float* y, int64_t n, const float* prm) {
    switch (f) {
        case VExp: return scalar_loop<VExp>(x, y, n, prm);
        case VLog: return scalar_loop<VLog>(x, y, n, prm);
        case VLog1p: return scalar_loop<VLog1p>(x, y, n, prm);
        case VExpm1: return scalar_loop<VExpm1>(x, y, n, prm);
        case VTanh: return scalar_loop<VTanh>(x, y, n, prm);
        case VSigmoid: return scalar_loop<VSigmoid>(x, y, n, prm);
        case VSilu: return scalar_loop<VSilu>(x, y, n, prm);
        case VErf: return scalar_loop<VErf>(x, y, n, prm);
        case VGeluErf: return scalar_loop<VGeluErf>(x, y, n, prm);
        case VGeluTanh: return scalar_loop<VGeluTanh>(x, y, n, prm);
        case VSoftplus: return scalar_loop<VSoftplus>(x, y, n, prm);
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
}  // namespace tf
