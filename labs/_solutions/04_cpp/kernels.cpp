// Lab 4: C++ kernels bound to Python with pybind11.
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
    if (x.ndim() != y.ndim() || !std::equal(x.shape(), x.shape() + x.ndim(), y.shape()))
        throw std::invalid_argument("axpy: x " + shape_of(x) + " and y " + shape_of(y) +
                                    " must have the same shape");
    Array out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const float* px = x.data();
    const float* py_ = y.data();
    float* po = out.mutable_data();
    const py::ssize_t n = x.size();
    {
        py::gil_scoped_release release;
#pragma omp simd
        for (py::ssize_t i = 0; i < n; ++i) po[i] = alpha * px[i] + py_[i];
    }
    return out;
}

// TASK 4.1 — softplus(x) = log(1 + exp(x)), computed without overflow for large x
// (max(x, 0) + log1p(exp(-|x|))).
Array softplus(Array x) {
    Array out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const float* px = x.data();
    float* po = out.mutable_data();
    const py::ssize_t n = x.size();
    {
        py::gil_scoped_release release;
        for (py::ssize_t i = 0; i < n; ++i) {
            float v = px[i];
            po[i] = std::max(v, 0.0f) + std::log1p(std::exp(-std::fabs(v)));
        }
    }
    return out;
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
    check_matmul(a, b, "matmul_naive");
    const py::ssize_t m = a.shape(0), k = a.shape(1), n = b.shape(1);
    Array c({m, n});
    const float* pa = a.data();
    const float* pb = b.data();
    float* pc = c.mutable_data();
    {
        py::gil_scoped_release release;
        for (py::ssize_t i = 0; i < m; ++i)
            for (py::ssize_t j = 0; j < n; ++j) {
                float s = 0.0f;
                for (py::ssize_t p = 0; p < k; ++p) s += pa[i * k + p] * pb[p * n + j];
                pc[i * n + j] = s;
            }
    }
    return c;
}

// TASK 4.3 — C = A @ B, blocked for the caches and parallel over row blocks: tiles of
// BM rows x BK of the k range, with the innermost loop running along a row of B and C
// (unit stride, so the compiler vectorises it).
Array matmul_blocked(Array a, Array b) {
    check_matmul(a, b, "matmul_blocked");
    const py::ssize_t m = a.shape(0), k = a.shape(1), n = b.shape(1);
    Array c({m, n});
    const float* pa = a.data();
    const float* pb = b.data();
    float* pc = c.mutable_data();
    constexpr py::ssize_t BM = 32, BK = 128;
    {
        py::gil_scoped_release release;
#pragma omp parallel for schedule(static)
        for (py::ssize_t i0 = 0; i0 < m; i0 += BM) {
            const py::ssize_t i1 = std::min(m, i0 + BM);
            for (py::ssize_t i = i0; i < i1; ++i)
                for (py::ssize_t j = 0; j < n; ++j) pc[i * n + j] = 0.0f;
            for (py::ssize_t p0 = 0; p0 < k; p0 += BK) {
                const py::ssize_t p1 = std::min(k, p0 + BK);
                for (py::ssize_t i = i0; i < i1; ++i) {
                    float* crow = pc + i * n;
                    for (py::ssize_t p = p0; p < p1; ++p) {
                        const float av = pa[i * k + p];
                        const float* brow = pb + p * n;
#pragma omp simd
                        for (py::ssize_t j = 0; j < n; ++j) crow[j] += av * brow[j];
                    }
                }
            }
        }
    }
    return c;
}

PYBIND11_MODULE(lab4_kernels, m) {
    m.doc() = "Lab 4's kernels";
    m.def("axpy", &axpy, "alpha * x + y", py::arg("alpha"), py::arg("x"), py::arg("y"));
    m.def("softplus", &softplus, "log(1 + exp(x))", py::arg("x"));
    m.def("matmul_naive", &matmul_naive, "A @ B, triple loop", py::arg("a"), py::arg("b"));
    m.def("matmul_blocked", &matmul_blocked, "A @ B, blocked and parallel", py::arg("a"),
          py::arg("b"));
}
