// Shape-changing copies: cat, flip, tile, triu / tril (pad, masked_fill and fill_, the
// kernels that take a scalar, are in fill.cpp; sort in sort.cpp).
//
// These only move elements, so the loops dispatch on the item size (1, 2, 4 or 8 bytes),
// never on the dtype: the result is bit-identical to ref's for every dtype by construction
// (NaN payloads and -0.0 included).  Each kernel describes its output as a strided copy
// from a (possibly re-strided) view of the input — flip negates strides, tile splits every
// dim into (repetition, size) with a 0 source stride for the repetition — and runs core.h's
// Loop over it, whose inner rows become memcpy / fill / reversed loops.
//
// Arguments outside the contract that numpy would still accept (mixed dtypes in cat) go
// to the reference primitive (call_ref); malformed ones fail naming the kernel.
#include "core.h"

#include <Python.h>

namespace tf {
namespace shape_detail {  // shared with fill.cpp, which declares them

/// Strides (in elements) of a C-contiguous array of `shape`.
void c_strides(const int64_t* shape, int nd, int64_t* out) {
    int64_t s = 1;
    for (int d = nd - 1; d >= 0; --d) {
        out[d] = s;
        s *= std::max<int64_t>(shape[d], 1);
    }
}

/// A non-negative int from a Python object that supports __index__, or fail(K, what).
int64_t as_count(const py::handle& h, const char* K, const std::string& what) {
    PyObject* i = PyNumber_Index(h.ptr());
    if (i == nullptr) {
        PyErr_Clear();
        fail(K, what + " must be integers, got " + py::repr(h).cast<std::string>());
    }
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (overflow != 0 || v < 0) fail(K, what + " must be non-negative, got " + py::repr(h).cast<std::string>());
    return int64_t(v);
}

}  // namespace shape_detail

namespace {

using shape_detail::as_count;
using shape_detail::c_strides;

/// Copy src into dst (same shape `shape`, element strides given) for items of type W.
template <class W>
void copy_strided(char* dst, const int64_t* dst_strides, const char* src, const int64_t* src_strides,
                  const int64_t* shape, int nd) {
    char* data[2] = {dst, const_cast<char*>(src)};
    const int64_t* st[2] = {dst_strides, src_strides};
    const int64_t isz[2] = {int64_t(sizeof(W)), int64_t(sizeof(W))};
    auto L = make_loop<2>(shape, nd, data, st, isz);
    run_loop(L, [](int64_t n, char** p, const int64_t* s) {
        constexpr int64_t w = sizeof(W);
        W* __restrict o = reinterpret_cast<W*>(p[0]);
        const W* __restrict x = reinterpret_cast<const W*>(p[1]);
        if (s[0] == w && s[1] == w) {
            std::memcpy(o, x, size_t(n) * sizeof(W));
        } else if (s[0] == w && s[1] == 0) {
            const W v = *x;
            for (int64_t i = 0; i < n; ++i) o[i] = v;
        } else if (s[0] == w && s[1] == -w) {
            for (int64_t i = 0; i < n; ++i) o[i] = x[-i];
        } else {
            for (int64_t i = 0; i < n; ++i)
                *reinterpret_cast<W*>(p[0] + i * s[0]) = *reinterpret_cast<const W*>(p[1] + i * s[1]);
        }
    });
}

void copy_any(const View& dst, const View& src) {
    dispatch_width(dst.itemsize(), [&](auto w) {
        copy_strided<decltype(w)>(dst.data, dst.strides, src.data, src.strides, dst.shape, dst.ndim);
    });
}

/// `dim` wrapped into [0, ndim), or fail(K).
int wrap_dim(int64_t dim, int ndim, const char* K, const View& x) {
    if (dim < -int64_t(ndim) || dim >= int64_t(ndim))
        fail(K, "dim " + std::to_string(dim) + " out of range for shape " + x.shape_str());
    return int(dim < 0 ? dim + ndim : dim);
}

// ====================================================================================== cat
py::object cat(const py::sequence& arrays, int64_t dim) {
    const char* K = "cat";
    const size_t n = py::len(arrays);
    if (n == 0) fail(K, "expected a non-empty list of arrays");
    std::vector<py::array> arr;
    std::vector<View> vs;
    for (size_t i = 0; i < n; ++i) {
        py::object o = arrays[i];
        if (!py::isinstance<py::array>(o)) return call_ref(K, arrays, dim);  // numpy's conversions
        arr.push_back(py::reinterpret_borrow<py::array>(o));
    }
    for (const py::array& a : arr) vs.push_back(view_of(a, K));
    const View& v0 = vs[0];
    for (const View& v : vs)
        if (v.dtype != v0.dtype) return call_ref(K, arrays, dim);  // numpy's type promotion
    if (v0.ndim == 0) fail(K, "zero-dimensional arrays cannot be concatenated");
    const int d = wrap_dim(dim, v0.ndim, K, v0);
    int64_t shape[kMaxDims];
    std::copy(v0.shape, v0.shape + v0.ndim, shape);
    shape[d] = 0;
    for (size_t i = 0; i < n; ++i) {
        const View& v = vs[i];
        bool ok = v.ndim == v0.ndim;
        for (int k = 0; ok && k < v.ndim; ++k) ok = k == d || v.shape[k] == v0.shape[k];
        if (!ok)
            fail(K, "array " + std::to_string(i) + " has shape " + v.shape_str() + ", which does not match " +
                        v0.shape_str() + " except in dim " + std::to_string(d));
        shape[d] += v.shape[d];
    }
    py::array out = empty(v0.dtype, shape, v0.ndim);
    View o = view_of(out, K);
    py::gil_scoped_release nogil;
    int64_t at = 0;
    for (const View& v : vs) {
        View part = o;
        part.data += at * o.strides[d] * o.itemsize();
        part.shape[d] = v.shape[d];
        at += v.shape[d];
        copy_any(part, v);
    }
    return std::move(out);
}

// ===================================================================================== flip
py::array flip(const py::array& xa, const py::object& dims) {
    const char* K = "flip";
    View x = view_of(xa, K);
    std::vector<py::object> ds;
    if (py::isinstance<py::sequence>(dims)) {
        for (py::handle h : dims.cast<py::sequence>()) ds.push_back(py::reinterpret_borrow<py::object>(h));
    } else {
        ds.push_back(dims);
    }
    bool flipped[kMaxDims] = {false};
    for (const py::object& h : ds) {
        PyObject* i = PyNumber_Index(h.ptr());
        if (i == nullptr) {
            PyErr_Clear();
            fail(K, "dims must be integers, got " + py::repr(dims).cast<std::string>());
        }
        const int64_t d0 = PyLong_AsLongLong(i);
        Py_DECREF(i);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            fail(K, "dim " + py::repr(h).cast<std::string>() + " out of range for shape " + x.shape_str());
        }
        const int d = wrap_dim(d0, x.ndim, K, x);
        if (flipped[d]) fail(K, "repeated dim " + std::to_string(d) + " in " + py::repr(dims).cast<std::string>());
        flipped[d] = true;
    }
    View src = x;  // the reversed view: start at the last element of each flipped dim
    for (int k = 0; k < x.ndim; ++k) {
        if (!flipped[k] || x.shape[k] == 0) continue;
        src.data += (x.shape[k] - 1) * x.strides[k] * x.itemsize();
        src.strides[k] = -x.strides[k];
    }
    py::array out = empty(x.dtype, x.shape, x.ndim);
    View o = view_of(out, K);
    py::gil_scoped_release nogil;
    copy_any(o, src);
    return out;
}

// ===================================================================================== tile
py::object tile(const py::array& xa, const py::object& reps) {
    const char* K = "tile";
    View x = view_of(xa, K);
    std::vector<int64_t> r;
    if (py::isinstance<py::sequence>(reps)) {
        for (py::handle h : reps.cast<py::sequence>()) r.push_back(as_count(h, K, "reps"));
    } else {
        r.push_back(as_count(reps, K, "reps"));
    }
    // np.tile: the shorter of reps and shape is padded with leading 1s
    const int nd = std::max(int(r.size()), x.ndim), lead = nd - x.ndim;
    if (nd > kMaxDims) fail(K, "too many dimensions (" + std::to_string(nd) + ")");
    r.insert(r.begin(), size_t(nd - int(r.size())), 1);
    int64_t shape[kMaxDims];
    for (int k = 0; k < nd; ++k) {
        const int64_t s = k < lead ? 1 : x.shape[k - lead];
        if (__builtin_mul_overflow(s, r[size_t(k)], &shape[k])) fail(K, "tiled size of dim " + std::to_string(k) + " overflows");
    }
    // the output as (rep, size) pairs: out[i*s + j] = x[j], a 0 source stride for the rep
    int64_t fshape[kMaxDims], fdst[kMaxDims], fsrc[kMaxDims], ostr[kMaxDims];
    c_strides(shape, nd, ostr);
    int m = 0;
    for (int k = 0; k < nd; ++k) {
        const int64_t s = k < lead ? 1 : x.shape[k - lead], st = k < lead ? 0 : x.strides[k - lead];
        if (r[size_t(k)] != 1) {
            if (m == kMaxDims) return call_ref(K, xa, reps);  // more than 64 loop dims: rare
            fshape[m] = r[size_t(k)], fdst[m] = ostr[k] * s, fsrc[m] = 0, ++m;
        }
        if (s != 1) {
            if (m == kMaxDims) return call_ref(K, xa, reps);
            fshape[m] = s, fdst[m] = ostr[k], fsrc[m] = st, ++m;
        }
    }
    py::array out = empty(x.dtype, shape, nd);
    if (out.size() == 0) return std::move(out);
    char* const o = static_cast<char*>(out.mutable_data());
    py::gil_scoped_release nogil;
    dispatch_width(x.itemsize(), [&](auto w) { copy_strided<decltype(w)>(o, fdst, x.data, fsrc, fshape, m); });
    return std::move(out);
}

// ============================================================================ triu / tril
/// out = x on one side of diagonal k of the last two dims, 0 (all-zero bits in every
/// dtype) on the other: row i keeps columns [lo, hi).
py::array triangle(const py::array& xa, int64_t k, bool upper, const char* K) {
    View x = view_of(xa, K);
    if (x.ndim < 2) fail(K, "needs at least 2 dims, got shape " + x.shape_str());
    py::array out = empty(x.dtype, x.shape, x.ndim);
    const int nd = x.ndim;
    const int64_t N = x.shape[nd - 2], M = x.shape[nd - 1], rows = x.numel() / std::max<int64_t>(M, 1);
    if (rows == 0 || M == 0) return out;
    char* const o = static_cast<char*>(out.mutable_data());
    const int64_t isz = x.itemsize(), rs = x.strides[nd - 2], cs = x.strides[nd - 1];
    // clamp k so that i + k never overflows: beyond +-(N + M) every row is all or nothing
    const int64_t kc = std::max<int64_t>(-(N + M), std::min<int64_t>(k, N + M));
    py::gil_scoped_release nogil;
    dispatch_width(isz, [&](auto w) {
        using W = decltype(w);
        parallel_for(rows, std::max<int64_t>(1, kGrain / M), [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t i = r % N;
                int64_t q = r / N, off = i * rs;
                for (int d = nd - 3; d >= 0; --d) {
                    off += (q % x.shape[d]) * x.strides[d];
                    q /= x.shape[d];
                }
                const W* src = reinterpret_cast<const W*>(x.data) + off;
                W* row = reinterpret_cast<W*>(o) + r * M;
                // tril keeps j <= i + k; triu keeps j >= i + k
                const int64_t edge = i + kc;
                const int64_t lo = upper ? std::clamp<int64_t>(edge, 0, M) : 0;
                const int64_t hi = upper ? M : std::clamp<int64_t>(edge + 1, 0, M);
                std::memset(row, 0, size_t(lo) * sizeof(W));
                if (cs == 1) std::memcpy(row + lo, src + lo, size_t(hi - lo) * sizeof(W));
                else for (int64_t j = lo; j < hi; ++j) row[j] = src[j * cs];
                std::memset(row + hi, 0, size_t(M - hi) * sizeof(W));
            }
        });
    });
    return out;
}

py::array triu(const py::array& x, int64_t k) { return triangle(x, k, true, "triu"); }
py::array tril(const py::array& x, int64_t k) { return triangle(x, k, false, "tril"); }

}  // namespace
}  // namespace tf

void register_sort(pybind11::module_& m);  // sort.cpp
void register_fill(pybind11::module_& m);  // fill.cpp

void register_shape(pybind11::module_& m) {
    namespace py = pybind11;
    m.def("cat", &tf::cat, py::arg("arrays"), py::arg("dim"), "Concatenate along dim (C++ kernel).");
    m.def("flip", &tf::flip, py::arg("x"), py::arg("dims"), "A copy with dims reversed (C++ kernel).");
    m.def("tile", &tf::tile, py::arg("x"), py::arg("reps"), "x repeated reps times along each dim (C++ kernel).");
    m.def("triu", &tf::triu, py::arg("x"), py::arg("k"), "Upper triangle of the last two dims from diagonal k (C++ kernel).");
    m.def("tril", &tf::tril, py::arg("x"), py::arg("k"), "Lower triangle of the last two dims up to diagonal k (C++ kernel).");
    register_fill(m);
    register_sort(m);
}
