// Private to the reduction kernels (reduce_*.cpp): the deterministic reduction engine.
// reduce_sum.cpp: sum, prod (and the shared front end); reduce_minmax.cpp: amax, amin;
// reduce_anyall.cpp: any, all; reduce_arg.cpp: argmax/argmin along one dim, cumsum.  The
// last two are compiled once, at the scalar level (they run no faster at higher ones).
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
#pragma once

#include "core.h"

#include <memory>

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace red {

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

/// n elements at p (byte stride s) as their compute type into dst: contiguous half rows
/// through the bulk conversion (core.h), the rest one element at a time.
template <class T> void load_run(const char* p, int64_t s, int64_t n, compute_t<T>* dst) {
    if constexpr (std::is_same_v<T, half>) {
        if (s == 2) return half_to_float_n(reinterpret_cast<const half*>(p), dst, n);
    } else if constexpr (std::is_same_v<T, bhalf>) {
        if (s == 2) return bhalf_to_float_n(reinterpret_cast<const bhalf*>(p), dst, n);
    }
    for (int64_t i = 0; i < n; ++i) dst[i] = load(*reinterpret_cast<const T*>(p + i * s));
}

/// Fold n elements at p (byte stride s) into lanes (fixed interleaving by position).
template <class T, class R> void fold_run(const char* p, int64_t s, int64_t n, typename R::acc* lanes) {
    using A = typename R::acc;
    if constexpr (is_half_v<T>) {
        float buf[256];
        for (int64_t i0 = 0; i0 < n; i0 += 256) {
            int64_t m = std::min<int64_t>(256, n - i0);
            load_run<T>(p + i0 * s, s, m, buf);
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
Plan make_plan(const View& x, const bool* red);

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
            int64_t r0 = 0;
            if constexpr (!is_half_v<T>) {
                if (kstride == isz) {
                    // four rows per pass over the accumulators: the same fold order as one
                    // row at a time (((acc + r0) + r1) + ...), a quarter of the acc traffic
                    A* __restrict ac = acc.get();
                    for (; r0 + 4 <= P.n_red; r0 += 4) {
                        const T* __restrict q0 = reinterpret_cast<const T*>(rb + offset_of(r0, P.nr, P.rshape, P.rin) * isz);
                        const T* __restrict q1 = reinterpret_cast<const T*>(rb + offset_of(r0 + 1, P.nr, P.rshape, P.rin) * isz);
                        const T* __restrict q2 = reinterpret_cast<const T*>(rb + offset_of(r0 + 2, P.nr, P.rshape, P.rin) * isz);
                        const T* __restrict q3 = reinterpret_cast<const T*>(rb + offset_of(r0 + 3, P.nr, P.rshape, P.rin) * isz);
#pragma omp simd
                        for (int64_t j = 0; j < n; ++j)
                            ac[j] = R::op(R::op(R::op(R::op(ac[j], R::lift(q0[j])), R::lift(q1[j])),
                                                R::lift(q2[j])), R::lift(q3[j]));
                    }
                }
            }
            for (int64_t r = r0; r < P.n_red; ++r) {
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
                load_run<T>(p, kstride, n, buf.get());  // (half rows: converted in bulk)
                A* __restrict ac = acc.get();
                const compute_t<T>* __restrict bq = buf.get();
#pragma omp simd
                for (int64_t j = 0; j < n; ++j) ac[j] = R::op(ac[j], R::lift(bq[j]));
            }
            Out* o = out + offset_of(orow, P.nk - 1, P.kshape, P.kout) + j0 * kos;
            for (int64_t j = 0; j < n; ++j) o[j * kos] = convert<Out>(acc[j]);
        }
    });
}

enum class Red { Sum, Prod, Max, Min, Any, All };

/// Run reduction `kind` of x (dtype-dispatched by the caller's file) into od.
using TypedReduce = void (*)(Red kind, const View& x, const Plan& P, char* od);
/// The front end of every reduce primitive: dims validation, output dtype and shape,
/// then `run` with the GIL released.
py::object reduce_front(const char* name, Red kind, const py::array& xa, const py::iterable& dims, bool keepdim,
                        TypedReduce run);

void register_minmax(py::module_& m);  // reduce_minmax.cpp
void register_arg(py::module_& m);     // reduce_arg.cpp (compiled once)

}  // namespace red
TINYFW_ISA_END
}  // namespace tf
