// Reductions along one dim that keep positions: argmax/argmin (first index of the
// extremum, NaN wins) and cumsum (numpy's sequential order).  Plan/offset_of: reduce.h.
//
// Compiled once, at the scalar level (outside the per-ISA namespace of isa.h): these
// loops carry a dependency from element to element (the running index or sum), and ran
// no faster in the AVX2 or AVX-512 build (4096x1024 float32 at 1 thread on Sapphire
// Rapids: argmax 24-31 ms, cumsum 100-130 ms at every level), so two more copies would
// only cost build time.
#include "reduce.h"

namespace tf {
namespace red {
namespace {

// ------------------------------------------------------------------ argmax / argmin
// first index of the max (min); a NaN beats every number and the first NaN wins
template <bool Max, class C> inline bool better(C v, C best) {
    if (best != best) return false;
    if (v != v) return true;
    return Max ? v > best : v < best;
}

template <bool Max, class T> void arg_into(const View& x, const Plan& P, int64_t* out) {
    using C = compute_t<T>;
    const int64_t isz = sizeof(T);
    if (P.n_out == 0) return;
    if (P.nr == 0) {  // the dim has length 1
        for (int64_t o = 0; o < P.n_out; ++o) out[o] = 0;
        return;
    }
    const int64_t n = P.rshape[0], rs = P.rin[0] * isz;
    const int64_t ks = P.nk ? std::abs(P.kin[P.nk - 1]) : 0;
    if (P.nk == 0 || std::abs(P.rin[0]) <= ks) {  // scan along contiguous-ish runs
        parallel_for(P.n_out, std::max<int64_t>(1, kChunk / n), [&](int64_t b, int64_t e) {
            for (int64_t o = b; o < e; ++o) {
                const char* p = x.data + offset_of(o, P.nk, P.kshape, P.kin) * isz;
                C best = load(*reinterpret_cast<const T*>(p));
                int64_t bi = 0;
                for (int64_t r = 1; r < n; ++r) {
                    C v = load(*reinterpret_cast<const T*>(p + r * rs));
                    if (better<Max>(v, best)) best = v, bi = r;
                }
                out[offset_of(o, P.nk, P.kshape, P.kout)] = bi;
            }
        });
        return;
    }
    // the kept inner dim is contiguous: sweep rows, tracking a best per column
    const int64_t m = P.kshape[P.nk - 1], kstride = P.kin[P.nk - 1] * isz, kos = P.kout[P.nk - 1];
    const int64_t orows = P.n_out / m;
    constexpr int64_t W = 1024;
    const int64_t wchunks = (m + W - 1) / W;
    parallel_for(orows * wchunks, std::max<int64_t>(1, kChunk / (W * n)), [&](int64_t b, int64_t e) {
        std::unique_ptr<C[]> best(new C[W]);
        std::unique_ptr<int64_t[]> bi(new int64_t[W]);
        for (int64_t it = b; it < e; ++it) {
            int64_t orow = it / wchunks, j0 = (it % wchunks) * W, w = std::min(W, m - j0);
            const char* rb = x.data + offset_of(orow, P.nk - 1, P.kshape, P.kin) * isz + j0 * kstride;
            for (int64_t j = 0; j < w; ++j) best[j] = load(*reinterpret_cast<const T*>(rb + j * kstride)), bi[j] = 0;
            for (int64_t r = 1; r < n; ++r) {
                const char* p = rb + r * rs;
                for (int64_t j = 0; j < w; ++j) {
                    C v = load(*reinterpret_cast<const T*>(p + j * kstride));
                    if (better<Max>(v, best[j])) best[j] = v, bi[j] = r;
                }
            }
            int64_t* o = out + offset_of(orow, P.nk - 1, P.kshape, P.kout) + j0 * kos;
            for (int64_t j = 0; j < w; ++j) o[j * kos] = bi[j];
        }
    });
}

py::array argext(const char* name, bool is_max, const py::array& xa, int64_t dim, bool keepdim) {
    View x = view_of(xa, name);
    if (x.ndim == 0 && (dim == 0 || dim == -1)) {  // numpy treats a 0-d array as one element
        x.ndim = 1;
        x.shape[0] = 1;
        x.strides[0] = 0;
        dim = 0;
        std::vector<int64_t> oshape;
        py::array out = empty(DType::Int64, oshape);
        *static_cast<int64_t*>(out.mutable_data()) = 0;
        return out;
    }
    if (dim < 0 || dim >= x.ndim) fail(name, "dim " + std::to_string(dim) + " out of range for shape " + x.shape_str());
    if (x.shape[dim] == 0) fail(name, "cannot take the arg-extremum of an empty dim (shape " + x.shape_str() + ")");
    bool red[kMaxDims] = {};
    red[dim] = true;
    Plan P = make_plan(x, red);
    std::vector<int64_t> oshape;
    for (int d = 0; d < x.ndim; ++d) {
        if (d != dim) oshape.push_back(x.shape[d]);
        else if (keepdim) oshape.push_back(1);
    }
    py::array out = empty(DType::Int64, oshape);
    int64_t* od = static_cast<int64_t*>(out.mutable_data());
    {
        py::gil_scoped_release nogil;
        dispatch_all(x.dtype, name, [&](auto tag) {
            using T = decltype(tag);
            if (is_max) arg_into<true, T>(x, P, od);
            else arg_into<false, T>(x, P, od);
        });
    }
    return out;
}

// ------------------------------------------------------------------ cumsum
// sequential running sum along dim (numpy's order: bit-identical results), vectorised
// across the neighbouring positions; halves run in float32 and round each output once
template <class T, class A, class O> void cumsum_into(const View& x, const View& o, int dim) {
    const int64_t n = x.shape[dim];
    const int64_t xs = x.strides[dim] * int64_t(sizeof(T)), os = o.strides[dim] * int64_t(sizeof(O));
    int64_t shape[kMaxDims];
    for (int d = 0; d < x.ndim; ++d) shape[d] = d == dim ? 1 : x.shape[d];
    char* data[2] = {o.data, x.data};
    const int64_t* st[2] = {o.strides, x.strides};
    const int64_t isz[2] = {int64_t(sizeof(O)), int64_t(sizeof(T))};
    auto L = make_loop<2>(shape, x.ndim, data, st, isz);
    if (L.numel == 0 || n == 0) return;
    run_loop(L, [&](int64_t cnt, char** p, const int64_t* s) {
        if (cnt == 1 || std::abs(xs) < std::abs(s[1])) {
            // the summed dim is the denser one: each position's run alone, in memory order
            // (side-by-side lanes would stride whole rows, which alias in the cache when
            // rows are a multiple of 4 KiB apart: 10x PyTorch's time at 1024 x 1024)
            for (int64_t i = 0; i < cnt; ++i) {
                const char* px = p[1] + i * s[1];
                char* po = p[0] + i * s[0];
                A acc = A(0);
                for (int64_t r = 0; r < n; ++r) {
                    acc = wadd(acc, convert<A>(load(*reinterpret_cast<const T*>(px + r * xs))));
                    *reinterpret_cast<O*>(po + r * os) = convert<O>(acc);
                }
            }
            return;
        }
        A acc[256];
        for (int64_t i0 = 0; i0 < cnt; i0 += 256) {
            const int64_t w = std::min<int64_t>(256, cnt - i0);
            for (int64_t i = 0; i < w; ++i) acc[i] = A(0);
            for (int64_t r = 0; r < n; ++r) {
                const char* px = p[1] + r * xs + i0 * s[1];
                char* po = p[0] + r * os + i0 * s[0];
                for (int64_t i = 0; i < w; ++i) {
                    acc[i] = wadd(acc[i], convert<A>(load(*reinterpret_cast<const T*>(px + i * s[1]))));
                    *reinterpret_cast<O*>(po + i * s[0]) = convert<O>(acc[i]);
                }
            }
        }
    }, std::max<int64_t>(1, kChunk / std::max<int64_t>(1, n)));
}

py::array cumsum(const py::array& xa, int64_t dim) {
    const char* name = "cumsum";
    View x = view_of(xa, name);
    if (x.ndim == 0) {  // numpy flattens: a 0-d input gives shape (1,)
        x.ndim = 1;
        x.shape[0] = 1;
        x.strides[0] = 0;
    }
    if (dim < 0 || dim >= x.ndim) fail(name, "dim " + std::to_string(dim) + " out of range for shape " + x.shape_str());
    const bool ints = x.dtype == DType::Bool || x.dtype == DType::Int8 || x.dtype == DType::Int32 || x.dtype == DType::Int64;
    py::array out = empty(ints ? DType::Int64 : x.dtype, x.shape, x.ndim);
    View o = view_of(out, name);
    {
        py::gil_scoped_release nogil;
        dispatch_all(x.dtype, name, [&](auto tag) {
            using T = decltype(tag);
            if constexpr (std::is_integral_v<T>) cumsum_into<T, int64_t, int64_t>(x, o, int(dim));
            else cumsum_into<T, compute_t<T>, T>(x, o, int(dim));
        });
    }
    return out;
}

}  // namespace

void register_arg(py::module_& m) {
    m.def("argmax", [](const py::array& x, int64_t dim, bool keepdim) { return argext("argmax", true, x, dim, keepdim); },
          py::arg("x"), py::arg("dim"), py::arg("keepdim"), "Index of the first maximum along `dim` (C++ kernel).");
    m.def("argmin", [](const py::array& x, int64_t dim, bool keepdim) { return argext("argmin", false, x, dim, keepdim); },
          py::arg("x"), py::arg("dim"), py::arg("keepdim"), "Index of the first minimum along `dim` (C++ kernel).");
    m.def("cumsum", &cumsum, py::arg("x"), py::arg("dim"), "Running sum along `dim` (C++ kernel, numpy's order).");
}

}  // namespace red
}  // namespace tf

void register_reduce_arg(pybind11::module_& m) { tf::red::register_arg(m); }
