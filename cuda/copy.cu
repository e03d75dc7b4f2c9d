// Copies and fills: copy with conversion between any two dtypes (tinyfw's cast rules,
// common.cuh), fill, where, and the triangle masks.  The copy is what contiguous(),
// cast, copy_, cat, pad, flip and tile run (tinyfw/backend/cuda.py makes them views).
#include "loops.cuh"

namespace tfc {
namespace {

template <class To> struct Cast {
    template <class From> __device__ __forceinline__ To operator()(From v) const { return convert<To>(v); }
};

// copies of 2^31 elements or more through a non-contiguous view: 64-bit offsets
template <class To, class From>
__global__ void copy64_kernel(int64_t n, OffsetCalc64<2> calc, To* out, const From* in) {
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
        int64_t off[2];
        calc.get(i, off);
        out[off[0]] = convert<To>(in[off[1]]);
    }
}

template <class To, class From> void copy_typed(const TensorArg& out, const TensorArg& in, void* s) {
    const int64_t n = out.numel();
    const TensorArg* const ops[2] = {&out, &in};
    Geometry<2> g = coalesce<2>(ops);
    if (n >= (int64_t(1) << 31) && !all_contiguous<2>(g)) {
        copy64_kernel<To, From><<<grid_for(n), kThreads, 0, as_stream(s)>>>(
            n, offset_calc64<2>(g), static_cast<To*>(out.data), static_cast<const From*>(in.data));
        check_launch("copy");
        return;
    }
    elementwise<To, From>("copy", s, Cast<To>{}, out, in);
}

template <class T> struct Fill {
    T v;
    __device__ __forceinline__ T operator()(T) const { return v; }
};

template <class T> struct Where {
    __device__ __forceinline__ T operator()(bool c, T a, T b) const { return c ? a : b; }
};

template <class T> struct Tri {
    T* out;
    const T* in;
    int64_t rows, cols, k;
    bool upper;
    __device__ void operator()(int64_t lin) const {
        int64_t j = lin % cols, i = (lin / cols) % rows;
        bool keep = upper ? (j - i >= k) : (j - i <= k);
        out[lin] = keep ? in[lin] : convert<T>(0);
    }
};

}  // namespace

void launch_copy(const TensorArg& out, const TensorArg& in, void* s) {
    dispatch_all(out.dtype, [&](auto to) {
        dispatch_all(in.dtype, [&](auto from) {
            copy_typed<typename decltype(to)::type, typename decltype(from)::type>(out, in, s);
        });
    });
}

void launch_fill(const TensorArg& out, double value, int64_t ivalue, bool is_int, void* s) {
    dispatch_all(out.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        // the caller passes a value out's dtype holds exactly (converted by the cast rules
        // on the host, tinyfw/backend/cuda.py), so these conversions do not round
        T v;
        if constexpr (std::is_same<T, f16>::value) v = __double2half(is_int ? static_cast<double>(ivalue) : value);
        else if constexpr (std::is_same<T, bf16>::value) v = __double2bfloat16(is_int ? static_cast<double>(ivalue) : value);
        else if constexpr (std::is_same<T, bool>::value) v = is_int ? ivalue != 0 : value != 0.0;
        else if constexpr (std::is_integral<T>::value)
            v = is_int ? static_cast<T>(static_cast<unsigned long long>(ivalue)) : static_cast<T>(value);
        else v = is_int ? static_cast<T>(ivalue) : static_cast<T>(value);
        elementwise<T, T>("fill", s, Fill<T>{v}, out, out);
    });
}

void launch_where(const TensorArg& out, const TensorArg& cond, const TensorArg& a, const TensorArg& b, void* s) {
    if (cond.dtype != Bool) throw Unsupported("where: the condition must be bool");
    if (a.dtype != out.dtype || b.dtype != out.dtype) throw Unsupported("where: a and b must have out's dtype");
    dispatch_all(out.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        elementwise<T, bool, T, T>("where", s, Where<T>{}, out, cond, a, b);
    });
}

void launch_tri(const TensorArg& out, const TensorArg& in, int64_t k, bool upper, void* s) {
    if (out.ndim < 2) throw Unsupported("tril/triu: need at least 2 dims");
    dispatch_all(out.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        Tri<T> f{static_cast<T*>(out.data), static_cast<const T*>(in.data), out.shape[out.ndim - 2],
                 out.shape[out.ndim - 1], k, upper};
        for_each(upper ? "triu" : "tril", out.numel(), s, f);
    });
}

}  // namespace tfc
