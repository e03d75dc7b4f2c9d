// Index kernels: gather, scatter_add, scatter, and index / index_put for the common case
// of ONE integer index array on one dim with slices elsewhere (embedding lookups and their
// backward `index_put(zeros, (idx,), g, accumulate=True)`).  Other index tuples (bool masks,
// several arrays, ints, None, Ellipsis), other dtype mixes and shapes that only numpy's
// broadcasting rules accept go to the reference primitive (call_ref), whose behaviour is
// the specification.
//
// Index values are checked in C++ before any access (negative ones wrap where ref accepts
// them); an out-of-range value raises IndexError naming the kernel.
//
// Determinism: accumulation happens in the order np.add.at uses (C order of the index
// positions; each addition rounded to the storage type, as numpy's ufunc does).  Threads
// split the work only along coordinates that write disjoint elements (outer rows, or
// column ranges with every thread walking all rows in order), so results never depend on
// the thread count.  Assignments (scatter, index_put without accumulate) with duplicate
// indices keep the value written last in C order of the index (numpy's result for a
// C-ordered index; numpy follows the index's memory order, PyTorch leaves it undefined).
#include "core.h"

namespace tf {
namespace {

/// np.asarray(a, int64, order="C") after checking that `a` holds integers (not
/// ascontiguousarray: that makes a 0-d index 1-d).
py::array int64_index(const py::array& a, const char* K) {
    const char kind = a.dtype().kind();
    if (kind != 'i' && kind != 'u')
        fail(K, "index must be an integer array, got " + py::str(a.dtype()).cast<std::string>());
    return py::module_::import("numpy").attr("asarray")(a, py::arg("dtype") = "int64", py::arg("order") = "C");
}

/// Fail with IndexError unless every index is in [-n, n).
void check_range(const char* K, const int64_t* I, int64_t count, int64_t n, int dim) {
    for (int64_t i = 0; i < count; ++i) {
        if (I[i] < -n || I[i] >= n)
            throw py::index_error(std::string(K) + ": index " + std::to_string(I[i]) + " is out of bounds for dim " +
                                  std::to_string(dim) + " with size " + std::to_string(n));
    }
}

inline int64_t wrap(int64_t i, int64_t n) { return i < 0 ? i + n : i; }

/// Byte offsets of every element of (shape, byte strides) in C order.
std::vector<int64_t> offsets(const int64_t* shape, const int64_t* bstrides, int nd) {
    int64_t n = 1;
    for (int d = 0; d < nd; ++d) n *= shape[d];
    std::vector<int64_t> off(size_t(std::max<int64_t>(n, 0)));
    if (n == 0) return off;
    int64_t idx[kMaxDims] = {0};
    int64_t cur = 0;
    for (int64_t k = 0; k < n; ++k) {
        off[size_t(k)] = cur;
        for (int d = nd - 1; d >= 0; --d) {
            cur += bstrides[d];
            if (++idx[d] < shape[d]) break;
            cur -= bstrides[d] * shape[d];
            idx[d] = 0;
        }
    }
    return off;
}

/// dst op= src for one element: add (numpy's ufunc semantics per dtype) or assign.
template <class T, bool Add> inline void apply_one(char* dst, const char* src) {
    T& o = *reinterpret_cast<T*>(dst);
    const T v = *reinterpret_cast<const T*>(src);
    if constexpr (!Add) {
        o = v;
    } else if constexpr (is_half_v<T>) {
        o = store<T>(load(o) + load(v));
    } else if constexpr (std::is_same_v<T, bool>) {
        o = o || v;
    } else if constexpr (std::is_integral_v<T>) {
        using U = std::make_unsigned_t<T>;
        o = static_cast<T>(static_cast<U>(static_cast<U>(o) + static_cast<U>(v)));  // wraps
    } else {
        o += v;
    }
}

/// Storage type of the same size as T, for kernels that only move elements.
template <class T> using bits_t = std::conditional_t<sizeof(T) == 1, uint8_t,
                                  std::conditional_t<sizeof(T) == 2, uint16_t,
                                  std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;

// ======================================================================= gather / scatter
/// Byte offset of row r (C order over shape[0..nd-2]) with dim `skip`'s coordinate left out.
inline int64_t row_offset(int64_t r, const int64_t* shape, const int64_t* bstrides, int nd, int skip) {
    int64_t off = 0;
    for (int d = nd - 2; d >= 0; --d) {
        int64_t c = r % shape[d];
        r /= shape[d];
        if (d != skip) off += c * bstrides[d];
    }
    return off;
}

py::object gather(const py::array& xa, int64_t dim, const py::array& ia) {
    const char* K = "gather";
    View x = view_of(xa, K);
    if (int(ia.ndim()) != x.ndim || x.ndim == 0) return call_ref(K, xa, dim, ia);
    if (dim < 0 || dim >= x.ndim) fail(K, "dim " + std::to_string(dim) + " out of range for " + x.shape_str());
    for (int k = 0; k < x.ndim; ++k)  // numpy's broadcasting of a size-1 input dim: ref decides
        if (k != dim && ia.shape(k) > x.shape[k]) return call_ref(K, xa, dim, ia);
    py::array ic = int64_index(ia, K);
    const int64_t* I = static_cast<const int64_t*>(ic.data());
    const int64_t count = ic.size(), n = x.shape[dim];
    check_range(K, I, count, n, int(dim));
    std::vector<int64_t> shape(ic.shape(), ic.shape() + ic.ndim());
    py::array out = empty(x.dtype, shape);
    if (count == 0) return out;
    const int nd = x.ndim, d = int(dim);
    int64_t xb[kMaxDims];
    for (int k = 0; k < nd; ++k) xb[k] = x.strides[k] * x.itemsize();
    const int64_t inner = shape[nd - 1], rows = count / inner;
    char* const o = static_cast<char*>(out.mutable_data());
    py::gil_scoped_release nogil;
    dispatch_all(x.dtype, K, [&](auto t) {
        using W = bits_t<decltype(t)>;
        W* ow = reinterpret_cast<W*>(o);
        parallel_for(rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t b, int64_t e) {
            for (int64_t r = b; r < e; ++r) {
                const char* base = x.data + row_offset(r, shape.data(), xb, nd, d);
                const int64_t* ir = I + r * inner;
                W* orow = ow + r * inner;
                if (d == nd - 1) {
                    for (int64_t j = 0; j < inner; ++j)
                        orow[j] = *reinterpret_cast<const W*>(base + wrap(ir[j], n) * xb[d]);
                } else {
                    for (int64_t j = 0; j < inner; ++j)
                        orow[j] = *reinterpret_cast<const W*>(base + j * xb[nd - 1] + wrap(ir[j], n) * xb[d]);
                }
            }
        });
    });
    return out;
}

template <bool Add> py::object scatter_impl(const char* K, const py::array& xa, int64_t dim, const py::array& ia,
                                            const py::array& sa) {
    View x = view_of(xa, K), s = view_of(sa, K);
    const int nd = x.ndim;
    if (s.dtype != x.dtype || int(ia.ndim()) != nd || s.ndim != nd || nd == 0) return call_ref(K, xa, dim, ia, sa);
    if (dim < 0 || dim >= nd) fail(K, "dim " + std::to_string(dim) + " out of range for " + x.shape_str());
    for (int k = 0; k < nd; ++k)
        if ((k != dim && ia.shape(k) > x.shape[k]) || ia.shape(k) > s.shape[k]) return call_ref(K, xa, dim, ia, sa);
    py::array ic = int64_index(ia, K);
    const int64_t* I = static_cast<const int64_t*>(ic.data());
    const int64_t count = ic.size(), n = x.shape[dim];
    check_range(K, I, count, n, int(dim));
    py::array out = xa.attr("copy")();  // C order, as ref's x.copy()
    View o = view_of(out, K);
    if (count == 0) return out;
    const int d = int(dim);
    std::vector<int64_t> shape(ic.shape(), ic.shape() + ic.ndim());
    int64_t ob[kMaxDims], sb[kMaxDims];
    for (int k = 0; k < nd; ++k) {
        ob[k] = o.strides[k] * o.itemsize();
        sb[k] = s.strides[k] * s.itemsize();
    }
    const int64_t inner = shape[nd - 1], rows = count / inner;
    py::gil_scoped_release nogil;
    dispatch_all(x.dtype, K, [&](auto t) {
        using T = std::conditional_t<Add, decltype(t), bits_t<decltype(t)>>;
        if (d == nd - 1) {  // each row is its own fiber: rows write disjoint elements
            parallel_for(rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t b, int64_t e) {
                for (int64_t r = b; r < e; ++r) {
                    char* orow = o.data + row_offset(r, shape.data(), ob, nd, -1);
                    const char* srow = s.data + row_offset(r, shape.data(), sb, nd, -1);
                    const int64_t* ir = I + r * inner;
                    for (int64_t j = 0; j < inner; ++j)
                        apply_one<T, Add>(orow + wrap(ir[j], n) * ob[d], srow + j * sb[d]);
                }
            });
        } else {  // rows along `dim` hit the same elements: split the columns, rows in order
            parallel_for(inner, std::max<int64_t>(1, kGrain / rows), [&](int64_t c0, int64_t c1) {
                for (int64_t r = 0; r < rows; ++r) {
                    char* orow = o.data + row_offset(r, shape.data(), ob, nd, d);
                    const char* srow = s.data + row_offset(r, shape.data(), sb, nd, -1);
                    const int64_t* ir = I + r * inner;
                    for (int64_t j = c0; j < c1; ++j)
                        apply_one<T, Add>(orow + j * ob[nd - 1] + wrap(ir[j], n) * ob[d], srow + j * sb[nd - 1]);
                }
            });
        }
    });
    return out;
}

py::object scatter_add(const py::array& x, int64_t dim, const py::array& index, const py::array& src) {
    return scatter_impl<true>("scatter_add", x, dim, index, src);
}
py::object scatter(const py::array& x, int64_t dim, const py::array& index, const py::array& src) {
    return scatter_impl<false>("scatter", x, dim, index, src);
}

// ======================================================================= index / index_put
/// A parsed index tuple of slices and exactly one integer array.
struct OneArrayIndex {
    int dim = -1;                // the dim the array indexes
    py::array I;                 // contiguous int64 copy of the array
    int nslices = 0;             // leading entries of the tuple (the rest are full dims)
    py::ssize_t start[kMaxDims], step[kMaxDims], len[kMaxDims];
};

/// Parse `idx` for the fast path; false for anything else (ref handles it).
bool parse_index(const py::object& idx, const View& x, const char* K, OneArrayIndex& P) {
    if (!py::isinstance<py::tuple>(idx)) return false;
    py::tuple t = idx.cast<py::tuple>();
    if (int(t.size()) > x.ndim) return false;
    P.nslices = int(t.size());
    for (int k = 0; k < P.nslices; ++k) {
        py::handle it = t[size_t(k)];
        if (py::isinstance<py::slice>(it)) {
            py::ssize_t st, sp, sl, ln;
            if (!py::reinterpret_borrow<py::slice>(it).compute(py::ssize_t(x.shape[k]), &st, &sp, &sl, &ln)) return false;
            P.start[k] = st, P.step[k] = sl, P.len[k] = ln;
            (void)sp;
        } else if (py::isinstance<py::array>(it)) {
            py::array a = py::reinterpret_borrow<py::array>(it);
            const char kind = a.dtype().kind();
            if (P.dim >= 0 || (kind != 'i' && kind != 'u')) return false;
            P.dim = k;
            P.I = int64_index(a, K);
        } else {
            return false;
        }
    }
    return P.dim >= 0;
}

/// v with the parsed slices applied (the array's dim left whole).
View apply_slices(View v, const OneArrayIndex& P) {
    for (int k = 0; k < P.nslices; ++k) {
        if (k == P.dim) continue;
        v.data += P.start[k] * v.strides[k] * v.itemsize();
        v.strides[k] *= P.step[k];
        v.shape[k] = P.len[k];
    }
    return v;
}

/// Layout of x[idx] for a sliced view: pre dims, the array's dims, post dims.
struct Plan {
    std::vector<int64_t> rshape;              // result shape
    std::vector<int64_t> pre_off, post_off;   // byte offsets in the sliced source/destination
    int64_t pre = 1, count = 0, post = 1, n = 0, dstride = 0;
    bool post_contig = false;
};

Plan make_plan(const View& v, const OneArrayIndex& P) {
    Plan p;
    const int d = P.dim;
    const int64_t isz = v.itemsize();
    int64_t bs[kMaxDims];
    for (int k = 0; k < v.ndim; ++k) bs[k] = v.strides[k] * isz;
    for (int k = 0; k < d; ++k) p.rshape.push_back(v.shape[k]);
    for (int k = 0; k < P.I.ndim(); ++k) p.rshape.push_back(P.I.shape(k));
    for (int k = d + 1; k < v.ndim; ++k) p.rshape.push_back(v.shape[k]);
    p.pre_off = offsets(v.shape, bs, d);
    p.post_off = offsets(v.shape + d + 1, bs + d + 1, v.ndim - d - 1);
    p.pre = int64_t(p.pre_off.size());
    p.post = int64_t(p.post_off.size());
    p.count = P.I.size();
    p.n = v.shape[d];
    p.dstride = bs[d];
    p.post_contig = true;
    for (int64_t q = 0; q < p.post; ++q) p.post_contig &= p.post_off[size_t(q)] == q * isz;
    return p;
}

py::object index(const py::array& xa, const py::object& idx) {
    const char* K = "index";
    View x0 = view_of(xa, K);
    OneArrayIndex P;
    if (!parse_index(idx, x0, K, P)) return call_ref(K, xa, idx);
    const View x = apply_slices(x0, P);
    Plan p = make_plan(x, P);
    const int64_t* I = static_cast<const int64_t*>(P.I.data());
    check_range(K, I, p.count, p.n, P.dim);
    py::array out = empty(x.dtype, p.rshape);
    char* const o = static_cast<char*>(out.mutable_data());
    const int64_t isz = x.itemsize(), items = p.pre * p.count, block = p.post * isz;
    if (items == 0 || p.post == 0) return out;
    py::gil_scoped_release nogil;
    dispatch_all(x.dtype, K, [&](auto t) {
        using W = bits_t<decltype(t)>;
        parallel_for(items, std::max<int64_t>(1, kGrain / p.post), [&](int64_t b, int64_t e) {
            for (int64_t it = b; it < e; ++it) {
                const int64_t pi = it / p.count, i = it % p.count;
                const char* src = x.data + p.pre_off[size_t(pi)] + wrap(I[i], p.n) * p.dstride;
                char* dst = o + it * block;
                if (p.post_contig) {
                    std::memcpy(dst, src, size_t(block));
                } else {
                    W* dw = reinterpret_cast<W*>(dst);
                    for (int64_t q = 0; q < p.post; ++q) dw[q] = *reinterpret_cast<const W*>(src + p.post_off[size_t(q)]);
                }
            }
        });
    });
    return out;
}

template <class T, bool Add>
void put_rows(const Plan& p, const int64_t* I, char* o, const char* v, const std::vector<int64_t>& vpre,
              const std::vector<int64_t>& vi, const std::vector<int64_t>& vpost, bool vpost_contig, int64_t p0,
              int64_t p1, int64_t q0, int64_t q1) {
    const bool contig = p.post_contig && vpost_contig;
    for (int64_t pi = p0; pi < p1; ++pi) {
        for (int64_t i = 0; i < p.count; ++i) {  // index order: duplicates applied in sequence
            char* dst = o + p.pre_off[size_t(pi)] + wrap(I[i], p.n) * p.dstride;
            const char* src = v + vpre[size_t(pi)] + vi[size_t(i)];
            if (contig) {
                T* __restrict dt = reinterpret_cast<T*>(dst);
                const T* __restrict st = reinterpret_cast<const T*>(src);
                for (int64_t q = q0; q < q1; ++q) apply_one<T, Add>(reinterpret_cast<char*>(dt + q), reinterpret_cast<const char*>(st + q));
            } else {
                for (int64_t q = q0; q < q1; ++q)
                    apply_one<T, Add>(dst + p.post_off[size_t(q)], src + vpost[size_t(q)]);
            }
        }
    }
}

py::object index_put(const py::array& xa, const py::object& idx, const py::object& vo, bool accumulate) {
    const char* K = "index_put";
    if (!py::isinstance<py::array>(vo)) return call_ref(K, xa, idx, vo, accumulate);  // a scalar
    const py::array va = py::reinterpret_borrow<py::array>(vo);
    View x = view_of(xa, K), v = view_of(va, K);
    OneArrayIndex P;
    if (v.dtype != x.dtype || !parse_index(idx, x, K, P)) return call_ref(K, xa, idx, va, accumulate);
    Plan p0 = make_plan(apply_slices(x, P), P);
    // values broadcast to the result shape (numpy's rules; anything else: ref raises)
    const int nr = int(p0.rshape.size());
    if (v.ndim > nr) return call_ref(K, xa, idx, va, accumulate);
    for (int k = 0; k < v.ndim; ++k) {
        int64_t r = p0.rshape[size_t(nr - v.ndim + k)];
        if (v.shape[k] != r && v.shape[k] != 1) return call_ref(K, xa, idx, va, accumulate);
    }
    const int64_t* I = static_cast<const int64_t*>(P.I.data());
    check_range(K, I, p0.count, p0.n, P.dim);
    py::array out = xa.attr("copy")();
    const View os = apply_slices(view_of(out, K), P);  // the slices' origin, not out's
    const Plan p = make_plan(os, P);
    int64_t vb[kMaxDims];
    broadcast_strides(v, p.rshape.data(), nr, vb);
    for (int k = 0; k < nr; ++k) vb[k] *= v.itemsize();
    const int d = P.dim, ni = int(P.I.ndim());
    const std::vector<int64_t> vpre = offsets(p.rshape.data(), vb, d),
                               vi = offsets(p.rshape.data() + d, vb + d, ni),
                               vpost = offsets(p.rshape.data() + d + ni, vb + d + ni, nr - d - ni);
    bool vpost_contig = true;
    for (int64_t q = 0; q < p.post; ++q) vpost_contig &= vpost[size_t(q)] == q * v.itemsize();
    if (p.pre * p.count * p.post == 0) return out;
    char* const o = os.data;
    py::gil_scoped_release nogil;
    dispatch_all(x.dtype, K, [&](auto t) {
        using T = decltype(t);
        auto run = [&](auto add) {
            constexpr bool Add = decltype(add)::value;
            using U = std::conditional_t<Add, T, bits_t<T>>;
            const int64_t work = p.pre * p.count * p.post;
            // disjoint destinations: different pre rows, or different post columns
            if (p.pre >= get_num_threads() && work >= kGrain) {
                parallel_for(p.pre, 1, [&](int64_t b, int64_t e) {
                    put_rows<U, Add>(p, I, o, v.data, vpre, vi, vpost, vpost_contig, b, e, 0, p.post);
                });
            } else {
                parallel_for(p.post, std::max<int64_t>(64, kGrain / std::max<int64_t>(1, p.pre * p.count)),
                             [&](int64_t b, int64_t e) {
                                 put_rows<U, Add>(p, I, o, v.data, vpre, vi, vpost, vpost_contig, 0, p.pre, b, e);
                             });
            }
        };
        if (accumulate) run(std::true_type{});
        else run(std::false_type{});
    });
    return out;
}

}  // namespace
}  // namespace tf

void register_index(pybind11::module_& m) {
    namespace py = pybind11;
    m.def("gather", &tf::gather, py::arg("x"), py::arg("dim"), py::arg("index"),
          "out[i][j] = x[i][index[i][j]] along dim (C++ kernel).");
    m.def("scatter_add", &tf::scatter_add, py::arg("x"), py::arg("dim"), py::arg("index"), py::arg("src"),
          "A copy of x with src added at index along dim; duplicates summed in index order (C++ kernel).");
    m.def("scatter", &tf::scatter, py::arg("x"), py::arg("dim"), py::arg("index"), py::arg("src"),
          "A copy of x with src written at index along dim; the last write wins (C++ kernel).");
    m.def("index", &tf::index, py::arg("x"), py::arg("idx"),
          "x[idx] (C++ kernel for one integer array with slices; numpy otherwise).");
    m.def("index_put", &tf::index_put, py::arg("x"), py::arg("idx"), py::arg("values"), py::arg("accumulate"),
          "A copy of x with x[idx] = values (+= with accumulate, duplicates in index order).");
}
