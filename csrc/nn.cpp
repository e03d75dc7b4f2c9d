// The nn kernels of tinyfw._C.  One family per file, compiled as ONE translation unit:
// the pybind11 headers dominate compile time, and the build must stay under two minutes
// on two cores.
//   nn_conv.inc   conv2d and its backward passes (im2col + GEMM)
//   nn_pool.inc   max_pool2d / avg_pool2d and backward
//   nn_fused.inc  softmax / log_softmax and backward (row kernels: nn_rows.h, vexp.h)
//   nn_ce.inc     cross-entropy with class indices
//   nn_norm.inc   layer_norm
//   nn_add_norm.inc layer_norm(gelu(h + b) + x) as one row kernel
//   nn_rms.inc    rms_norm
//   nn_bnorm.inc  batch_norm (training-mode statistics)
//   nn_dropout.inc dropout (numpy's PCG64 stream)
#include "nn_conv.inc"
#include "nn_pool.inc"
#include "nn_fused.inc"
#include "nn_ce.inc"
#include "nn_norm.inc"
#include "nn_add_norm.inc"
#include "nn_rms.inc"
#include "nn_bnorm.inc"
#include "nn_dropout.inc"

namespace tinyfw {
TINYFW_ISA_BEGIN
void register_nn(pybind11::module_& m) {
    register_conv(m);
    register_pool(m);
    register_nn_fused(m);
    register_nn_ce(m);
    register_norm(m);
    register_add_norm(m);
    register_rms_norm(m);
    register_bnorm(m);
    register_dropout(m);
}
TINYFW_ISA_END
}  // namespace tinyfw
