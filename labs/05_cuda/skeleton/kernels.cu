// Lab 5: a reduction and a matrix product in CUDA.
//
// Your work: every kernel marked TODO and every host function that throws "TODO ..."
// (README.md lists the tasks).  Grade with: python -m tinyfw.labs grade 5 --src <this folder>
//
// The grader's harness allocates device memory, copies the inputs in and calls the four
// host functions (reduce_sum, reduce_sum_warp, gemm_naive, gemm_tiled) with device
// pointers; it runs them on a GPU, or on the CUDA emulator when there is none.  Launch
// kernels with LAUNCH(kernel, grid, block, args...), which is kernel<<<grid, block>>>(...)
// under nvcc.  The harness checks for launch errors and synchronises after each call.
#include <algorithm>
#include <stdexcept>

#include "cuda_lab.h"

constexpr int BLOCK = 256;        // threads per block of the reductions: a power of 2
constexpr int MAX_BLOCKS = 1024;  // enough to fill a GPU; more blocks would only add atomics
constexpr int TILE = 32;          // the tiled GEMM's tile: TILE x TILE threads a block

// ---- TASK 5.1 ------------------------------------------------------------------------
// Each thread sums its grid-stride share of x (i = global thread index, then i += the
// number of threads in the grid), writes it to shared memory, and the block sums those
// BLOCK values by a tree: at each step the first half of the active threads adds the
// second half's values to its own, with a __syncthreads() that every thread reaches.
// Thread 0 then adds the block's total to *out with atomicAdd.
__global__ void block_sum(const float* x, int n, float* out) {
    // TODO 5.1
}

// *out = sum of x[0..n) (device pointers; *out is 0 on entry).  n may be 0 (a launch of 0
// blocks is an error) or not a multiple of BLOCK.
void reduce_sum(const float* x, int n, float* out) {
    throw std::runtime_error("TODO 5.1: reduce_sum");
}

// ---- TASK 5.2 ------------------------------------------------------------------------
// As block_sum, but the tree stops when 32 partial sums are left (s[0..32)), and warp 0
// adds those with __shfl_down_sync(0xffffffff, v, offset) for offset = 16, 8, 4, 2, 1.
__global__ void block_sum_warp(const float* x, int n, float* out) {
    // TODO 5.2
}

void reduce_sum_warp(const float* x, int n, float* out) {
    throw std::runtime_error("TODO 5.2: reduce_sum_warp");
}

// ---- TASK 5.3 ------------------------------------------------------------------------
// C = A @ B, all row-major: A is M x K, B is K x N, C is M x N.  One thread per element of
// C, with threadIdx.x running along a row of C (coalesced loads of B).  C holds NaN on
// entry: write every element, and nothing outside it.
__global__ void gemm_naive_kernel(const float* A, const float* B, float* C, int M, int N, int K) {
    // TODO 5.3
}

void gemm_naive(const float* A, const float* B, float* C, int M, int N, int K) {
    throw std::runtime_error("TODO 5.3: gemm_naive");
}

// ---- TASK 5.4 ------------------------------------------------------------------------
// C = A @ B with TILE x TILE tiles of A and B in shared memory: a block of TILE x TILE
// threads computes one tile of C, walking the k range TILE at a time.  M, N and K need not
// be multiples of TILE.
__global__ void gemm_tiled_kernel(const float* A, const float* B, float* C, int M, int N, int K) {
    // TODO 5.4
}

void gemm_tiled(const float* A, const float* B, float* C, int M, int N, int K) {
    throw std::runtime_error("TODO 5.4: gemm_tiled");
}
