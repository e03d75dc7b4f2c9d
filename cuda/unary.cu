// Unary elementwise kernels: one functor per op, computed like ref.py (half types in
// float32 and rounded once; erfc and gelu in float64, rounded once), run by loops.cuh.
#include "loops.cuh"
#include "ops.h"

namespace tfc {
namespace {

// integer negation and abs wrap around (numpy's int8 -(-128) is -128), without UB
template <class C> __device__ __forceinline__ C wrap_neg(C x) {
    if constexpr (std::is_integral<C>::value)
        return static_cast<C>(0ull - static_cast<unsigned long long>(x));
    else
        return -x;
}

struct Neg { template <class C> __device__ C operator()(C x) const { return wrap_neg(x); } };
struct Abs { template <class C> __device__ C operator()(C x) const {
    if constexpr (std::is_integral<C>::value) return x < 0 ? wrap_neg(x) : x; else return fabs(x); } };
struct Exp { template <class C> __device__ C operator()(C x) const { return exp(x); } };
struct Log { template <class C> __device__ C operator()(C x) const { return log(x); } };
struct Log1p { template <class C> __device__ C operator()(C x) const { return log1p(x); } };
struct Expm1 { template <class C> __device__ C operator()(C x) const { return expm1(x); } };
struct Sqrt { template <class C> __device__ C operator()(C x) const { return sqrt(x); } };
// ref: 1 / sqrt(x), two correctly rounded steps (rsqrtf would differ by its own ulps)
struct Rsqrt { template <class C> __device__ C operator()(C x) const { return C(1) / sqrt(x); } };
struct Reciprocal { template <class C> __device__ C operator()(C x) const { return C(1) / x; } };
struct Sin { template <class C> __device__ C operator()(C x) const { return sin(x); } };
struct Cos { template <class C> __device__ C operator()(C x) const { return cos(x); } };
struct Tanh { template <class C> __device__ C operator()(C x) const { return tanh(x); } };
template <class C> __device__ __forceinline__ C sigmoid_of(C x) {
    C e = exp(-fabs(x));  // never overflows
    return x >= C(0) ? C(1) / (C(1) + e) : e / (C(1) + e);
}
struct Sigmoid { template <class C> __device__ C operator()(C x) const { return sigmoid_of(x); } };
// numpy's maximum(x, 0): x when x >= 0 or x is NaN
struct Relu { template <class C> __device__ C operator()(C x) const { return (x >= C(0) || x != x) ? x : C(0); } };
struct Silu { template <class C> __device__ C operator()(C x) const { return x * sigmoid_of(x); } };
struct Erf { template <class C> __device__ C operator()(C x) const { return erf(x); } };
struct Erfc { __device__ double operator()(double x) const { return erfc(x); } };
struct Sign { template <class C> __device__ C operator()(C x) const {
    if (x != x) return x;
    return x > C(0) ? C(1) : x < C(0) ? C(-1) : C(0); } };
struct Floor { template <class C> __device__ C operator()(C x) const { return floor(x); } };
struct Ceil { template <class C> __device__ C operator()(C x) const { return ceil(x); } };
struct Round { template <class C> __device__ C operator()(C x) const { return rint(x); } };  // half to even
struct LogicalNot { template <class T> __device__ bool operator()(T x) const { return !convert<bool>(x); } };
struct IsNan { template <class T> __device__ bool operator()(T x) const {
    if constexpr (is_float_v<T>) { auto v = convert<double>(x); return v != v; } else return false; } };
struct IsInf { template <class T> __device__ bool operator()(T x) const {
    if constexpr (is_float_v<T>) return isinf(convert<double>(x)); else return false; } };
constexpr double kSqrt1_2 = 0.7071067811865476, kK2 = 1.5957691216057308;
struct Gelu { __device__ double operator()(double v) const { return 0.5 * v * erfc(-v * kSqrt1_2); } };
struct GeluTanh { __device__ double operator()(double v) const {
    return v * (1.0 / (1.0 + exp(-(kK2 * v * (1.0 + 0.044715 * v * v))))); } };
struct LeakyRelu { double slope; template <class C> __device__ C operator()(C x) const {
    return x > C(0) ? x : x * C(slope); } };
struct Softplus { double beta, threshold; template <class C> __device__ C operator()(C v) const {
    C bx = v * C(beta);
    return bx > C(threshold) ? v : log1p(exp(fmin(bx, C(threshold)))) / C(beta); } };
// numpy maximum/minimum against the bounds: NaN stays NaN; +-inf bounds are "absent"
struct Clamp { double lo, hi; template <class C> __device__ C operator()(C v) const {
    if constexpr (std::is_integral<C>::value) {
        if (lo > -9.2e18) v = v >= C(lo) ? v : C(lo);
        if (hi < 9.2e18) v = v <= C(hi) ? v : C(hi);
        return v;
    } else {
        C l = C(lo), h = C(hi);
        v = (v >= l || v != v) ? v : l;
        return (v <= h || v != v) ? v : h;
    } } };

template <class T> using comp_t = std::conditional_t<std::is_integral<T>::value, int64_t, acc_t<T>>;

template <class T, class F> void same(const char* name, const TensorArg& out, const TensorArg& in, void* s, F f) {
    elementwise<T, T>(name, s, Computed<T, comp_t<T>, F>{f}, out, in);
}
template <class T, class F> void in_double(const char* name, const TensorArg& out, const TensorArg& in, void* s, F f) {
    elementwise<T, T>(name, s, Computed<T, double, F>{f}, out, in);
}
template <class T, class F> void to_bool(const char* name, const TensorArg& out, const TensorArg& in, void* s, F f) {
    elementwise<bool, T>(name, s, f, out, in);
}

// ops defined for every dtype but bool (neg, abs, sign, relu, clamp)
template <class T> void int_or_float(int op, const TensorArg& out, const TensorArg& in, double a0, double a1, void* s) {
    switch (op) {
        case op_neg: return same<T>("neg", out, in, s, Neg{});
        case op_abs: return same<T>("abs", out, in, s, Abs{});
        case op_sign: return same<T>("sign", out, in, s, Sign{});
        case op_relu: return same<T>("relu", out, in, s, Relu{});
        case op_clamp: return same<T>("clamp", out, in, s, Clamp{a0, a1});
    }
}

template <class T> void float_only(int op, const TensorArg& out, const TensorArg& in, double a0, double a1, void* s) {
    switch (op) {
        case op_exp: return same<T>("exp", out, in, s, Exp{});
        case op_log: return same<T>("log", out, in, s, Log{});
        case op_log1p: return same<T>("log1p", out, in, s, Log1p{});
        case op_expm1: return same<T>("expm1", out, in, s, Expm1{});
        case op_sqrt: return same<T>("sqrt", out, in, s, Sqrt{});
        case op_rsqrt: return same<T>("rsqrt", out, in, s, Rsqrt{});
        case op_reciprocal: return same<T>("reciprocal", out, in, s, Reciprocal{});
        case op_sin: return same<T>("sin", out, in, s, Sin{});
        case op_cos: return same<T>("cos", out, in, s, Cos{});
        case op_tanh: return same<T>("tanh", out, in, s, Tanh{});
        case op_sigmoid: return same<T>("sigmoid", out, in, s, Sigmoid{});
        case op_silu: return same<T>("silu", out, in, s, Silu{});
        case op_erf: return same<T>("erf", out, in, s, Erf{});
        case op_erfc: return in_double<T>("erfc", out, in, s, Erfc{});
        case op_floor: return same<T>("floor", out, in, s, Floor{});
        case op_ceil: return same<T>("ceil", out, in, s, Ceil{});
        case op_round: return same<T>("round", out, in, s, Round{});
        case op_gelu: return in_double<T>("gelu", out, in, s, Gelu{});
        case op_gelu_tanh: return in_double<T>("gelu", out, in, s, GeluTanh{});
        case op_leaky_relu: return same<T>("leaky_relu", out, in, s, LeakyRelu{a0});
        case op_softplus: return same<T>("softplus", out, in, s, Softplus{a0, a1});
        default: return int_or_float<T>(op, out, in, a0, a1, s);
    }
}

}  // namespace

void launch_unary(int op, const TensorArg& out, const TensorArg& in, double a0, double a1, void* s) {
    if (op == op_logical_not || op == op_isnan || op == op_isinf) {
        dispatch_all(in.dtype, [&](auto tag) {
            using T = typename decltype(tag)::type;
            if (op == op_logical_not) to_bool<T>("logical_not", out, in, s, LogicalNot{});
            else if (op == op_isnan) to_bool<T>("isnan", out, in, s, IsNan{});
            else to_bool<T>("isinf", out, in, s, IsInf{});
        });
        return;
    }
    const bool any_dtype = op == op_neg || op == op_abs || op == op_sign || op == op_relu || op == op_clamp;
    if (any_dtype && in.dtype != Bool && in.dtype != F16 && in.dtype != BF16 && in.dtype != F32 && in.dtype != F64) {
        switch (in.dtype) {
            case I8: return int_or_float<int8_t>(op, out, in, a0, a1, s);
            case I32: return int_or_float<int32_t>(op, out, in, a0, a1, s);
            case I64: return int_or_float<int64_t>(op, out, in, a0, a1, s);
        }
    }
    dispatch_float(in.dtype, "unary op", [&](auto tag) {
        using T = typename decltype(tag)::type;
        float_only<T>(op, out, in, a0, a1, s);
    });
}

}  // namespace tfc
