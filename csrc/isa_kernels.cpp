// The kernels of one ISA level (this file is compiled once per level, like every file
// whose code sits in TINYFW_ISA_BEGIN ... TINYFW_ISA_END): what isa.cpp needs to choose
// the level and to register its kernels.
#include <pybind11/pybind11.h>

#include "isa.h"

namespace tinyfw {
TINYFW_ISA_BEGIN
void register_gemm(pybind11::module_& m);  // matmul.cpp
void register_nn(pybind11::module_& m);    // nn.cpp
void register_quant(pybind11::module_& m);  // quant.cpp
void register_attention(pybind11::module_& m);  // attention.cpp
void register_layout_conv(pybind11::module_& m);  // layout_conv.cpp
void register_layout_ops(pybind11::module_& m);   // layout_ops.cpp
void register_conv3d(pybind11::module_& m);       // conv3d.cpp
TINYFW_ISA_END
}  // namespace tinyfw

namespace tf {
TINYFW_ISA_BEGIN
void register_elementwise(pybind11::module_& m);  // elementwise_binary.cpp
void register_reduce(pybind11::module_& m);       // reduce_sum.cpp
void register_cast(pybind11::module_& m);         // cast.cpp
void register_optim(pybind11::module_& m);        // optim.cpp
void register_collective(pybind11::module_& m);   // collective.cpp

/// The CPU features and OS register state this level's code needs (isa.h).
uint64_t isa_required_features() { return isa_compiled_features(); }

/// Register this level's kernels on the module.
void isa_register_kernels(pybind11::module_& m) {
    register_elementwise(m);
    register_reduce(m);
    register_cast(m);
    register_optim(m);
    register_collective(m);
    tinyfw::register_gemm(m);
    tinyfw::register_nn(m);
    tinyfw::register_quant(m);
    tinyfw::register_attention(m);
    tinyfw::register_layout_conv(m);
    tinyfw::register_layout_ops(m);
    tinyfw::register_conv3d(m);
}

TINYFW_ISA_END
}  // namespace tf
