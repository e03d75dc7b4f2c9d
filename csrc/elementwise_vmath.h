// float32 transcendental functions over contiguous arrays (elementwise_vmath.cpp), kept
// apart from elementwise.h so that their file compiles without pybind11.
#pragma once

#include "isa.h"

#include <cstdint>

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace ew {

constexpr int64_t kBlock = 256;  // staging block (elements): half types, strided rows

// GELU's constants in float64 (the float64 kernels and the scalar path)
constexpr double kSqrt1_2 = 0.7071067811865476;     // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.3989422804014327;  // 1 / sqrt(2 pi) = phi(0)
constexpr double kK2 = 1.5957691216057308;          // 2 sqrt(2 / pi): tanh(u) = 2 sigmoid(2u) - 1
constexpr double kGeluRoot = -0.7517915246935645;   // gelu'(x) < 0 below it (float64 underflow: -0)

/// The float32 functions with a vectorised implementation (elementwise_vmath.cpp).
enum VFn : int {
    VExp, VLog, VLog1p, VExpm1, VTanh, VSigmoid, VSilu, VErf, VErfc, VGeluErf, VGeluTanh, VSoftplus,
    VExp2, VLog2, VSinh, VCosh,  // issue 16: vmath_math.h
    VGeluBwdErf, VGeluBwdTanh, VSiluBwd,  // binary: y = g * f'(x)
    VNone
};
/// y[i] = f(x[i]) for contiguous float32 arrays (y may alias x); prm: softplus's
/// (beta, threshold).  Same values whatever n and the alignment (tails run the same code).
void vm_unary(VFn f, const float* x, float* y, int64_t n, const float* prm);
/// y[i] = g[i] * f'(x[i]) for the binary functions (GELU's and SiLU's backward); y may
/// alias g or x.
void vm_binary(VFn f, const float* g, const float* x, float* y, int64_t n);
/// State of a vm_row / vm_row2 row kernel.
struct VCtx {
    VFn f;
    float prm[2];
};
/// Row kernel over float32 rows for vm_unary (strided rows staged through a block).
void vm_row(int64_t n, char** p, const int64_t* s, const void* ctx);
/// Row kernel (out, g, x) for vm_binary.
void vm_row2(int64_t n, char** p, const int64_t* s, const void* ctx);
/// The instruction set the vector math was compiled for: "avx512", "avx2" or "scalar".
const char* vm_isa();

}  // namespace ew
TINYFW_ISA_END
}  // namespace tf
