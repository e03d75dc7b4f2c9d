// The nn kernels of tinyfw._C.  One family per file, compiled as ONE translation unit:
// the pybind11 headers dominate compile time, and the build must stay under two minutes
// on two cores.
//   nn_conv.inc   conv2d and its backward passes (im2col + GEMM)
//   nn_pool.inc   max_pool2d / avg_pool2d and backward
//   nn_fused.inc  softmax / log_softmax, cross-entropy
//   nn_norm.inc   layer_norm, batch_norm, dropout
#include "nn_conv.inc"
#include "nn_pool.inc"
#include "nn_fused.inc"
#include "nn_norm.inc"

namespace tinyfw {
TINYFW_ISA_BEGIN
void register_nn(pybind11::module_& m) {
    register_conv(m);
    register_pool(m);
    register_nn_fused(m);
    register_norm(m);
}
TINYFW_ISA_END
}  // namespace tinyfw
