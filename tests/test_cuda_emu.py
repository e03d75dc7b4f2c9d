"""The CUDA emulator of the lab kit (tinyfw/labs/cuda/cuda_emu.h, lab 5): barriers order the
threads of a block (and a missing one gives wrong results every time), a divergent barrier
or shuffle is a Python error naming the kernel (no hang), shuffles follow CUDA's lane rules,
atomics and the grid/block indices are right, shared memory starts as NaN in every block,
a crash or an endless kernel fails one call; and lab 5's harness reports writes outside its
buffers.  No GPU needed; the test kernels also compile with nvcc where it exists."""
from __future__ import annotations

import re

import numpy as np
import pytest

from tinyfw.labs import LABS, cudabuild

pytestmark = pytest.mark.skipif(cudabuild.cxx() is None,
                                reason="no C++ compiler to build the CUDA emulator with")

SOURCE = r"""
#include <cstdio>
#include <exception>
#include <stdexcept>
#include "cuda_lab.h"

template <class F> int guarded(char* err, int errlen, F f) {
    try { f(); return 0; } catch (const std::exception& e) {
        std::snprintf(err, errlen, "%s", e.what());
        return 1;
    }
}
static void seed(unsigned s) {
#if TINYFW_CUDA_EMU
    emu::set_seed(s);
#else
    (void)s;
#endif
}

__global__ void reverse_synced(const float* x, float* y) {
    __shared__ float s[1024];
    const unsigned t = threadIdx.x, base = blockIdx.x * blockDim.x;
    s[t] = x[base + t];
    __syncthreads();
    y[base + t] = s[blockDim.x - 1 - t];
}
__global__ void reverse_racy(const float* x, float* y) {
    __shared__ float s[1024];
    const unsigned t = threadIdx.x, base = blockIdx.x * blockDim.x;
    s[t] = x[base + t];
    y[base + t] = s[blockDim.x - 1 - t];  // no barrier: its writer may not have run yet
}
extern "C" int reverse(int synced, const float* x, float* y, int blocks, int threads,
                       unsigned s, char* err, int errlen) {
    return guarded(err, errlen, [&] {
        seed(s);
        if (synced) LAUNCH(reverse_synced, blocks, threads, x, y);
        else LAUNCH(reverse_racy, blocks, threads, x, y);
    });
}

// block 0 writes a shared cell; the other blocks only read it
__global__ void shared_carry(float* y) {
    __shared__ float cell;
    if (blockIdx.x == 0 && threadIdx.x == 0) cell = 42.0f;
    __syncthreads();
    if (threadIdx.x == 0) y[blockIdx.x] = cell;
}
extern "C" int carry(float* y, int blocks, char* err, int errlen) {
    return guarded(err, errlen, [&] { LAUNCH(shared_carry, blocks, 32, y); });
}

__global__ void divergent(float* y, int mode) {
    if (mode == 0) {
        if (threadIdx.x < 16) __syncthreads();  // BARRIER-RETURNED
    } else if (mode == 1) {
        if (threadIdx.x % 2) __syncthreads();  // BARRIER-ODD
        else __syncthreads();  // BARRIER-EVEN
    } else if (mode == 2) {
        if (threadIdx.x < 40) y[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1.0f, 1);  // SHFL
    }
}
extern "C" int diverge(float* y, int mode, char* err, int errlen) {
    return guarded(err, errlen, [&] { LAUNCH(divergent, 2, 64, y, mode); });
}

__global__ void shuffles(const float* x, float* y, int kind, int arg, int width) {
    const unsigned t = threadIdx.x;
    const float v = x[t];
    float r = 0.0f;
    if (kind == 0) r = __shfl_sync(0xffffffffu, v, arg, width);
    if (kind == 1) r = __shfl_up_sync(0xffffffffu, v, arg, width);
    if (kind == 2) r = __shfl_down_sync(0xffffffffu, v, arg, width);
    if (kind == 3) r = __shfl_xor_sync(0xffffffffu, v, arg, width);
    y[t] = r;
}
extern "C" int shuffle(const float* x, float* y, int threads, int kind, int arg, int width,
                       char* err, int errlen) {
    return guarded(err, errlen, [&] { LAUNCH(shuffles, 1, threads, x, y, kind, arg, width); });
}

__global__ void count(int* c, float* f) {
    atomicAdd(c, 1);
    atomicAdd(f, 0.5f);
}
__global__ void where(int* out) {
    const unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const unsigned thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    int* o = out + 12 * (block * blockDim.x * blockDim.y * blockDim.z + thread);
    const unsigned v[12] = {threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y,
                            blockIdx.z, blockDim.x, blockDim.y, blockDim.z, gridDim.x,
                            gridDim.y, gridDim.z};
    for (int k = 0; k < 12; ++k) o[k] = int(v[k]);
}
extern "C" int indices(int* out, int* c, float* f, const int* g, char* err, int errlen) {
    return guarded(err, errlen, [&] {
        const dim3 grid(g[0], g[1], g[2]), block(g[3], g[4], g[5]);
        LAUNCH(where, grid, block, out);
        LAUNCH(count, grid, block, c, f);
    });
}

__global__ void nop(int) {}
__global__ void no_arguments() {}
extern "C" int bad_launch(int mode, char* err, int errlen) {
    return guarded(err, errlen, [&] {
        if (mode == 0) LAUNCH(nop, 0, 32, 0);
        if (mode == 1) LAUNCH(nop, 1, 1025, 0);
        if (mode == 2) LAUNCH(nop, 1, dim3(1, 1, 65), 0);
        if (mode == 3) LAUNCH(no_arguments, 2, 64);  // a valid launch
    });
}

// vectorised loads: one float4 per thread, written back reversed
__global__ void flip4(const float4* x, float4* y) {
    const float4 v = __ldg(&x[threadIdx.x]);
    y[threadIdx.x] = make_float4(v.w, v.z, v.y, v.x);
}
extern "C" int vector_load(const float* x, float* y, int n4, char* err, int errlen) {
    return guarded(err, errlen, [&] {
        LAUNCH(flip4, 1, n4, reinterpret_cast<const float4*>(x), reinterpret_cast<float4*>(y));
    });
}

__global__ void segv(float* p) { p[threadIdx.x] = 1.0f; }
__global__ void spin(volatile int* flag) { while (*flag == 0) {} }
extern "C" int misbehave(int mode, int* flag, char* err, int errlen) {
    return guarded(err, errlen, [&] {
        if (mode == 0) LAUNCH(segv, 1, 1, static_cast<float*>(nullptr));
        if (mode == 1) LAUNCH(spin, 1, 1, flag);
    });
}

extern "C" int counters(long long* out, char* err, int errlen) {
#if TINYFW_CUDA_EMU
    const emu::Counters c = emu::counters();
    out[0] = c.launches, out[1] = c.blocks, out[2] = c.barriers, out[3] = c.shuffles;
    emu::reset_counters();
    return 0;
#else
    (void)out;
    return guarded(err, errlen, [] { throw std::runtime_error("emulator only"); });
#endif
}
"""

# a kernels.cu for lab 5's harness whose functions each misuse a buffer
ROGUE = r"""
#include "cuda_lab.h"
__global__ void write_at(float* p, int i, float v) { p[i] = v; }
void reduce_sum(const float* x, int n, float* out) { LAUNCH(write_at, 1, 1, out, -1, 1.0f); }
void reduce_sum_warp(const float* x, int n, float* out) {
    LAUNCH(write_at, 1, 1, const_cast<float*>(x), 0, 5.0f);
}
void gemm_naive(const float* A, const float* B, float* C, int M, int N, int K) {
    LAUNCH(write_at, 1, 1, C, M * N, 0.0f);
}
void gemm_tiled(const float* A, const float* B, float* C, int M, int N, int K) {
    LAUNCH(write_at, 1, 1, C, 0, 1.0f);
}
"""


def _line(marker: str) -> int:
    return next(i for i, ln in enumerate(SOURCE.splitlines(), 1) if marker in ln)


@pytest.fixture(scope="module")
def W(tmp_path_factory):
    d = tmp_path_factory.mktemp("emu")
    (d / "emu_tests.cu").write_text(SOURCE)
    lib = cudabuild.build([d / "emu_tests.cu"], d, "emu_tests", cudabuild.Backend("emu", "test"))
    with cudabuild.Worker(lib, timeout=60) as w:
        yield w


def test_a_barrier_orders_the_threads_and_a_missing_one_gives_wrong_results(W):
    x = np.arange(4 * 256, dtype=np.float32)
    y = np.zeros_like(x)
    want = x.reshape(4, 256)[:, ::-1].ravel()
    got = W.call("reverse", 1, x, y, 4, 256, 1)[1]
    np.testing.assert_array_equal(got, want)
    runs = [W.call("reverse", 0, x, y, 4, 256, s)[1] for s in (1, 1, 2)]
    # without the barrier about half the reads come before their writes: NaN (the shared
    # array is poisoned), the rest right; which ones is fixed by the seed
    for r in runs:
        wrong = np.isnan(r)
        assert 0.2 < wrong.mean() < 0.8, wrong.mean()
        np.testing.assert_array_equal(r[~wrong], want[~wrong])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(np.isnan(runs[0]), np.isnan(runs[2]))
    c = W.call("counters", np.zeros(4, np.int64))[0]
    assert list(c) == [4, 16, 4, 0]  # launches, blocks, barrier releases (one per block), shuffles


def test_shared_memory_starts_as_nan_in_every_block(W):
    y = W.call("carry", np.zeros(3, np.float32), 3)[0]
    assert y[0] == 42.0 and np.isnan(y[1:]).all(), y


def _divergence_pattern(mode: int) -> str:
    head = r"kernel divergent: divergent "
    if mode == 0:
        return (head + r"__syncthreads\(\) in block \(0, 0, 0\): 16 of 64 threads wait at "
                rf"__syncthreads\(\) on line {_line('BARRIER-RETURNED')}, "
                r"48 of 64 threads returned")
    if mode == 1:
        lines = f"({_line('BARRIER-ODD')}|{_line('BARRIER-EVEN')})"
        return (head + rf"__syncthreads\(\).* 32 of 64 threads wait at __syncthreads\(\) on line "
                rf"{lines}, 32 of 64 threads wait at __syncthreads\(\) on line {lines} ")
    return (head + rf"warp shuffle .* 8 of 64 threads wait at the warp shuffle/__syncwarp on "
            rf"line {_line('SHFL')}, 56 of 64 threads returned")


@pytest.mark.parametrize("mode", [0, 1, 2], ids=["some-returned", "two-barriers", "shuffle"])
def test_divergence_is_an_error_naming_the_kernel_and_the_lines(W, mode):
    with pytest.raises(cudabuild.KernelError, match=_divergence_pattern(mode)):
        W.call("diverge", np.zeros(64, np.float32), mode)
    x = np.arange(256, dtype=np.float32)  # the process goes on
    np.testing.assert_array_equal(W.call("reverse", 1, x, x * 0, 1, 256, 0)[1], x[::-1])


def _shuffle_want(kind: int, arg: int, width: int, x: np.ndarray) -> np.ndarray:
    """CUDA's rule for each lane's source lane (programming guide, warp shuffle functions)."""
    out = np.empty_like(x)
    for t in range(x.size):
        lane, base = t % 32, t % 32 - t % 32 % width
        src = {0: base + arg % width,
               1: lane - arg if lane - base >= arg else lane,
               2: lane + arg if lane - base + arg < width else lane,
               3: lane ^ arg if (lane ^ arg) < base + width else lane}[kind]
        out[t] = x[t - lane + src]
    return out


@pytest.mark.parametrize("kind", [0, 1, 2, 3], ids=["idx", "up", "down", "xor"])
@pytest.mark.parametrize("arg, width", [(1, 32), (5, 32), (16, 32), (3, 8), (6, 8), (31, 16)])
def test_shuffles_follow_cudas_lane_rules(W, kind, arg, width):
    x = np.arange(100, 164, dtype=np.float32)
    got = W.call("shuffle", x, np.zeros_like(x), 64, kind, arg, width)[1]
    np.testing.assert_array_equal(got, _shuffle_want(kind, arg, width, x))


def test_a_shuffle_from_a_lane_that_does_not_exist_reads_nan(W):
    x = np.arange(48, dtype=np.float32)  # warp 1 has lanes 0-15 only
    got = W.call("shuffle", x, np.zeros_like(x), 48, 2, 1, 32)[1]
    np.testing.assert_array_equal(got[:47], np.r_[x[1:32], x[31], x[33:48]])
    assert np.isnan(got[47])
    assert W.call("counters", np.zeros(4, np.int64))[0][3] >= 2  # one exchange per warp


@pytest.mark.parametrize("grid, block", [((7, 1, 1), (64, 1, 1)), ((3, 4, 1), (8, 5, 1)),
                                          ((2, 3, 2), (5, 3, 2)), ((1, 1, 1), (1024, 1, 1))])
def test_grid_and_block_indices_and_atomics(W, grid, block):
    nt = int(np.prod(grid) * np.prod(block))
    out = np.full(nt * 12, -1, np.int32)
    c, f = np.zeros(1, np.int32), np.zeros(1, np.float32)
    out, c, f, _ = W.call("indices", out, c, f, np.array(grid + block, np.int32))
    gz, gy, gx, tz, ty, tx = np.meshgrid(*(np.arange(v) for v in grid[::-1] + block[::-1]),
                                         indexing="ij")
    want = np.stack([tx, ty, tz, gx, gy, gz] + [np.full_like(tx, v) for v in block + grid],
                    axis=-1).reshape(nt, 12)
    np.testing.assert_array_equal(out.reshape(nt, 12), want)
    assert c[0] == nt and f[0] == 0.5 * nt


@pytest.mark.parametrize("mode, why", [(0, "at least one block"), (1, "at most 1024 threads"),
                                       (2, "64 along z")])
def test_a_bad_launch_configuration_names_the_kernel(W, mode, why):
    with pytest.raises(cudabuild.KernelError,
                       match=f"kernel nop: invalid launch configuration.*{why}"):
        W.call("bad_launch", mode)


def test_a_launch_without_kernel_arguments_and_vector_loads(W):
    W.call("bad_launch", 3)
    x = np.arange(32, dtype=np.float32)
    got = W.call("vector_load", x, np.zeros_like(x), 8)[1]
    np.testing.assert_array_equal(got, x.reshape(8, 4)[:, ::-1].ravel())


def test_a_crash_or_an_endless_kernel_fails_one_call_only(W):
    flag = np.zeros(1, np.int32)
    with pytest.raises(cudabuild.KernelCrash, match="crashed.*SIGSEGV.*bounds check"):
        W.call("misbehave", 0, flag)
    with pytest.raises(cudabuild.KernelCrash,
                       match="did not finish in .* s while running misbehave"):
        W.call("misbehave", 1, flag, timeout=3)
    x = np.arange(64, dtype=np.float32)  # a fresh process takes the next call
    np.testing.assert_array_equal(W.call("reverse", 1, x, x * 0, 1, 64, 0)[1], x[::-1])


def test_lab5_harness_reports_writes_outside_its_buffers(tmp_path):
    (tmp_path / "kernels.cu").write_text(ROGUE)
    lib = cudabuild.build([tmp_path / "kernels.cu", LABS / "05_cuda" / "grader" / "harness.cu"],
                          tmp_path, "rogue", cudabuild.Backend("emu", "test"))
    x, out = np.ones(10, np.float32), np.zeros(1, np.float32)
    a, c = np.ones((2, 4), np.float32), np.zeros((2, 3), np.float32)
    with cudabuild.Worker(lib) as w:
        with pytest.raises(cudabuild.KernelError,
                           match=r"reduce_sum wrote to out\[-1\], before its start"):
            w.call("lab5_reduce", 0, x, 10, out, 0)
        with pytest.raises(cudabuild.KernelError, match="reduce_sum_warp changed its input x"):
            w.call("lab5_reduce", 1, x, 10, out, 0)
        with pytest.raises(cudabuild.KernelError,
                           match=r"gemm_naive wrote to C\[6\], past its end \(it has 6 elements\)"):
            w.call("lab5_gemm", 0, a, a.T.copy()[:4, :3], c, 2, 3, 4, 0)
        got = w.call("lab5_gemm", 1, a, np.ones((4, 3), np.float32), c, 2, 3, 4, 0)[2]
        assert got.ravel()[0] == 1.0 and np.isnan(got.ravel()[1:]).all()  # C starts as NaN


@pytest.mark.skipif(cudabuild.nvcc() is None, reason="nvcc is not on PATH")
def test_the_test_kernels_are_cuda_that_nvcc_compiles(tmp_path):
    (tmp_path / "emu_tests.cu").write_text(SOURCE)
    cudabuild.nvcc_check(tmp_path / "emu_tests.cu")
