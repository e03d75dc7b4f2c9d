// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11).  Each group of four
// elements is one counter value, so element i's draw depends only on (seed, offset, i):
// any launch configuration gives the same numbers, and a stream of draws is reproducible
// from tinyfw.manual_seed (tinyfw/backend/cuda.py takes the seed from the generator).
#include "common.cuh"

namespace tfc {
namespace {

struct Philox {
    uint32_t c[4];
    __device__ Philox(uint64_t seed, uint64_t offset, uint64_t group) {
        c[0] = static_cast<uint32_t>(group);
        c[1] = static_cast<uint32_t>(group >> 32);
        c[2] = static_cast<uint32_t>(offset);
        c[3] = static_cast<uint32_t>(offset >> 32);
        uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
#pragma unroll
        for (int r = 0; r < 10; ++r) {
            uint32_t hi0 = __umulhi(0xD2511F53u, c[0]), lo0 = 0xD2511F53u * c[0];
            uint32_t hi1 = __umulhi(0xCD9E8D57u, c[2]), lo1 = 0xCD9E8D57u * c[2];
            uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
            c[0] = n0;
            c[1] = lo1;
            c[2] = n2;
            c[3] = lo0;
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
    }
};

// the top 24 bits: a float32 in [0, 1) with every value exactly representable
__device__ __forceinline__ float uniform01(uint32_t x) { return (x >> 8) * (1.0f / 16777216.0f); }

// as many random bits as T's significand holds, so the draw converts exactly and stays
// below 1 (24 bits rounded to float16 could round up to 1.0)
template <class T> constexpr int uniform_bits() {
    return std::is_same<T, f16>::value ? 11 : std::is_same<T, bf16>::value ? 8 : 24;
}

template <class T> __global__ void uniform_kernel(int64_t n, uint64_t seed, uint64_t offset, T* out) {
    constexpr int bits = uniform_bits<T>();
    const float scale = 1.0f / static_cast<float>(1u << bits);
    const int64_t groups = (n + 3) / 4;
    for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
         g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        Philox p(seed, offset, static_cast<uint64_t>(g));
#pragma unroll
        for (int k = 0; k < 4; ++k)
            if (g * 4 + k < n) out[g * 4 + k] = convert<T>((p.c[k] >> (32 - bits)) * scale);
    }
}

// Box-Muller on pairs: u1 in (0, 1] so log(u1) is finite
template <class T> __global__ void normal_kernel(int64_t n, uint64_t seed, uint64_t offset, T* out) {
    const int64_t groups = (n + 3) / 4;
    for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
         g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        Philox p(seed, offset, static_cast<uint64_t>(g));
        float z[4];
#pragma unroll
        for (int k = 0; k < 4; k += 2) {
            float u1 = ((p.c[k] >> 8) + 1) * (1.0f / 16777216.0f), u2 = uniform01(p.c[k + 1]);
            float r = sqrtf(-2.0f * logf(u1)), t = 6.283185307179586f * u2;
            z[k] = r * cosf(t);
            z[k + 1] = r * sinf(t);
        }
#pragma unroll
        for (int k = 0; k < 4; ++k)
            if (g * 4 + k < n) out[g * 4 + k] = convert<T>(z[k]);
    }
}

// y = x / (1 - p) where the draw u >= p, else 0; mask = (u >= p); x, y, mask row-major
template <class T> __global__ void dropout_kernel(int64_t n, uint64_t seed, double p, const T* x, T* y, bool* mask) {
    using C = acc_t<T>;
    const C scale = static_cast<C>(1.0 / (1.0 - p));
    const float pf = static_cast<float>(p);
    const int64_t groups = (n + 3) / 4;
    for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
         g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        Philox ph(seed, 0, static_cast<uint64_t>(g));
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            int64_t i = g * 4 + k;
            if (i < n) {
                bool keep = uniform01(ph.c[k]) >= pf;
                mask[i] = keep;
                y[i] = keep ? convert<T>(convert<C>(x[i]) * scale) : convert<T>(0.0f);
            }
        }
    }
}

void need_contiguous(const TensorArg& t, const char* name) {
    int64_t expect = 1;
    for (int d = t.ndim - 1; d >= 0; --d) {
        if (t.shape[d] != 1 && t.stride[d] != expect) throw Unsupported(std::string(name) + ": operands must be row-major");
        expect *= t.shape[d];
    }
}

}  // namespace

void launch_uniform(const TensorArg& out, uint64_t seed, uint64_t offset, void* s) {
    need_contiguous(out, "rand");
    const int64_t n = out.numel();
    if (!n) return;
    dispatch_float(out.dtype, "rand", [&](auto tag) {
        using T = typename decltype(tag)::type;
        uniform_kernel<T><<<grid_for((n + 3) / 4), kThreads, 0, as_stream(s)>>>(n, seed, offset, static_cast<T*>(out.data));
        check_launch("rand");
    });
}

void launch_normal(const TensorArg& out, uint64_t seed, uint64_t offset, void* s) {
    need_contiguous(out, "randn");
    const int64_t n = out.numel();
    if (!n) return;
    dispatch_float(out.dtype, "randn", [&](auto tag) {
        using T = typename decltype(tag)::type;
        normal_kernel<T><<<grid_for((n + 3) / 4), kThreads, 0, as_stream(s)>>>(n, seed, offset, static_cast<T*>(out.data));
        check_launch("randn");
    });
}

void launch_dropout(const TensorArg& y, const TensorArg& mask, const TensorArg& x, double p, uint64_t seed, void* s) {
    need_contiguous(x, "dropout");
    need_contiguous(y, "dropout");
    need_contiguous(mask, "dropout");
    const int64_t n = x.numel();
    if (!n) return;
    dispatch_float(x.dtype, "dropout", [&](auto tag) {
        using T = typename decltype(tag)::type;
        dropout_kernel<T><<<grid_for((n + 3) / 4), kThreads, 0, as_stream(s)>>>(
            n, seed, p, static_cast<const T*>(x.data), static_cast<T*>(y.data), static_cast<bool*>(mask.data));
        check_launch("dropout");
    });
}

}  // namespace tfc
