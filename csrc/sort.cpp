// sort(x, dim, descending) -> (values, int64 indices): ref's stable argsort, bit for bit.
//
// Every element becomes an unsigned key whose integer order is ref's order, then the
// (key, position) pairs of each row are sorted stably: insertion sort for short rows,
// std::stable_sort for medium ones, an LSD radix sort (8-bit digits, passes whose digit
// is the same for the whole row skipped) for long ones.  A stable sort of a total preorder
// has exactly one result, so the indices equal numpy's whatever the algorithm.
//
// The keys reproduce ref's stable argsort of x ascending, or of its reversed order:
//  - floats: ascending IEEE order with -0.0 tied to +0.0 and every NaN tied last; descending
//    negates first, so NaNs stay LAST (numpy's rule, unlike PyTorch's) and ties keep their
//    input order; half types order as their float32 values, which is their own bit order;
//  - integers: descending complements the bits (~x, ref's key: -x would wrap the dtype's
//    minimum onto itself and sort it first), so the minimum sorts last, as in PyTorch;
//  - bool: ascending only — ref's `-x` raises TypeError for bool, and so does this kernel.
// Values are gathered from x by the sorted positions, so NaN payloads and signed zeros are
// x's own bits.
#include "core.h"

#include <memory>

namespace tf {
namespace {

template <class T> using key_t = std::conditional_t<sizeof(T) == 1, uint8_t,
                                 std::conditional_t<sizeof(T) == 2, uint16_t,
                                 std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;

/// The bits of +inf for a floating storage type (larger magnitudes are NaN).
template <class T> constexpr uint64_t inf_bits() {
    if constexpr (std::is_same_v<T, half>) return 0x7c00u;
    else if constexpr (std::is_same_v<T, bhalf>) return 0x7f80u;
    else if constexpr (std::is_same_v<T, float>) return 0x7f800000u;
    else return 0x7ff0000000000000ull;
}

/// An unsigned key whose order is ref's sort order of v (see the file comment).
template <class T> inline key_t<T> sort_key(T v, bool desc) {
    using K = key_t<T>;
    constexpr K top = K(K(1) << (sizeof(K) * 8 - 1));
    if constexpr (std::is_same_v<T, bool>) {
        return K(v);
    } else if constexpr (std::is_integral_v<T>) {
        K u = static_cast<K>(v);
        if (desc) u = K(~u);  // ~x = -x - 1: the exact reverse order, no overflow
        return K(u ^ top);          // two's complement order -> unsigned order
    } else {
        K u;
        std::memcpy(&u, &v, sizeof(K));
        if (desc) u = K(u ^ top);
        const K mag = K(u & K(~top));
        if (mag > K(inf_bits<T>())) return K(~K(0));  // NaN: after everything, all tied
        if (mag == 0) u = 0;                          // -0.0 ties with +0.0
        return (u & top) ? K(~u) : K(u | top);
    }
}

template <class K> struct Item {
    K key;
    uint32_t pos;
};

/// Sort a[0..n) stably by key, using b[0..n) as scratch; returns the buffer holding the result.
template <class K> Item<K>* stable_sort_items(Item<K>* a, Item<K>* b, int64_t n) {
    if (n <= 32) {
        for (int64_t i = 1; i < n; ++i) {
            const Item<K> it = a[i];
            int64_t j = i;
            for (; j > 0 && a[j - 1].key > it.key; --j) a[j] = a[j - 1];
            a[j] = it;
        }
        return a;
    }
    if (n <= 256) {
        std::stable_sort(a, a + n, [](const Item<K>& p, const Item<K>& q) { return p.key < q.key; });
        return a;
    }
    constexpr int P = int(sizeof(K));
    uint32_t cnt[P][256];
    std::memset(cnt, 0, sizeof(cnt));
    for (int64_t i = 0; i < n; ++i) {
        const K k = a[i].key;
        for (int p = 0; p < P; ++p) ++cnt[p][(k >> (8 * p)) & 0xff];
    }
    for (int p = 0; p < P; ++p) {
        uint32_t* c = cnt[p];
        if (c[(a[0].key >> (8 * p)) & 0xff] == uint32_t(n)) continue;  // one digit: order unchanged
        uint32_t sum = 0;
        for (int v = 0; v < 256; ++v) {
            const uint32_t t = c[v];
            c[v] = sum;
            sum += t;
        }
        for (int64_t i = 0; i < n; ++i) b[c[(a[i].key >> (8 * p)) & 0xff]++] = a[i];
        std::swap(a, b);
    }
    return a;
}

template <class T>
void sort_rows(const View& x, int d, bool desc, char* vo, int64_t* io, const int64_t* ostr) {
    using K = key_t<T>;
    const int nd = x.ndim;
    const int64_t n = x.shape[d], rows = x.numel() / n, xs = x.strides[d], os = ostr[d];
    parallel_for(rows, std::max<int64_t>(1, kGrain / n), [&](int64_t r0, int64_t r1) {
        // uninitialised (a vector would zero 16 bytes per element first)
        std::unique_ptr<Item<K>[]> buf(new Item<K>[size_t(2 * n)]);
        for (int64_t r = r0; r < r1; ++r) {
            int64_t q = r, xoff = 0, ooff = 0;  // row r: C order over the dims other than d
            for (int k = nd - 1; k >= 0; --k) {
                if (k == d) continue;
                const int64_t c = q % x.shape[k];
                q /= x.shape[k];
                xoff += c * x.strides[k];
                ooff += c * ostr[k];
            }
            const T* src = reinterpret_cast<const T*>(x.data) + xoff;
            Item<K>* a = buf.get();
            for (int64_t j = 0; j < n; ++j) a[j] = Item<K>{sort_key(src[j * xs], desc), uint32_t(j)};
            const Item<K>* s = stable_sort_items(a, a + n, n);
            T* vals = reinterpret_cast<T*>(vo) + ooff;
            int64_t* idx = io + ooff;
            for (int64_t j = 0; j < n; ++j) {
                vals[j * os] = src[int64_t(s[j].pos) * xs];
                idx[j * os] = int64_t(s[j].pos);
            }
        }
    });
}

py::tuple sort(const py::array& xa, int64_t dim, bool descending) {
    const char* K = "sort";
    View x = view_of(xa, K);
    if (dim < -int64_t(x.ndim) || dim >= int64_t(x.ndim))
        fail(K, "dim " + std::to_string(dim) + " out of range for shape " + x.shape_str());
    const int d = int(dim < 0 ? dim + x.ndim : dim);
    if (descending && x.dtype == DType::Bool)
        throw py::type_error("sort: descending sort of a bool array is not supported (the reference "
                             "backend sorts by -x, which numpy refuses for bool)");
    if (x.shape[d] > int64_t(UINT32_MAX))
        fail(K, "dim " + std::to_string(d) + " of size " + std::to_string(x.shape[d]) + " is too long to sort");
    py::array values = empty(x.dtype, x.shape, x.ndim);
    py::array index = empty(DType::Int64, x.shape, x.ndim);
    if (x.numel() == 0) return py::make_tuple(values, index);
    int64_t ostr[kMaxDims];
    {
        int64_t s = 1;
        for (int k = x.ndim - 1; k >= 0; --k) ostr[k] = s, s *= x.shape[k];
    }
    char* vo = static_cast<char*>(values.mutable_data());
    int64_t* io = static_cast<int64_t*>(index.mutable_data());
    {
        py::gil_scoped_release nogil;
        dispatch_all(x.dtype, K, [&](auto t) { sort_rows<decltype(t)>(x, d, descending, vo, io, ostr); });
    }
    return py::make_tuple(values, index);
}

}  // namespace
}  // namespace tf

void register_sort(pybind11::module_& m) {
    namespace py = pybind11;
    m.def("sort", &tf::sort, py::arg("x"), py::arg("dim"), py::arg("descending"),
          "(values, int64 indices) sorted stably along dim, NaNs last (C++ kernel).");
}
