// Cumulative scans along one dim: cumprod, cummax, cummin, logcumsumexp (cumsum is in
// reduce_arg.cpp).  The specification is tinyfw/backend/ref_scan.py: each output is the
// running result of one sequential fold in index order, so cumprod and cummax/cummin
// agree with it bit for bit; halves accumulate in float32 and round each output once.
//
// Like cumsum, compiled once at the scalar level: the fold carries a dependency from
// element to element, so folds of several kept positions run side by side: up to kLanes
// when a kept dim is the densest (the compiler vectorises that loop at the scalar level's
// SSE2 for the multiply and the selects), kDenseLanes when the scanned dim is.
#include "reduce.h"

#include <cmath>

namespace tf {
namespace scan {
namespace {

using red::kChunk;
using red::wmul;

constexpr int64_t kLanes = 256;      // positions folded side by side (as cumsum)
constexpr int64_t kDenseLanes = 8;  // the same when the scanned dim is the densest

// The driver: for every kept position, fold `op` along dim (n steps), writing each
// running value (and, for the extrema, the running index).  `o` and `oi` (may be null)
// are the outputs, both of x's shape.
template <class T, class A, class O, class Init, class Step>
void scan_into(const View& x, const View& o, const View* oi, int dim, Init init, Step step) {
    const int64_t n = x.shape[dim];
    const int64_t xs = x.strides[dim] * int64_t(sizeof(T)), os = o.strides[dim] * int64_t(sizeof(O));
    const int64_t is = oi ? oi->strides[dim] * int64_t(sizeof(int64_t)) : 0;
    int64_t shape[kMaxDims];
    for (int d = 0; d < x.ndim; ++d) shape[d] = d == dim ? 1 : x.shape[d];
    char* data[3] = {o.data, x.data, oi ? oi->data : o.data};
    const int64_t* st[3] = {o.strides, x.strides, oi ? oi->strides : o.strides};
    const int64_t isz[3] = {int64_t(sizeof(O)), int64_t(sizeof(T)), oi ? int64_t(sizeof(int64_t)) : int64_t(sizeof(O))};
    auto L = make_loop<3>(shape, x.ndim, data, st, isz);
    if (L.numel == 0 || n == 0) return;
    run_loop(L, [&](int64_t cnt, char** p, const int64_t* s) {
        // when the scanned dim is the denser one, few lanes: each lane reads its own run
        // in order, and 256 runs a multiple of 4 KiB apart would alias in the cache; 8
        // still hide the latency of a step (exp and log1p for logcumsumexp: one run at a
        // time was 2.5x slower than 8 side by side at 1024 x 1024)
        const int64_t lanes = std::abs(xs) < std::abs(s[1]) ? kDenseLanes : kLanes;
        A acc[kLanes];
        int64_t at[kLanes];
        for (int64_t i0 = 0; i0 < cnt; i0 += lanes) {
            const int64_t w = std::min<int64_t>(lanes, cnt - i0);
            for (int64_t r = 0; r < n; ++r) {
                const char* px = p[1] + r * xs + i0 * s[1];
                char* po = p[0] + r * os + i0 * s[0];
                if (r == 0) {
                    for (int64_t i = 0; i < w; ++i) {
                        acc[i] = init(load(*reinterpret_cast<const T*>(px + i * s[1])));
                        at[i] = 0;
                        *reinterpret_cast<O*>(po + i * s[0]) = convert<O>(acc[i]);
                    }
                } else {
                    for (int64_t i = 0; i < w; ++i) {
                        step(acc[i], at[i], load(*reinterpret_cast<const T*>(px + i * s[1])), r);
                        *reinterpret_cast<O*>(po + i * s[0]) = convert<O>(acc[i]);
                    }
                }
                if (oi) {
                    char* pi = p[2] + r * is + i0 * s[2];
                    for (int64_t i = 0; i < w; ++i) *reinterpret_cast<int64_t*>(pi + i * s[2]) = at[i];
                }
            }
        }
    }, std::max<int64_t>(1, kChunk / std::max<int64_t>(1, n)));
}

View checked(const py::array& xa, int64_t dim, const char* name) {
    View x = view_of(xa, name);
    if (x.ndim == 0) fail(name, "needs an array of at least one dim (the ops reshape 0-d inputs)");
    if (dim < 0 || dim >= x.ndim) fail(name, "dim " + std::to_string(dim) + " out of range for shape " + x.shape_str());
    return x;
}

bool is_int(DType d) { return d == DType::Bool || d == DType::Int8 || d == DType::Int32 || d == DType::Int64; }

py::array cumprod(const py::array& xa, int64_t dim) {
    const char* name = "cumprod";
    View x = checked(xa, dim, name);
    py::array out = empty(is_int(x.dtype) ? DType::Int64 : x.dtype, x.shape, x.ndim);
    View o = view_of(out, name);
    py::gil_scoped_release nogil;
    dispatch_all(x.dtype, name, [&](auto tag) {
        using T = decltype(tag);
        if constexpr (std::is_integral_v<T>) {
            scan_into<T, int64_t, int64_t>(x, o, nullptr, int(dim),
                [](auto v) { return int64_t(v); },
                [](int64_t& a, int64_t&, auto v, int64_t) { a = wmul(a, int64_t(v)); });
        } else {
            using C = compute_t<T>;
            scan_into<T, C, T>(x, o, nullptr, int(dim), [](C v) { return v; },
                               [](C& a, int64_t&, C v, int64_t) { a = a * v; });
        }
    });
    return out;
}

// the running extremum: the latest of equal values wins, a NaN beats every number and a
// later NaN takes its place (PyTorch's rule, ref_scan._cumext)
template <bool Max> py::tuple cumext(const py::array& xa, int64_t dim) {
    const char* name = Max ? "cummax" : "cummin";
    View x = checked(xa, dim, name);
    py::array out = empty(x.dtype, x.shape, x.ndim);
    py::array idx = empty(DType::Int64, x.shape, x.ndim);
    View o = view_of(out, name), oi = view_of(idx, name);
    {
        py::gil_scoped_release nogil;
        dispatch_all(x.dtype, name, [&](auto tag) {
            using T = decltype(tag);
            using C = compute_t<T>;
            scan_into<T, C, T>(x, o, &oi, int(dim), [](C v) { return v; },
                               [](C& a, int64_t& at, C v, int64_t r) {
                                   bool better = Max ? v >= a : v <= a;
                                   if constexpr (std::is_floating_point_v<C>) better = v != v || (a == a && better);
                                   if (better) a = v, at = r;
                               });
        });
    }
    return py::make_tuple(out, idx);
}

// PyTorch's log-add-exp step: max + log1p(exp(min - max)); equal infinities give
// themselves, NaN in either operand propagates
template <class C> inline C log_add_exp(C a, C b) {
    const C lo = b != b ? b : std::min(a, b), hi = b != b ? b : std::max(a, b);
    if (lo != hi || std::isfinite(lo)) return hi + std::log1p(std::exp(lo - hi));
    return a;
}

py::array logcumsumexp(const py::array& xa, int64_t dim) {
    const char* name = "logcumsumexp";
    View x = checked(xa, dim, name);
    py::array out = empty(x.dtype, x.shape, x.ndim);
    View o = view_of(out, name);
    py::gil_scoped_release nogil;
    dispatch_float(x.dtype, name, [&](auto tag) {
        using T = decltype(tag);
        using C = compute_t<T>;
        scan_into<T, C, T>(x, o, nullptr, int(dim), [](C v) { return v; },
                           [](C& a, int64_t&, C v, int64_t) { a = log_add_exp(a, v); });
    });
    return out;
}

}  // namespace
}  // namespace scan
}  // namespace tf

void register_scan(pybind11::module_& m) {
    using namespace tf::scan;
    m.def("cumprod", &cumprod, pybind11::arg("x"), pybind11::arg("dim"), "Running product along `dim` (C++ kernel, sequential order).");
    m.def("cummax", &cumext<true>, pybind11::arg("x"), pybind11::arg("dim"), "(running max, its index) along `dim` (C++ kernel).");
    m.def("cummin", &cumext<false>, pybind11::arg("x"), pybind11::arg("dim"), "(running min, its index) along `dim` (C++ kernel).");
    m.def("logcumsumexp", &logcumsumexp, pybind11::arg("x"), pybind11::arg("dim"), "Running log(sum(exp)) along `dim` (C++ kernel).");
}
