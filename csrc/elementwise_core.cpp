// The one compiled copy of the elementwise drivers (see elementwise.h): output
// allocation in the inputs' memory order, broadcasting, the strided loop, and the
// float16/bfloat16 staging that lets the half types run the float32 row kernels.
#include "elementwise.h"

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace ew {
namespace {

bool is_half_dt(DType dt) { return dt == DType::Float16 || dt == DType::BFloat16; }

// n values of a half-type array (byte stride s) as float32
void load_block(DType dt, const char* p, int64_t s, int64_t n, float* dst) {
    if (dt == DType::Float16) {
        if (s == 2) return half_to_float_n(reinterpret_cast<const half*>(p), dst, n);
        for (int64_t i = 0; i < n; ++i) dst[i] = load(*reinterpret_cast<const half*>(p + i * s));
    } else {
        if (s == 2) return bhalf_to_float_n(reinterpret_cast<const bhalf*>(p), dst, n);
        for (int64_t i = 0; i < n; ++i) dst[i] = load(*reinterpret_cast<const bhalf*>(p + i * s));
    }
}
// n float32 values rounded once into a half-type array
void store_block(DType dt, char* p, int64_t s, int64_t n, const float* src) {
    if (dt == DType::Float16) {
        if (s == 2) return float_to_half_n(src, reinterpret_cast<half*>(p), n);
        for (int64_t i = 0; i < n; ++i) *reinterpret_cast<half*>(p + i * s) = store<half>(src[i]);
    } else {
        if (s == 2) return float_to_bhalf_n(src, reinterpret_cast<bhalf*>(p), n);
        for (int64_t i = 0; i < n; ++i) *reinterpret_cast<bhalf*>(p + i * s) = store<bhalf>(src[i]);
    }
}

struct HalfCtx {
    Row f32;     // the float32 row kernel
    DType in;    // a half type
    DType out;   // a half type (rounded on store) or bool (written directly)
};

// Operand k of a staged row: inputs always through a float block; the output through a
// block only when it is a half type.
template <int N> void half_row(int64_t n, char** p, const int64_t* s, const void* ctx) {
    const HalfCtx& h = *static_cast<const HalfCtx*>(ctx);
    float buf[N][kBlock];
    const bool out_half = is_half_dt(h.out);
    for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
        const int64_t m = std::min(kBlock, n - i0);
        char* q[N];
        int64_t qs[N];
        for (int k = 1; k < N; ++k) {
            // a broadcast operand (a bias, a scalar) stays one value of stride 0: the float32
            // kernels have their scalar-operand loops, and converting it element by element
            // made a bfloat16 bias add twice float32's time
            const int64_t len = s[k] == 0 ? 1 : m;
            load_block(h.in, p[k] + i0 * s[k], s[k], len, buf[k]);
            q[k] = reinterpret_cast<char*>(buf[k]);
            qs[k] = s[k] == 0 ? 0 : 4;
        }
        if (out_half) {
            q[0] = reinterpret_cast<char*>(buf[0]);
            qs[0] = 4;
        } else {
            q[0] = p[0] + i0 * s[0];
            qs[0] = s[0];
        }
        h.f32.fn(m, q, qs, h.f32.ctx);
        if (out_half) store_block(h.out, p[0] + i0 * s[0], s[0], m, buf[0]);
    }
}

py::array alloc_out(DType dt, const int64_t* shape, int ndim, const View* const* ins, int n) {
    int perm[kMaxDims];
    if (keep_order(shape, ndim, ins, n, perm)) return empty_permuted(dt, shape, ndim, perm);
    return empty(dt, shape, ndim);
}

}  // namespace

py::array map1(const char* name, const View& x, DType out_dt, Row row) {
    return map1_out(name, x, out_dt, row, py::none());
}

namespace {
// [lo, hi) bytes spanned by a view (strides may be negative or zero)
void byte_span(const View& v, const char*& lo, const char*& hi) {
    int64_t a = 0, b = 0;
    for (int d = 0; d < v.ndim; ++d) {
        const int64_t e = (v.shape[d] - 1) * v.strides[d] * v.itemsize();
        (e < 0 ? a : b) += e;
    }
    lo = v.data + a;
    hi = v.data + b + v.itemsize();
}

// True when views x and y are the same elements (same memory, shape and strides; a
// dimension of size 1 may have any stride) or share no byte: an elementwise map reading
// one and writing the other then never reads an element it has already overwritten.
bool same_or_disjoint(const View& x, const View& y) {
    if (x.numel() == 0 || y.numel() == 0) return true;
    bool same = x.data == y.data && x.itemsize() == y.itemsize() && x.ndim == y.ndim;
    for (int d = 0; same && d < x.ndim; ++d)
        same = x.shape[d] == y.shape[d] && (x.shape[d] == 1 || x.strides[d] == y.strides[d]);
    if (same) return true;
    const char *xl, *xh, *yl, *yh;
    byte_span(x, xl, xh);
    byte_span(y, yl, yh);
    return !(yl < xh && xl < yh);
}

// out= must be x itself (an elementwise map may overwrite each element after reading it)
// or disjoint from x: a partial overlap would read elements already overwritten
View check_out(const char* name, const View& x, DType out_dt, const py::object& out_obj) {
    if (!py::isinstance<py::array>(out_obj)) fail(name, "out= must be a numpy array");
    View o = writeable_view_of(py::reinterpret_borrow<py::array>(out_obj), name);
    if (o.dtype != out_dt)
        fail(name, std::string("out= has dtype ") + dtype_name(o.dtype) + ", the result is " + dtype_name(out_dt));
    bool same_shape = o.ndim == x.ndim;
    for (int d = 0; same_shape && d < x.ndim; ++d) same_shape = o.shape[d] == x.shape[d];
    if (!same_shape) fail(name, "out= must have the input's shape");
    if (!same_or_disjoint(x, o))
        fail(name, "out= overlaps the input without being the input itself (in place needs the same memory and strides)");
    return o;
}

// o = op(x): map1's loop, out of place or in place
void loop1(const View& o, const View& x, DType out_dt, Row row) {
    HalfCtx hc{row, x.dtype, out_dt};
    if (is_half_dt(x.dtype)) row = {&half_row<2>, &hc};
    py::gil_scoped_release nogil;
    char* data[2] = {o.data, x.data};
    const int64_t* st[2] = {o.strides, x.strides};
    const int64_t isz[2] = {dtype_size(out_dt), x.itemsize()};
    auto L = make_loop<2>(x.shape, x.ndim, data, st, isz);
    run_loop(L, [&](int64_t n, char** p, const int64_t* s) { row.fn(n, p, s, row.ctx); });
}

// o = op(a, b) over the broadcast shape (shape, nd): map2's loop, out of place or in place
void loop2(const View& o, const View& a, const View& b, const int64_t* shape, int nd, DType out_dt, Row row) {
    int64_t sa[kMaxDims], sb[kMaxDims];
    broadcast_strides(a, shape, nd, sa);
    broadcast_strides(b, shape, nd, sb);
    HalfCtx hc{row, a.dtype, out_dt};
    if (is_half_dt(a.dtype)) row = {&half_row<3>, &hc};
    py::gil_scoped_release nogil;
    char* data[3] = {o.data, a.data, b.data};
    const int64_t* st[3] = {o.strides, sa, sb};
    const int64_t isz[3] = {dtype_size(out_dt), a.itemsize(), b.itemsize()};
    auto L = make_loop<3>(shape, nd, data, st, isz);
    run_loop(L, [&](int64_t n, char** p, const int64_t* s) { row.fn(n, p, s, row.ctx); });
}
}  // namespace

py::array map1_out(const char* name, const View& x, DType out_dt, Row row, const py::object& out_obj) {
    if (!row.fn) fail(name, std::string("unsupported dtype ") + dtype_name(x.dtype));
    // (no default-constructed py::array: pybind11 makes it a numpy array, ~0.15 us)
    if (out_obj.is_none()) {
        const View* ins[1] = {&x};
        py::array out = alloc_out(out_dt, x.shape, x.ndim, ins, 1);
        loop1(view_of(out, name), x, out_dt, row);
        return out;
    }
    loop1(check_out(name, x, out_dt, out_obj), x, out_dt, row);
    return py::reinterpret_borrow<py::array>(out_obj);
}

py::array map2(const char* name, const View& a, const View& b, DType out_dt, Row row) {
    if (!row.fn) fail(name, std::string("unsupported dtype ") + dtype_name(a.dtype));
    const View* ins[2] = {&a, &b};
    int64_t shape[kMaxDims];
    int nd = broadcast_shape(name, ins, 2, shape);
    py::array out = alloc_out(out_dt, shape, nd, ins, 2);
    loop2(view_of(out, name), a, b, shape, nd, out_dt, row);
    return out;
}

py::array map2_out(const char* name, const View& a, const View& b, DType out_dt, Row row, const py::object& out) {
    if (out.is_none()) return map2(name, a, b, out_dt, row);
    if (!row.fn) fail(name, std::string("unsupported dtype ") + dtype_name(a.dtype));
    const View* ins[2] = {&a, &b};
    int64_t shape[kMaxDims];
    int nd = broadcast_shape(name, ins, 2, shape);
    // in place into a: b must broadcast into a's shape (a row of element i reads a[i] and
    // b's element before writing out[i], so only a itself may be the output)
    bool fits = nd == a.ndim;
    for (int d = 0; fits && d < nd; ++d) fits = shape[d] == a.shape[d];
    if (!fits) fail(name, "out= is in place into a: b must broadcast into a's shape");
    View o = check_out(name, a, out_dt, out);
    if (a.numel() && (o.data != a.data || o.itemsize() != a.itemsize())) fail(name, "out= must be a itself (in place)");
    if (!same_or_disjoint(a, b)) fail(name, "out= is a, and b overlaps a without being a itself");
    loop2(o, a, b, shape, nd, out_dt, row);
    return py::reinterpret_borrow<py::array>(out);
}

bool any_int(const View& v, bool negative) {
    char* data[1] = {v.data};
    const int64_t* st[1] = {v.strides};
    const int64_t isz[1] = {v.itemsize()};
    auto L = make_loop<1>(v.shape, v.ndim, data, st, isz);
    bool found = false;
    auto scan = [&](auto tag) {
        using T = decltype(tag);
        run_loop(L, [&](int64_t n, char** p, const int64_t* s) {
            for (int64_t i = 0; i < n && !found; ++i) {
                const T x = *reinterpret_cast<const T*>(p[0] + i * s[0]);
                if (negative ? x < T(0) : x == T(0)) found = true;
            }
        }, int64_t(1) << 62);  // serial: `found` is not shared across threads
    };
    switch (v.dtype) {
        case DType::Int8: scan(int8_t{}); break;
        case DType::Int32: scan(int32_t{}); break;
        case DType::Int64: scan(int64_t{}); break;
        default: fail("any_int", "expected an integer array");
    }
    return found;
}

}  // namespace ew
TINYFW_ISA_END
}  // namespace tf
