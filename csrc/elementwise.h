// Private to the elementwise kernels (elementwise_*.cpp): the row-kernel machinery.
//
// Build time is the reason for this shape.  The strided/broadcast driver (loop building,
// output allocation, the OpenMP split of run_loop) is compiled ONCE, in
// elementwise_core.cpp, and reaches the per-op code through a plain function pointer
// called once per innermost row (`RowFn`).  What is instantiated per op is only the row
// kernel, and only for the compute types: float16/bfloat16 rows are staged through
// float32 blocks and run the float32 row kernel (the arithmetic is float32 anyway and
// the result is rounded once on store, so the values are the same).
//
// The float32 transcendental functions go through `vm_unary` (elementwise_vmath.cpp):
// AVX2+FMA polynomials when the compiler targets AVX2, libm per element otherwise.
#pragma once

#include "core.h"
#include "elementwise_vmath.h"

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace ew {

/// A row kernel: n elements; p[0] the output, p[1..] the inputs (byte pointers), s the
/// byte strides; ctx is the kernel's own state (the op object).
using RowFn = void (*)(int64_t n, char** p, const int64_t* s, const void* ctx);
struct Row {
    RowFn fn;
    const void* ctx;
};

/// y = op(x) over x's shape; the result has dtype out_dt and x's memory order.  A half
/// input is staged through float32 and `row` must be the float32 kernel.
py::array map1(const char* name, const View& x, DType out_dt, Row row);
/// map1 into `out` (None: allocate): an array of x's shape and dtype out_dt that is x
/// itself (same memory and strides: in place) or shares no memory with x; anything else
/// raises.  Returns the array written.
py::array map1_out(const char* name, const View& x, DType out_dt, Row row, const py::object& out);
/// y = op(a, b) with broadcasting; a and b have one dtype (staged as in map1).
py::array map2(const char* name, const View& a, const View& b, DType out_dt, Row row);
/// map2 into `out` (None: allocate): only a itself, b broadcasting into a's shape.
py::array map2_out(const char* name, const View& a, const View& b, DType out_dt, Row row, const py::object& out);
/// True if any element of an integer array is zero (`negative`: is negative).
bool any_int(const View& v, bool negative);

// ------------------------------------------------------------------ per-op row kernels
template <class C, class To, class Op> void row1(int64_t n, char** p, const int64_t* s, const void* ctx) {
    const Op& op = *static_cast<const Op*>(ctx);
    if (s[0] == int64_t(sizeof(To)) && s[1] == int64_t(sizeof(C))) {
        To* __restrict o = reinterpret_cast<To*>(p[0]);
        const C* __restrict a = reinterpret_cast<const C*>(p[1]);
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = op(a[i]);
    } else {
        for (int64_t i = 0; i < n; ++i)
            *reinterpret_cast<To*>(p[0] + i * s[0]) = op(*reinterpret_cast<const C*>(p[1] + i * s[1]));
    }
}

/// Binary rows.  The broadcast-scalar variants pay only for the float types (a scalar
/// operand of a contiguous float row: bias adds, scaling, relu's backward); integer and
/// bool rows take the strided loop for them.
template <class C, class To, class Op> void row2(int64_t n, char** p, const int64_t* s, const void* ctx) {
    const Op& op = *static_cast<const Op*>(ctx);
    To* __restrict o = reinterpret_cast<To*>(p[0]);
    const C* __restrict a = reinterpret_cast<const C*>(p[1]);
    const C* __restrict b = reinterpret_cast<const C*>(p[2]);
    constexpr int64_t so = sizeof(To), si = sizeof(C);
    if (s[0] == so && s[1] == si && s[2] == si) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = op(a[i], b[i]);
        return;
    }
    if constexpr (std::is_floating_point_v<C>) {
        if (s[0] == so && s[1] == si && s[2] == 0) {
            const C bv = *b;
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) o[i] = op(a[i], bv);
            return;
        }
        if (s[0] == so && s[1] == 0 && s[2] == si) {
            const C av = *a;
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) o[i] = op(av, b[i]);
            return;
        }
    }
    for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<To*>(p[0] + i * s[0]) = op(*reinterpret_cast<const C*>(p[1] + i * s[1]),
                                                     *reinterpret_cast<const C*>(p[2] + i * s[2]));
}

// ------------------------------------------------------------------ dtype policies
enum Kinds { kFloat = 1, kInt = 2, kBool = 4 };

inline bool accepts(DType dt, int kinds) {
    if (dt == DType::Bool) return kinds & kBool;
    if (dt == DType::Int8 || dt == DType::Int32 || dt == DType::Int64) return kinds & kInt;
    return kinds & kFloat;
}

/// The row kernel of OpT for the compute type of dt (float32 for the half types), or
/// {nullptr, nullptr} for a dtype outside `kinds`.  OpT<C>::vfn != VNone sends float32
/// to the vector math.
template <template <class> class OpT, int kinds, bool BoolOut, class C> Row row_for() {
    using To = std::conditional_t<BoolOut, bool, C>;
    if constexpr (std::is_same_v<C, float> && OpT<float>::vfn != VNone) {
        static const VCtx v{OpT<float>::vfn, {0.f, 0.f}};
        return {&vm_row, &v};
    } else {
        static const OpT<C> op{};
        return {&row1<C, To, OpT<C>>, &op};
    }
}
template <template <class> class OpT, int kinds, bool BoolOut> Row pick1(DType dt) {
    switch (dt) {
        case DType::Float32: case DType::Float16: case DType::BFloat16:
            if constexpr (bool(kinds & kFloat)) return row_for<OpT, kinds, BoolOut, float>();
            break;
        case DType::Float64:
            if constexpr (bool(kinds & kFloat)) return row_for<OpT, kinds, BoolOut, double>();
            break;
        case DType::Int8:
            if constexpr (bool(kinds & kInt)) return row_for<OpT, kinds, BoolOut, int8_t>();
            break;
        case DType::Int32:
            if constexpr (bool(kinds & kInt)) return row_for<OpT, kinds, BoolOut, int32_t>();
            break;
        case DType::Int64:
            if constexpr (bool(kinds & kInt)) return row_for<OpT, kinds, BoolOut, int64_t>();
            break;
        case DType::Bool:
            if constexpr (bool(kinds & kBool)) return row_for<OpT, kinds, BoolOut, bool>();
            break;
    }
    return {nullptr, nullptr};
}
template <template <class> class OpT, bool BoolOut, class C> Row row2_for() {
    static const OpT<C> op{};
    return {&row2<C, std::conditional_t<BoolOut, bool, C>, OpT<C>>, &op};
}
template <template <class> class OpT, int kinds, bool BoolOut> Row pick2(DType dt) {
    switch (dt) {
        case DType::Float32: case DType::Float16: case DType::BFloat16:
            if constexpr (bool(kinds & kFloat)) return row2_for<OpT, BoolOut, float>();
            break;
        case DType::Float64:
            if constexpr (bool(kinds & kFloat)) return row2_for<OpT, BoolOut, double>();
            break;
        case DType::Int8:
            if constexpr (bool(kinds & kInt)) return row2_for<OpT, BoolOut, int8_t>();
            break;
        case DType::Int32:
            if constexpr (bool(kinds & kInt)) return row2_for<OpT, BoolOut, int32_t>();
            break;
        case DType::Int64:
            if constexpr (bool(kinds & kInt)) return row2_for<OpT, BoolOut, int64_t>();
            break;
        case DType::Bool:
            if constexpr (bool(kinds & kBool)) return row2_for<OpT, BoolOut, bool>();
            break;
    }
    return {nullptr, nullptr};
}

/// The kinds this ISA level compiles (core.h, level_has): the others run the scalar level's.
constexpr int kLevelKinds = TINYFW_LEVEL_FLOAT_ONLY ? kFloat : kFloat | kInt | kBool;

/// Unary op whose result has x's dtype (bool with BoolOut); dtypes outside `kinds` go to
/// the reference primitive.  OpT<C>::name is the primitive's name.
template <template <class> class OpT, int kinds, bool BoolOut = false> py::object unary(const py::array& xa) {
    const char* name = OpT<float>::name;
    View x = view_of(xa, name);
    if (!accepts(x.dtype, kinds)) return call_ref(name, xa);
    if (!accepts(x.dtype, kLevelKinds)) return call_scalar_level(name, xa);
    return map1(name, x, BoolOut ? DType::Bool : x.dtype, pick1<OpT, kinds & kLevelKinds, BoolOut>(x.dtype));
}

/// `unary` with an ``out=`` array (map1_out's rules); the reference fallback gets it too.
template <template <class> class OpT, int kinds> py::object unary_out(const py::array& xa, const py::object& out) {
    const char* name = OpT<float>::name;
    if (out.is_none()) return unary<OpT, kinds>(xa);
    View x = view_of(xa, name);
    if (!accepts(x.dtype, kinds) || !accepts(x.dtype, kLevelKinds))
        return call_ref(name, xa, py::arg("out") = out);
    return map1_out(name, x, x.dtype, pick1<OpT, kinds & kLevelKinds, false>(x.dtype), out);
}

/// Binary op on operands of one dtype (mixed dtypes and dtypes outside `kinds` go to ref).
template <template <class> class OpT, int kinds, bool BoolOut = false>
py::object binary(const py::array& aa, const py::array& ba) {
    const char* name = OpT<float>::name;
    View a = view_of(aa, name), b = view_of(ba, name);
    if (a.dtype != b.dtype || !accepts(a.dtype, kinds)) return call_ref(name, aa, ba);
    if (!accepts(a.dtype, kLevelKinds)) return call_scalar_level(name, aa, ba);
    return map2(name, a, b, BoolOut ? DType::Bool : a.dtype, pick2<OpT, kinds & kLevelKinds, BoolOut>(a.dtype));
}

/// `binary` with an ``out=`` that is a itself (map2_out's rules): a += b for the arithmetic
/// ops.  Operands the native path does not take are computed by `binary` and copied in.
template <template <class> class OpT, int kinds>
py::object binary_out(const py::array& aa, const py::array& ba, const py::object& out) {
    if (out.is_none()) return binary<OpT, kinds>(aa, ba);
    const char* name = OpT<float>::name;
    View a = view_of(aa, name), b = view_of(ba, name);
    if (a.dtype != b.dtype || !accepts(a.dtype, kinds) || !accepts(a.dtype, kLevelKinds)) {
        if (!out.is(aa)) fail(name, "out= must be a itself (in place)");
        py::object r = binary<OpT, kinds>(aa, ba);
        out.attr("__setitem__")(py::ellipsis(), r);  // numpy's same-kind casting rules
        return out;
    }
    return map2_out(name, a, b, a.dtype, pick2<OpT, kinds & kLevelKinds, false>(a.dtype), out);
}

// ------------------------------------------------------------------ scalar helpers
template <class C> using U = std::make_unsigned_t<C>;
template <class C> constexpr bool is_int_v = std::is_integral_v<C> && !std::is_same_v<C, bool>;
// integer arithmetic wraps modulo 2^n (as numpy), done unsigned to stay defined
template <class C> inline C wrap_neg(C x) {
    if constexpr (is_int_v<C>) return C(U<C>(0) - U<C>(x));
    else return C(-x);
}
template <class C> inline C max_nan(C a, C b) { return (a > b || a != a) ? a : b; }
template <class C> inline C min_nan(C a, C b) { return (a < b || a != a) ? a : b; }

}  // namespace ew
TINYFW_ISA_END
}  // namespace tf
