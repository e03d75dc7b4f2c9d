// Lab 4: C++ kernels bound to Python with pybind11.
//
// Your work: every function that throws "TODO ..." (README.md lists the tasks).  Build and
// grade with: python -m tinyfw.labs grade 4 --src <this folder>
//
// Each function takes numpy float32 arrays (py::array_t<float>, converted to C order),
// checks shapes (a std::invalid_argument becomes a Python ValueError), releases the GIL
// around its loops (other Python threads may run meanwhile) and returns a new array.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace py = pybind11;
using Array = py::array_t<float, py::array::c_style | py::array::forcecast>;

static std::string shape_of(const Array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// TASK 4.1 — out = alpha * x + y elementwise (any shape, equal shapes required).
Array axpy(float alpha, Array x, Array y) {
    throw std::runtime_error("TODO 4.1: axpy");
}

// TASK 4.1 — softplus(x) = log(1 + exp(x)), computed without overflow for large x
// (max(x, 0) + log1p(exp(-|x|))).
Array softplus(Array x) {
    throw std::runtime_error("TODO 4.1: softplus");
}

static void check_matmul(const Array& a, const Array& b, const char* name) {
    if (a.ndim() != 2 || b.ndim() != 2)
        throw std::invalid_argument(std::string(name) + ": a " + shape_of(a) + " and b " +
                                    shape_of(b) + " must be 2-d");
    if (a.shape(1) != b.shape(0))
        throw std::invalid_argument(std::string(name) + ": shapes " + shape_of(a) + " and " +
                                    shape_of(b) + " do not align on " +
                                    std::to_string(a.shape(1)) + " vs " +
                                    std::to_string(b.shape(0)));
}

// TASK 4.2 — C = A @ B by the textbook triple loop (i, j, then the k sum), accumulating
// in float: the reference for speed.
Array matmul_naive(Array a, Array b) {
    throw std::runtime_error("TODO 4.2: matmul_naive");
}

// TASK 4.3 — C = A @ B, blocked for the caches and parallel over row blocks: tiles of
// BM rows x BK of the k range, with the innermost loop running along a row of B and C
// (unit stride, so the compiler vectorises it).
Array matmul_blocked(Array a, Array b) {
    throw std::runtime_error("TODO 4.3: matmul_blocked");
}

PYBIND11_MODULE(lab4_kernels, m) {
    m.doc() = "Lab 4's kernels";
    m.def("axpy", &axpy, "alpha * x + y", py::arg("alpha"), py::arg("x"), py::arg("y"));
    m.def("softplus", &softplus, "log(1 + exp(x))", py::arg("x"));
    m.def("matmul_naive", &matmul_naive, "A @ B, triple loop", py::arg("a"), py::arg("b"));
    m.def("matmul_blocked", &matmul_blocked, "A @ B, blocked and parallel", py::arg("a"),
          py::arg("b"));
}
