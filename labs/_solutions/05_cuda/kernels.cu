// Lab 5: a reduction and a matrix product in CUDA (reference solution).
//
// The grader's harness (labs/05_cuda/grader/harness.cu) allocates device memory, copies
// the inputs in and calls the four host functions at the end of each task with device
// pointers; it runs them on a GPU, or on the CUDA emulator when there is none.  Launch
// kernels with LAUNCH(kernel, grid, block, args...), which is kernel<<<grid, block>>>(...)
// under nvcc.
#include <algorithm>

#include "cuda_lab.h"

constexpr int BLOCK = 256;        // threads per block of the reductions: a power of 2
constexpr int MAX_BLOCKS = 1024;  // enough to fill a GPU; more blocks would only add atomics
constexpr int TILE = 32;          // the tiled GEMM's tile: TILE x TILE threads a block

// Blocks for n elements: one element per thread when that needs few enough blocks, else
// MAX_BLOCKS blocks whose threads stride over the array.
static int reduction_blocks(int n) { return std::min((n + BLOCK - 1) / BLOCK, MAX_BLOCKS); }

// ---- TASK 5.1 ------------------------------------------------------------------------
// Each thread sums its grid-stride share of x, the block sums its threads' values by a
// tree in shared memory, and thread 0 adds the block's total to *out.
__global__ void block_sum(const float* x, int n, float* out) {
    __shared__ float s[BLOCK];
    const unsigned tid = threadIdx.x;
    float v = 0.0f;
    for (int i = blockIdx.x * blockDim.x + tid; i < n; i += blockDim.x * gridDim.x) v += x[i];
    s[tid] = v;
    __syncthreads();
    // halve the active threads each step; the barrier is outside the branch, so that
    // every thread reaches it
    for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (tid < stride) s[tid] += s[tid + stride];
        __syncthreads();
    }
    if (tid == 0) atomicAdd(out, s[0]);
}

void reduce_sum(const float* x, int n, float* out) {
    if (n == 0) return;  // *out is already 0, and a launch of 0 blocks is an error
    LAUNCH(block_sum, reduction_blocks(n), BLOCK, x, n, out);
}

// ---- TASK 5.2 ------------------------------------------------------------------------
// As block_sum, but the tree stops at 32 partial sums and one warp finishes with register
// shuffles: no shared memory and no block-wide barrier in the last five steps.
__global__ void block_sum_warp(const float* x, int n, float* out) {
    __shared__ float s[BLOCK];
    const unsigned tid = threadIdx.x;
    float v = 0.0f;
    for (int i = blockIdx.x * blockDim.x + tid; i < n; i += blockDim.x * gridDim.x) v += x[i];
    s[tid] = v;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride >= 32; stride >>= 1) {
        if (tid < stride) s[tid] += s[tid + stride];
        __syncthreads();
    }
    if (tid < 32) {  // warp 0, all of its lanes: the full mask is right
        v = s[tid];
        for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
        if (tid == 0) atomicAdd(out, v);
    }
}

void reduce_sum_warp(const float* x, int n, float* out) {
    if (n == 0) return;
    LAUNCH(block_sum_warp, reduction_blocks(n), BLOCK, x, n, out);
}

// ---- TASK 5.3 ------------------------------------------------------------------------
// One thread per element of C (M x N, row-major).  x is the fastest thread index and runs
// along a row of C and of B: a warp's loads of B are consecutive (coalesced), its loads of
// A are one address (a broadcast).
__global__ void gemm_naive_kernel(const float* A, const float* B, float* C, int M, int N, int K) {
    const int row = blockIdx.y * blockDim.y + threadIdx.y;
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (row < M && col < N) {
        float acc = 0.0f;
        for (int p = 0; p < K; ++p) acc += A[row * K + p] * B[p * N + col];
        C[row * N + col] = acc;
    }
}

void gemm_naive(const float* A, const float* B, float* C, int M, int N, int K) {
    const dim3 block(16, 16);
    const dim3 grid((N + block.x - 1) / block.x, (M + block.y - 1) / block.y);
    LAUNCH(gemm_naive_kernel, grid, block, A, B, C, M, N, K);
}

// ---- TASK 5.4 ------------------------------------------------------------------------
// A block computes a TILE x TILE tile of C.  For each TILE-wide slice of the k range it
// loads a tile of A and one of B into shared memory (one element each per thread), waits
// for all of them, and then every thread reads TILE values of each from shared memory:
// each global element is loaded once per block instead of once per thread.
__global__ void gemm_tiled_kernel(const float* A, const float* B, float* C, int M, int N, int K) {
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE];
    const int ty = threadIdx.y, tx = threadIdx.x;
    const int row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += TILE) {
        // outside the matrices a tile holds 0, which adds nothing to the sums
        const int ka = k0 + tx, kb = k0 + ty;
        As[ty][tx] = row < M && ka < K ? A[row * K + ka] : 0.0f;
        Bs[ty][tx] = kb < K && col < N ? B[kb * N + col] : 0.0f;
        __syncthreads();  // the tiles are complete before anyone reads them
        for (int p = 0; p < TILE; ++p) acc += As[ty][p] * Bs[p][tx];
        __syncthreads();  // and nobody still reads them when the next ones are loaded
    }
    if (row < M && col < N) C[row * N + col] = acc;
}

void gemm_tiled(const float* A, const float* B, float* C, int M, int N, int K) {
    const dim3 block(TILE, TILE);
    const dim3 grid((N + TILE - 1) / TILE, (M + TILE - 1) / TILE);
    LAUNCH(gemm_tiled_kernel, grid, block, A, B, C, M, N, K);
}
