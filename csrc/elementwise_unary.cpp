// Unary elementwise kernels: the one-input primitives of backend/ref.py, same names,
// signatures and semantics.  Each op is a small functor evaluated in the compute type
// (float32 for float16/bfloat16, rounded once on store); the drivers are in
// elementwise_core.cpp, the float32 transcendentals in elementwise_vmath.cpp.  Dtypes an
// op does not specialise (integer transcendentals, ...) are handed to the reference
// primitive, so the semantics are always the specification's.
//
// No FMA contraction here: ref evaluates a*b+c with two roundings, and bit-exact
// agreement is worth more than the last cycle.
#pragma GCC optimize("fp-contract=off")

#include "elementwise.h"

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace ew {
namespace {

template <class C> inline C sigmoid_of(C x) {
    C e = std::exp(-std::abs(x));
    return x >= C(0) ? C(1) / (C(1) + e) : e / (C(1) + e);
}

// NAME: functor, PRIM: primitive name, VF: float32 vector function (VNone: none)
#define TF_UNARY(NAME, PRIM, VF, EXPR)                   \
    template <class C> struct NAME {                     \
        static constexpr const char* name = PRIM;        \
        static constexpr VFn vfn = VF;                   \
        inline C operator()(C x) const { return EXPR; } \
    };
TF_UNARY(Neg, "neg", VNone, wrap_neg(x))
TF_UNARY(Abs, "abs", VNone, (x < C(0) ? wrap_neg(x) : (x == C(0) ? C(0) : x)))
TF_UNARY(Exp, "exp", VExp, std::exp(x))
TF_UNARY(Log, "log", VLog, std::log(x))
TF_UNARY(Log1p, "log1p", VLog1p, std::log1p(x))
TF_UNARY(Expm1, "expm1", VExpm1, std::expm1(x))
TF_UNARY(Sqrt, "sqrt", VNone, std::sqrt(x))
TF_UNARY(Rsqrt, "rsqrt", VNone, C(1) / std::sqrt(x))
TF_UNARY(Reciprocal, "reciprocal", VNone, C(1) / x)
TF_UNARY(Sin, "sin", VNone, std::sin(x))
TF_UNARY(Cos, "cos", VNone, std::cos(x))
TF_UNARY(Tanh, "tanh", VTanh, std::tanh(x))
TF_UNARY(Sigmoid, "sigmoid", VSigmoid, sigmoid_of(x))
TF_UNARY(Silu, "silu", VSilu, x* sigmoid_of(x))
TF_UNARY(Erf, "erf", VErf, std::erf(x))
TF_UNARY(Erfc, "erfc", VErfc, std::erfc(x))
TF_UNARY(Sign, "sign", VNone, (x > C(0) ? C(1) : x < C(0) ? C(-1) : x == C(0) ? C(0) : x))
TF_UNARY(Floor, "floor", VNone, std::floor(x))
TF_UNARY(Ceil, "ceil", VNone, std::ceil(x))
TF_UNARY(Round, "round", VNone, std::nearbyint(x))
// relu with numpy's tie rule: maximum(x, 0) picks 0 on ties
TF_UNARY(Relu0, "relu", VNone, max_nan(x, C(0)))
// GELU as ref writes it (float64 here; float32 and the half types run vm_unary):
// x Phi(x) with Phi from erfc, which does not cancel for x << 0 as 1 + erf does, and the
// tanh form as x sigmoid(2u), 2u = 2 sqrt(2/pi) (x + 0.044715 x^3)
template <class C> inline C sigmoid_2u(C x) {
    return C(1) / (C(1) + std::exp(-(C(kK2) * x * (C(1) + C(0.044715) * x * x))));
}
TF_UNARY(GeluErf, "gelu", VGeluErf, C(0.5) * x * std::erfc(-x * C(kSqrt1_2)))
TF_UNARY(GeluTanh, "gelu", VGeluTanh, x * sigmoid_2u(x))
// issue 16: float32 only (f32_only below); float64 and the half types stay on ref
TF_UNARY(Exp2, "exp2", VExp2, std::exp2(x))
TF_UNARY(Log2, "log2", VLog2, std::log2(x))
TF_UNARY(Sinh, "sinh", VSinh, std::sinh(x))
TF_UNARY(Cosh, "cosh", VCosh, std::cosh(x))
#undef TF_UNARY

#define TF_PREDICATE(NAME, PRIM, EXPR)                      \
    template <class C> struct NAME {                        \
        static constexpr const char* name = PRIM;           \
        static constexpr VFn vfn = VNone;                   \
        inline bool operator()(C x) const { return EXPR; } \
    };
TF_PREDICATE(IsNan, "isnan", x != x)
TF_PREDICATE(IsInf, "isinf", std::isinf(x))
TF_PREDICATE(LogicalNot, "logical_not", x == C(0))
#undef TF_PREDICATE

// ------------------------------------------------------------------ ops with attributes
template <class C> struct LeakyRelu {
    C slope;
    inline C operator()(C v) const { return v > C(0) ? v : C(v * slope); }
};
template <class C> struct Softplus {  // float64 only: float32 goes to vm_unary
    C beta, threshold;
    inline C operator()(C v) const {
        C bx = v * beta;
        return bx > threshold ? v : C(std::log1p(std::exp(min_nan(bx, threshold))) / beta);
    }
};
template <class C> struct Clamp {
    bool has_lo, has_hi;
    C lo, hi;
    inline C operator()(C v) const {
        if (has_lo) v = max_nan(v, lo);
        if (has_hi) v = min_nan(v, hi);
        return v;
    }
};

template <template <class> class OpT, class C> py::array map_with(const char* name, const View& x, const OpT<C>& op) {
    return map1(name, x, x.dtype, {&row1<C, C, OpT<C>>, &op});
}

py::object leaky_relu(const py::array& xa, double slope) {
    View x = view_of(xa, "leaky_relu");
    if (!accepts(x.dtype, kFloat)) return call_ref("leaky_relu", xa, slope);
    // the slope in the compute type (ref applies v.dtype.type after lifting halves to float32)
    if (x.dtype == DType::Float64) return map_with<LeakyRelu, double>("leaky_relu", x, {slope});
    return map_with<LeakyRelu, float>("leaky_relu", x, {float(slope)});
}

py::object softplus(const py::array& xa, double beta, double threshold) {
    View x = view_of(xa, "softplus");
    if (!accepts(x.dtype, kFloat)) return call_ref("softplus", xa, beta, threshold);
    if (x.dtype == DType::Float64) return map_with<Softplus, double>("softplus", x, {beta, threshold});
    const VCtx v{VSoftplus, {float(beta), float(threshold)}};
    return map1("softplus", x, x.dtype, {&vm_row, &v});
}

py::object gelu(const py::array& xa, const std::string& approximate, const py::object& out) {
    View x = view_of(xa, "gelu");
    if (!accepts(x.dtype, kFloat) || (approximate != "none" && approximate != "tanh"))
        return call_ref("gelu", xa, approximate, py::arg("out") = out);
    if (approximate == "tanh") return unary_out<GeluTanh, kFloat>(xa, out);
    return unary_out<GeluErf, kFloat>(xa, out);
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
    // the bounds in x's dtype (rounded to it, as v.dtype.type(lo) in ref)
    auto ibound = [](const py::object& v) { return v.is_none() ? 0LL : v.cast<long long>(); };
    auto fbound = [&](const py::object& v) {
        if (v.is_none()) return 0.f;
        float f = float(v.cast<double>());
        if (x.dtype == DType::Float16) return load(store<half>(f));
        if (x.dtype == DType::BFloat16) return load(store<bhalf>(f));
        return f;
    };
    switch (x.dtype) {
        case DType::Float64: {
            const double l = has_lo ? lo.cast<double>() : 0.0, h = has_hi ? hi.cast<double>() : 0.0;
            return map_with<Clamp, double>("clamp", x, {has_lo, has_hi, l, h});
        }
        case DType::Int8:
            return map_with<Clamp, int8_t>("clamp", x, {has_lo, has_hi, int8_t(ibound(lo)), int8_t(ibound(hi))});
        case DType::Int32:
            return map_with<Clamp, int32_t>("clamp", x, {has_lo, has_hi, int32_t(ibound(lo)), int32_t(ibound(hi))});
        case DType::Int64:
            return map_with<Clamp, int64_t>("clamp", x, {has_lo, has_hi, int64_t(ibound(lo)), int64_t(ibound(hi))});
        default:
            return map_with<Clamp, float>("clamp", x, {has_lo, has_hi, fbound(lo), fbound(hi)});
    }
}

// float32 kernels of functions whose float64 reference (numpy) may differ from libm's by
// more than the conformance bound: other dtypes run the reference primitive
template <template <class> class OpT> py::object f32_only(const py::array& xa) {
    View x = view_of(xa, OpT<float>::name);
    if (x.dtype != DType::Float32) return call_ref(OpT<float>::name, xa);
    return unary<OpT, kFloat>(xa);
}

}  // namespace

void register_unary(py::module_& m) {
    constexpr int F = kFloat, FI = kFloat | kInt, ALL = kFloat | kInt | kBool;
    // plain function pointers of one signature: pybind11 instantiates its wrapper once
#define U1(OP, KINDS) m.def(OP<float>::name, &unary<OP, KINDS>, py::arg("x"), "C++ kernel");
    m.def("exp2", &f32_only<Exp2>, py::arg("x"), "C++ kernel");
    m.def("log2", &f32_only<Log2>, py::arg("x"), "C++ kernel");
    m.def("sinh", &f32_only<Sinh>, py::arg("x"), "C++ kernel");
    m.def("cosh", &f32_only<Cosh>, py::arg("x"), "C++ kernel");
    U1(Neg, FI)
    U1(Abs, FI)
    U1(Exp, F)
    U1(Log, F)
    U1(Log1p, F)
    U1(Expm1, F)
    U1(Sqrt, F)
    U1(Rsqrt, F)
    U1(Reciprocal, F)
    U1(Sin, F)
    U1(Cos, F)
    U1(Relu0, FI)
    U1(Erf, F)
    U1(Erfc, F)
    U1(Sign, FI)
    U1(Floor, F)
    U1(Ceil, F)
    U1(Round, F)
#undef U1
    m.def("isnan", &unary<IsNan, F, true>, py::arg("x"), "isnan (C++ kernel)");
    m.def("isinf", &unary<IsInf, F, true>, py::arg("x"), "isinf (C++ kernel)");
    m.def("logical_not", &unary<LogicalNot, ALL, true>, py::arg("x"), "logical_not (C++ kernel)");
    // the activations an epilogue runs over a product's buffer (jit/passes/fuse_epilogue.py):
    // out= may be x itself (in place) or an array sharing no memory with it
#define U1OUT(OP) m.def(OP<float>::name, &unary_out<OP, F>, py::arg("x"), py::kw_only(), py::arg("out") = py::none(), "C++ kernel; out=: write there (may be x)");
    U1OUT(Tanh)
    U1OUT(Sigmoid)
    U1OUT(Silu)
#undef U1OUT
    m.def("gelu", &gelu, py::arg("x"), py::arg("approximate") = "none", py::kw_only(), py::arg("out") = py::none(),
          "gelu (C++ kernel); out=: write there (may be x)");
    m.def("_vmath_isa", &vm_isa, "the instruction set of the float32 vector math: avx512, avx2 or scalar");
    m.def("leaky_relu", &leaky_relu, py::arg("x"), py::arg("negative_slope"), "leaky_relu (C++ kernel)");
    m.def("softplus", &softplus, py::arg("x"), py::arg("beta"), py::arg("threshold"), "softplus (C++ kernel)");
    m.def("clamp", &clamp, py::arg("x"), py::arg("lo"), py::arg("hi"), "clamp (C++ kernel)");
}

}  // namespace ew
TINYFW_ISA_END
}  // namespace tf
