// The raw GEMM of tinyfw's CPU backend, for the matmul primitive and the conv kernels.
#pragma once

#include "isa.h"

#include <cstdint>

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)

/// C[m, n] = A[m, k] @ B[k, n]  (or C += A @ B when `accumulate`), for T = float or double.
/// Every operand has its own row and column stride, in elements (any sign, 0 allowed for
/// A and B), so transposed or sliced operands are read in place by the packing routines.
/// `nthreads` <= 0 picks a count from the problem size and the OpenMP setting; call it
/// with 1 from inside a parallel region.
template <typename T>
void gemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b,
          int64_t rsb, int64_t csb, T* c, int64_t rsc, int64_t csc, bool accumulate,
          int nthreads = 0);

/// The number of threads gemm would use for an m x n x k product (1 inside a parallel region).
int gemm_threads(int64_t m, int64_t n, int64_t k);

/// The tm x tn grid of C blocks (tm * tn <= nt threads) that splits an m x n x k product
/// of mu x nu micro-tiles: the least packed volume plus C's size if C's columns are split,
/// every thread at least one tile.
void gemm_grid(int nt, int64_t m, int64_t n, int64_t k, int64_t mu, int64_t nu, int& tm, int& tn);

/// Split `units` into `parts` contiguous ranges; range `i` is [lo, hi).
inline void gemm_split(int64_t units, int parts, int i, int64_t& lo, int64_t& hi) {
    lo = units * i / parts;
    hi = units * (i + 1) / parts;
}

/// The micro-kernel's tile (rows x columns) for float; the conv kernels size work by it.
int gemm_tile_rows();
int gemm_tile_cols();

TINYFW_ISA_END
}  // namespace tinyfw
