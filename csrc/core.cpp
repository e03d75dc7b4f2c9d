// The C++ core (see core.h): dtypes, views, allocation, threads.  The copy kernels
// (cast, contiguous, copy_, fill_, ...) live in copy.cpp.
#include "core.h"

#include <atomic>

namespace tf {

[[noreturn]] void fail(const char* kernel, const std::string& msg) {
    throw std::invalid_argument(std::string(kernel) + ": " + msg);
}

std::string shape_str(const int64_t* shape, int ndim) {
    std::string s = "(";
    for (int i = 0; i < ndim; ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    if (ndim == 1) s += ",";
    return s + ")";
}

const char* dtype_name(DType dt) {
    switch (dt) {
        case DType::Bool: return "bool";
        case DType::Int8: return "int8";
        case DType::Int32: return "int32";
        case DType::Int64: return "int64";
        case DType::Float16: return "float16";
        case DType::BFloat16: return "bfloat16";
        case DType::Float32: return "float32";
        case DType::Float64: return "float64";
    }
    return "?";
}

int64_t dtype_size(DType dt) {
    switch (dt) {
        case DType::Bool:
        case DType::Int8: return 1;
        case DType::Float16:
        case DType::BFloat16: return 2;
        case DType::Int32:
        case DType::Float32: return 4;
        default: return 8;
    }
}

DType dtype_from_numpy(const py::dtype& d, const char* kernel) {
    const char k = d.kind();
    const auto sz = d.itemsize();
    if (k == 'f') {
        if (sz == 4) return DType::Float32;
        if (sz == 8) return DType::Float64;
        if (sz == 2) return DType::Float16;
    } else if (k == 'i') {
        if (sz == 1) return DType::Int8;
        if (sz == 4) return DType::Int32;
        if (sz == 8) return DType::Int64;
    } else if (k == 'b') {
        if (sz == 1) return DType::Bool;
    } else if (k == 'V' && sz == 2) {
        if (py::str(d.attr("name")).cast<std::string>() == "bfloat16") return DType::BFloat16;
    }
    fail(kernel, "unsupported dtype " + py::str(d).cast<std::string>() +
                     " (expected float32, float64, float16, bfloat16, int8, int32, int64 or bool)");
}

DType dtype_of(const py::array& a, const char* kernel) { return dtype_from_numpy(a.dtype(), kernel); }

py::dtype numpy_dtype(DType dt) {
    switch (dt) {
        case DType::Bool: return py::dtype::of<bool>();
        case DType::Int8: return py::dtype::of<int8_t>();
        case DType::Int32: return py::dtype::of<int32_t>();
        case DType::Int64: return py::dtype::of<int64_t>();
        case DType::Float16: return py::dtype("float16");
        case DType::Float32: return py::dtype::of<float>();
        case DType::Float64: return py::dtype::of<double>();
        case DType::BFloat16: {
            // leaked on purpose: a static py::object would be destroyed after the interpreter
            static PyObject* bf16 = [] {
                py::object t = py::module_::import("ml_dtypes").attr("bfloat16");
                return py::dtype::from_args(t).release().ptr();
            }();
            return py::reinterpret_borrow<py::dtype>(bf16);
        }
    }
    throw std::invalid_argument("numpy_dtype: bad dtype");
}

bool View::is_contiguous() const {
    int64_t expect = 1;
    for (int i = ndim - 1; i >= 0; --i) {
        if (shape[i] != 1 && strides[i] != expect) return shape[i] == 0 || numel() == 0;
        expect *= shape[i];
    }
    return true;
}

View view_of(const py::array& a, const char* kernel) {
    View v;
    v.dtype = dtype_of(a, kernel);
    v.ndim = int(a.ndim());
    if (v.ndim > kMaxDims) fail(kernel, "too many dimensions (" + std::to_string(v.ndim) + ")");
    v.data = static_cast<char*>(const_cast<void*>(a.data()));
    v.writeable = a.writeable();
    const int64_t isz = dtype_size(v.dtype);
    // kernels load elements through T*: a misaligned base (np.frombuffer at an odd offset,
    // shared by from_numpy) is undefined behaviour, found by UBSan (docs/sanitizers.md)
    if (reinterpret_cast<uintptr_t>(v.data) % uintptr_t(isz) != 0)
        fail(kernel, "array data is not aligned to its " + std::to_string(isz) +
                         "-byte elements (copy it first, e.g. np.require(a, requirements='A'))");
    for (int i = 0; i < v.ndim; ++i) {
        v.shape[i] = a.shape(i);
        int64_t s = a.strides(i);
        if (s % isz != 0) fail(kernel, "array strides are not a multiple of the element size");
        v.strides[i] = s / isz;
    }
    return v;
}

View writeable_view_of(const py::array& a, const char* kernel) {
    View v = view_of(a, kernel);
    if (!v.writeable) fail(kernel, "the destination array is read-only");
    return v;
}

py::array empty(DType dt, const int64_t* shape, int ndim) {
    return empty(numpy_dtype(dt), std::vector<int64_t>(shape, shape + ndim));
}

py::array empty(const py::dtype& dt, const std::vector<int64_t>& shape) {
    std::vector<py::ssize_t> sh(shape.begin(), shape.end());
    size_t bytes = size_t(dt.itemsize());
    for (int64_t n : shape) bytes *= size_t(n);
    void* data = nullptr;
    py::object block = pooled_buffer(bytes, &data);  // None: small, or the pool is off
    if (!block.is_none()) return py::array(dt, sh, data, block);
    return py::array(dt, sh);
}

py::array empty_permuted(DType dt, const int64_t* shape, int ndim, const int* perm) {
    const int64_t isz = dtype_size(dt);
    int64_t total = 1;
    for (int i = 0; i < ndim; ++i) total *= shape[i];
    std::vector<py::ssize_t> sh(shape, shape + ndim), st(ndim);
    int64_t s = isz;
    for (int i = ndim - 1; i >= 0; --i) {
        st[perm[i]] = s;
        s *= std::max<int64_t>(shape[perm[i]], 1);
    }
    // a flat buffer, then a strided view of it that owns it through `base`
    const int64_t flat_n = std::max<int64_t>(total, 1);
    py::array flat = empty(dt, &flat_n, 1);
    return py::array(numpy_dtype(dt), sh, st, flat.mutable_data(), flat);
}

int broadcast_shape(const char* kernel, const View* const* views, int n, int64_t* out) {
    int nd = 0;
    for (int k = 0; k < n; ++k) nd = std::max(nd, views[k]->ndim);
    for (int d = 0; d < nd; ++d) out[d] = 1;
    for (int k = 0; k < n; ++k) {
        const View& v = *views[k];
        for (int i = 0; i < v.ndim; ++i) {
            int d = nd - v.ndim + i;
            int64_t s = v.shape[i];
            if (s == out[d] || s == 1) continue;
            if (out[d] == 1) {
                out[d] = s;
                continue;
            }
            std::string msg = "shapes";
            for (int j = 0; j < n; ++j) msg += " " + views[j]->shape_str();
            fail(kernel, msg + " cannot be broadcast together");
        }
    }
    return nd;
}

void broadcast_strides(const View& v, const int64_t* shape, int ndim, int64_t* out) {
    const int off = ndim - v.ndim;
    for (int d = 0; d < ndim; ++d) {
        int i = d - off;
        out[d] = (i < 0 || v.shape[i] == 1) ? 0 : v.strides[i];
    }
    (void)shape;
}

bool keep_order(const int64_t* shape, int ndim, const View* const* views, int n, int* perm) {
    for (int d = 0; d < ndim; ++d) perm[d] = d;
    bool any = false;
    int64_t st[8][kMaxDims];
    n = std::min(n, 8);
    for (int k = 0; k < n; ++k) {
        broadcast_strides(*views[k], shape, ndim, st[k]);
        if (!views[k]->is_contiguous() && views[k]->ndim == ndim) any = true;
    }
    if (!any) return false;
    // "a goes outside b": the first operand with non-zero strides on both decides
    auto outer = [&](int a, int b) {
        for (int k = 0; k < n; ++k) {
            int64_t sa = std::abs(st[k][a]), sb = std::abs(st[k][b]);
            if (sa == 0 || sb == 0 || shape[a] == 1 || shape[b] == 1) continue;
            if (sa != sb) return sa > sb;
        }
        return false;
    };
    std::stable_sort(perm, perm + ndim, [&](int a, int b) { return outer(a, b); });
    for (int d = 0; d < ndim; ++d)
        if (perm[d] != d) return true;
    return false;
}

// ------------------------------------------------------------------------ threads
namespace {
std::atomic<int> g_threads{0};
// A per-thread count that overrides g_threads on the thread that set it (0: none): the
// jit's inter-op pool runs two graph branches at once, each on its own share of the cores
// (tinyfw/jit/parallel.py).  OpenMP's own count (omp_set_num_threads, read back by the
// kernels through omp_get_max_threads) is already per thread; g_threads is not.
thread_local int t_threads = 0;
thread_local int t_omp_before = 0;  // this thread's OpenMP count before the override
}

int get_num_threads() {
    if (t_threads > 0) return t_threads;
    int n = g_threads.load(std::memory_order_relaxed);
    if (n > 0) return n;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void set_num_threads(int n) {
    if (n < 1) throw std::invalid_argument("set_num_threads: expected a positive number of threads, got " + std::to_string(n));
    g_threads.store(n, std::memory_order_relaxed);
#ifdef _OPENMP
    omp_set_num_threads(n);  // for code (part B's) that relies on the default team size
#endif
}

int set_local_num_threads(int n) {
    if (n < 0) throw std::invalid_argument("_set_local_num_threads: expected 0 (none) or a positive number of threads, got " + std::to_string(n));
    const int prev = t_threads;
#ifdef _OPENMP
    if (prev == 0 && n > 0) t_omp_before = omp_get_max_threads();
    if (n > 0) omp_set_num_threads(n);
    else if (prev > 0) omp_set_num_threads(t_omp_before);
#endif
    t_threads = n;
    return prev;
}

int omp_threads_for(int64_t n, int64_t grain) {
#ifdef _OPENMP
    if (n < grain || omp_in_parallel()) return 1;
    int nt = get_num_threads();
    int64_t by_work = grain > 0 ? n / grain : nt;
    return int(std::max<int64_t>(1, std::min<int64_t>(nt, by_work)));
#else
    (void)n;
    (void)grain;
    return 1;
#endif
}

}  // namespace tf

void register_copy(pybind11::module_& m);
void register_pool(pybind11::module_& m);

void register_core(pybind11::module_& m) {
    m.def("set_num_threads", &tf::set_num_threads, pybind11::arg("n"),
          "Set the number of OpenMP threads the kernels use.");
    m.def("get_num_threads", &tf::get_num_threads, "The number of threads the kernels use.");
    m.def("_set_local_num_threads", &tf::set_local_num_threads, pybind11::arg("n"),
          "Make the kernels called from this thread use n threads (0: the process-wide "
          "count again); returns the previous per-thread count (0: none).");
    register_copy(m);
    register_pool(m);
}
