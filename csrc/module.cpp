// tinyfw._C: the C++ CPU kernels.  Each kernel family lives in its own file and
// registers its functions here; the Python side (tinyfw/backend/_cpu_bind.py) installs
// every function whose name matches a primitive of the reference backend.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_core(py::module_& m);
void register_elementwise(py::module_& m);
void register_reduce(py::module_& m);
void register_gemm(py::module_& m);
void register_nn(py::module_& m);
void register_optim(py::module_& m);
void register_index(py::module_& m);
void register_shape(py::module_& m);

PYBIND11_MODULE(_C, m) {
    m.doc() = "tinyfw C++ CPU kernels";
    register_core(m);
    register_elementwise(m);
    register_reduce(m);
    register_gemm(m);
    register_nn(m);
    register_optim(m);
    register_index(m);
    register_shape(m);
}
