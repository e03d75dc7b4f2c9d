// Kernels along one dim: cumsum, sort, gather and scatter(_add), and the index range
// check they need.
//
// - cumsum: one thread per row, sequential (exact order: the same sums as ref's cumsum).
// - sort: one block per row, a bitonic network in shared memory on (key, index) pairs;
//   ties are ordered by index, so the result is stable and deterministic; rows up to
//   kMaxSort elements.
// - gather / scatter: the caller passes every operand with index's shape, x / out with
//   stride 0 along `dim` and that dim's real stride separately; scatter_add uses atomics
//   (the summation order of duplicates is not fixed, as in PyTorch's CUDA scatter_add).
#include <climits>

#include "common.cuh"

namespace tfc {
namespace {

constexpr int kMaxSort = 2048;

template <class T> using sum_acc = std::conditional_t<std::is_integral<T>::value, int64_t, acc_t<T>>;
template <class T> using sum_out = std::conditional_t<std::is_integral<T>::value, int64_t, T>;

// rows of the last dim: the offset of row r's first element
struct Rows {
    OffsetCalc<1> calc;
    __device__ __forceinline__ int64_t at(int64_t r) const {
        int64_t off[1];
        calc.get(static_cast<uint32_t>(r), off);
        return off[0];
    }
};
Rows rows_of(const TensorArg& t, int64_t* count) {
    TensorArg lead;
    lead.ndim = t.ndim - 1;
    for (int d = 0; d < lead.ndim; ++d) {
        lead.shape[d] = t.shape[d];
        lead.stride[d] = t.stride[d];
    }
    *count = lead.numel();
    if (*count >= (int64_t(1) << 31)) throw Unsupported("2^31 rows or more");
    const TensorArg* const ops[1] = {&lead};
    Rows r;
    r.calc = offset_calc<1>(coalesce<1>(ops));
    return r;
}

template <class T> __global__ void cumsum_kernel(int64_t rows, int64_t n, Rows in_rows, int64_t in_step,
                                                 const T* in, sum_out<T>* out) {
    for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
         r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const T* src = in + in_rows.at(r);
        sum_out<T>* dst = out + r * n;
        sum_acc<T> acc = sum_acc<T>(0);
        for (int64_t i = 0; i < n; ++i) {
            if constexpr (std::is_integral<sum_acc<T>>::value)
                acc = static_cast<int64_t>(static_cast<unsigned long long>(acc) + static_cast<unsigned long long>(convert<int64_t>(src[i * in_step])));
            else
                acc = acc + convert<sum_acc<T>>(src[i * in_step]);
            dst[i] = convert<sum_out<T>>(acc);
        }
    }
}

template <class K> __device__ __forceinline__ bool is_nan(K k) {
    if constexpr (std::is_floating_point<K>::value) return k != k; else return false;
}
// does (a, ia) come before (b, ib)?  NaN last in both directions, then the lower index
template <class K> __device__ __forceinline__ bool before(K a, int ia, K b, int ib, bool desc) {
    bool na = is_nan(a), nb = is_nan(b);
    if (na != nb) return nb;
    if (!na && a != b) return desc ? a > b : a < b;
    return ia < ib;
}

template <class T> __global__ void __launch_bounds__(512) sort_kernel(int64_t rows, int n, int n2, Rows in_rows, int64_t in_step,
                                               const T* in, T* values, int64_t* indices, bool desc) {
    using K = std::conditional_t<std::is_integral<T>::value, int64_t, double>;
    extern __shared__ unsigned char smem[];
    K* key = reinterpret_cast<K*>(smem);
    int* idx = reinterpret_cast<int*>(key + n2);
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* src = in + in_rows.at(r);
        for (int i = threadIdx.x; i < n2; i += blockDim.x) {
            key[i] = i < n ? convert<K>(src[i * in_step]) : K(0);
            idx[i] = i < n ? i : INT_MAX;  // padding sorts after every element (by index)
        }
        __syncthreads();
        for (int k = 2; k <= n2; k <<= 1) {
            for (int j = k >> 1; j > 0; j >>= 1) {
                for (int i = threadIdx.x; i < n2; i += blockDim.x) {
                    int p = i ^ j;
                    if (p > i) {
                        bool pad_i = idx[i] == INT_MAX, pad_p = idx[p] == INT_MAX;
                        // p before i: padding always last
                        bool p_first = pad_i != pad_p ? pad_i : (!pad_i && before(key[p], idx[p], key[i], idx[i], desc));
                        bool ascending = (i & k) == 0;
                        if (ascending == p_first) {
                            K tk = key[i]; key[i] = key[p]; key[p] = tk;
                            int ti = idx[i]; idx[i] = idx[p]; idx[p] = ti;
                        }
                    }
                }
                __syncthreads();
            }
        }
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            values[r * n + i] = src[static_cast<int64_t>(idx[i]) * in_step];
            indices[r * n + i] = idx[i];
        }
        __syncthreads();
    }
}

// ---- gather / scatter
template <class T>
__global__ void gather_kernel(int64_t n, OffsetCalc<3> calc, T* out, const T* x, const int64_t* index,
                              int64_t dim_size, int64_t dim_stride) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        int64_t off[3];
        calc.get(static_cast<uint32_t>(i), off);
        int64_t j = index[off[2]];
        if (j < 0) j += dim_size;
        out[off[0]] = x[off[1] + j * dim_stride];
    }
}

// atomic a += v for every dtype: native where CUDA has it, else a compare-and-swap loop
// on the aligned 32-bit word that holds the element
template <class T> __device__ void atomic_add(T* a, T v) {
    if constexpr (std::is_same<T, float>::value || std::is_same<T, double>::value ||
                  std::is_same<T, int32_t>::value || std::is_same<T, f16>::value ||
                  std::is_same<T, bf16>::value) {
        atomicAdd(a, v);
    } else if constexpr (std::is_same<T, int64_t>::value) {
        atomicAdd(reinterpret_cast<unsigned long long*>(a), static_cast<unsigned long long>(v));
    } else {  // int8, bool (numpy: bool + bool is or)
        uintptr_t addr = reinterpret_cast<uintptr_t>(a);
        unsigned int* word = reinterpret_cast<unsigned int*>(addr & ~uintptr_t(3));
        const unsigned shift = (addr & 3) * 8;
        unsigned old = *word, assumed;
        do {
            assumed = old;
            unsigned char cur = (assumed >> shift) & 0xff;
            unsigned char next;
            if constexpr (std::is_same<T, bool>::value) next = (cur != 0 || v) ? 1 : 0;
            else next = static_cast<unsigned char>(cur + static_cast<unsigned char>(v));
            unsigned repl = (assumed & ~(0xffu << shift)) | (static_cast<unsigned>(next) << shift);
            old = atomicCAS(word, assumed, repl);
        } while (old != assumed);
    }
}

template <class T>
__global__ void scatter_kernel(int64_t n, OffsetCalc<3> calc, T* out, const int64_t* index, const T* src,
                               int64_t dim_size, int64_t dim_stride, bool add) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        int64_t off[3];
        calc.get(static_cast<uint32_t>(i), off);
        int64_t j = index[off[1]];
        if (j < 0) j += dim_size;
        T* dst = out + off[0] + j * dim_stride;
        if (add) atomic_add(dst, src[off[2]]);
        else *dst = src[off[2]];
    }
}

__global__ void min_max_kernel(int64_t n, OffsetCalc<1> calc, const int64_t* index, unsigned long long* result) {
    // result[0] = min, result[1] = max, as order-preserving unsigned keys (sign bit flipped)
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        int64_t off[1];
        calc.get(static_cast<uint32_t>(i), off);
        unsigned long long key = static_cast<unsigned long long>(index[off[0]]) ^ (1ull << 63);
        atomicMin(&result[0], key);
        atomicMax(&result[1], key);
    }
}

template <int N> OffsetCalc<N> calc_for(const TensorArg* const (&ops)[N], const char* name) {
    Geometry<N> g = coalesce<N>(ops);
    if (ops[0]->numel() >= (int64_t(1) << 31)) throw Unsupported(std::string(name) + ": 2^31 elements or more");
    if (g.ndim == 0) {
        g.ndim = 1;
        g.size[0] = 1;
        for (int k = 0; k < N; ++k) g.stride[0][k] = 0;
    }
    return offset_calc<N>(g);
}

}  // namespace

void launch_cumsum(const TensorArg& out, const TensorArg& in, void* s) {
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        int64_t rows = 0;
        Rows r = rows_of(in, &rows);
        const int64_t n = in.ndim ? in.shape[in.ndim - 1] : 1;
        if (rows == 0 || n == 0) return;
        cumsum_kernel<T><<<grid_for(rows), kThreads, 0, as_stream(s)>>>(
            rows, n, r, in.ndim ? in.stride[in.ndim - 1] : 0, static_cast<const T*>(in.data),
            static_cast<sum_out<T>*>(out.data));
        check_launch("cumsum");
    });
}

void launch_sort(const TensorArg& values, const TensorArg& indices, const TensorArg& in, bool desc, void* s) {
    const int64_t n = in.ndim ? in.shape[in.ndim - 1] : 1;
    if (n > kMaxSort)
        throw Unsupported("sort: rows of more than " + std::to_string(kMaxSort) +
                          " elements are not implemented on cuda yet (got " + std::to_string(n) + ")");
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        using K = std::conditional_t<std::is_integral<T>::value, int64_t, double>;
        int64_t rows = 0;
        Rows r = rows_of(in, &rows);
        if (rows == 0 || n == 0) return;
        int n2 = 1;
        while (n2 < n) n2 <<= 1;
        size_t shared = static_cast<size_t>(n2) * (sizeof(K) + sizeof(int));
        int threads = n2 < 512 ? (n2 < 32 ? 32 : n2) : 512;
        int blocks = static_cast<int>(rows < 65535 ? rows : 65535);
        sort_kernel<T><<<blocks, threads, shared, as_stream(s)>>>(
            rows, static_cast<int>(n), n2, r, in.ndim ? in.stride[in.ndim - 1] : 0, static_cast<const T*>(in.data),
            static_cast<T*>(values.data), static_cast<int64_t*>(indices.data), desc);
        check_launch("sort");
    });
}

void launch_gather(const TensorArg& out, const TensorArg& x, const TensorArg& index, int, int64_t dim_size,
                   int64_t dim_stride, void* s) {
    if (index.dtype != I64) throw Unsupported("gather: the index must be int64");
    const int64_t n = out.numel();
    if (n == 0) return;
    const TensorArg* const ops[3] = {&out, &x, &index};
    OffsetCalc<3> calc = calc_for<3>(ops, "gather");
    dispatch_all(out.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        gather_kernel<T><<<grid_for(n), kThreads, 0, as_stream(s)>>>(n, calc, static_cast<T*>(out.data),
            static_cast<const T*>(x.data), static_cast<const int64_t*>(index.data), dim_size, dim_stride);
        check_launch("gather");
    });
}

void launch_scatter(const TensorArg& out, const TensorArg& index, const TensorArg& src, int, int64_t dim_size,
                    int64_t dim_stride, bool add, void* s) {
    if (index.dtype != I64) throw Unsupported("scatter: the index must be int64");
    if (src.dtype != out.dtype) throw Unsupported("scatter: src must have out's dtype");
    const int64_t n = index.numel();
    if (n == 0) return;
    const TensorArg* const ops[3] = {&out, &index, &src};
    OffsetCalc<3> calc = calc_for<3>(ops, "scatter");
    dispatch_all(out.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        scatter_kernel<T><<<grid_for(n), kThreads, 0, as_stream(s)>>>(n, calc, static_cast<T*>(out.data),
            static_cast<const int64_t*>(index.data), static_cast<const T*>(src.data), dim_size, dim_stride, add);
        check_launch(add ? "scatter_add" : "scatter");
    });
}

void index_min_max(const TensorArg& index, int64_t* host, void* s) {
    if (index.dtype != I64) throw Unsupported("index: the index must be int64");
    const int64_t n = index.numel();
    host[0] = host[1] = 0;
    if (n == 0) return;
    const TensorArg* const ops[1] = {&index};
    OffsetCalc<1> calc = calc_for<1>(ops, "index range check");
    unsigned long long init[2] = {~0ull, 0ull};
    unsigned long long* dev = nullptr;
    if (cudaMallocAsync(reinterpret_cast<void**>(&dev), sizeof(init), as_stream(s)) != cudaSuccess) {
        cudaGetLastError();
        throw CudaError("index range check: cudaMallocAsync failed");
    }
    memcpy_h2d(dev, init, sizeof(init), s, true);
    min_max_kernel<<<grid_for(n), kThreads, 0, as_stream(s)>>>(n, calc, static_cast<const int64_t*>(index.data), dev);
    check_launch("index range check");
    unsigned long long res[2];
    memcpy_d2h(res, dev, sizeof(res), s);
    cudaFreeAsync(dev, as_stream(s));
    host[0] = static_cast<int64_t>(res[0] ^ (1ull << 63));
    host[1] = static_cast<int64_t>(res[1] ^ (1ull << 63));
}

}  // namespace tfc
