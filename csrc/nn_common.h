// Small helpers shared by the GEMM and nn kernel bindings: dtype classification,
// strided views of numpy arrays, and the "compute half types in float32" convention.
//
// Half types (float16, bfloat16) are converted with numpy's own astype, under the GIL,
// before a kernel runs and rounded back once afterwards: the rounding then matches the
// reference backend bit for bit and the kernels only exist for float and double.
#pragma once

#include "isa.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace py = pybind11;

enum class Kind { F32, F64, Half, Int, Other };

/// Which family a numpy dtype belongs to (float16 and ml_dtypes' bfloat16 are Half).
inline Kind kind_of(const py::dtype& dt) {
    const char k = dt.kind();
    const auto sz = dt.itemsize();
    if (k == 'f' && sz == 4) return Kind::F32;
    if (k == 'f' && sz == 8) return Kind::F64;
    if (k == 'f' && sz == 2) return Kind::Half;
    if (k == 'V' && sz == 2 && py::str(dt.attr("name")).cast<std::string>() == "bfloat16")
        return Kind::Half;
    if (k == 'i' || k == 'u') return Kind::Int;
    return Kind::Other;
}

inline std::string dtype_name(const py::dtype& dt) {
    return py::str(dt.attr("name")).cast<std::string>();
}

inline std::string shape_str(const py::array& a) {
    std::ostringstream s;
    s << "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
    if (a.ndim() == 1) s << ",";
    s << ")";
    return s.str();
}

/// A strided view of a numpy array, strides counted in elements.
struct View {
    char* data = nullptr;
    std::vector<int64_t> shape, strides;
    int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
    int64_t numel() const {
        int64_t n = 1;
        for (auto s : shape) n *= s;
        return n;
    }
    template <typename T> T* ptr() const { return reinterpret_cast<T*>(data); }
};

/// The element-strided view of `a`; `a` must outlive the view.  Byte strides that are not a
/// multiple of the item size (possible for exotic numpy views) are rejected.
inline View view_of(const py::array& a, const char* op) {
    View v;
    v.data = static_cast<char*>(const_cast<void*>(a.data()));
    const auto item = a.itemsize();
    if (reinterpret_cast<uintptr_t>(v.data) % uintptr_t(item) != 0)  // UB through T* (UBSan)
        throw py::value_error(std::string(op) + ": array data is not aligned to its elements");
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        v.shape.push_back(a.shape(i));
        if (a.strides(i) % item != 0)
            throw py::value_error(std::string(op) + ": unaligned strides are not supported");
        v.strides.push_back(a.strides(i) / item);
    }
    return v;
}

/// A fresh C-contiguous array of `shape` with the dtype `dt`.
inline py::array empty_array(const py::dtype& dt, const std::vector<int64_t>& shape) {
    return tf::empty(dt, shape);  // large ones from the caching pool (pool.cpp)
}

/// `a` converted to float32 if it is a half type, else `a` itself.
inline py::array to_compute(const py::array& a) {
    if (kind_of(a.dtype()) == Kind::Half) return a.attr("astype")("float32");
    return a;
}

/// `a` (computed in float32) rounded back to the dtype `dt` if `dt` is a half type.
inline py::object from_compute(const py::array& a, const py::dtype& dt) {
    if (kind_of(dt) == Kind::Half) return a.attr("astype")(dt);
    return a;
}

/// A Python array argument checked to be an ndarray (not a list, not None).
inline py::array as_array(const py::handle& h, const char* op, const char* what) {
    if (!py::isinstance<py::array>(h))
        throw py::type_error(std::string(op) + ": " + what + " must be a numpy array, got " +
                             std::string(py::str(py::type::of(h).attr("__name__"))));
    py::array a = py::reinterpret_borrow<py::array>(h);
    if (a.itemsize() > 1 && reinterpret_cast<uintptr_t>(a.data()) % uintptr_t(a.itemsize()) != 0)  // UBSan
        throw py::value_error(std::string(op) + ": " + what + " data is not aligned to its elements");
    return a;
}

TINYFW_ISA_END
}  // namespace tinyfw
