// Binary elementwise kernels: arithmetic, comparisons, logical ops and the activation
// backwards, computed like ref.py (half types in float32, integers in int64 and wrapped
// to their width: numpy's int8 127 + 1 is -128).  Both inputs have one dtype (the ops
// layer promoted them); comparisons and logical ops write bool.
#include "loops.cuh"
#include "ops.h"

namespace tfc {
namespace {

template <class C> constexpr bool is_int_v = std::is_integral<C>::value;
using u64 = unsigned long long;

struct Add { template <class C> __device__ C operator()(C a, C b) const {
    if constexpr (is_int_v<C>) return static_cast<C>(static_cast<u64>(a) + static_cast<u64>(b)); else return a + b; } };
struct Sub { template <class C> __device__ C operator()(C a, C b) const {
    if constexpr (is_int_v<C>) return static_cast<C>(static_cast<u64>(a) - static_cast<u64>(b)); else return a - b; } };
struct Mul { template <class C> __device__ C operator()(C a, C b) const {
    if constexpr (is_int_v<C>) return static_cast<C>(static_cast<u64>(a) * static_cast<u64>(b)); else return a * b; } };
struct Div { template <class C> __device__ C operator()(C a, C b) const { return a / b; } };
// integer powers by squaring, wrapping like numpy; negative exponents were refused by the caller
struct Pow { template <class C> __device__ C operator()(C a, C b) const {
    if constexpr (is_int_v<C>) {
        u64 r = 1, base = static_cast<u64>(a);
        for (C e = b; e > 0; e >>= 1) {
            if (e & 1) r *= base;
            base *= base;
        }
        return static_cast<C>(r);
    } else {
        return pow(a, b);
    } } };
// numpy: maximum = a if (a >= b or a is NaN) else b, so NaN wins from either side
struct Maximum { template <class C> __device__ C operator()(C a, C b) const { return (a >= b || a != a) ? a : b; } };
struct Minimum { template <class C> __device__ C operator()(C a, C b) const { return (a <= b || a != a) ? a : b; } };
struct Atan2 { template <class C> __device__ C operator()(C a, C b) const { return atan2(a, b); } };
// numpy's float floor division and modulo (npy_divmod): fmod first, then corrected toward
// the divisor's sign, so a == div * b + mod holds as closely as floats allow
struct FloorDivide { template <class C> __device__ C operator()(C a, C b) const {
    if constexpr (is_int_v<C>) {
        if (b == 0) return 0;  // refused by the caller
        if (b == -1) return static_cast<C>(0ull - static_cast<u64>(a));
        C q = a / b;
        return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
    } else {
        if (b == C(0)) return a / b;
        C mod = fmod(a, b);
        C div = (a - mod) / b;
        if (mod != C(0)) {
            if ((b < C(0)) != (mod < C(0))) div -= C(1);
        }
        C fl;
        if (div != C(0)) {
            fl = floor(div);
            if (div - fl > C(0.5)) fl += C(1);
        } else {
            fl = copysign(C(0), a / b);
        }
        return fl;
    } } };
struct Remainder { template <class C> __device__ C operator()(C a, C b) const {
    if constexpr (is_int_v<C>) {
        if (b == 0 || b == -1) return 0;
        C r = a % b;
        return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
    } else {
        if (b == C(0)) return fmod(a, b);
        C mod = fmod(a, b);
        if (mod != C(0)) {
            if ((b < C(0)) != (mod < C(0))) mod += b;
        } else {
            mod = copysign(C(0), b);
        }
        return mod;
    } } };
struct Eq { template <class C> __device__ bool operator()(C a, C b) const { return a == b; } };
struct Ne { template <class C> __device__ bool operator()(C a, C b) const { return a != b; } };
struct Lt { template <class C> __device__ bool operator()(C a, C b) const { return a < b; } };
struct Le { template <class C> __device__ bool operator()(C a, C b) const { return a <= b; } };
struct Gt { template <class C> __device__ bool operator()(C a, C b) const { return a > b; } };
struct Ge { template <class C> __device__ bool operator()(C a, C b) const { return a >= b; } };
struct And { template <class C> __device__ bool operator()(C a, C b) const { return (a != C(0)) && (b != C(0)); } };
struct Or { template <class C> __device__ bool operator()(C a, C b) const { return (a != C(0)) || (b != C(0)); } };
struct Xor { template <class C> __device__ bool operator()(C a, C b) const { return (a != C(0)) != (b != C(0)); } };
struct TanhBackward { template <class C> __device__ C operator()(C g, C y) const { return g * (C(1) - y * y); } };
struct SigmoidBackward { template <class C> __device__ C operator()(C g, C y) const { return g * y * (C(1) - y); } };
template <class C> __device__ __forceinline__ C sigmoid_of(C x) {
    C e = exp(-fabs(x));
    return x >= C(0) ? C(1) / (C(1) + e) : e / (C(1) + e);
}
struct SiluBackward { template <class C> __device__ C operator()(C g, C x) const {
    C s = sigmoid_of(x);
    return g * (s * (C(1) + x * (C(1) - s))); } };
constexpr double kSqrt1_2 = 0.7071067811865476, kInvSqrt2Pi = 0.3989422804014327,
                 kK2 = 1.5957691216057308, kGeluRoot = -0.7517915246935645;
// float64 throughout, rounded once (ref.gelu_backward)
struct GeluBackward { __device__ double operator()(double g, double v) const {
    double d = 0.5 * erfc(-v * kSqrt1_2) + v * (exp(-0.5 * v * v) * kInvSqrt2Pi);
    if (d == 0.0) d = copysign(0.0, v - kGeluRoot);
    return g * d; } };
struct GeluTanhBackward { __device__ double operator()(double g, double v) const {
    double w = kK2 * v * (1.0 + 3.0 * 0.044715 * v * v);
    double u = kK2 * v * (1.0 + 0.044715 * v * v);
    double s = 1.0 / (1.0 + exp(-u)), sm = 1.0 / (1.0 + exp(u));
    return g * (s * (1.0 + w * sm)); } };

template <class T> using comp_t = std::conditional_t<std::is_integral<T>::value, int64_t, acc_t<T>>;

template <class T, class F> void arith(const char* name, const TensorArg& o, const TensorArg& a, const TensorArg& b, void* s, F f) {
    elementwise<T, T, T>(name, s, Computed<T, comp_t<T>, F>{f}, o, a, b);
}
template <class T, class F> void in_double(const char* name, const TensorArg& o, const TensorArg& a, const TensorArg& b, void* s, F f) {
    elementwise<T, T, T>(name, s, Computed<T, double, F>{f}, o, a, b);
}
template <class T, class F> void predicate(const char* name, const TensorArg& o, const TensorArg& a, const TensorArg& b, void* s, F f) {
    elementwise<bool, T, T>(name, s, Computed<bool, comp_t<T>, F>{f}, o, a, b);
}

template <class T> void run(int op, const TensorArg& o, const TensorArg& a, const TensorArg& b, void* s) {
    switch (op) {
        case op_add: return arith<T>("add", o, a, b, s, Add{});
        case op_sub: return arith<T>("sub", o, a, b, s, Sub{});
        case op_mul: return arith<T>("mul", o, a, b, s, Mul{});
        case op_pow: return arith<T>("pow", o, a, b, s, Pow{});
        case op_maximum: return arith<T>("maximum", o, a, b, s, Maximum{});
        case op_minimum: return arith<T>("minimum", o, a, b, s, Minimum{});
        case op_floor_divide: return arith<T>("floor_divide", o, a, b, s, FloorDivide{});
        case op_remainder: return arith<T>("remainder", o, a, b, s, Remainder{});
        case op_eq: return predicate<T>("eq", o, a, b, s, Eq{});
        case op_ne: return predicate<T>("ne", o, a, b, s, Ne{});
        case op_lt: return predicate<T>("lt", o, a, b, s, Lt{});
        case op_le: return predicate<T>("le", o, a, b, s, Le{});
        case op_gt: return predicate<T>("gt", o, a, b, s, Gt{});
        case op_ge: return predicate<T>("ge", o, a, b, s, Ge{});
        case op_logical_and: return predicate<T>("logical_and", o, a, b, s, And{});
        case op_logical_or: return predicate<T>("logical_or", o, a, b, s, Or{});
        case op_logical_xor: return predicate<T>("logical_xor", o, a, b, s, Xor{});
    }
    if constexpr (is_float_v<T>) {
        switch (op) {
            case op_div: return arith<T>("div", o, a, b, s, Div{});
            case op_atan2: return arith<T>("atan2", o, a, b, s, Atan2{});
            case op_tanh_backward: return arith<T>("tanh_backward", o, a, b, s, TanhBackward{});
            case op_sigmoid_backward: return arith<T>("sigmoid_backward", o, a, b, s, SigmoidBackward{});
            case op_silu_backward: return arith<T>("silu_backward", o, a, b, s, SiluBackward{});
            case op_gelu_backward: return in_double<T>("gelu_backward", o, a, b, s, GeluBackward{});
            case op_gelu_tanh_backward: return in_double<T>("gelu_backward", o, a, b, s, GeluTanhBackward{});
        }
    }
    throw Unsupported(std::string("binary op ") + std::to_string(op) + ": not implemented on cuda for dtype " +
                      dtype_name(a.dtype));
}

}  // namespace

void launch_binary(int op, const TensorArg& o, const TensorArg& a, const TensorArg& b, void* s) {
    if (a.dtype != b.dtype)
        throw Unsupported(std::string("binary op on cuda: operands of different dtypes (") + dtype_name(a.dtype) +
                          ", " + dtype_name(b.dtype) + "); the ops layer promotes them first");
    dispatch_all(a.dtype, [&](auto tag) { run<typename decltype(tag)::type>(op, o, a, b, s); });
}

}  // namespace tfc
