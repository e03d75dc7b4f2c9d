// The elementwise loop every pointwise kernel runs: out[i] = f(in0[i], in1[i], ...) over
// operands of one broadcast shape with their own strides and dtypes.
//
// Two kernels per functor: a contiguous one that moves V elements per thread with
// 16-byte vector loads and stores (taken when every operand is contiguous and aligned
// for them), and a strided one that computes each operand's offset from the linear index
// with precomputed fast divisions (32-bit: the caller makes operands of 2^31 elements or
// more contiguous first).  Both are grid-stride loops.
#pragma once
#include <cuda/std/tuple>

#include <utility>

#include "common.cuh"

namespace tfc {

template <class T, int V> struct alignas(sizeof(T) * V) Vec {
    T v[V];
};

template <int N> struct Ptrs {
    char* p[N];
};

template <class T> constexpr int max_size() { return sizeof(T); }
template <class T, class U, class... R> constexpr int max_size() {
    return sizeof(T) > max_size<U, R...>() ? sizeof(T) : max_size<U, R...>();
}

template <int V, class Out, class... In, class F, size_t... I>
__device__ __forceinline__ void vec_step(const F& f, const Ptrs<sizeof...(In) + 1>& p, int64_t c,
                                         std::index_sequence<I...>) {
    cuda::std::tuple<Vec<In, V>...> ins{reinterpret_cast<const Vec<In, V>*>(p.p[I + 1])[c]...};
    Vec<Out, V> o;
#pragma unroll
    for (int r = 0; r < V; ++r) o.v[r] = f(cuda::std::get<I>(ins).v[r]...);
    reinterpret_cast<Vec<Out, V>*>(p.p[0])[c] = o;
}

template <class Out, class... In, class F, size_t... I>
__device__ __forceinline__ void scalar_step(const F& f, const Ptrs<sizeof...(In) + 1>& p,
                                            const int64_t (&off)[sizeof...(In) + 1],
                                            std::index_sequence<I...>) {
    reinterpret_cast<Out*>(p.p[0])[off[0]] = f(reinterpret_cast<const In*>(p.p[I + 1])[off[I + 1]]...);
}

template <int V, class F, class Out, class... In>
__global__ void contiguous_kernel(int64_t n, Ptrs<sizeof...(In) + 1> p, F f) {
    constexpr int N = sizeof...(In) + 1;
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    const int64_t tid = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    const int64_t nv = n / V;
    for (int64_t c = tid; c < nv; c += step)
        vec_step<V, Out, In...>(f, p, c, std::index_sequence_for<In...>{});
    for (int64_t i = nv * V + tid; i < n; i += step) {  // the tail, fewer than V elements
        int64_t off[N];
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] = i;
        scalar_step<Out, In...>(f, p, off, std::index_sequence_for<In...>{});
    }
}

template <class F, class Out, class... In>
__global__ void strided_kernel(int64_t n, OffsetCalc<sizeof...(In) + 1> calc,
                               Ptrs<sizeof...(In) + 1> p, F f) {
    constexpr int N = sizeof...(In) + 1;
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
        int64_t off[N];
        calc.get(static_cast<uint32_t>(i), off);
        scalar_step<Out, In...>(f, p, off, std::index_sequence_for<In...>{});
    }
}

inline bool aligned(const void* p, int bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <class> using ArgOf = TensorArg;  // one TensorArg per input type

// run f over out and the inputs (all of out's shape; broadcast inputs have stride 0)
template <class Out, class... In, class F>
void elementwise(const char* name, void* s, F f, const TensorArg& out, const ArgOf<In>&... in) {
    constexpr int N = sizeof...(In) + 1;
    const int64_t n = out.numel();
    if (n == 0) return;
    const TensorArg* const ops[N] = {&out, &in...};
    Geometry<N> g = coalesce<N>(ops);
    Ptrs<N> p;
    for (int k = 0; k < N; ++k) p.p[k] = static_cast<char*>(ops[k]->data);
    constexpr int V0 = 16 / max_size<Out, In...>();
    constexpr int V = V0 < 1 ? 1 : V0 > 8 ? 8 : V0;
    if (all_contiguous<N>(g)) {
        constexpr int sizes[N] = {static_cast<int>(sizeof(Out)), static_cast<int>(sizeof(In))...};
        bool ok = true;
        for (int k = 0; k < N; ++k) ok = ok && aligned(p.p[k], sizes[k] * V);
        if (ok) {
            contiguous_kernel<V, F, Out, In...><<<grid_for((n + V - 1) / V), kThreads, 0, as_stream(s)>>>(n, p, f);
            check_launch(name);
            return;
        }
        if (g.ndim == 0) {  // a single element
            g.ndim = 1;
            g.size[0] = 1;
            for (int k = 0; k < N; ++k) g.stride[0][k] = 0;
        }
    }
    if (n >= (int64_t(1) << 31))
        throw Unsupported(std::string(name) + ": a non-contiguous operand with 2^31 elements or "
                          "more (the caller makes such operands contiguous first)");
    strided_kernel<F, Out, In...><<<grid_for(n), kThreads, 0, as_stream(s)>>>(n, offset_calc<N>(g), p, f);
    check_launch(name);
}

// f computed in C (float for the half types) on converted inputs, converted to Out
template <class Out, class C, class F> struct Computed {
    F f;
    template <class... A> __device__ __forceinline__ Out operator()(A... a) const {
        return convert<Out>(f(convert<C>(a)...));
    }
};

}  // namespace tfc
