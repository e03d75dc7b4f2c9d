// Binary elementwise kernels with broadcasting: the two-input primitives of
// backend/ref.py (arithmetic, comparisons, logical ops, atan2, pow, floor_divide,
// remainder)
// and the three-input `where`.  Operands of one dtype are computed natively (float16 /
// bfloat16 in float32, rounded once); mixed dtypes and bool arithmetic go to the
// reference primitive, whose promotion is the specification's.
//
// No FMA contraction here: ref evaluates a*b+c with two roundings, and bit-exact
// agreement is worth more than the last cycle.
#pragma GCC optimize("fp-contract=off")

#include "elementwise.h"

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace ew {

void register_unary(py::module_& m);     // elementwise_unary.cpp
void register_backward(py::module_& m);  // elementwise_backward.cpp

namespace {

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

// ------------------------------------------------------------------ the ops
#define TF_BINARY(NAME, PRIM, EXPR)                             \
    template <class C> struct NAME {                            \
        static constexpr const char* name = PRIM;               \
        inline auto operator()(C a, C b) const { return EXPR; } \
    };
TF_BINARY(Add, "add", wadd(a, b))
TF_BINARY(Sub, "sub", wsub(a, b))
TF_BINARY(Mul, "mul", wmul(a, b))
TF_BINARY(Div, "div", C(a / b))
TF_BINARY(Maximum, "maximum", max_nan(a, b))
TF_BINARY(Minimum, "minimum", min_nan(a, b))
TF_BINARY(Eq, "eq", a == b)
TF_BINARY(Ne, "ne", a != b)
TF_BINARY(Lt, "lt", a < b)
TF_BINARY(Le, "le", a <= b)
TF_BINARY(Gt, "gt", a > b)
TF_BINARY(Ge, "ge", a >= b)
TF_BINARY(LogicalAnd, "logical_and", (a != C(0)) && (b != C(0)))
TF_BINARY(LogicalOr, "logical_or", (a != C(0)) || (b != C(0)))
TF_BINARY(LogicalXor, "logical_xor", (a != C(0)) != (b != C(0)))
#undef TF_BINARY

// the angle of the point (b, a): libm's atan2 keeps the quadrant, signed zeros and
// infinities exactly as numpy's arctan2 (which calls it too)
template <class C> struct Atan2 {
    static constexpr const char* name = "atan2";
    inline C operator()(C a, C b) const { return std::atan2(a, b); }
};
template <class C> struct Pow {
    static constexpr const char* name = "pow";
    inline C operator()(C a, C b) const {
        if constexpr (is_int_v<C>) return ipow(a, b);
        else return std::pow(a, b);
    }
};
template <class C> struct FloorDivide {
    static constexpr const char* name = "floor_divide";
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
    static constexpr const char* name = "remainder";
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

bool is_int_dt(DType dt) { return dt == DType::Int8 || dt == DType::Int32 || dt == DType::Int64; }

/// Integer floor_divide/remainder raise on a zero divisor before computing (as ref).
template <template <class> class OpT> py::object int_division(const py::array& aa, const py::array& ba) {
    const char* name = OpT<float>::name;
    View a = view_of(aa, name), b = view_of(ba, name);
    if (a.dtype == b.dtype && is_int_dt(a.dtype) && any_int(b, false)) {
        PyErr_SetString(PyExc_ZeroDivisionError, (std::string(name) + ": integer division by zero").c_str());
        throw py::error_already_set();
    }
    return binary<OpT, kFloat | kInt>(aa, ba);
}

py::object pow_kernel(const py::array& aa, const py::array& ba) {
    View a = view_of(aa, "pow"), b = view_of(ba, "pow");
    if (a.dtype == b.dtype && is_int_dt(a.dtype) && any_int(b, true))
        throw py::value_error("pow: integers to negative integer powers are not allowed");
    return binary<Pow, kFloat | kInt>(aa, ba);
}

// ------------------------------------------------------------------ where
/// x where c else y, on the bits, without a branch: relu's backward mask is a coin toss
/// per element, and the branchy loop the compiler kept at the scalar level (which also
/// serves bfloat16 under AVX2) mispredicted half of them (4 ns per element, 25x float32)
template <class W> inline W select_bits(uint8_t c, W x, W y) {
    const W m = W(W(0) - W(c != 0));  // all ones where c
    return W((x & m) | (y & W(~m)));
}

template <class W> void where_row(int64_t n, char** p, const int64_t* s) {
    if (s[1] == 0) {  // one condition for the row (a per-row mask broadcast along it): a copy
        const char* src = *p[1] ? p[2] : p[3];
        const int64_t ss = *p[1] ? s[2] : s[3];
        W* __restrict o = reinterpret_cast<W*>(p[0]);
        if (s[0] == sizeof(W) && ss == sizeof(W)) {
            std::memcpy(o, src, size_t(n) * sizeof(W));
        } else if (s[0] == sizeof(W) && ss == 0) {
            std::fill(o, o + n, *reinterpret_cast<const W*>(src));
        } else {
            for (int64_t i = 0; i < n; ++i)
                *reinterpret_cast<W*>(p[0] + i * s[0]) = *reinterpret_cast<const W*>(src + i * ss);
        }
        return;
    }
    if (s[0] == sizeof(W) && s[1] == 1 && s[2] == sizeof(W) && s[3] == sizeof(W)) {
        W* __restrict o = reinterpret_cast<W*>(p[0]);
        const uint8_t* __restrict cc = reinterpret_cast<const uint8_t*>(p[1]);
        const W* __restrict x = reinterpret_cast<const W*>(p[2]);
        const W* __restrict y = reinterpret_cast<const W*>(p[3]);
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = select_bits<W>(cc[i], x[i], y[i]);
    } else if (s[0] == sizeof(W) && s[1] == 1 && (s[2] | s[3]) == sizeof(W) && (s[2] == 0 || s[3] == 0)) {
        // one side is a broadcast scalar (relu's backward selects against 0): keep the
        // loop vectorised instead of taking the strided path (~10x slower)
        W* __restrict o = reinterpret_cast<W*>(p[0]);
        const uint8_t* __restrict cc = reinterpret_cast<const uint8_t*>(p[1]);
        if (s[2] == 0) {
            const W x = *reinterpret_cast<const W*>(p[2]);
            const W* __restrict y = reinterpret_cast<const W*>(p[3]);
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) o[i] = select_bits<W>(cc[i], x, y[i]);
        } else {
            const W* __restrict x = reinterpret_cast<const W*>(p[2]);
            const W y = *reinterpret_cast<const W*>(p[3]);
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) o[i] = select_bits<W>(cc[i], x[i], y);
        }
    } else {
        for (int64_t i = 0; i < n; ++i)
            *reinterpret_cast<W*>(p[0] + i * s[0]) =
                select_bits<W>(uint8_t(*(p[1] + i * s[1])), *reinterpret_cast<const W*>(p[2] + i * s[2]),
                               *reinterpret_cast<const W*>(p[3] + i * s[3]));
    }
}

py::object where(const py::array& ca, const py::array& aa, const py::array& ba) {
    const char* name = "where";
    View c = view_of(ca, name), a = view_of(aa, name), b = view_of(ba, name);
    if (c.dtype != DType::Bool || a.dtype != b.dtype) return call_ref(name, ca, aa, ba);
    const View* ins[3] = {&c, &a, &b};
    int64_t shape[kMaxDims], sc[kMaxDims], sa[kMaxDims], sb[kMaxDims];
    int nd = broadcast_shape(name, ins, 3, shape);
    int perm[kMaxDims];
    py::array out = keep_order(shape, nd, ins + 1, 2, perm) ? empty_permuted(a.dtype, shape, nd, perm)
                                                            : empty(a.dtype, shape, nd);
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
        void (*row)(int64_t, char**, const int64_t*) = isz == 1   ? &where_row<uint8_t>
                                                       : isz == 2 ? &where_row<uint16_t>
                                                       : isz == 4 ? &where_row<uint32_t>
                                                                  : &where_row<uint64_t>;
        run_loop(L, [&](int64_t n, char** p, const int64_t* s) { row(n, p, s); });
    }
    return std::move(out);
}

}  // namespace
}  // namespace ew

void register_elementwise(pybind11::module_& m) {
    namespace py = pybind11;
    using namespace tf::ew;
    register_unary(m);
    register_backward(m);
    constexpr int F = kFloat, FI = kFloat | kInt, ALL = kFloat | kInt | kBool;
    // plain function pointers of one signature: pybind11 instantiates its wrapper once
#define B2(OP, KINDS, BOOL) \
    m.def(OP<float>::name, &binary<OP, KINDS, BOOL>, py::arg("a"), py::arg("b"), "C++ kernel, broadcasting");
    // the arithmetic ops also write in place (out=a): the traced mode's epilogues add a
    // bias into a product's buffer on the kernels' threads
#define B2OUT(OP, KINDS)                                                                       \
    m.def(OP<float>::name, &binary_out<OP, KINDS>, py::arg("a"), py::arg("b"), py::kw_only(), \
          py::arg("out") = py::none(), "C++ kernel, broadcasting; out=: a itself (in place)");
    B2OUT(Add, FI)
    B2OUT(Sub, FI)
    B2OUT(Mul, FI)
    B2OUT(Div, F)
#undef B2OUT
    B2(Maximum, FI, false)
    B2(Minimum, FI, false)
    B2(Eq, ALL, true)
    B2(Ne, ALL, true)
    B2(Lt, ALL, true)
    B2(Le, ALL, true)
    B2(Gt, ALL, true)
    B2(Ge, ALL, true)
    B2(LogicalAnd, ALL, true)
    B2(LogicalOr, ALL, true)
    B2(LogicalXor, ALL, true)
    B2(Atan2, F, false)
#undef B2
    m.def("pow", &pow_kernel, py::arg("a"), py::arg("b"), "pow (C++ kernel, broadcasting)");
    m.def("floor_divide", &int_division<FloorDivide>, py::arg("a"), py::arg("b"),
          "floor_divide (C++ kernel, broadcasting)");
    m.def("remainder", &int_division<Remainder>, py::arg("a"), py::arg("b"), "remainder (C++ kernel, broadcasting)");
    m.def("where", &where, py::arg("cond"), py::arg("a"), py::arg("b"), "where (C++ kernel, broadcasting)");
}

TINYFW_ISA_END
}  // namespace tf
