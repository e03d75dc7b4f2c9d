// Scatter reductions (issue 16): scatter_reduce(x, dim, index, src, reduce, include_self)
// for reduce = sum, prod, mean, amax, amin; index_add and index_reduce reach it (or
// scatter_add) with their 1-d index broadcast over the source.  The reference primitive
// (tinyfw/backend/ref_index.py) is the specification; dtype mixes, bool, and shapes only
// numpy's broadcasting accepts go to it.
//
// Each output element accumulates in its compute type (float for float16/bfloat16, the
// storage type otherwise; integers wrap as numpy's) in the C order of the index positions
// (np.<ufunc>.at's order), so sums and products are bit-identical to the reference.
// Positions nothing is scattered to keep x's value; without include_self the first value
// scattered to a position starts from the reduction's identity.  amax/amin propagate NaN
// (once NaN, an element stays NaN).  Means divide in double and round once; integer
// means round toward -infinity (numpy's floor_divide).
//
// Threads split the work as scatter_add does (index.cpp): rows of the index when `dim`
// is the last dim (they write disjoint elements), else columns, each thread walking every
// row in order; results never depend on the thread count.
#include <limits>
#include <string>

#include "core.h"

namespace tf {
namespace {

enum class SR { Sum, Prod, Mean, Amax, Amin };

SR parse_reduce(const std::string& r) {
    if (r == "sum") return SR::Sum;
    if (r == "prod") return SR::Prod;
    if (r == "mean") return SR::Mean;
    if (r == "amax") return SR::Amax;
    if (r == "amin") return SR::Amin;
    fail("scatter_reduce", "reduce must be sum, prod, mean, amax or amin, got '" + r + "'");
}

/// a op= v in the compute type C; integer sums and products wrap (unsigned arithmetic)
template <SR Op, class C> inline void combine(C& a, C v) {
    if constexpr (Op == SR::Sum || Op == SR::Mean) {
        if constexpr (std::is_integral_v<C>) {
            using U = std::make_unsigned_t<C>;
            a = static_cast<C>(static_cast<U>(static_cast<U>(a) + static_cast<U>(v)));
        } else {
            a += v;
        }
    } else if constexpr (Op == SR::Prod) {
        if constexpr (std::is_integral_v<C>) {
            using U = std::make_unsigned_t<C>;
            using W = std::conditional_t<(sizeof(C) < sizeof(unsigned)), unsigned, U>;  // no int promotion UB
            a = static_cast<C>(static_cast<U>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(v))));
        } else {
            a *= v;
        }
    } else if constexpr (Op == SR::Amax) {
        // selects, not branches: the slice loops of index_reduce vectorise (a branch made
        // amax 7x sum's time); a NaN `a` stays, since nothing compares greater
        if constexpr (std::is_floating_point_v<C>) a = ((v > a) | (v != v)) ? v : a;
        else a = v > a ? v : a;
    } else {
        if constexpr (std::is_floating_point_v<C>) a = ((v < a) | (v != v)) ? v : a;
        else a = v < a ? v : a;
    }
}

template <SR Op, class C> constexpr C identity() {
    if constexpr (Op == SR::Prod) return C(1);
    else if constexpr (Op == SR::Amax)
        return std::is_floating_point_v<C> ? -std::numeric_limits<C>::infinity() : std::numeric_limits<C>::lowest();
    else if constexpr (Op == SR::Amin)
        return std::is_floating_point_v<C> ? std::numeric_limits<C>::infinity() : std::numeric_limits<C>::max();
    else return C(0);
}

/// Offset of row r (C order over shape[0..nd-2]) with strides st (any unit); dim `skip`'s
/// coordinate is left out (-1: none).
inline int64_t row_off(int64_t r, const int64_t* shape, const int64_t* st, int nd, int skip) {
    int64_t off = 0;
    for (int d = nd - 2; d >= 0; --d) {
        const int64_t c = r % shape[d];
        r /= shape[d];
        if (d != skip) off += c * st[d];
    }
    return off;
}

/// Call f(std::integral_constant<SR, op>) for the runtime op.
template <class F> void dispatch_sr(SR op, F&& f) {
    switch (op) {
        case SR::Sum: return f(std::integral_constant<SR, SR::Sum>{});
        case SR::Prod: return f(std::integral_constant<SR, SR::Prod>{});
        case SR::Mean: return f(std::integral_constant<SR, SR::Mean>{});
        case SR::Amax: return f(std::integral_constant<SR, SR::Amax>{});
        case SR::Amin: return f(std::integral_constant<SR, SR::Amin>{});
    }
}

/// floor(a / b) for integers (b > 0), numpy's floor_divide
template <class C> inline C floor_div(C a, int64_t b) {
    const int64_t q = int64_t(a) / b, r = int64_t(a) % b;
    return static_cast<C>((r != 0 && (r < 0)) ? q - 1 : q);
}

py::object scatter_reduce(const py::array& xa, int64_t dim, const py::array& ia, const py::array& sa,
                          const std::string& reduce, bool include_self) {
    const char* K = "scatter_reduce";
    const SR op = parse_reduce(reduce);
    View x = view_of(xa, K), s = view_of(sa, K);
    const int nd = x.ndim;
    if (x.dtype == DType::Bool || s.dtype != x.dtype || int(ia.ndim()) != nd || s.ndim != nd || nd == 0)
        return call_ref(K, xa, dim, ia, sa, reduce, include_self);
    if (dim < 0 || dim >= nd) fail(K, "dim " + std::to_string(dim) + " out of range for " + x.shape_str());
    for (int k = 0; k < nd; ++k)
        if ((k != dim && ia.shape(k) > x.shape[k]) || ia.shape(k) > s.shape[k])
            return call_ref(K, xa, dim, ia, sa, reduce, include_self);
    const char kind = ia.dtype().kind();
    if (kind != 'i' && kind != 'u') fail(K, "index must be an integer array");
    py::array ic = py::module_::import("numpy").attr("asarray")(ia, py::arg("dtype") = "int64", py::arg("order") = "C");
    const int64_t* I = static_cast<const int64_t*>(ic.data());
    const int64_t count = ic.size(), n = x.shape[dim];
    for (int64_t i = 0; i < count; ++i)
        if (I[i] < -n || I[i] >= n)
            throw py::index_error(std::string(K) + ": index " + std::to_string(I[i]) + " is out of bounds for dim " +
                                  std::to_string(dim) + " with size " + std::to_string(n));
    std::vector<int64_t> xshape(x.shape, x.shape + nd);
    py::array out = empty(x.dtype, xshape);
    const int64_t N = x.numel();
    if (N == 0) return out;
    View o = view_of(out, K);
    const int d = int(dim);
    std::vector<int64_t> ishape(ic.shape(), ic.shape() + nd);
    // acc is row-major over x's shape: its element strides
    int64_t ast[kMaxDims], sst[kMaxDims];
    int64_t step = 1;
    for (int k = nd - 1; k >= 0; --k) {
        ast[k] = step;
        step *= std::max<int64_t>(x.shape[k], 1);
    }
    for (int k = 0; k < nd; ++k) sst[k] = s.strides[k];
    const bool counted = op == SR::Mean || !include_self;
    const int64_t inner = ishape[nd - 1], rows = inner ? count / inner : 0;
    py::gil_scoped_release nogil;
    dispatch_all(x.dtype, K, [&](auto t) {
        using T = decltype(t);
        if constexpr (std::is_same_v<T, bool>) {
            return;  // sent to ref above
        } else {
            using C = compute_t<T>;
            std::vector<C> acc(static_cast<size_t>(N));
            std::vector<int64_t> cnt(counted ? size_t(N) : 0);
            const T* xd = reinterpret_cast<const T*>(x.data);
            int64_t xidx[kMaxDims] = {0};
            for (int64_t p = 0; p < N; ++p) {  // x (any strides) into row-major acc
                int64_t off = 0;
                for (int k = 0; k < nd; ++k) off += xidx[k] * x.strides[k];
                acc[size_t(p)] = load(xd[off]);
                for (int k = nd - 1; k >= 0 && ++xidx[k] == x.shape[k]; --k) xidx[k] = 0;
            }
            const T* sd = reinterpret_cast<const T*>(s.data);
            dispatch_sr(op, [&](auto opc) {
                constexpr SR Op = decltype(opc)::value;
                auto put = [&](int64_t p, C v) {
                    if (counted) {
                        if (!include_self && cnt[size_t(p)] == 0) acc[size_t(p)] = identity<Op, C>();
                        ++cnt[size_t(p)];
                    }
                    combine<Op, C>(acc[size_t(p)], v);
                };
                if (d == nd - 1) {
                    parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t e) {
                        for (int64_t r = b; r < e; ++r) {
                            const int64_t abase = row_off(r, ishape.data(), ast, nd, -1);
                            const T* srow = sd + row_off(r, ishape.data(), sst, nd, -1);
                            const int64_t* ir = I + r * inner;
                            for (int64_t j = 0; j < inner; ++j) {
                                const int64_t k = ir[j] < 0 ? ir[j] + n : ir[j];
                                put(abase + k, load(srow[j * sst[d]]));
                            }
                        }
                    });
                } else {
                    parallel_for(inner, std::max<int64_t>(1, kGrain / std::max<int64_t>(rows, 1)), [&](int64_t c0, int64_t c1) {
                        for (int64_t r = 0; r < rows; ++r) {
                            const int64_t abase = row_off(r, ishape.data(), ast, nd, d);
                            const T* srow = sd + row_off(r, ishape.data(), sst, nd, -1);
                            const int64_t* ir = I + r * inner;
                            for (int64_t j = c0; j < c1; ++j) {
                                const int64_t k = ir[j] < 0 ? ir[j] + n : ir[j];
                                put(abase + j + k * ast[d], load(srow[j * sst[nd - 1]]));
                            }
                        }
                    });
                }
            });
            T* od = reinterpret_cast<T*>(o.data);  // row-major, like acc
            parallel_for(N, kGrain, [&](int64_t b, int64_t e) {
                for (int64_t p = b; p < e; ++p) {
                    C a = acc[size_t(p)];
                    if (op == SR::Mean) {
                        const int64_t c = cnt[size_t(p)] + (include_self ? 1 : 0);
                        if (c > 1) {
                            if constexpr (std::is_integral_v<C>) {
                                od[p] = static_cast<T>(floor_div(a, c));
                            } else {
                                od[p] = convert<T>(double(a) / double(c));
                            }
                            continue;
                        }
                    }
                    od[p] = store<T>(a);
                }
            });
        }
    });
    return out;
}

/// index_reduce(x, dim, index, src, reduce, include_self): src's slice i along `dim`
/// reduced into x's slice index[i] (1-d index; index_add is reduce="sum").  x is seen as
/// (outer, n, inner) and src as (outer, k, inner), both row-major (a copy when src is not);
/// each output element takes its values in index order, whatever the threads.
py::object index_reduce(const py::array& xa, int64_t dim, const py::array& ia, const py::array& sa,
                        const std::string& reduce, bool include_self) {
    const char* K = "index_reduce";
    const SR op = parse_reduce(reduce);
    View x = view_of(xa, K), s0 = view_of(sa, K);
    const int nd = x.ndim;
    if (x.dtype == DType::Bool || s0.dtype != x.dtype || s0.ndim != nd || nd == 0 || ia.ndim() != 1)
        return call_ref(K, xa, dim, ia, sa, reduce, include_self);
    if (dim < 0 || dim >= nd) fail(K, "dim " + std::to_string(dim) + " out of range for " + x.shape_str());
    const int64_t k = ia.shape(0), n = x.shape[dim];
    for (int d = 0; d < nd; ++d)
        if (s0.shape[d] != (d == dim ? k : x.shape[d])) return call_ref(K, xa, dim, ia, sa, reduce, include_self);
    const char kind = ia.dtype().kind();
    if (kind != 'i' && kind != 'u') fail(K, "index must be an integer array");
    auto np = py::module_::import("numpy");
    py::array ic = np.attr("asarray")(ia, py::arg("dtype") = "int64", py::arg("order") = "C");
    const int64_t* I = static_cast<const int64_t*>(ic.data());
    for (int64_t i = 0; i < k; ++i)
        if (I[i] < -n || I[i] >= n)
            throw py::index_error(std::string(K) + ": index " + std::to_string(I[i]) + " is out of bounds for dim " +
                                  std::to_string(dim) + " with size " + std::to_string(n));
    py::array out = xa.attr("copy")();  // C order
    py::array sc = np.attr("ascontiguousarray")(sa);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < dim; ++d) outer *= x.shape[d];
    for (int d = int(dim) + 1; d < nd; ++d) inner *= x.shape[d];
    const int64_t N = outer * n * inner;
    if (N == 0 || k == 0) return out;
    char* od = static_cast<char*>(out.mutable_data());
    const char* sd = static_cast<const char*>(sc.data());
    std::vector<int64_t> rows(static_cast<size_t>(k)), cnt(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < k; ++i) {
        rows[size_t(i)] = I[i] < 0 ? I[i] + n : I[i];
        ++cnt[size_t(rows[size_t(i)])];
    }
    py::gil_scoped_release nogil;
    dispatch_all(x.dtype, K, [&](auto t) {
        using T = decltype(t);
        if constexpr (std::is_same_v<T, bool>) {
            return;  // sent to ref above
        } else {
            using C = compute_t<T>;
            T* o = reinterpret_cast<T*>(od);
            const T* src = reinterpret_cast<const T*>(sd);
            std::vector<C> buf;
            C* acc;
            if constexpr (std::is_same_v<T, C>) {
                acc = o;
            } else {
                buf.resize(size_t(N));
                for (int64_t p = 0; p < N; ++p) buf[size_t(p)] = load(o[p]);
                acc = buf.data();
            }
            dispatch_sr(op, [&](auto opc) {
                constexpr SR Op = decltype(opc)::value;
                // one (outer slice, column range): every index entry in order
                auto run = [&](int64_t o0, int64_t o1, int64_t c0, int64_t c1) {
                    for (int64_t oo = o0; oo < o1; ++oo) {
                        if (!include_self)
                            for (int64_t r = 0; r < n; ++r)
                                if (cnt[size_t(r)]) {
                                    C* a = acc + (oo * n + r) * inner;
                                    for (int64_t j = c0; j < c1; ++j) a[j] = identity<Op, C>();
                                }
                        for (int64_t i = 0; i < k; ++i) {
                            C* a = acc + (oo * n + rows[size_t(i)]) * inner;
                            const T* sv = src + (oo * k + i) * inner;
                            for (int64_t j = c0; j < c1; ++j) combine<Op, C>(a[j], C(load(sv[j])));
                        }
                    }
                };
                if (inner >= 64 || outer == 1) {
                    parallel_for(inner, std::max<int64_t>(16, kGrain / std::max<int64_t>(outer * k, 1)),
                                 [&](int64_t c0, int64_t c1) { run(0, outer, c0, c1); });
                } else {
                    parallel_for(outer, std::max<int64_t>(1, kGrain / std::max<int64_t>(k * inner, 1)),
                                 [&](int64_t o0, int64_t o1) { run(o0, o1, 0, inner); });
                }
            });
            if (op == SR::Mean || !std::is_same_v<T, C>) {
                parallel_for(outer * n, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t e) {
                    for (int64_t q = b; q < e; ++q) {
                        const int64_t c = cnt[size_t(q % n)] + (include_self ? 1 : 0);
                        for (int64_t j = 0; j < inner; ++j) {
                            const int64_t p = q * inner + j;
                            const C a = acc[p];
                            if (op == SR::Mean && c > 1) {
                                if constexpr (std::is_integral_v<C>) o[p] = static_cast<T>(floor_div(a, c));
                                else o[p] = convert<T>(double(a) / double(c));
                            } else {
                                o[p] = store<T>(a);
                            }
                        }
                    }
                });
            }
        }
    });
    return out;
}

}  // namespace
}  // namespace tf

void register_index_reduce(pybind11::module_& m) {
    namespace py = pybind11;
    m.def("scatter_reduce", &tf::scatter_reduce, py::arg("x"), py::arg("dim"), py::arg("index"), py::arg("src"),
          py::arg("reduce"), py::arg("include_self"),
          "A copy of x with src reduced (sum/prod/mean/amax/amin) into the positions index addresses "
          "along dim, in index order (C++ kernel).");
    m.def("index_reduce", &tf::index_reduce, py::arg("x"), py::arg("dim"), py::arg("index"), py::arg("src"),
          py::arg("reduce"), py::arg("include_self"),
          "A copy of x with src's slices along dim reduced into the slices index names, in index order (C++ kernel).");
}
