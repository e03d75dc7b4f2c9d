// float32 transcendental functions over contiguous arrays (elementwise_vmath.cpp), kept
// apart from elementwise.h so that their file compiles without pybind11.
#pragma once

#include "isa.h"

#include <cstdint>

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace ew {

constexpr int64_t kBlock = 256;  // staging block (elements): half types, strided rows

/// The float32 functions with a vectorised implementation (elementwise_vmath.cpp).
enum VFn : int { VExp, VLog, VLog1p, VExpm1, VTanh, VSigmoid, VSilu, VErf, VGeluErf, VGeluTanh, VSoftplus, VNone };
/// y[i] = f(x[i]) for contiguous float32 arrays (y may alias x); prm: softplus's
/// (beta, threshold).  Same values whatever n and the alignment (tails run the same code).
void vm_unary(VFn f, const float* x, float* y, int64_t n, const float* prm);
/// State of a vm_unary row kernel.
struct VCtx {
    VFn f;
    float prm[2];
};
/// Row kernel over float32 rows for vm_unary (strided rows staged through a block).
void vm_row(int64_t n, char** p, const int64_t* s, const void* ctx);

}  // namespace ew
TINYFW_ISA_END
}  // namespace tf
