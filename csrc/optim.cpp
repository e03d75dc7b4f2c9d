// optim kernels (to be filled in)
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_optim(py::module_& m) { (void)m; }
