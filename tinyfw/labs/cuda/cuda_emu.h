// A small CUDA emulator for machines without a GPU (lab 5): the same kernel source that
// nvcc compiles builds with the host C++ compiler against this header and runs here.
//
// The model, and why:
// * A launch runs its blocks one after another.  So `__shared__` can be a static variable
//   (one copy serves every block); all of them live in one linker section, which is filled
//   with 0xFF bytes (NaN as a float, -1 as an int) before each block, so a read of a cell no
//   thread of this block wrote shows up in the results.
// * The threads of a block are fibers (ucontext, small mmap'd stacks with a guard page).
//   Each runs until its next __syncthreads() (or a warp shuffle, or its end), then the next
//   one runs: between two barriers the threads run one at a time, in an order shuffled
//   per phase from a seed.  A missing barrier therefore gives wrong results every time
//   (a reader runs before the writer it should have waited for), not once in a while.
// * A barrier that some threads reach and others do not (they returned, or wait at another
//   barrier or shuffle) is reported as an exception naming the kernel and the lines,
//   instead of the hang (or silent corruption) it causes on a GPU.
// * Warp shuffles are exchange points of one warp: each lane posts its value and waits
//   until every lane of the mask has arrived, then reads.  Nothing else about warps is
//   modelled (no lockstep execution, no timing, no memory model beyond barriers).
// * Atomics are plain read-modify-writes: only one fiber runs at a time.
//
// Device memory is host memory (cudaMalloc is malloc, filled with 0xFF like an
// uninitialised GPU buffer is garbage).  Errors (bad launch configurations, divergent
// barriers) are thrown as std::runtime_error from the launch.
#pragma once
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

struct uint3 { unsigned x, y, z; };
// the vector types a kernel may load with (aligned as on the GPU)
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
template <class T> inline T __ldg(const T* p) { return *p; }
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

// -- the CUDA keywords, as far as a host compiler needs them ------------------------------
#define __global__ __attribute__((noinline))
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
// `used` keeps the optimiser from assuming no one else touches the variable between calls
#define __shared__ static __attribute__((section("tinyfw_emu_shared"), used))
#define __syncthreads() ::emu::sync_threads(__LINE__)
#define __syncwarp(...) ::emu::sync_warp(__LINE__, ##__VA_ARGS__)
#define __shfl_sync(...) ::emu::shfl(__LINE__, ::emu::Lane::Index, __VA_ARGS__)
#define __shfl_up_sync(...) ::emu::shfl(__LINE__, ::emu::Lane::Up, __VA_ARGS__)
#define __shfl_down_sync(...) ::emu::shfl(__LINE__, ::emu::Lane::Down, __VA_ARGS__)
#define __shfl_xor_sync(...) ::emu::shfl(__LINE__, ::emu::Lane::Xor, __VA_ARGS__)
#define threadIdx (::emu::g.cur->idx)
#define blockIdx (::emu::g.block_idx)
#define blockDim (::emu::g.block_dim)
#define gridDim (::emu::g.grid_dim)
#define warpSize 32

extern "C" char __start_tinyfw_emu_shared[] __attribute__((weak));
extern "C" char __stop_tinyfw_emu_shared[] __attribute__((weak));

namespace emu {

enum class State { Ready, Barrier, Shuffle, Done };
enum class Lane { Index, Up, Down, Xor, Sync };

struct Thread {
    uint3 idx;
    unsigned lin;        // linear index in the block (x fastest), as CUDA numbers lanes
    ucontext_t ctx;
    State state;
    int line;            // source line of the barrier or shuffle it waits at
    uint64_t value;      // the bits a shuffling lane posts
    unsigned mask;       // its shuffle mask
};

// What the emulator counts (the lab's grader checks that a tiled kernel synchronised).
struct Counters { long long launches, blocks, barriers, shuffles; };

struct Globals {
    Thread* cur = nullptr;
    uint3 block_idx{0, 0, 0};
    dim3 block_dim, grid_dim;
    ucontext_t sched;
    const std::function<void()>* body = nullptr;
    std::vector<Thread> threads;
    std::vector<uint64_t> warp_values;  // the last resolved exchange of each warp, 32 a warp
    std::vector<unsigned> warp_valid;   // which lanes posted to it
    std::vector<char*> stacks;
    uint64_t seed = 0;
    Counters counters{0, 0, 0, 0};
};
inline Globals g;

constexpr size_t kStack = 128 * 1024;  // per thread: kernels keep little on the stack

inline void set_seed(uint64_t s) { g.seed = s; }
inline Counters counters() { return g.counters; }
inline void reset_counters() { g.counters = Counters{0, 0, 0, 0}; }

// stacks are reused by every launch; a PROT_NONE page below each turns an overflow into a
// crash at the overflow rather than a silent write into the next thread's stack
inline char* stack_for(size_t i) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    while (g.stacks.size() <= i) {
        void* p = mmap(nullptr, kStack + page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) throw std::runtime_error("cuda emulator: out of memory for stacks");
        mprotect(p, page, PROT_NONE);
        g.stacks.push_back(static_cast<char*>(p) + page);
    }
    return g.stacks[i];
}

inline void yield_to_scheduler(State s, int line) {
    Thread* t = g.cur;
    t->state = s;
    t->line = line;
    swapcontext(&t->ctx, &g.sched);
}

inline void sync_threads(int line) { yield_to_scheduler(State::Barrier, line); }

template <class T>
T shfl(int line, Lane kind, unsigned mask, T v, int arg, int width = 32) {
    static_assert(sizeof(T) <= sizeof(uint64_t), "warp shuffles move at most 8 bytes");
    Thread* t = g.cur;
    t->value = 0;
    std::memcpy(&t->value, &v, sizeof(T));
    t->mask = mask;
    yield_to_scheduler(State::Shuffle, line);
    // resumed: every lane of the mask posted; the exchange is in warp_values
    const unsigned lane = t->lin % 32, base = lane - lane % unsigned(width);
    unsigned src = lane;
    switch (kind) {
        case Lane::Index: src = base + unsigned(arg) % unsigned(width); break;
        case Lane::Up: src = lane - base >= unsigned(arg) ? lane - unsigned(arg) : lane; break;
        case Lane::Down: src = lane - base + arg < unsigned(width) ? lane + arg : lane; break;
        // xor may read an earlier group of `width` lanes, not a later one (CUDA's rule)
        case Lane::Xor: src = (lane ^ arg) < base + unsigned(width) ? lane ^ arg : lane; break;
        case Lane::Sync: break;
    }
    const unsigned w = t->lin / 32;
    uint64_t bits = ~uint64_t(0);  // a lane that did not take part reads garbage: NaN / -1
    if (src < 32 && (g.warp_valid[w] >> src & 1u)) bits = g.warp_values[w * 32 + src];
    T out;
    std::memcpy(&out, &bits, sizeof(T));
    return out;
}

inline void sync_warp(int line, unsigned mask = 0xffffffffu) {
    shfl(line, Lane::Sync, mask, 0, 0);
}

// -- atomics: one fiber runs at a time, so a read-modify-write is atomic -------------------
template <class T, class U> T atomicAdd(T* p, U v) { T old = *p; *p = old + T(v); return old; }
template <class T, class U> T atomicSub(T* p, U v) { T old = *p; *p = old - T(v); return old; }
template <class T, class U> T atomicMax(T* p, U v) { T old = *p; *p = old < T(v) ? T(v) : old; return old; }
template <class T, class U> T atomicMin(T* p, U v) { T old = *p; *p = T(v) < old ? T(v) : old; return old; }
template <class T, class U> T atomicExch(T* p, U v) { T old = *p; *p = T(v); return old; }
template <class T, class U> T atomicCAS(T* p, T cmp, U v) {
    T old = *p;
    if (old == cmp) *p = T(v);
    return old;
}
inline void __threadfence() {}

std::string describe_stall(const char* kernel);  // below

inline void run_block(const char* kernel, size_t n, uint64_t block_seed) {
    auto& ts = g.threads;
    for (size_t i = 0; i < n; ++i) {
        Thread& t = ts[i];
        t.lin = static_cast<unsigned>(i);
        t.idx = {unsigned(i % g.block_dim.x), unsigned(i / g.block_dim.x % g.block_dim.y),
                 unsigned(i / (size_t(g.block_dim.x) * g.block_dim.y))};
        t.state = State::Ready;
        getcontext(&t.ctx);
        t.ctx.uc_stack.ss_sp = stack_for(i);
        t.ctx.uc_stack.ss_size = kStack;
        t.ctx.uc_link = &g.sched;  // a returning thread resumes the scheduler
        makecontext(&t.ctx, +[] {
            (*g.body)();
            g.cur->state = State::Done;
        }, 0);
    }
    std::vector<unsigned> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = static_cast<unsigned>(i);
    std::mt19937_64 rng(block_seed);
    const size_t warps = (n + 31) / 32;
    for (;;) {
        std::shuffle(order.begin(), order.end(), rng);
        for (unsigned i : order) {
            if (ts[i].state != State::Ready) continue;
            g.cur = &ts[i];
            swapcontext(&g.sched, &ts[i].ctx);
        }
        g.cur = nullptr;
        // a warp whose lanes (those in the mask that exist) all wait at one shuffle exchanges
        bool moved = false;
        for (size_t w = 0; w < warps; ++w) {
            const size_t lo = w * 32, hi = std::min(n, lo + 32);
            const Thread* first = nullptr;
            for (size_t i = lo; i < hi && !first; ++i)
                if (ts[i].state == State::Shuffle) first = &ts[i];
            if (!first) continue;
            bool all = true;
            unsigned valid = 0;
            for (size_t i = lo; i < hi; ++i) {
                if (!(first->mask >> (i - lo) & 1u)) continue;
                if (ts[i].state != State::Shuffle || ts[i].line != first->line ||
                    ts[i].mask != first->mask)
                    all = false;
                valid |= 1u << (i - lo);
            }
            if (!all) continue;
            for (size_t i = lo; i < hi; ++i)
                if (valid >> (i - lo) & 1u) {
                    g.warp_values[w * 32 + (i - lo)] = ts[i].value;
                    ts[i].state = State::Ready;
                }
            g.warp_valid[w] = valid;
            ++g.counters.shuffles;
            moved = true;
        }
        if (moved) continue;
        size_t done = 0, at_barrier = 0;
        for (size_t i = 0; i < n; ++i) {
            done += ts[i].state == State::Done;
            at_barrier += ts[i].state == State::Barrier && ts[i].line == ts[0].line;
        }
        if (done == n) return;
        if (at_barrier == n) {  // every thread at the same barrier: release them all
            for (size_t i = 0; i < n; ++i) ts[i].state = State::Ready;
            ++g.counters.barriers;
            continue;
        }
        throw std::runtime_error(describe_stall(kernel));
    }
}

// Why no thread can go on: the threads grouped by where they wait.
inline std::string describe_stall(const char* kernel) {
    const auto& ts = g.threads;
    const size_t n = size_t(g.block_dim.x) * g.block_dim.y * g.block_dim.z;
    std::vector<std::pair<std::string, size_t>> groups;
    bool barrier = false;
    for (size_t i = 0; i < n; ++i) {
        std::string where;
        switch (ts[i].state) {
            case State::Done: where = "returned"; break;
            case State::Barrier:
                where = "wait at __syncthreads() on line " + std::to_string(ts[i].line);
                barrier = true;
                break;
            case State::Shuffle:
                where = "wait at the warp shuffle/__syncwarp on line " + std::to_string(ts[i].line);
                break;
            case State::Ready: where = "are ready"; break;
        }
        auto it = std::find_if(groups.begin(), groups.end(),
                               [&](const auto& p) { return p.first == where; });
        if (it == groups.end()) groups.emplace_back(where, 1);
        else ++it->second;
    }
    // where they wait first, then those that returned
    std::stable_partition(groups.begin(), groups.end(),
                          [](const auto& p) { return p.first != "returned"; });
    std::string msg = std::string("kernel ") + kernel + ": " +
                      (barrier ? "divergent __syncthreads()" : "divergent warp shuffle") +
                      " in block (" + std::to_string(g.block_idx.x) + ", " +
                      std::to_string(g.block_idx.y) + ", " + std::to_string(g.block_idx.z) + "): ";
    for (size_t k = 0; k < groups.size(); ++k)
        msg += (k ? ", " : "") + std::to_string(groups[k].second) + " of " + std::to_string(n) +
               " threads " + groups[k].first;
    return msg + (barrier ? " (every thread of a block must reach the same __syncthreads(): "
                            "is one inside a branch that not all threads take?)"
                          : " (every lane named in the mask must reach the same shuffle)");
}

inline void run_grid(const char* kernel, dim3 grid, dim3 block, const std::function<void()>& body) {
    auto bad = [&](const std::string& why) {
        auto dims = [](dim3 d) {
            return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " +
                   std::to_string(d.z) + ")";
        };
        return std::runtime_error(std::string("kernel ") + kernel +
                                  ": invalid launch configuration: grid " + dims(grid) +
                                  ", block " + dims(block) + ": " + why);
    };
    const size_t n = size_t(block.x) * block.y * block.z;
    if (!grid.x || !grid.y || !grid.z) throw bad("a grid needs at least one block in each dim");
    if (!n) throw bad("a block needs at least one thread in each dimension");
    if (n > 1024 || block.z > 64) throw bad("at most 1024 threads a block, 64 along z");
    if (grid.y > 65535 || grid.z > 65535) throw bad("at most 65535 blocks along y and z");
    if (g.body)  // dynamic parallelism is not emulated
        throw std::runtime_error(std::string("kernel ") + kernel + ": launched from device code");
    g.grid_dim = grid;
    g.block_dim = block;
    g.body = &body;
    g.threads.resize(std::max(g.threads.size(), n));
    g.warp_values.assign((n + 31) / 32 * 32, 0);
    g.warp_valid.assign((n + 31) / 32, 0);
    ++g.counters.launches;
    uint64_t seq = 0;
    try {
        for (unsigned z = 0; z < grid.z; ++z)
            for (unsigned y = 0; y < grid.y; ++y)
                for (unsigned x = 0; x < grid.x; ++x) {
                    g.block_idx = {x, y, z};
                    if (__start_tinyfw_emu_shared != __stop_tinyfw_emu_shared)
                        std::memset(__start_tinyfw_emu_shared, 0xFF,
                                    size_t(__stop_tinyfw_emu_shared - __start_tinyfw_emu_shared));
                    ++g.counters.blocks;
                    run_block(kernel, n, g.seed * 0x9E3779B97F4A7C15ull + seq++);
                }
    } catch (...) {
        g.body = nullptr;  // the stalled fibers are abandoned: their stacks are reused
        throw;
    }
    g.body = nullptr;
}

// kernel(args...) over grid x block; the arguments are converted to the kernel's
// parameter types here, as a real launch copies them by value
template <class... P, class... A>
void launch(const char* kernel, void (*f)(P...), dim3 grid, dim3 block, A&&... args) {
    static_assert(sizeof...(P) == sizeof...(A), "LAUNCH: wrong number of kernel arguments");
    std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    const std::function<void()> body = [&] { std::apply(f, params); };
    run_grid(kernel, grid, block, body);
}

}  // namespace emu

using emu::atomicAdd;
using emu::atomicCAS;
using emu::atomicExch;
using emu::atomicMax;
using emu::atomicMin;
using emu::atomicSub;
using emu::__threadfence;

// CUDA's device code has min/max for mixed argument types
template <class A, class B> inline std::common_type_t<A, B> min(A a, B b) { return b < a ? b : a; }
template <class A, class B> inline std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }

#include "cuda_emu_runtime.h"
