// tinyfw._C: the C++ CPU kernels.  Each kernel family lives in its own file and
// registers its functions here; the Python side (tinyfw/backend/_cpu_bind.py) installs
// every function whose name matches a primitive of the reference backend.
//
// The ISA-independent families are registered directly; the hot kernels exist once per
// ISA level compiled into this build (TINYFW_BUILD_LEVELS, from setup.py: bit 0 scalar,
// 1 avx2, 2 avx512, 3 native) and isa.cpp registers one level's.
#include <pybind11/pybind11.h>

#include "isa_select.h"

namespace py = pybind11;

void register_core(py::module_& m);
void register_index(py::module_& m);
void register_index_reduce(py::module_& m);  // index_reduce.cpp: scatter_reduce (issue 16)
void register_shape(py::module_& m);
void register_reduce_arg(py::module_& m);     // reduce_arg.cpp: argmax, argmin, cumsum
void register_reduce_anyall(py::module_& m);  // reduce_anyall.cpp: any, all
void register_scan(py::module_& m);           // scan.cpp: cumprod, cummax, cummin, logcumsumexp
void register_interpolate(py::module_& m);    // interpolate.cpp: resample_axis (+ backward)

#ifndef TINYFW_BUILD_LEVELS
#define TINYFW_BUILD_LEVELS 1  // the files compiled once, as the scalar level
#endif

#define TF_LEVEL(NAME, NS)                                                        \
    namespace tf {                                                                \
    namespace NS {                                                                \
    uint64_t isa_required_features();                                             \
    void isa_register_kernels(py::module_& m);                                    \
    }                                                                             \
    }
#if TINYFW_BUILD_LEVELS & 1
TF_LEVEL("scalar", isa_scalar)
#endif
#if TINYFW_BUILD_LEVELS & 2
TF_LEVEL("avx2", isa_avx2)
#endif
#if TINYFW_BUILD_LEVELS & 4
TF_LEVEL("avx512", isa_avx512)
#endif
#if TINYFW_BUILD_LEVELS & 8
TF_LEVEL("native", isa_native)
#endif
#undef TF_LEVEL
#define TF_LEVEL(NAME, NS) {NAME, &tf::NS::isa_required_features, &tf::NS::isa_register_kernels},

PYBIND11_MODULE(_C, m) {
    m.doc() = "tinyfw C++ CPU kernels";
    register_core(m);
    register_index(m);
    register_index_reduce(m);
    register_shape(m);
    register_reduce_arg(m);
    register_reduce_anyall(m);
    register_scan(m);
    register_interpolate(m);
    static const tf::isa::Level levels[] = {
#if TINYFW_BUILD_LEVELS & 1
        TF_LEVEL("scalar", isa_scalar)
#endif
#if TINYFW_BUILD_LEVELS & 2
        TF_LEVEL("avx2", isa_avx2)
#endif
#if TINYFW_BUILD_LEVELS & 4
        TF_LEVEL("avx512", isa_avx512)
#endif
#if TINYFW_BUILD_LEVELS & 8
        TF_LEVEL("native", isa_native)
#endif
    };
    tf::isa::install(m, levels, int(sizeof(levels) / sizeof(levels[0])));
}
