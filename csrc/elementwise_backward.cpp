// The backward kernels of the activations: each replaces a chain of elementwise passes of
// a composed backward formula (g * (1 - y * y): three passes, three temporaries) by one.
//
//   tanh_backward(g, y)      = g (1 - y^2)             from tanh's output y
//   sigmoid_backward(g, y)   = g y (1 - y)             from sigmoid's output y
//   silu_backward(g, x)      = g (s (1 + x (1 - s))),  s = sigmoid(x)
//   gelu_backward(g, x, a)   = g gelu'(x)              (vmath_gelu.h; ref: float64, rounded once)
//
// The first three are ref's float32 formulas operation for operation (the composed
// backward they replace, bit for bit; silu's s comes from the vector sigmoid, as the
// composed formula's did).  Half types are staged through float32; float64 runs the same
// formulas in float64.
//
// No FMA contraction here: ref evaluates a*b+c with two roundings.
#pragma GCC optimize("fp-contract=off")

#include "elementwise.h"

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace ew {
namespace {

template <class C> struct TanhBwd {
    static constexpr const char* name = "tanh_backward";
    inline C operator()(C g, C y) const { return g * (C(1) - y * y); }
};
template <class C> struct SigmoidBwd {
    static constexpr const char* name = "sigmoid_backward";
    inline C operator()(C g, C y) const { return g * y * (C(1) - y); }
};
// float64 only (float32 and the half types run vm_binary)
struct SiluBwd64 {
    inline double operator()(double g, double x) const {
        const double e = std::exp(-std::abs(x));
        const double s = x >= 0 ? 1 / (1 + e) : e / (1 + e);  // ref's sigmoid
        return g * (s * (1 + x * (1 - s)));
    }
};
inline double sigmoid_2u64(double x) { return 1 / (1 + std::exp(-(kK2 * x * (1 + 0.044715 * x * x)))); }
struct GeluBwdErf64 {
    inline double operator()(double g, double x) const {
        double d = 0.5 * std::erfc(-x * kSqrt1_2) + x * (std::exp(-0.5 * x * x) * kInvSqrt2Pi);
        if (d == 0) d = std::copysign(0.0, x - kGeluRoot);  // both terms underflowed
        return g * d;
    }
};
struct GeluBwdTanh64 {
    inline double operator()(double g, double x) const {
        const double w = kK2 * x * (1 + 3 * 0.044715 * x * x);
        return g * (sigmoid_2u64(x) * (1 + w * sigmoid_2u64(-x)));
    }
};

/// g and x of one float dtype: float64 through `op`, the others through vm_binary's `f`.
template <class Op64>
py::object vm_backward(const char* name, const py::array& ga, const py::array& xa, VFn f, py::object ref_attr) {
    View g = view_of(ga, name), x = view_of(xa, name);
    if (g.dtype != x.dtype || !accepts(x.dtype, kFloat))
        return ref_attr.is_none() ? call_ref(name, ga, xa) : call_ref(name, ga, xa, ref_attr);
    if (x.dtype == DType::Float64) {
        static const Op64 op{};
        return map2(name, g, x, x.dtype, {&row2<double, double, Op64>, &op});
    }
    static const VCtx erf_v{VGeluBwdErf, {0, 0}}, tanh_v{VGeluBwdTanh, {0, 0}}, silu_v{VSiluBwd, {0, 0}};
    const VCtx* v = f == VGeluBwdErf ? &erf_v : f == VGeluBwdTanh ? &tanh_v : &silu_v;
    return map2(name, g, x, x.dtype, {&vm_row2, v});
}

py::object gelu_backward(const py::array& ga, const py::array& xa, const std::string& approximate) {
    if (approximate == "tanh")
        return vm_backward<GeluBwdTanh64>("gelu_backward", ga, xa, VGeluBwdTanh, py::str(approximate));
    if (approximate != "none") return call_ref("gelu_backward", ga, xa, approximate);
    return vm_backward<GeluBwdErf64>("gelu_backward", ga, xa, VGeluBwdErf, py::str(approximate));
}

py::object silu_backward(const py::array& ga, const py::array& xa) {
    return vm_backward<SiluBwd64>("silu_backward", ga, xa, VSiluBwd, py::none());
}

}  // namespace

void register_backward(py::module_& m) {
    m.def("tanh_backward", &binary<TanhBwd, kFloat>, py::arg("grad"), py::arg("y"),
          "g * (1 - y * y) from tanh's output (C++ kernel, broadcasting)");
    m.def("sigmoid_backward", &binary<SigmoidBwd, kFloat>, py::arg("grad"), py::arg("y"),
          "g * y * (1 - y) from sigmoid's output (C++ kernel, broadcasting)");
    m.def("silu_backward", &silu_backward, py::arg("grad"), py::arg("x"),
          "g * (s * (1 + x * (1 - s))), s = sigmoid(x) (C++ kernel, broadcasting)");
    m.def("gelu_backward", &gelu_backward, py::arg("grad"), py::arg("x"), py::arg("approximate") = "none",
          "g * gelu'(x), GELU's backward (C++ kernel, broadcasting)");
}

}  // namespace ew
TINYFW_ISA_END
}  // namespace tf
