// Shared device code: dtype mapping, tinyfw's conversion rules, strided offsets with fast
// division, the grid-stride launch helpers and the error check that names the kernel.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "api.h"

namespace tfc {

using bf16 = __nv_bfloat16;
using f16 = __half;

// the type each dtype code stands for, and the type it is computed in
template <int D> struct TypeOf;
template <> struct TypeOf<Bool> { using T = bool; };
template <> struct TypeOf<I8> { using T = int8_t; };
template <> struct TypeOf<I32> { using T = int32_t; };
template <> struct TypeOf<I64> { using T = int64_t; };
template <> struct TypeOf<F16> { using T = f16; };
template <> struct TypeOf<BF16> { using T = bf16; };
template <> struct TypeOf<F32> { using T = float; };
template <> struct TypeOf<F64> { using T = double; };

template <class T> struct Acc { using T_ = T; };
template <> struct Acc<f16> { using T_ = float; };
template <> struct Acc<bf16> { using T_ = float; };
template <class T> using acc_t = typename Acc<T>::T_;

template <class T> constexpr bool is_float_v =
    std::is_same<T, float>::value || std::is_same<T, double>::value ||
    std::is_same<T, f16>::value || std::is_same<T, bf16>::value;

// ---- tinyfw's conversion rules (tinyfw/backend/ref_cast.py is the specification)
template <class To> struct Conv;
// to a float: the exact value rounded once (the _rn intrinsics convert integers directly)
template <> struct Conv<double> {
    template <class F> __device__ static double from(F v) { return static_cast<double>(v); }
    __device__ static double from(f16 v) { return static_cast<double>(__half2float(v)); }
    __device__ static double from(bf16 v) { return static_cast<double>(__bfloat162float(v)); }
};
template <> struct Conv<float> {
    template <class F> __device__ static float from(F v) { return static_cast<float>(v); }
    __device__ static float from(f16 v) { return __half2float(v); }
    __device__ static float from(bf16 v) { return __bfloat162float(v); }
};
template <> struct Conv<f16> {
    __device__ static f16 from(bool v) { return __float2half_rn(v ? 1.f : 0.f); }
    __device__ static f16 from(int8_t v) { return __int2half_rn(v); }
    __device__ static f16 from(int32_t v) { return __int2half_rn(v); }
    __device__ static f16 from(int64_t v) { return __ll2half_rn(static_cast<long long>(v)); }
    __device__ static f16 from(float v) { return __float2half_rn(v); }
    __device__ static f16 from(double v) { return __double2half(v); }
    __device__ static f16 from(f16 v) { return v; }
    __device__ static f16 from(bf16 v) { return __float2half_rn(__bfloat162float(v)); }
};
template <> struct Conv<bf16> {
    __device__ static bf16 from(bool v) { return __float2bfloat16_rn(v ? 1.f : 0.f); }
    __device__ static bf16 from(int8_t v) { return __int2bfloat16_rn(v); }
    __device__ static bf16 from(int32_t v) { return __int2bfloat16_rn(v); }
    __device__ static bf16 from(int64_t v) { return __ll2bfloat16_rn(static_cast<long long>(v)); }
    __device__ static bf16 from(float v) { return __float2bfloat16_rn(v); }
    __device__ static bf16 from(double v) { return __double2bfloat16(v); }
    __device__ static bf16 from(bf16 v) { return v; }
    // float16 -> float32 is exact, so one rounding
    __device__ static bf16 from(f16 v) { return __float2bfloat16_rn(__half2float(v)); }
};
template <> struct Conv<bool> {
    template <class F> __device__ static bool from(F v) { return v != F(0); }
    __device__ static bool from(bool v) { return v; }
    __device__ static bool from(f16 v) { return __half2float(v) != 0.f; }
    __device__ static bool from(bf16 v) { return __bfloat162float(v) != 0.f; }
};
// float -> int: truncation; NaN, +-inf and values outside the 32-bit range (int8, int32)
// or the 64-bit range (int64) give that width's minimum; int8 keeps the low 8 bits
template <class I, class W> __device__ inline I float_to_int(double f) {
    const double lim = sizeof(W) == 8 ? 9223372036854775808.0 : 2147483648.0;
    W w = (f >= -lim && f < lim) ? static_cast<W>(f) : (sizeof(W) == 8 ? W(INT64_MIN) : W(INT32_MIN));
    return static_cast<I>(static_cast<typename std::make_unsigned<W>::type>(w));
}
template <class I, class W> struct ConvInt {
    __device__ static I from(bool v) { return v ? 1 : 0; }
    // int -> int keeps the low bits (two's complement), through unsigned to avoid UB
    __device__ static I from(int8_t v) { return static_cast<I>(static_cast<uint64_t>(static_cast<int64_t>(v))); }
    __device__ static I from(int32_t v) { return static_cast<I>(static_cast<uint64_t>(static_cast<int64_t>(v))); }
    __device__ static I from(int64_t v) { return static_cast<I>(static_cast<uint64_t>(v)); }
    __device__ static I from(float v) { return float_to_int<I, W>(static_cast<double>(v)); }
    __device__ static I from(double v) { return float_to_int<I, W>(v); }
    __device__ static I from(f16 v) { return float_to_int<I, W>(__half2float(v)); }
    __device__ static I from(bf16 v) { return float_to_int<I, W>(__bfloat162float(v)); }
};
template <> struct Conv<int8_t> : ConvInt<int8_t, int32_t> {};
template <> struct Conv<int32_t> : ConvInt<int32_t, int32_t> {};
template <> struct Conv<int64_t> : ConvInt<int64_t, int64_t> {};

template <class To, class From> __device__ __forceinline__ To convert(From v) {
    return Conv<To>::from(v);
}

// ---- strided offsets: fast unsigned division by a run-time constant (multiply-high and
// shift, valid for dividends below 2^31), precomputed on the host per dim
struct IntDivider {
    uint32_t divisor = 1, mul = 0, shift = 0;
    IntDivider() = default;
    explicit IntDivider(uint32_t d) : divisor(d) {
        for (shift = 0; shift < 32; ++shift)
            if ((1ull << shift) >= d) break;
        uint64_t one = 1;
        mul = static_cast<uint32_t>(((one << 32) * ((one << shift) - d)) / d + 1);
    }
    __device__ __forceinline__ uint32_t div(uint32_t n) const {
        uint32_t t = __umulhi(n, mul);
        return (t + n) >> shift;
    }
};

// offsets of N operands that share one (broadcast) shape, each with its own strides
template <int N> struct OffsetCalc {
    int ndim = 0;
    IntDivider size[kMaxDims];
    int64_t stride[kMaxDims][N];
    __device__ __forceinline__ void get(uint32_t linear, int64_t (&off)[N]) const {
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] = 0;
        for (int d = ndim - 1; d >= 0; --d) {
            uint32_t q = size[d].div(linear);
            uint32_t i = linear - q * size[d].divisor;
            linear = q;
#pragma unroll
            for (int k = 0; k < N; ++k) off[k] += static_cast<int64_t>(i) * stride[d][k];
        }
    }
};
// the same with 64-bit division, for more than 2^31 elements
template <int N> struct OffsetCalc64 {
    int ndim = 0;
    int64_t size[kMaxDims];
    int64_t stride[kMaxDims][N];
    __device__ __forceinline__ void get(int64_t linear, int64_t (&off)[N]) const {
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] = 0;
        for (int d = ndim - 1; d >= 0; --d) {
            int64_t i = linear % size[d];
            linear /= size[d];
#pragma unroll
            for (int k = 0; k < N; ++k) off[k] += i * stride[d][k];
        }
    }
};

// operands' shape and strides with dims of size 1 dropped and neighbours merged where
// every operand steps through them as one dim (fewer divisions per element)
template <int N> struct Geometry {
    int ndim = 0;
    int64_t size[kMaxDims];
    int64_t stride[kMaxDims][N];
};
template <int N> Geometry<N> coalesce(const TensorArg* const (&ops)[N]) {
    Geometry<N> g;
    const TensorArg& o = *ops[0];
    for (int d = 0; d < o.ndim; ++d) {
        if (o.shape[d] == 1) continue;
        bool merge = g.ndim > 0;
        for (int k = 0; k < N && merge; ++k)
            merge = g.stride[g.ndim - 1][k] == ops[k]->stride[d] * o.shape[d];
        if (merge) {
            g.size[g.ndim - 1] *= o.shape[d];
            for (int k = 0; k < N; ++k) g.stride[g.ndim - 1][k] = ops[k]->stride[d];
        } else {
            g.size[g.ndim] = o.shape[d];
            for (int k = 0; k < N; ++k) g.stride[g.ndim][k] = ops[k]->stride[d];
            ++g.ndim;
        }
    }
    return g;
}
template <int N> bool all_contiguous(const Geometry<N>& g) {
    if (g.ndim > 1) return false;
    for (int k = 0; k < N; ++k)
        if (g.ndim == 1 && g.stride[0][k] != 1) return false;
    return true;
}
template <int N> OffsetCalc<N> offset_calc(const Geometry<N>& g) {
    OffsetCalc<N> c;
    c.ndim = g.ndim;
    for (int d = 0; d < g.ndim; ++d) {
        c.size[d] = IntDivider(static_cast<uint32_t>(g.size[d]));
        for (int k = 0; k < N; ++k) c.stride[d][k] = g.stride[d][k];
    }
    return c;
}
template <int N> OffsetCalc64<N> offset_calc64(const Geometry<N>& g) {
    OffsetCalc64<N> c;
    c.ndim = g.ndim;
    for (int d = 0; d < g.ndim; ++d) {
        c.size[d] = g.size[d];
        for (int k = 0; k < N; ++k) c.stride[d][k] = g.stride[d][k];
    }
    return c;
}

// ---- launching: a grid-stride loop over n items; enough blocks to fill the GPU a few
// times over, not one block per item (the loop covers the rest)
constexpr int kThreads = 256;
int grid_for(int64_t n, int threads = kThreads);
inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

template <class F> __global__ void for_each_kernel(int64_t n, F f) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        f(i);
}
template <class F> void for_each(const char* name, int64_t n, void* s, F f) {
    if (n <= 0) return;
    for_each_kernel<<<grid_for(n), kThreads, 0, as_stream(s)>>>(n, f);
    check_launch(name);
}

// dtype dispatch: calls f(TypeTag<T>{}) for the type of code `dt`
template <class T> struct Tag { using type = T; };
template <class F> void dispatch_all(int dt, F&& f) {
    switch (dt) {
        case Bool: f(Tag<bool>{}); break;
        case I8: f(Tag<int8_t>{}); break;
        case I32: f(Tag<int32_t>{}); break;
        case I64: f(Tag<int64_t>{}); break;
        case F16: f(Tag<f16>{}); break;
        case BF16: f(Tag<bf16>{}); break;
        case F32: f(Tag<float>{}); break;
        case F64: f(Tag<double>{}); break;
        default: throw Unsupported("unknown dtype code " + std::to_string(dt));
    }
}
template <class F> void dispatch_float(int dt, const char* op, F&& f) {
    switch (dt) {
        case F16: f(Tag<f16>{}); break;
        case BF16: f(Tag<bf16>{}); break;
        case F32: f(Tag<float>{}); break;
        case F64: f(Tag<double>{}); break;
        default:
            throw Unsupported(std::string(op) + ": not implemented on cuda for dtype " + dtype_name(dt));
    }
}

}  // namespace tfc
