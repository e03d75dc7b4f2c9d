// Reduction kernels: sum, prod, amax, amin, any, all over arbitrary dims (keepdim);
// argmax/argmin along one dim; cumsum.
//
// Accumulation: float32 in float32, float16/bfloat16 in float32 (rounded once at the end),
// float64 in float64, int/bool sums and products in int64 (wrapping, as numpy).
//
// Determinism: every output element is folded in an order fixed by the input's shape and
// strides alone - never by the thread count or scheduling:
//  - "inner" reductions (the reduced dims hold the smallest input stride) cut the reduced
//    index space into units (rows of the innermost reduced dim, long rows in chunks of
//    kChunk); a unit is reduced with 16 interleaved lanes combined as a fixed tree, and
//    the units are folded in order.  Threads either take whole outputs, or (few outputs)
//    compute unit partials in parallel that are then folded in the same order;
//  - "outer" reductions (a kept dim is innermost) accumulate rows into a vector of
//    outputs in the order of the reduced index - numpy's own order, so results agree
//    with it bit for bit - threads taking disjoint slices of the outputs.
#include "core.h"

#include <memory>

namespace tf {
namespace {

constexpr int kLanes = 16;
constexpr int64_t kChunk = 1 << 15;

// ------------------------------------------------------------------ reduction operations
template <class C> inline C max_nan(C a, C b) { return (a > b || a != a) ? a : b; }
template <class C> inline C min_nan(C a, C b) { return (a < b || a != a) ? a : b; }
template <class C> inline C wadd(C a, C b) {
    if constexpr (std::is_integral_v<C>) return C(uint64_t(a) + uint64_t(b));
    else return a + b;
}
template <class C> inline C wmul(C a, C b) {
    if constexpr (std::is_integral_v<C>) return C(uint64_t(a) * uint64_t(b));
    else return a * b;
}

// A: accumulator type; T: stored input type; lift(T) -> A.
template <class T, class A> struct SumR {
    using acc = A;
    static A init() { return A(0); }
    static A lift(compute_t<T> v) { return convert<A>(v); }
    static A op(A a, A b) { return wadd(a, b); }
};
template <class T, class A> struct ProdR {
    using acc = A;
    static A init() { return A(1); }
    static A lift(compute_t<T> v) { return convert<A>(v); }
    static A op(A a, A b) { return wmul(a, b); }
};
template <class T, class A> struct MaxR {
    using acc = A;
    static A init() {
        if constexpr (std::is_floating_point_v<A>) return -std::numeric_limits<A>::infinity();
        else return std::numeric_limits<A>::lowest();
    }
    static A lift(compute_t<T> v) { return v; }
    static A op(A a, A b) { return max_nan(a, b); }
};
template <class T, class A> struct MinR {
    using acc = A;
    static A init() {
        if constexpr (std::is_floating_point_v<A>) return std::numeric_limits<A>::infinity();
        else return std::numeric_limits<A>::max();
    }
    static A lift(compute_t<T> v) { return v; }
    static A op(A a, A b) { return min_nan(a, b); }
};
template <class T, class A> struct AnyR {
    using acc = bool;
    static bool init() { return false; }
    static bool lift(compute_t<T> v) { return v != compute_t<T>(0); }
    static bool op(bool a, bool b) { return a || b; }
};
template <class T, class A> struct AllR {
    using acc = bool;
    static bool init() { return true; }
    static bool lift(compute_t<T> v) { return v != compute_t<T>(0); }
    static bool op(bool a, bool b) { return a && b; }
};

/// Fold n elements at p (byte stride s) into lanes (fixed interleaving by position).
template <class T, class R> void fold_run(const char* p, int64_t s, int64_t n, typename R::acc* lanes) {
    using A = typename R::acc;
    if constexpr (is_half_v<T>) {
        float buf[256];
        for (int64_t i0 = 0; i0 < n; i0 += 256) {
            int64_t m = std::min<int64_t>(256, n - i0);
            const char* q = p + i0 * s;
            if (s == 2) {
                if constexpr (std::is_same_v<T, half>) half_to_float_n(reinterpret_cast<const half*>(q), buf, m);
                else bhalf_to_float_n(reinterpret_cast<const bhalf*>(q), buf, m);
            } else {
                for (int64_t i = 0; i < m; ++i) buf[i] = load(*reinterpret_cast<const T*>(q + i * s));
            }
            int64_t i = 0;
            for (; i + kLanes <= m; i += kLanes)
                for (int k = 0; k < kLanes; ++k) lanes[k] = R::op(lanes[k], R::lift(buf[i + k]));
            for (int k = 0; i < m; ++i, ++k) lanes[k] = R::op(lanes[k], R::lift(buf[i]));
        }
    } else if (s == int64_t(sizeof(T))) {
        const T* x = reinterpret_cast<const T*>(p);
        A l[kLanes];
        for (int k = 0; k < kLanes; ++k) l[k] = lanes[k];
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes)
#pragma omp simd
            for (int k = 0; k < kLanes; ++k) l[k] = R::op(l[k], R::lift(x[i + k]));
        for (int k = 0; i < n; ++i, ++k) l[k] = R::op(l[k], R::lift(x[i]));
        for (int k = 0; k < kLanes; ++k) lanes[k] = l[k];
    } else {
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes)
            for (int k = 0; k < kLanes; ++k)
                lanes[k] = R::op(lanes[k], R::lift(*reinterpret_cast<const T*>(p + (i + k) * s)));
        for (int k = 0; i < n; ++i, ++k) lanes[k] = R::op(lanes[k], R::lift(*reinterpret_cast<const T*>(p + i * s)));
    }
}

template <class R> typename R::acc combine_lanes(typename R::acc* l) {
    for (int w = kLanes / 2; w >= 1; w /= 2)
        for (int k = 0; k < w; ++k) l[k] = R::op(l[k], l[k + w]);
    return l[0];
}

struct Plan {
    int nk = 0, nr = 0;
    int64_t kshape[kMaxDims], kin[kMaxDims], kout[kMaxDims];  // kept dims (out strides in elements)
    int64_t rshape[kMaxDims], rin[kMaxDims];                    // reduced dims
    int64_t n_out = 1, n_red = 1;
};

// Split x's dims into kept/reduced, drop size-1 dims, merge contiguous neighbours.
Plan make_plan(const View& x, const bool* red) {
    Plan P;
    int64_t ostride[kMaxDims], s = 1;
    for (int d = x.ndim - 1; d >= 0; --d) {  // C-contiguous output over the kept dims
        ostride[d] = s;
        if (!red[d]) s *= x.shape[d];
    }
    int kd[kMaxDims], rd[kMaxDims], nk = 0, nr = 0;
    for (int d = 0; d < x.ndim; ++d) {
        if (red[d]) P.n_red *= x.shape[d];
        else P.n_out *= x.shape[d];
        if (x.shape[d] == 1) continue;
        if (red[d]) rd[nr++] = d;
        else kd[nk++] = d;
    }
    auto mag = [&](int d) { return x.strides[d] < 0 ? -x.strides[d] : x.strides[d]; };
    std::stable_sort(rd, rd + nr, [&](int a, int b) { return mag(a) > mag(b); });
    for (int i = 0; i < nk; ++i) {
        int d = kd[i];
        if (P.nk > 0 && P.kin[P.nk - 1] == x.strides[d] * x.shape[d] && P.kout[P.nk - 1] == ostride[d] * x.shape[d]) {
            P.kshape[P.nk - 1] *= x.shape[d];
            P.kin[P.nk - 1] = x.strides[d];
            P.kout[P.nk - 1] = ostride[d];
            continue;
        }
        P.kshape[P.nk] = x.shape[d];
        P.kin[P.nk] = x.strides[d];
        P.kout[P.nk] = ostride[d];
        ++P.nk;
    }
    for (int i = 0; i < nr; ++i) {
        int d = rd[i];
        if (P.nr > 0 && P.rin[P.nr - 1] == x.strides[d] * x.shape[d]) {
            P.rshape[P.nr - 1] *= x.shape[d];
            P.rin[P.nr - 1] = x.strides[d];
            continue;
        }
        P.rshape[P.nr] = x.shape[d];
        P.rin[P.nr] = x.strides[d];
        ++P.nr;
    }
    return P;
}

// element offset of flat index i over (shape, strides) of n dims
inline int64_t offset_of(int64_t i, int n, const int64_t* shape, const int64_t* strides) {
    int64_t off = 0;
    for (int d = n - 1; d >= 0; --d) {
        off += (i % shape[d]) * strides[d];
        i /= shape[d];
    }
    return off;
}

template <class T, class R, class Out>
void reduce_into(const View& x, const Plan& P, Out* out) {
    using A = typename R::acc;
    const int64_t isz = sizeof(T);
    const char* base = x.data;
    if (P.n_out == 0) return;
    if (P.n_red == 0) {
        for (int64_t o = 0; o < P.n_out; ++o) out[o] = convert<Out>(R::init());
        return;
    }
    if (P.nk == 0 && P.nr == 0) {  // a single element
        out[0] = convert<Out>(R::op(R::init(), R::lift(load(*reinterpret_cast<const T*>(base)))));
        return;
    }
    const int64_t ks = P.nk ? (P.kin[P.nk - 1] < 0 ? -P.kin[P.nk - 1] : P.kin[P.nk - 1]) : 0;
    const int64_t rs = P.nr ? (P.rin[P.nr - 1] < 0 ? -P.rin[P.nr - 1] : P.rin[P.nr - 1]) : 0;
    const bool inner = P.nr > 0 && (P.nk == 0 || rs <= ks);
    if (inner) {
        const int64_t run = P.rshape[P.nr - 1], rstride = P.rin[P.nr - 1] * isz;
        const int64_t rows = P.n_red / run;
        const int64_t chunks = (run + kChunk - 1) / kChunk;
        const int64_t units = rows * chunks;
        auto unit_value = [&](const char* ob, int64_t u) {
            int64_t row = u / chunks, c = u % chunks;
            int64_t c0 = c * kChunk, n = std::min(kChunk, run - c0);
            const char* p = ob + offset_of(row, P.nr - 1, P.rshape, P.rin) * isz + c0 * rstride;
            A lanes[kLanes];
            for (int k = 0; k < kLanes; ++k) lanes[k] = R::init();
            fold_run<T, R>(p, rstride, n, lanes);
            return combine_lanes<R>(lanes);
        };
        auto out_ptr = [&](int64_t o) { return base + offset_of(o, P.nk, P.kshape, P.kin) * isz; };
        auto out_index = [&](int64_t o) { return offset_of(o, P.nk, P.kshape, P.kout); };
        if (P.n_out >= get_num_threads() * 4 || units == 1) {
            parallel_for(P.n_out, std::max<int64_t>(1, kChunk / std::max<int64_t>(1, P.n_red)), [&](int64_t b, int64_t e) {
                for (int64_t o = b; o < e; ++o) {
                    const char* ob = out_ptr(o);
                    A acc = unit_value(ob, 0);
                    for (int64_t u = 1; u < units; ++u) acc = R::op(acc, unit_value(ob, u));
                    out[out_index(o)] = convert<Out>(acc);
                }
            });
        } else {  // few outputs: unit partials in parallel, folded in order
            std::unique_ptr<A[]> part(new A[units]);  // not vector<bool>: threads write neighbours
            for (int64_t o = 0; o < P.n_out; ++o) {
                const char* ob = out_ptr(o);
                parallel_for(units, 2, [&](int64_t b, int64_t e) {
                    for (int64_t u = b; u < e; ++u) part[u] = unit_value(ob, u);
                });
                A acc = part[0];
                for (int64_t u = 1; u < units; ++u) acc = R::op(acc, part[u]);
                out[out_index(o)] = convert<Out>(acc);
            }
        }
        return;
    }
    // outer: innermost kept dim vectorised, reduced positions folded in order
    const int64_t m = P.kshape[P.nk - 1], kstride = P.kin[P.nk - 1] * isz, kos = P.kout[P.nk - 1];
    const int64_t orows = P.n_out / m;
    // column chunks as wide as possible (rows stream through memory, as numpy's loop);
    // narrower only to give every thread work. The fold order of an output never changes.
    constexpr int64_t WMAX = 4096;
    const int nt = omp_threads_for(P.n_out * P.n_red, kChunk);
    int64_t W = std::min<int64_t>(WMAX, std::max<int64_t>(64, ((m + nt - 1) / nt + 15) / 16 * 16));
    if (orows >= nt) W = std::min<int64_t>(WMAX, m);
    const int64_t wchunks = (m + W - 1) / W;
    parallel_for(orows * wchunks, std::max<int64_t>(1, kChunk / (W * std::max<int64_t>(1, P.n_red))), [&](int64_t b, int64_t e) {
        std::unique_ptr<A[]> acc(new A[W]);
        std::unique_ptr<compute_t<T>[]> buf(new compute_t<T>[W]);
        for (int64_t it = b; it < e; ++it) {
            int64_t orow = it / wchunks, j0 = (it % wchunks) * W, n = std::min(W, m - j0);
            const char* rb = base + offset_of(orow, P.nk - 1, P.kshape, P.kin) * isz + j0 * kstride;
            for (int64_t j = 0; j < n; ++j) acc[j] = R::init();
            for (int64_t r = 0; r < P.n_red; ++r) {
                const char* p = rb + offset_of(r, P.nr, P.rshape, P.rin) * isz;
                if constexpr (!is_half_v<T>) {
                    if (kstride == isz) {
                        const T* __restrict q = reinterpret_cast<const T*>(p);
                        A* __restrict ac = acc.get();
#pragma omp simd
                        for (int64_t j = 0; j < n; ++j) ac[j] = R::op(ac[j], R::lift(q[j]));
                        continue;
                    }
                }
                for (int64_t j = 0; j < n; ++j) buf[j] = load(*reinterpret_cast<const T*>(p + j * kstride));
                for (int64_t j = 0; j < n; ++j) acc[j] = R::op(acc[j], R::lift(buf[j]));
            }
            Out* o = out + offset_of(orow, P.nk - 1, P.kshape, P.kout) + j0 * kos;
            for (int64_t j = 0; j < n; ++j) o[j * kos] = convert<Out>(acc[j]);
        }
    });
}

enum class Red { Sum, Prod, Max, Min, Any, All };

py::object reduce(const char* name, Red kind, const py::array& xa, const py::iterable& dims, bool keepdim) {
    View x = view_of(xa, name);
    bool red[kMaxDims] = {};
    for (auto d : dims) {
        int64_t k = d.cast<int64_t>();
        if (k < 0 || k >= x.ndim) fail(name, "dim " + std::to_string(k) + " out of range for shape " + x.shape_str());
        if (red[k]) fail(name, "dim " + std::to_string(k) + " repeated");
        red[k] = true;
    }
    Plan P = make_plan(x, red);
    if ((kind == Red::Max || kind == Red::Min) && P.n_red == 0)
        fail(name, "zero-size reduction over a dim of shape " + x.shape_str() + " (max/min have no identity)");
    const bool ints = x.dtype == DType::Bool || x.dtype == DType::Int8 || x.dtype == DType::Int32 || x.dtype == DType::Int64;
    DType out_dt = x.dtype;
    if ((kind == Red::Sum || kind == Red::Prod) && ints) out_dt = DType::Int64;
    if (kind == Red::Any || kind == Red::All) out_dt = DType::Bool;
    std::vector<int64_t> oshape;
    for (int d = 0; d < x.ndim; ++d) {
        if (!red[d]) oshape.push_back(x.shape[d]);
        else if (keepdim) oshape.push_back(1);
    }
    py::array out = empty(out_dt, oshape);
    char* od = static_cast<char*>(out.mutable_data());
    {
    py::gil_scoped_release nogil;
    dispatch_all(x.dtype, name, [&](auto tag) {
        using T = decltype(tag);
        using C = compute_t<T>;
        using SA = std::conditional_t<std::is_integral_v<T>, int64_t, C>;  // sum/prod accumulator
        using SO = std::conditional_t<std::is_integral_v<T>, int64_t, T>;
        switch (kind) {
            case Red::Sum: reduce_into<T, SumR<T, SA>>(x, P, reinterpret_cast<SO*>(od)); break;
            case Red::Prod: reduce_into<T, ProdR<T, SA>>(x, P, reinterpret_cast<SO*>(od)); break;
            case Red::Max: reduce_into<T, MaxR<T, C>>(x, P, reinterpret_cast<T*>(od)); break;
            case Red::Min: reduce_into<T, MinR<T, C>>(x, P, reinterpret_cast<T*>(od)); break;
            case Red::Any: reduce_into<T, AnyR<T, C>>(x, P, reinterpret_cast<bool*>(od)); break;
            case Red::All: reduce_into<T, AllR<T, C>>(x, P, reinterpret_cast<bool*>(od)); break;
        }
    });
    }
    return std::move(out);
}


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
}  // namespace tf

void register_reduce(pybind11::module_& m) {
    namespace py = pybind11;
    using tf::Red;
#define R1(NAME, KIND)                                                                         \
    m.def(#NAME, [](const py::array& x, const py::iterable& dims, bool keepdim) {                \
        return tf::reduce(#NAME, KIND, x, dims, keepdim); }, py::arg("x"), py::arg("dims"),   \
        py::arg("keepdim"), #NAME " over `dims` (C++ kernel, deterministic order)");
    R1(sum, Red::Sum)
    R1(prod, Red::Prod)
    R1(amax, Red::Max)
    R1(amin, Red::Min)
    R1(any, Red::Any)
    R1(all, Red::All)
#undef R1
    m.def("argmax", [](const py::array& x, int64_t dim, bool keepdim) { return tf::argext("argmax", true, x, dim, keepdim); },
          py::arg("x"), py::arg("dim"), py::arg("keepdim"), "Index of the first maximum along `dim` (C++ kernel).");
    m.def("argmin", [](const py::array& x, int64_t dim, bool keepdim) { return tf::argext("argmin", false, x, dim, keepdim); },
          py::arg("x"), py::arg("dim"), py::arg("keepdim"), "Index of the first minimum along `dim` (C++ kernel).");
    m.def("cumsum", &tf::cumsum, py::arg("x"), py::arg("dim"), "Running sum along `dim` (C++ kernel, numpy's order).");
}
