// The shape kernels that take a scalar: pad (constant value), masked_fill and fill_.
//
// The value is converted to the array's dtype exactly as ref converts it: numpy itself
// runs ref's expression (np.pad's `padded[...] = np.array(value).ravel()[0]`,
// masked_fill's `x.dtype.type(value)`, fill_'s `x[...] = value`), so rounding (float64 ->
// float16 once, bfloat16 via ml_dtypes) and errors (NaN or an out-of-range int into an
// integer dtype) are the specification's; quick_scalar skips that Python round trip for
// the plain Python numbers whose conversion is exact or one IEEE rounding.  Elements are
// then only moved, by item size, so every dtype comes out bit-identical to ref.
// Array values (which numpy broadcasts) go to the reference primitive (call_ref).
#include "core.h"

#include <Python.h>

namespace tf {
namespace shape_detail {  // shape.cpp
void c_strides(const int64_t* shape, int nd, int64_t* out);
int64_t as_count(const py::handle& h, const char* K, const std::string& what);
}  // namespace shape_detail

namespace {

using shape_detail::as_count;
using shape_detail::c_strides;

/// While alive: numpy's floating-point warnings off, as ref silences them for the whole
/// backend (an out-of-range value rounding to inf is a value, not a warning).
struct QuietNumpy {
    py::object state;
    QuietNumpy() : state(py::module_::import("numpy").attr("errstate")(py::arg("all") = "ignore")) {
        state.attr("__enter__")();
    }
    ~QuietNumpy() {
        PyObject *type, *val, *tb;  // keep a pending exception across __exit__
        PyErr_Fetch(&type, &val, &tb);
        PyObject* r = PyObject_CallMethod(state.ptr(), "__exit__", "OOO", Py_None, Py_None, Py_None);
        Py_XDECREF(r);
        PyErr_Restore(type, val, tb);
    }
    QuietNumpy(const QuietNumpy&) = delete;
    QuietNumpy& operator=(const QuietNumpy&) = delete;
};

/// One element's bytes (the first itemsize of them are used).
struct Scalar {
    alignas(8) unsigned char b[8] = {0};
    template <class T> void set(T v) { std::memcpy(b, &v, sizeof(T)); }
    template <class W> W as() const {
        W w;
        std::memcpy(&w, b, sizeof(W));
        return w;
    }
};

/// A Python bool, int (|v| <= 2^24) or float converted to `dt` where that is exact or a
/// single IEEE rounding, so numpy gives the same bits with no warning and no error; false
/// where numpy must decide (a float into an integer dtype, an inexact float into a half
/// type, a large or out-of-range int, numpy scalars...).  Saves ~10 us of Python per call.
bool quick_scalar(const py::handle& value, DType dt, Scalar& s) {
    PyObject* o = value.ptr();
    double d;
    bool integral = true;
    if (PyBool_Check(o)) {
        d = o == Py_True ? 1.0 : 0.0;
    } else if (PyLong_CheckExact(o)) {
        int overflow = 0;
        const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow != 0 || v > (1ll << 24) || v < -(1ll << 24)) return false;
        d = double(v);
    } else if (PyFloat_CheckExact(o)) {
        d = PyFloat_AS_DOUBLE(o);
        integral = false;
    } else {
        return false;
    }
    const bool in_float = d != d || std::fabs(d) <= double(std::numeric_limits<float>::max()) || std::isinf(d);
    switch (dt) {
        case DType::Float64: s.set(d); return true;
        case DType::Float32:
            if (!in_float) return false;  // out of float's range: numpy decides (inf)
            s.set(float(d));
            return true;
        case DType::Float16:
        case DType::BFloat16:
            if (!(integral || double(float(d)) == d)) return false;  // NaN fails here too
            if (dt == DType::Float16) s.set(half{float_to_f16(float(d))});
            else s.set(bhalf{float_to_bf16(float(d))});
            return true;
        case DType::Bool: s.set(bool(d != 0)); return true;  // NaN is true, as numpy
        case DType::Int8:
            if (!integral || d < -128 || d > 127) return false;
            s.set(int8_t(d));
            return true;
        case DType::Int32: if (!integral) return false; s.set(int32_t(d)); return true;
        case DType::Int64: if (!integral) return false; s.set(int64_t(d)); return true;
    }
    return false;
}

/// `value` converted to `dt` by numpy's assignment `tmp[...] = value` (the conversion
/// ref's fill_ and np.pad use, errors included).
Scalar assigned(const py::object& value, const py::dtype& dt) {
    py::array tmp = py::module_::import("numpy").attr("empty")(py::tuple(), dt);
    {
        QuietNumpy quiet;
        tmp.attr("__setitem__")(py::ellipsis(), value);
    }
    Scalar s;
    std::memcpy(s.b, tmp.data(), size_t(tmp.itemsize()));
    return s;
}

/// Fill every element of (shape, element strides) with `v`.
template <class W> void fill_strided(char* data, const int64_t* strides, const int64_t* shape, int nd, W v) {
    char* p[1] = {data};
    const int64_t* st[1] = {strides};
    const int64_t isz[1] = {int64_t(sizeof(W))};
    auto L = make_loop<1>(shape, nd, p, st, isz);
    run_loop(L, [v](int64_t n, char** q, const int64_t* s) {
        if (s[0] == int64_t(sizeof(W))) {
            W* __restrict o = reinterpret_cast<W*>(q[0]);
            for (int64_t i = 0; i < n; ++i) o[i] = v;
        } else {
            for (int64_t i = 0; i < n; ++i) *reinterpret_cast<W*>(q[0] + i * s[0]) = v;
        }
    });
}

// ====================================================================================== pad
py::object pad(const py::array& xa, const py::object& pads, const py::object& value) {
    const char* K = "pad";
    View x = view_of(xa, K);
    if (x.ndim == 0) return xa.attr("copy")();
    const std::string what = "pads ((before, after) per dim)";
    if (!py::isinstance<py::sequence>(pads) || int(py::len(pads)) != x.ndim)
        fail(K, "expected " + std::to_string(x.ndim) + " (before, after) pairs for shape " + x.shape_str() +
                    ", got " + py::repr(pads).cast<std::string>());
    int64_t before[kMaxDims], shape[kMaxDims];
    py::sequence ps = pads.cast<py::sequence>();
    for (int k = 0; k < x.ndim; ++k) {
        py::object p = ps[size_t(k)];
        if (!py::isinstance<py::sequence>(p) || py::len(p) != 2)
            fail(K, "expected (before, after) pairs, got " + py::repr(pads).cast<std::string>());
        py::sequence pk = p.cast<py::sequence>();
        before[k] = as_count(pk[0], K, what);
        const int64_t after = as_count(pk[1], K, what);
        if (__builtin_add_overflow(before[k], x.shape[k], &shape[k]) ||
            __builtin_add_overflow(shape[k], after, &shape[k]))
            fail(K, "padded size of dim " + std::to_string(k) + " overflows");
    }
    Scalar sv;
    if (!quick_scalar(value, x.dtype, sv)) {
        // np.pad: np.array(value) holding one value, applied as its first element
        py::array va = py::module_::import("numpy").attr("array")(value);
        if (va.size() != 1 || va.ndim() >= 3) return call_ref(K, xa, pads, value);
        sv = assigned(va.attr("ravel")()[py::int_(0)], xa.dtype());
    }
    py::array out = empty(x.dtype, shape, x.ndim);
    char* const o = static_cast<char*>(out.mutable_data());
    const int nd = x.ndim;
    const int64_t len = shape[nd - 1], rows = out.size() / std::max<int64_t>(len, 1);
    dispatch_width(x.itemsize(), [&](auto w) {
        using W = decltype(w);
        const W v = sv.as<W>();
        if (out.size() == 0) return;
        py::gil_scoped_release nogil;
        const int64_t n = x.shape[nd - 1], b = before[nd - 1], xs = x.strides[nd - 1];
        parallel_for(rows, std::max<int64_t>(1, kGrain / len), [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                W* row = reinterpret_cast<W*>(o) + r * len;
                // the input row this output row holds, if it lies inside in every outer dim
                bool inside = true;
                int64_t q = r, off = 0;
                for (int k = nd - 2; k >= 0 && inside; --k) {
                    const int64_t c = q % shape[k] - before[k];
                    q /= shape[k];
                    inside = c >= 0 && c < x.shape[k];
                    off += c * x.strides[k];
                }
                if (!inside) {
                    for (int64_t j = 0; j < len; ++j) row[j] = v;
                    continue;
                }
                const W* src = reinterpret_cast<const W*>(x.data) + off;
                for (int64_t j = 0; j < b; ++j) row[j] = v;
                if (xs == 1) std::memcpy(row + b, src, size_t(n) * sizeof(W));
                else for (int64_t j = 0; j < n; ++j) row[b + j] = src[j * xs];
                for (int64_t j = b + n; j < len; ++j) row[j] = v;
            }
        });
    });
    return std::move(out);
}

// ============================================================================ masked_fill
template <class M> inline bool truthy(M m) {
    if constexpr (is_half_v<M>) return (m.bits & 0x7fffu) != 0;  // not +-0 (NaN is true)
    else return m != M(0);
}

py::object masked_fill(const py::array& xa, const py::array& ma, const py::object& value) {
    const char* K = "masked_fill";
    View x = view_of(xa, K), m = view_of(ma, K);
    if (py::isinstance<py::array>(value) && py::reinterpret_borrow<py::array>(value).ndim() > 0)
        return call_ref(K, xa, ma, value);  // an array value broadcasts in np.where
    // ref: np.where(mask, x.dtype.type(value), x)
    Scalar sv;
    if (!quick_scalar(value, x.dtype, sv)) {
        QuietNumpy quiet;
        py::array v0 = py::module_::import("numpy").attr("asarray")(xa.dtype().attr("type")(value), xa.dtype());
        std::memcpy(sv.b, v0.data(), size_t(v0.itemsize()));
    }
    const View* vs[2] = {&x, &m};
    int64_t shape[kMaxDims];
    const int nd = broadcast_shape(K, vs, 2, shape);
    int64_t xs[kMaxDims], ms[kMaxDims], os[kMaxDims];
    broadcast_strides(x, shape, nd, xs);
    broadcast_strides(m, shape, nd, ms);
    c_strides(shape, nd, os);
    py::array out = empty(x.dtype, shape, nd);
    char* data[3] = {static_cast<char*>(out.mutable_data()), x.data, m.data};
    const int64_t* st[3] = {os, xs, ms};
    const int64_t isz[3] = {x.itemsize(), x.itemsize(), m.itemsize()};
    auto L = make_loop<3>(shape, nd, data, st, isz);
    dispatch_width(x.itemsize(), [&](auto w) {
        using W = decltype(w);
        const W v = sv.as<W>();
        py::gil_scoped_release nogil;
        dispatch_all(m.dtype, K, [&](auto mt) {
            using MT = decltype(mt);
            run_loop(L, [v](int64_t n, char** p, const int64_t* s) {
                if (s[0] == int64_t(sizeof(W)) && s[1] == int64_t(sizeof(W)) && s[2] == int64_t(sizeof(MT))) {
                    W* __restrict o = reinterpret_cast<W*>(p[0]);
                    const W* __restrict xv = reinterpret_cast<const W*>(p[1]);
                    const MT* __restrict mv = reinterpret_cast<const MT*>(p[2]);
                    for (int64_t i = 0; i < n; ++i) o[i] = truthy(mv[i]) ? v : xv[i];
                } else {
                    for (int64_t i = 0; i < n; ++i)
                        *reinterpret_cast<W*>(p[0] + i * s[0]) =
                            truthy(*reinterpret_cast<const MT*>(p[2] + i * s[2])) ? v
                                                                                  : *reinterpret_cast<const W*>(p[1] + i * s[1]);
                }
            });
        });
    });
    return std::move(out);
}

// ==================================================================================== fill_
py::object fill_(const py::array& xa, const py::object& value) {
    const char* K = "fill_";
    View x = writeable_view_of(xa, K);
    if (py::isinstance<py::array>(value) && py::reinterpret_borrow<py::array>(value).ndim() > 0)
        return call_ref(K, xa, value);  // x[...] = array broadcasts it
    // a 0-stride dim writes the same elements again: write them once
    for (int k = 0; k < x.ndim; ++k)
        if (x.strides[k] == 0 && x.shape[k] > 0) x.shape[k] = 1;
    // other self-overlapping views (as_strided) are filled serially, never by racing threads
    int order[kMaxDims];
    for (int k = 0; k < x.ndim; ++k) order[k] = k;
    std::sort(order, order + x.ndim, [&](int a, int b) { return std::abs(x.strides[a]) < std::abs(x.strides[b]); });
    bool disjoint = true;
    int64_t extent = 1;  // elements spanned by the dims inside the current one
    for (int i = 0; i < x.ndim; ++i) {
        const int k = order[i];
        if (x.shape[k] <= 1) continue;
        disjoint &= std::abs(x.strides[k]) >= extent;
        extent = std::abs(x.strides[k]) * (x.shape[k] - 1) + extent;
    }
    dispatch_width(x.itemsize(), [&](auto w) {
        using W = decltype(w);
        Scalar sv;
        if (!quick_scalar(value, x.dtype, sv)) sv = assigned(value, xa.dtype());
        const W v = sv.as<W>();
        if (x.numel() == 0) return;
        py::gil_scoped_release nogil;
        if (disjoint) {
            fill_strided<W>(x.data, x.strides, x.shape, x.ndim, v);
        } else {
            int64_t one[kMaxDims] = {0};
            for (int64_t e = 0, n = x.numel(); e < n; ++e) {  // odometer, serial
                int64_t off = 0;
                for (int k = 0; k < x.ndim; ++k) off += one[k] * x.strides[k];
                reinterpret_cast<W*>(x.data)[off] = v;
                for (int k = x.ndim - 1; k >= 0 && ++one[k] == x.shape[k]; --k) one[k] = 0;
            }
        }
    });
    return py::none();
}

}  // namespace
}  // namespace tf

void register_fill(pybind11::module_& m) {
    namespace py = pybind11;
    m.def("pad", &tf::pad, py::arg("x"), py::arg("pads"), py::arg("value"),
          "Constant padding; pads is ((before, after), ...) per dim (C++ kernel).");
    m.def("masked_fill", &tf::masked_fill, py::arg("x"), py::arg("mask"), py::arg("value"),
          "x with value where mask is true, broadcasting (C++ kernel).");
    m.def("fill_", &tf::fill_, py::arg("x"), py::arg("value"), "In place: every element of x becomes value (C++ kernel).");
}
