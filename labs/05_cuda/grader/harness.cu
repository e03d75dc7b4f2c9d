// Lab 5's host harness (given; the grader links it with the student's kernels.cu and calls
// it from Python, tinyfw/labs/cudabuild.py).  It owns device memory: it copies the inputs
// in, calls the student's launcher, checks for CUDA errors, copies the results out.
//
// Every buffer has guard zones of kGuard floats on both sides filled with NaN bits, and
// outputs start as NaN too: a write out of range shows as a changed guard (reported here),
// a read out of range or of an element never written shows as NaN in the results.
//
// Each entry point returns 0, or 1 with a message in err (errlen bytes).
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_lab.h"

// what the student's kernels.cu defines (pointers are device pointers)
void reduce_sum(const float* x, int n, float* out);
void reduce_sum_warp(const float* x, int n, float* out);
void gemm_naive(const float* A, const float* B, float* C, int M, int N, int K);
void gemm_tiled(const float* A, const float* B, float* C, int M, int N, int K);

namespace {

constexpr size_t kGuard = 1024;
constexpr unsigned kPoison = 0xFFFFFFFFu;  // a NaN

void check(cudaError_t e, const std::string& what) {
    if (e != cudaSuccess)
        throw std::runtime_error(what + ": CUDA error: " + cudaGetErrorString(e));
}

// a device array of n floats between two guard zones
class Buffer {
  public:
    Buffer(std::string name, size_t n) : name_(std::move(name)), n_(n) {
        check(cudaMalloc(&base_, (n + 2 * kGuard) * sizeof(float)), "cudaMalloc " + name_);
        std::vector<unsigned> poison(n + 2 * kGuard, kPoison);
        check(cudaMemcpy(base_, poison.data(), poison.size() * sizeof(float),
                         cudaMemcpyHostToDevice),
              "poisoning " + name_);
    }
    ~Buffer() { cudaFree(base_); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    float* ptr() { return base_ + kGuard; }
    void upload(const float* host) {
        check(cudaMemcpy(ptr(), host, n_ * sizeof(float), cudaMemcpyHostToDevice),
              "copying " + name_ + " in");
    }
    // the n values into host; throws when the kernel (`who`) wrote into a guard zone, or
    // changed the buffer although it is an input (`expect` not null)
    void download(float* host, const std::string& who, const float* expect = nullptr) {
        std::vector<float> all(n_ + 2 * kGuard);
        check(cudaMemcpy(all.data(), base_, all.size() * sizeof(float), cudaMemcpyDeviceToHost),
              "copying " + name_ + " out");
        for (size_t i = 0; i < all.size(); ++i) {
            if (i == kGuard) i += n_;
            if (i >= all.size()) break;
            unsigned bits;
            std::memcpy(&bits, &all[i], sizeof bits);
            if (bits != kPoison) {
                long long at = static_cast<long long>(i) - static_cast<long long>(kGuard);
                const std::string where = at < 0 ? "before its start"
                                                 : "past its end (it has " + std::to_string(n_) +
                                                       " elements)";
                throw std::runtime_error(who + " wrote to " + name_ + "[" + std::to_string(at) +
                                         "], " + where + ": a missing bounds check?");
            }
        }
        if (expect && std::memcmp(all.data() + kGuard, expect, n_ * sizeof(float)) != 0)
            throw std::runtime_error(who + " changed its input " + name_);
        if (host) std::memcpy(host, all.data() + kGuard, n_ * sizeof(float));
    }

  private:
    std::string name_;
    size_t n_;
    float* base_ = nullptr;
};

// the launch's own errors (configuration) and those of the kernel as it ran
void finish(const std::string& who) {
    check(cudaGetLastError(), "launching " + who);
    check(cudaDeviceSynchronize(), "running " + who);
}

int fail(char* err, int errlen, const char* what) {
    std::snprintf(err, static_cast<size_t>(errlen), "%s", what);
    return 1;
}

void seed_emulator(unsigned seed) {
#if TINYFW_CUDA_EMU
    emu::set_seed(seed);
#else
    (void)seed;
#endif
}

}  // namespace

extern "C" {

// which: 0 reduce_sum, 1 reduce_sum_warp.  *out starts at 0 (for an atomicAdd of partials).
int lab5_reduce(int which, const float* x, int n, float* out, unsigned seed, char* err,
                int errlen) {
    const char* who = which ? "reduce_sum_warp" : "reduce_sum";
    try {
        seed_emulator(seed);
        Buffer dx("x", static_cast<size_t>(n)), dout("out", 1);
        dx.upload(x);
        const float zero = 0.0f;
        dout.upload(&zero);
        (which ? reduce_sum_warp : reduce_sum)(dx.ptr(), n, dout.ptr());
        finish(who);
        dout.download(out, who);
        dx.download(nullptr, who, x);
        return 0;
    } catch (const std::exception& e) {
        return fail(err, errlen, (std::string(who) + ": " + e.what()).c_str());
    }
}

// which: 0 gemm_naive, 1 gemm_tiled.  C (M x N) starts as NaN: every element must be written.
int lab5_gemm(int which, const float* A, const float* B, float* C, int M, int N, int K,
              unsigned seed, char* err, int errlen) {
    const char* who = which ? "gemm_tiled" : "gemm_naive";
    try {
        seed_emulator(seed);
        Buffer dA("A", size_t(M) * K), dB("B", size_t(K) * N), dC("C", size_t(M) * N);
        dA.upload(A);
        dB.upload(B);
        (which ? gemm_tiled : gemm_naive)(dA.ptr(), dB.ptr(), dC.ptr(), M, N, K);
        finish(who);
        dC.download(C, who);
        dA.download(nullptr, who, A);
        dB.download(nullptr, who, B);
        return 0;
    } catch (const std::exception& e) {
        return fail(err, errlen, (std::string(who) + ": " + e.what()).c_str());
    }
}

// GPU only: ms[r] = the time of launch r (CUDA events) of gemm_naive (0) or gemm_tiled (1)
// after one warm-up launch; C is the last result.
int lab5_time_gemm(int which, const float* A, const float* B, float* C, int M, int N, int K,
                   int reps, float* ms, char* err, int errlen) {
    const char* who = which ? "gemm_tiled" : "gemm_naive";
#if TINYFW_CUDA_EMU
    (void)A, (void)B, (void)C, (void)M, (void)N, (void)K, (void)reps, (void)ms;
    return fail(err, errlen, "timing needs a GPU: this library runs on the CUDA emulator");
#else
    try {
        Buffer dA("A", size_t(M) * K), dB("B", size_t(K) * N), dC("C", size_t(M) * N);
        dA.upload(A);
        dB.upload(B);
        auto f = which ? gemm_tiled : gemm_naive;
        f(dA.ptr(), dB.ptr(), dC.ptr(), M, N, K);
        finish(who);
        cudaEvent_t start, stop;
        check(cudaEventCreate(&start), "cudaEventCreate");
        check(cudaEventCreate(&stop), "cudaEventCreate");
        for (int r = 0; r < reps; ++r) {
            check(cudaEventRecord(start), "cudaEventRecord");
            f(dA.ptr(), dB.ptr(), dC.ptr(), M, N, K);
            check(cudaEventRecord(stop), "cudaEventRecord");
            finish(who);
            check(cudaEventElapsedTime(&ms[r], start, stop), "cudaEventElapsedTime");
        }
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
        dC.download(C, who);
        return 0;
    } catch (const std::exception& e) {
        return fail(err, errlen, (std::string(who) + ": " + e.what()).c_str());
    }
#endif
}

// Emulator only: out = (launches, blocks, barrier releases, warp exchanges) since the last
// call, which resets them.
int lab5_emu_counters(long long* out, char* err, int errlen) {
#if TINYFW_CUDA_EMU
    const emu::Counters c = emu::counters();
    out[0] = c.launches, out[1] = c.blocks, out[2] = c.barriers, out[3] = c.shuffles;
    emu::reset_counters();
    return 0;
#else
    (void)out;
    return fail(err, errlen, "counters exist on the CUDA emulator only");
#endif
}

}  // extern "C"
