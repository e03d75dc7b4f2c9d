// Reductions over any dims: sum, prod, amax, amin, any, all, and argmax/argmin along one.
//
// The caller (tinyfw/backend/cuda.py) passes the input viewed as [kept dims..., reduced
// dims...] and a row-major output of the kept dims.  Two kernels:
// - inner: the reduced elements are contiguous and many (a row sum): one block per
//   output; each thread strides through the row with four independent partial results,
//   then warp shuffles and a tree over the warps through shared memory;
// - outer: otherwise (a column sum, short rows): a 32 x 16 block, x over 32 adjacent
//   outputs (coalesced loads), y splitting the reduction 16 ways, then a tree over y.
// The combination order depends only on the shapes and the launch configuration, so a
// result is the same on every run (deterministic, no atomics).
#include <limits>

#include "common.cuh"
#include "ops.h"

namespace tfc {
namespace {

template <class A> __device__ __forceinline__ A shfl_down(A v, int off) {
    if constexpr (std::is_same<A, bool>::value) return __shfl_down_sync(0xffffffffu, static_cast<int>(v), off) != 0;
    else return __shfl_down_sync(0xffffffffu, v, off);
}

template <class A> __device__ __forceinline__ bool nan_of(A v) {
    if constexpr (std::is_floating_point<A>::value) return v != v; else return false;
}

template <class T, class A, class O> struct Sum {
    using acc = A;
    using in_t = T;
    using out_t = O;
    __device__ A identity() const { return A(0); }
    __device__ A map(T v, int64_t) const { return convert<A>(v); }
    __device__ A combine(A a, A b) const {
        if constexpr (std::is_integral<A>::value) return static_cast<A>(static_cast<unsigned long long>(a) + static_cast<unsigned long long>(b));
        else return a + b;
    }
    __device__ O finish(A a) const { return convert<O>(a); }
    __device__ A shfl(A a, int off) const { return shfl_down(a, off); }
};
template <class T, class A, class O> struct Prod : Sum<T, A, O> {
    __device__ A identity() const { return A(1); }
    __device__ A combine(A a, A b) const {
        if constexpr (std::is_integral<A>::value) return static_cast<A>(static_cast<unsigned long long>(a) * static_cast<unsigned long long>(b));
        else return a * b;
    }
};
// NaN propagates: any NaN among the elements is the result
template <class T, class A, bool Max> struct MinMax : Sum<T, A, T> {
    __device__ A identity() const {
        if constexpr (std::is_floating_point<A>::value) return Max ? A(-INFINITY) : A(INFINITY);
        else return Max ? std::numeric_limits<A>::lowest() : std::numeric_limits<A>::max();
    }
    __device__ A combine(A a, A b) const {
        if (nan_of(a)) return a;
        if (nan_of(b)) return b;
        return Max ? (a > b ? a : b) : (a < b ? a : b);
    }
};
template <class T, bool Any> struct AnyAll {
    using acc = bool;
    using in_t = T;
    using out_t = bool;
    __device__ bool identity() const { return !Any; }
    __device__ bool map(T v, int64_t) const { return convert<bool>(v); }
    __device__ bool combine(bool a, bool b) const { return Any ? (a || b) : (a && b); }
    __device__ bool finish(bool a) const { return a; }
    __device__ bool shfl(bool a, int off) const { return shfl_down(a, off); }
};
// argmax/argmin: (value, index) pairs; NaN counts as the extreme, ties go to the lower
// index, so the combination is commutative and the result the first extreme
template <class C> struct VI {
    C v;
    int64_t i;
};
template <class T, bool Max> struct ArgOp {
    using C = std::conditional_t<std::is_integral<T>::value, int64_t, acc_t<T>>;
    using acc = VI<C>;
    using in_t = T;
    using out_t = int64_t;
    __device__ acc identity() const { return {C(0), -1}; }
    __device__ acc map(T v, int64_t r) const { return {convert<C>(v), r}; }
    __device__ acc combine(acc a, acc b) const {
        if (a.i < 0) return b;
        if (b.i < 0) return a;
        bool na = nan_of(a.v), nb = nan_of(b.v);
        if (na || nb) return (na && nb) ? (a.i < b.i ? a : b) : (na ? a : b);
        if (a.v == b.v) return a.i < b.i ? a : b;
        return (Max ? a.v > b.v : a.v < b.v) ? a : b;
    }
    __device__ int64_t finish(acc a) const { return a.i < 0 ? 0 : a.i; }
    __device__ acc shfl(acc a, int off) const { return {shfl_down(a.v, off), shfl_down(a.i, off)}; }
};

// offsets over a group of dims: one dim without division, several with fast division
struct Dims {
    OffsetCalc<1> calc;
    int64_t stride0 = 0;
    bool single = true;
    __device__ __forceinline__ int64_t at(int64_t i) const {
        if (single) return i * stride0;
        int64_t off[1];
        calc.get(static_cast<uint32_t>(i), off);
        return off[0];
    }
};

Dims make_dims(const TensorArg& in, int from, int to, int64_t* count) {
    TensorArg part;
    part.ndim = to - from;
    for (int d = from; d < to; ++d) {
        part.shape[d - from] = in.shape[d];
        part.stride[d - from] = in.stride[d];
    }
    *count = part.numel();
    const TensorArg* const ops[1] = {&part};
    Geometry<1> g = coalesce<1>(ops);
    Dims dims;
    if (*count >= (int64_t(1) << 31)) throw Unsupported("reduction: a group of dims with 2^31 elements or more");
    if (g.ndim <= 1) {
        dims.single = true;
        dims.stride0 = g.ndim ? g.stride[0][0] : 0;
    } else {
        dims.single = false;
        dims.calc = offset_calc<1>(g);
    }
    return dims;
}

template <class R> __device__ typename R::acc block_reduce(const R& red, typename R::acc v, typename R::acc* shared) {
    for (int off = 16; off > 0; off >>= 1) v = red.combine(v, red.shfl(v, off));
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? shared[lane] : red.identity();
        for (int off = 16; off > 0; off >>= 1) v = red.combine(v, red.shfl(v, off));
    }
    __syncthreads();  // shared is reused by the next output
    return v;
}

template <class T, int V> struct alignas(sizeof(T) * V) VecOf {
    T v[V];
};

// VEC: every row starts 16-byte aligned, so each thread reads 16 bytes per load
template <class R, bool VEC>
__global__ void __launch_bounds__(512) reduce_inner(R red, int64_t K, int64_t n, Dims kept, const typename R::in_t* in,
                             typename R::out_t* out) {
    using A = typename R::acc;
    using T = typename R::in_t;
    constexpr int V = 16 / sizeof(T) > 0 ? 16 / sizeof(T) : 1;
    __shared__ A shared[32];
    for (int64_t o = blockIdx.x; o < K; o += gridDim.x) {
        const T* row = in + kept.at(o);
        A p[4] = {red.identity(), red.identity(), red.identity(), red.identity()};
        const int64_t step = blockDim.x;
        int64_t r = threadIdx.x;
        if constexpr (VEC) {
            const int64_t chunks = n / V;
            const auto* vrow = reinterpret_cast<const VecOf<T, V>*>(row);
            for (int64_t c = threadIdx.x; c < chunks; c += step) {
                VecOf<T, V> x = vrow[c];
#pragma unroll
                for (int k = 0; k < V; ++k) p[k % 4] = red.combine(p[k % 4], red.map(x.v[k], c * V + k));
            }
            r = chunks * V + threadIdx.x;  // the tail, fewer than V elements
        } else {
            for (; r + 3 * step < n; r += 4 * step) {
#pragma unroll
                for (int u = 0; u < 4; ++u) p[u] = red.combine(p[u], red.map(row[r + u * step], r + u * step));
            }
        }
        for (; r < n; r += step) p[0] = red.combine(p[0], red.map(row[r], r));
        A v = red.combine(red.combine(p[0], p[1]), red.combine(p[2], p[3]));
        v = block_reduce(red, v, shared);
        if (threadIdx.x == 0) out[o] = red.finish(v);
    }
}

constexpr int kOuterX = 32, kOuterY = 32;

// columns: x over 32 adjacent outputs (coalesced), y splitting the reduction 32 ways, each
// thread with four partial results in flight (fixed combination order: deterministic)
template <class R>
__global__ void __launch_bounds__(kOuterX * kOuterY) reduce_outer(R red, int64_t K, int64_t n, Dims kept, Dims reduced,
                             const typename R::in_t* in, typename R::out_t* out) {
    using A = typename R::acc;
    __shared__ A shared[kOuterY][kOuterX + 1];
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * kOuterX; base < K; base += static_cast<int64_t>(gridDim.x) * kOuterX) {
        const int64_t o = base + threadIdx.x;
        A v = red.identity();
        if (o < K) {
            const typename R::in_t* col = in + kept.at(o);
            A p[4] = {red.identity(), red.identity(), red.identity(), red.identity()};
            int64_t r = threadIdx.y;
            for (; r + 3 * kOuterY < n; r += 4 * kOuterY) {
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    const int64_t q = r + u * kOuterY;
                    p[u] = red.combine(p[u], red.map(col[reduced.at(q)], q));
                }
            }
            for (; r < n; r += kOuterY) p[0] = red.combine(p[0], red.map(col[reduced.at(r)], r));
            v = red.combine(red.combine(p[0], p[1]), red.combine(p[2], p[3]));
        }
        shared[threadIdx.y][threadIdx.x] = v;
        __syncthreads();
        for (int h = kOuterY / 2; h > 0; h >>= 1) {
            if (threadIdx.y < h)
                shared[threadIdx.y][threadIdx.x] = red.combine(shared[threadIdx.y][threadIdx.x], shared[threadIdx.y + h][threadIdx.x]);
            __syncthreads();
        }
        if (threadIdx.y == 0 && o < K) out[o] = red.finish(shared[0][threadIdx.x]);
        __syncthreads();
    }
}

template <class R> void run(const char* name, R red, const TensorArg& out, const TensorArg& in, int n_kept, void* s) {
    int64_t K = 0, n = 0;
    Dims kept = make_dims(in, 0, n_kept, &K);
    Dims reduced = make_dims(in, n_kept, in.ndim, &n);
    if (K == 0) return;
    auto* src = static_cast<const typename R::in_t*>(in.data);
    auto* dst = static_cast<typename R::out_t*>(out.data);
    const int sms = grid_for(int64_t(1) << 40, 1024) / 8;  // the SM count (grid_for's cap is 4 waves of 2 blocks)
    if (reduced.single && reduced.stride0 == 1 && n >= 256) {
        int threads = n >= 4096 ? 512 : 256;
        int64_t blocks = K < int64_t(sms) * 32 ? K : int64_t(sms) * 32;
        // 16-byte loads when every row starts 16-byte aligned (the base, and the step
        // between rows when there are several)
        const int64_t row_bytes = (kept.single ? kept.stride0 : 1) * static_cast<int64_t>(sizeof(typename R::in_t));
        const bool vec = reinterpret_cast<uintptr_t>(src) % 16 == 0 && kept.single && (K == 1 || row_bytes % 16 == 0);
        if (vec)
            reduce_inner<R, true><<<static_cast<int>(blocks), threads, 0, as_stream(s)>>>(red, K, n, kept, src, dst);
        else
            reduce_inner<R, false><<<static_cast<int>(blocks), threads, 0, as_stream(s)>>>(red, K, n, kept, src, dst);
    } else {
        int64_t blocks = (K + kOuterX - 1) / kOuterX;
        if (blocks > int64_t(sms) * 16) blocks = int64_t(sms) * 16;
        reduce_outer<R><<<static_cast<int>(blocks), dim3(kOuterX, kOuterY), 0, as_stream(s)>>>(red, K, n, kept, reduced, src, dst);
    }
    check_launch(name);
}

template <class T> using sum_acc = std::conditional_t<std::is_integral<T>::value, int64_t, acc_t<T>>;
template <class T> using sum_out = std::conditional_t<std::is_integral<T>::value, int64_t, T>;

}  // namespace

void launch_reduce(int op, const TensorArg& out, const TensorArg& in, int n_kept, void* s) {
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        using C = std::conditional_t<std::is_integral<T>::value, T, acc_t<T>>;
        switch (op) {
            case op_sum: return run("sum", Sum<T, sum_acc<T>, sum_out<T>>{}, out, in, n_kept, s);
            case op_prod: return run("prod", Prod<T, sum_acc<T>, sum_out<T>>{}, out, in, n_kept, s);
            case op_amax: return run("amax", MinMax<T, C, true>{}, out, in, n_kept, s);
            case op_amin: return run("amin", MinMax<T, C, false>{}, out, in, n_kept, s);
            case op_any: return run("any", AnyAll<T, true>{}, out, in, n_kept, s);
            case op_all: return run("all", AnyAll<T, false>{}, out, in, n_kept, s);
        }
        throw Unsupported("reduce: unknown op " + std::to_string(op));
    });
}

void launch_arg_reduce(bool is_max, const TensorArg& out, const TensorArg& in, void* s) {
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if (is_max) run("argmax", ArgOp<T, true>{}, out, in, in.ndim - 1, s);
        else run("argmin", ArgOp<T, false>{}, out, in, in.ndim - 1, s);
    });
}

}  // namespace tfc
