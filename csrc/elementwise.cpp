// Elementwise kernels: the unary and broadcasting binary primitives of backend/ref.py,
// same names, signatures and semantics.  Each op is a small functor evaluated in the
// compute type (float for float16/bfloat16, rounded once on store); the loops come from
// core.h.  Dtype combinations a kernel does not specialise (bool arithmetic, integer
// transcendental functions, mixed dtypes) are handed to the reference primitive, so the
// semantics are always the specification's.
//
// No FMA contraction here: ref evaluates a*b+c with two roundings, and bit-exact
// agreement is worth more than the last cycle.
#pragma GCC optimize("fp-contract=off")

#include "core.h"

namespace tf {
namespace {

constexpr int64_t kBlock = 256;  // staging block for the half types

// ------------------------------------------------------------------ block staging (halves)
template <class T> void load_block(const char* p, int64_t s, int64_t n, compute_t<T>* dst) {
    if constexpr (std::is_same_v<T, half>) {
        if (s == 2) return half_to_float_n(reinterpret_cast<const half*>(p), dst, n);
    } else if constexpr (std::is_same_v<T, bhalf>) {
        if (s == 2) return bhalf_to_float_n(reinterpret_cast<const bhalf*>(p), dst, n);
    }
    for (int64_t i = 0; i < n; ++i) dst[i] = load(*reinterpret_cast<const T*>(p + i * s));
}
template <class T> void store_block(char* p, int64_t s, int64_t n, const compute_t<T>* src) {
    if constexpr (std::is_same_v<T, half>) {
        if (s == 2) return float_to_half_n(src, reinterpret_cast<half*>(p), n);
    } else if constexpr (std::is_same_v<T, bhalf>) {
        if (s == 2) return float_to_bhalf_n(src, reinterpret_cast<bhalf*>(p), n);
    }
    for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p + i * s) = store<T>(src[i]);
}

// ------------------------------------------------------------------ inner loops
template <class T, class To, class Op>
void inner1(int64_t n, char** p, const int64_t* s, const Op& op) {
    if constexpr (is_half_v<T> || is_half_v<To>) {
        compute_t<T> a[kBlock];
        compute_t<To> o[kBlock];
        for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
            int64_t m = std::min(kBlock, n - i0);
            load_block<T>(p[1] + i0 * s[1], s[1], m, a);
            for (int64_t i = 0; i < m; ++i) o[i] = op(a[i]);
            store_block<To>(p[0] + i0 * s[0], s[0], m, o);
        }
    } else {
        if (s[0] == sizeof(To) && s[1] == sizeof(T)) {
            To* __restrict o = reinterpret_cast<To*>(p[0]);
            const T* __restrict a = reinterpret_cast<const T*>(p[1]);
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) o[i] = op(a[i]);
        } else {
            for (int64_t i = 0; i < n; ++i)
                *reinterpret_cast<To*>(p[0] + i * s[0]) = op(*reinterpret_cast<const T*>(p[1] + i * s[1]));
        }
    }
}

template <class T, class To, class Op>
void inner2(int64_t n, char** p, const int64_t* s, const Op& op) {
    if constexpr (is_half_v<T> || is_half_v<To>) {
        compute_t<T> a[kBlock], b[kBlock];
        compute_t<To> o[kBlock];
        for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
            int64_t m = std::min(kBlock, n - i0);
            load_block<T>(p[1] + i0 * s[1], s[1], m, a);
            load_block<T>(p[2] + i0 * s[2], s[2], m, b);
            for (int64_t i = 0; i < m; ++i) o[i] = op(a[i], b[i]);
            store_block<To>(p[0] + i0 * s[0], s[0], m, o);
        }
    } else {
        To* __restrict o = reinterpret_cast<To*>(p[0]);
        const T* __restrict a = reinterpret_cast<const T*>(p[1]);
        const T* __restrict b = reinterpret_cast<const T*>(p[2]);
        constexpr int64_t so = sizeof(To), si = sizeof(T);
        if (s[0] == so && s[1] == si && s[2] == si) {
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) o[i] = op(a[i], b[i]);
        } else if (s[0] == so && s[1] == si && s[2] == 0) {
            const T bv = *b;
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) o[i] = op(a[i], bv);
        } else if (s[0] == so && s[1] == 0 && s[2] == si) {
            const T av = *a;
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) o[i] = op(av, b[i]);
        } else {
            for (int64_t i = 0; i < n; ++i)
                *reinterpret_cast<To*>(p[0] + i * s[0]) = op(*reinterpret_cast<const T*>(p[1] + i * s[1]),
                                                             *reinterpret_cast<const T*>(p[2] + i * s[2]));
        }
    }
}

// ------------------------------------------------------------------ drivers
py::array alloc_out(DType dt, const int64_t* shape, int ndim, const View* const* ins, int n) {
    int perm[kMaxDims];
    if (keep_order(shape, ndim, ins, n, perm)) return empty_permuted(dt, shape, ndim, perm);
    return empty(dt, shape, ndim);
}

template <class T, class To, class Op> py::array map1(const char* name, const View& x, DType out_dt, const Op& op) {
    const View* ins[1] = {&x};
    py::array out = alloc_out(out_dt, x.shape, x.ndim, ins, 1);
    View o = view_of(out, name);
    py::gil_scoped_release nogil;
    char* data[2] = {o.data, x.data};
    const int64_t* st[2] = {o.strides, x.strides};
    const int64_t isz[2] = {int64_t(sizeof(To)), int64_t(sizeof(T))};
    auto L = make_loop<2>(x.shape, x.ndim, data, st, isz);
    run_loop(L, [&](int64_t n, char** p, const int64_t* s) { inner1<T, To>(n, p, s, op); });
    return out;
}

template <class T, class To, class Op>
py::array map2(const char* name, const View& a, const View& b, DType out_dt, const Op& op) {
    const View* ins[2] = {&a, &b};
    int64_t shape[kMaxDims], sa[kMaxDims], sb[kMaxDims];
    int nd = broadcast_shape(name, ins, 2, shape);
    py::array out = alloc_out(out_dt, shape, nd, ins, 2);
    View o = view_of(out, name);
    broadcast_strides(a, shape, nd, sa);
    broadcast_strides(b, shape, nd, sb);
    py::gil_scoped_release nogil;
    char* data[3] = {o.data, a.data, b.data};
    const int64_t* st[3] = {o.strides, sa, sb};
    const int64_t isz[3] = {int64_t(sizeof(To)), int64_t(sizeof(T)), int64_t(sizeof(T))};
    auto L = make_loop<3>(shape, nd, data, st, isz);
    run_loop(L, [&](int64_t n, char** p, const int64_t* s) { inner2<T, To>(n, p, s, op); });
    return out;
}

/// True if pred holds for any element of v (GIL released by the caller's scope or not).
template <class T, class Pred> bool any_of(const View& v, const Pred& pred) {
    char* data[1] = {v.data};
    const int64_t* st[1] = {v.strides};
    const int64_t isz[1] = {int64_t(sizeof(T))};
    auto L = make_loop<1>(v.shape, v.ndim, data, st, isz);
    bool found = false;
    run_loop(L, [&](int64_t n, char** p, const int64_t* s) {
        for (int64_t i = 0; i < n && !found; ++i)
            if (pred(*reinterpret_cast<const T*>(p[0] + i * s[0]))) found = true;
    }, int64_t(1) << 62);  // serial: `found` is not shared across threads
    return found;
}

// ------------------------------------------------------------------ integer helpers
template <class C> using U = std::make_unsigned_t<C>;
template <class C> constexpr bool is_int_v = std::is_integral_v<C> && !std::is_same_v<C, bool>;
// integer arithmetic wraps modulo 2^n (as numpy), done unsigned to stay defined
template <class C> inline C wrap_neg(C x) {
    if constexpr (is_int_v<C>) return C(U<C>(0) - U<C>(x));
    else return C(-x);
}
template <class C> inline C wadd(C a, C b) {
    if constexpr (is_int_v<C>) return C(U<C>(a) + U<C>(b));
    else return C(a + b);
}
template <class C> inline C wsub(C a, C b) {
    if constexpr (is_int_v<C>) return C(U<C>(a) - U<C>(b));
    else return C(a - b);
}
template <class C> inline C wmul(C a, C b) {
    if constexpr (is_int_v<C>) return C(U<C>(a) * U<C>(b));
    else return C(a * b);
}

template <class C> inline C sigmoid_of(C x) {
    C e = std::exp(-std::abs(x));
    return x >= C(0) ? C(1) / (C(1) + e) : e / (C(1) + e);
}
template <class C> inline C erf_of(C x) {
    if constexpr (std::is_same_v<C, float>) return float(std::erf(double(x)));  // as scipy's f->f loop
    else return std::erf(x);
}
template <class C> inline C max_nan(C a, C b) { return (a > b || a != a) ? a : b; }
template <class C> inline C min_nan(C a, C b) { return (a < b || a != a) ? a : b; }

// numpy's floor division / remainder for floats (divmod based, signs as Python)
template <class C> inline C fdiv(C a, C b) {
    if (b == C(0)) return a / b;
    C mod = std::fmod(a, b);
    C div = (a - mod) / b;
    if (mod != C(0) && ((b < C(0)) != (mod < C(0)))) div -= C(1);
    if (div != C(0)) {
        C fl = std::floor(div);
        if (div - fl > C(0.5)) fl += C(1);
        return fl;
    }
    return std::copysign(C(0), a / b);
}
template <class C> inline C fmod_py(C a, C b) {
    if (b == C(0)) return std::fmod(a, b);
    C mod = std::fmod(a, b);
    if (mod != C(0)) {
        if ((b < C(0)) != (mod < C(0))) mod += b;
    } else {
        mod = std::copysign(C(0), b);
    }
    return mod;
}
template <class C> inline C ipow(C a, C b) {  // b >= 0, wraps modulo 2^n as numpy
    U<C> r = 1, x = U<C>(a);
    auto e = U<C>(b);
    while (e) {
        if (e & 1) r = U<C>(r * x);
        x = U<C>(x * x);
        e >>= 1;
    }
    return C(r);
}

// ------------------------------------------------------------------ policies
enum Kinds { kFloat = 1, kInt = 2, kBool = 4 };

template <class T> constexpr bool kind_ok(int kinds) {
    if constexpr (std::is_same_v<T, bool>) return kinds & kBool;
    else if constexpr (std::is_integral_v<T>) return kinds & kInt;
    else return kinds & kFloat;
}

bool accepts(DType dt, int kinds) {
    if (dt == DType::Bool) return kinds & kBool;
    if (dt == DType::Int8 || dt == DType::Int32 || dt == DType::Int64) return kinds & kInt;
    return kinds & kFloat;
}

// unary op whose result has x's dtype; OpT<C>{}(C) in compute type
template <template <class> class OpT, int kinds>
py::object unary(const char* name, const py::array& xa) {
    View x = view_of(xa, name);
    if (!accepts(x.dtype, kinds)) return call_ref(name, xa);
    return dispatch_all(x.dtype, name, [&](auto tag) -> py::object {
        using T = decltype(tag);
        if constexpr (!kind_ok<T>(kinds)) return py::none();  // excluded by accepts
        else return map1<T, T>(name, x, x.dtype, OpT<compute_t<T>>{});
    });
}

// unary op with a bool result
template <template <class> class OpT, int kinds>
py::object predicate(const char* name, const py::array& xa) {
    View x = view_of(xa, name);
    if (!accepts(x.dtype, kinds)) return call_ref(name, xa);
    return dispatch_all(x.dtype, name, [&](auto tag) -> py::object {
        using T = decltype(tag);
        if constexpr (!kind_ok<T>(kinds)) return py::none();
        else return map1<T, bool>(name, x, DType::Bool, OpT<compute_t<T>>{});
    });
}

// binary op on operands of one dtype; Bool=true gives a bool result
template <template <class> class OpT, int kinds, bool BoolOut = false>
py::object binary(const char* name, const py::array& aa, const py::array& ba) {
    View a = view_of(aa, name), b = view_of(ba, name);
    if (a.dtype != b.dtype || !accepts(a.dtype, kinds)) return call_ref(name, aa, ba);
    return dispatch_all(a.dtype, name, [&](auto tag) -> py::object {
        using T = decltype(tag);
        using To = std::conditional_t<BoolOut, bool, T>;
        if constexpr (!kind_ok<T>(kinds)) return py::none();
        else return map2<T, To>(name, a, b, BoolOut ? DType::Bool : a.dtype, OpT<compute_t<T>>{});
    });
}

// ------------------------------------------------------------------ the ops
#define TF_UNARY(NAME, EXPR)                             \
    template <class C> struct NAME {                     \
        inline C operator()(C x) const { return EXPR; } \
    };
TF_UNARY(Neg, wrap_neg(x))
TF_UNARY(Abs, (x < C(0) ? wrap_neg(x) : (x == C(0) ? C(0) : x)))
TF_UNARY(Exp, std::exp(x))
TF_UNARY(Log, std::log(x))
TF_UNARY(Log1p, std::log1p(x))
TF_UNARY(Expm1, std::expm1(x))
TF_UNARY(Sqrt, std::sqrt(x))
TF_UNARY(Rsqrt, C(1) / std::sqrt(x))
TF_UNARY(Reciprocal, C(1) / x)
TF_UNARY(Sin, std::sin(x))
TF_UNARY(Cos, std::cos(x))
TF_UNARY(Tanh, std::tanh(x))
TF_UNARY(Sigmoid, sigmoid_of(x))
TF_UNARY(Silu, x* sigmoid_of(x))
TF_UNARY(Erf, erf_of(x))
TF_UNARY(Sign, (x > C(0) ? C(1) : x < C(0) ? C(-1) : x == C(0) ? C(0) : x))
TF_UNARY(Floor, std::floor(x))
TF_UNARY(Ceil, std::ceil(x))
TF_UNARY(Round, std::nearbyint(x))
TF_UNARY(GeluErf, C(0.5) * x * (C(1) + erf_of(x / C(1.4142135623730951))))
#undef TF_UNARY
template <class C> struct Relu0 {  // relu with numpy's tie rule: maximum(x, 0) picks 0 on ties
    inline C operator()(C x) const { return max_nan(x, C(0)); }
};
template <class C> struct GeluTanh {
    inline C operator()(C x) const {
        C inner = C(0.7978845608028654) * (x + C(0.044715) * C(std::pow(x, C(3))));
        return C(0.5) * x * (C(1) + std::tanh(inner));
    }
};

template <class C> struct IsNan {
    inline bool operator()(C x) const { return x != x; }
};
template <class C> struct IsInf {
    inline bool operator()(C x) const { return std::isinf(x); }
};
template <class C> struct LogicalNot {
    inline bool operator()(C x) const { return x == C(0); }
};

#define TF_BINARY(NAME, EXPR)                                  \
    template <class C> struct NAME {                           \
        inline auto operator()(C a, C b) const { return EXPR; } \
    };
TF_BINARY(Add, wadd(a, b))
TF_BINARY(Sub, wsub(a, b))
TF_BINARY(Mul, wmul(a, b))
TF_BINARY(Div, C(a / b))
TF_BINARY(Maximum, max_nan(a, b))
TF_BINARY(Minimum, min_nan(a, b))
TF_BINARY(Eq, a == b)
TF_BINARY(Ne, a != b)
TF_BINARY(Lt, a < b)
TF_BINARY(Le, a <= b)
TF_BINARY(Gt, a > b)
TF_BINARY(Ge, a >= b)
TF_BINARY(LogicalAnd, (a != C(0)) && (b != C(0)))
TF_BINARY(LogicalOr, (a != C(0)) || (b != C(0)))
TF_BINARY(LogicalXor, (a != C(0)) != (b != C(0)))
#undef TF_BINARY

template <class C> struct Pow {
    inline C operator()(C a, C b) const {
        if constexpr (is_int_v<C>) return ipow(a, b);
        else return std::pow(a, b);
    }
};
template <class C> struct FloorDivide {
    inline C operator()(C a, C b) const {
        if constexpr (is_int_v<C>) {
            if (b == C(-1)) return wrap_neg(a);  // MIN // -1 wraps, as numpy
            C q = C(a / b);
            return ((a % b != 0) && ((a < 0) != (b < 0))) ? C(q - 1) : q;
        } else {
            return fdiv(a, b);
        }
    }
};
template <class C> struct Remainder {
    inline C operator()(C a, C b) const {
        if constexpr (is_int_v<C>) {
            if (b == C(-1)) return C(0);
            C r = C(a % b);
            return (r != 0 && ((r < 0) != (b < 0))) ? C(r + b) : r;
        } else {
            return fmod_py(a, b);
        }
    }
};

/// Integer floor_divide/remainder raise on a zero divisor before computing (as ref).
template <template <class> class OpT>
py::object int_division(const char* name, const py::array& aa, const py::array& ba) {
    View a = view_of(aa, name), b = view_of(ba, name);
    if (a.dtype == b.dtype && (a.dtype == DType::Int8 || a.dtype == DType::Int32 || a.dtype == DType::Int64)) {
        bool zero = dispatch_all(b.dtype, name, [&](auto tag) {
            using T = decltype(tag);
            if constexpr (is_int_v<T>) return any_of<T>(b, [](T v) { return v == T(0); });
            else return false;
        });
        if (zero) {
            PyErr_SetString(PyExc_ZeroDivisionError, (std::string(name) + ": integer division by zero").c_str());
            throw py::error_already_set();
        }
    }
    return binary<OpT, kFloat | kInt>(name, aa, ba);
}

py::object pow_kernel(const py::array& aa, const py::array& ba) {
    View a = view_of(aa, "pow"), b = view_of(ba, "pow");
    if (a.dtype == b.dtype && (a.dtype == DType::Int8 || a.dtype == DType::Int32 || a.dtype == DType::Int64)) {
        bool neg = dispatch_all(b.dtype, "pow", [&](auto tag) {
            using T = decltype(tag);
            if constexpr (is_int_v<T>) return any_of<T>(b, [](T v) { return v < T(0); });
            else return false;
        });
        if (neg) throw py::value_error("pow: integers to negative integer powers are not allowed");
    }
    return binary<Pow, kFloat | kInt>("pow", aa, ba);
}

// ------------------------------------------------------------------ ops with attributes
py::object leaky_relu(const py::array& xa, double slope) {
    View x = view_of(xa, "leaky_relu");
    if (!accepts(x.dtype, kFloat)) return call_ref("leaky_relu", xa, slope);
    return dispatch_float(x.dtype, "leaky_relu", [&](auto tag) -> py::object {
        using T = decltype(tag);
        using C = compute_t<T>;
        const C s = C(slope);
        return map1<T, T>("leaky_relu", x, x.dtype, [s](C v) { return v > C(0) ? v : C(v * s); });
    });
}

py::object softplus(const py::array& xa, double beta, double threshold) {
    View x = view_of(xa, "softplus");
    if (!accepts(x.dtype, kFloat)) return call_ref("softplus", xa, beta, threshold);
    return dispatch_float(x.dtype, "softplus", [&](auto tag) -> py::object {
        using T = decltype(tag);
        using C = compute_t<T>;
        const C b = C(beta), th = C(threshold);
        return map1<T, T>("softplus", x, x.dtype, [b, th](C v) {
            C bx = v * b;
            return bx > th ? v : C(std::log1p(std::exp(min_nan(bx, th))) / b);
        });
    });
}

py::object gelu(const py::array& xa, const std::string& approximate) {
    View x = view_of(xa, "gelu");
    if (!accepts(x.dtype, kFloat) || (approximate != "none" && approximate != "tanh"))
        return call_ref("gelu", xa, approximate);
    if (approximate == "tanh") return unary<GeluTanh, kFloat>("gelu", xa);
    return unary<GeluErf, kFloat>("gelu", xa);
}

py::object clamp(const py::array& xa, py::object lo, py::object hi) {
    View x = view_of(xa, "clamp");
    const bool has_lo = !lo.is_none(), has_hi = !hi.is_none();
    bool native = accepts(x.dtype, kFloat);
    if (accepts(x.dtype, kInt)) {
        // integer bounds that fit the dtype only; ref decides every other case (it raises
        // for out-of-range bounds, truncates float bounds)
        auto fits = [&](const py::object& v) {
            if (v.is_none()) return true;
            if (!py::isinstance<py::int_>(v) || py::isinstance<py::bool_>(v)) return false;
            int overflow = 0;
            long long q = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
            if (overflow) return false;
            if (x.dtype == DType::Int8) return q >= -128 && q <= 127;
            if (x.dtype == DType::Int32) return q >= INT32_MIN && q <= INT32_MAX;
            return true;
        };
        native = fits(lo) && fits(hi);
    }
    if (!native) return call_ref("clamp", xa, lo, hi);
    return dispatch_numeric(x.dtype, "clamp", [&](auto tag) -> py::object {
        using T = decltype(tag);
        using C = compute_t<T>;
        // the bound in x's dtype (rounded to it, as v.dtype.type(lo) in ref)
        auto bound = [](const py::object& v) -> C {
            if (v.is_none()) return C(0);
            if constexpr (std::is_integral_v<C>) return C(v.cast<long long>());
            else return load(store<T>(C(v.cast<double>())));
        };
        const C l = bound(lo), h = bound(hi);
        return map1<T, T>("clamp", x, x.dtype, [=](C v) {
            if (has_lo) v = max_nan(v, l);
            if (has_hi) v = min_nan(v, h);
            return v;
        });
    });
}

py::object where(const py::array& ca, const py::array& aa, const py::array& ba) {
    const char* name = "where";
    View c = view_of(ca, name), a = view_of(aa, name), b = view_of(ba, name);
    if (c.dtype != DType::Bool || a.dtype != b.dtype) return call_ref(name, ca, aa, ba);
    const View* ins[3] = {&c, &a, &b};
    int64_t shape[kMaxDims], sc[kMaxDims], sa[kMaxDims], sb[kMaxDims];
    int nd = broadcast_shape(name, ins, 3, shape);
    py::array out = alloc_out(a.dtype, shape, nd, ins + 1, 2);
    View o = view_of(out, name);
    broadcast_strides(c, shape, nd, sc);
    broadcast_strides(a, shape, nd, sa);
    broadcast_strides(b, shape, nd, sb);
    const int64_t isz = a.itemsize();
    {
    py::gil_scoped_release nogil;
    char* data[4] = {o.data, c.data, a.data, b.data};
    const int64_t* st[4] = {o.strides, sc, sa, sb};
    const int64_t iszs[4] = {isz, 1, isz, isz};
    auto L = make_loop<4>(shape, nd, data, st, iszs);
    // a pure selection: copy bytes of the element size, whatever the dtype
    auto run = [&](auto tag) {
        using W = decltype(tag);
        run_loop(L, [&](int64_t n, char** p, const int64_t* s) {
            if (s[0] == sizeof(W) && s[1] == 1 && s[2] == sizeof(W) && s[3] == sizeof(W)) {
                W* __restrict o = reinterpret_cast<W*>(p[0]);
                const uint8_t* __restrict cc = reinterpret_cast<const uint8_t*>(p[1]);
                const W* __restrict x = reinterpret_cast<const W*>(p[2]);
                const W* __restrict y = reinterpret_cast<const W*>(p[3]);
#pragma omp simd
                for (int64_t i = 0; i < n; ++i) o[i] = cc[i] ? x[i] : y[i];
            } else if (s[0] == sizeof(W) && s[1] == 1 && (s[2] | s[3]) == sizeof(W) &&
                       (s[2] == 0 || s[3] == 0)) {
                // one side is a broadcast scalar (relu's backward selects against 0): keep
                // the loop vectorised instead of taking the strided path (~10x slower)
                W* __restrict o = reinterpret_cast<W*>(p[0]);
                const uint8_t* __restrict cc = reinterpret_cast<const uint8_t*>(p[1]);
                if (s[2] == 0) {
                    const W x = *reinterpret_cast<const W*>(p[2]);
                    const W* __restrict y = reinterpret_cast<const W*>(p[3]);
#pragma omp simd
                    for (int64_t i = 0; i < n; ++i) o[i] = cc[i] ? x : y[i];
                } else {
                    const W* __restrict x = reinterpret_cast<const W*>(p[2]);
                    const W y = *reinterpret_cast<const W*>(p[3]);
#pragma omp simd
                    for (int64_t i = 0; i < n; ++i) o[i] = cc[i] ? x[i] : y;
                }
            } else {
                for (int64_t i = 0; i < n; ++i)
                    *reinterpret_cast<W*>(p[0] + i * s[0]) = *(p[1] + i * s[1])
                        ? *reinterpret_cast<const W*>(p[2] + i * s[2])
                        : *reinterpret_cast<const W*>(p[3] + i * s[3]);
            }
        });
    };
    if (isz == 1) run(uint8_t{});
    else if (isz == 2) run(uint16_t{});
    else if (isz == 4) run(uint32_t{});
    else run(uint64_t{});
    }
    return std::move(out);
}

}  // namespace
}  // namespace tf

void register_elementwise(pybind11::module_& m) {
    namespace py = pybind11;
    using namespace tf;
    using A = const py::array&;
    constexpr int F = kFloat, FI = kFloat | kInt, ALL = kFloat | kInt | kBool;
#define U1(NAME, OP, KINDS) \
    m.def(#NAME, [](A x) { return unary<OP, KINDS>(#NAME, x); }, py::arg("x"), #NAME " (C++ kernel)");
    U1(neg, Neg, FI)
    U1(abs, Abs, FI)
    U1(exp, Exp, F)
    U1(log, Log, F)
    U1(log1p, Log1p, F)
    U1(expm1, Expm1, F)
    U1(sqrt, Sqrt, F)
    U1(rsqrt, Rsqrt, F)
    U1(reciprocal, Reciprocal, F)
    U1(sin, Sin, F)
    U1(cos, Cos, F)
    U1(tanh, Tanh, F)
    U1(sigmoid, Sigmoid, F)
    U1(relu, Relu0, FI)
    U1(silu, Silu, F)
    U1(erf, Erf, F)
    U1(sign, Sign, FI)
    U1(floor, Floor, F)
    U1(ceil, Ceil, F)
    U1(round, Round, F)
#undef U1
    m.def("isnan", [](A x) { return predicate<IsNan, F>("isnan", x); }, py::arg("x"), "isnan (C++ kernel)");
    m.def("isinf", [](A x) { return predicate<IsInf, F>("isinf", x); }, py::arg("x"), "isinf (C++ kernel)");
    m.def("logical_not", [](A x) { return predicate<LogicalNot, ALL>("logical_not", x); }, py::arg("x"),
          "logical_not (C++ kernel)");
    m.def("gelu", &gelu, py::arg("x"), py::arg("approximate") = "none", "gelu (C++ kernel)");
    m.def("leaky_relu", &leaky_relu, py::arg("x"), py::arg("negative_slope"), "leaky_relu (C++ kernel)");
    m.def("softplus", &softplus, py::arg("x"), py::arg("beta"), py::arg("threshold"), "softplus (C++ kernel)");
    m.def("clamp", &clamp, py::arg("x"), py::arg("lo"), py::arg("hi"), "clamp (C++ kernel)");
#define B2(NAME, OP, KINDS, BOOL) \
    m.def(#NAME, [](A a, A b) { return binary<OP, KINDS, BOOL>(#NAME, a, b); }, py::arg("a"), py::arg("b"), \
          #NAME " (C++ kernel, broadcasting)");
    B2(add, Add, FI, false)
    B2(sub, Sub, FI, false)
    B2(mul, Mul, FI, false)
    B2(div, Div, F, false)
    B2(maximum, Maximum, FI, false)
    B2(minimum, Minimum, FI, false)
    B2(eq, Eq, ALL, true)
    B2(ne, Ne, ALL, true)
    B2(lt, Lt, ALL, true)
    B2(le, Le, ALL, true)
    B2(gt, Gt, ALL, true)
    B2(ge, Ge, ALL, true)
    B2(logical_and, LogicalAnd, ALL, true)
    B2(logical_or, LogicalOr, ALL, true)
    B2(logical_xor, LogicalXor, ALL, true)
#undef B2
    m.def("pow", &pow_kernel, py::arg("a"), py::arg("b"), "pow (C++ kernel, broadcasting)");
    m.def("floor_divide", [](A a, A b) { return int_division<FloorDivide>("floor_divide", a, b); },
          py::arg("a"), py::arg("b"), "floor_divide (C++ kernel, broadcasting)");
    m.def("remainder", [](A a, A b) { return int_division<Remainder>("remainder", a, b); },
          py::arg("a"), py::arg("b"), "remainder (C++ kernel, broadcasting)");
    m.def("where", &where, py::arg("cond"), py::arg("a"), py::arg("b"), "where (C++ kernel, broadcasting)");
}
