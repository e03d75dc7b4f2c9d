// The GEMM for bfloat16 and float16 operands: products accumulated in float32, with no
// float32 copy of A or B (the packing routines read the half values in place), except for
// products of at most 16 columns: those run the float32 GEMM's thin tiles over float32
// copies of B and of 1 MiB blocks of A (gemm_half.cpp's `thin`), on every path.
//
// Three paths, chosen at run time (tf::isa::half_gemm_path, reported by isa_info):
//   "amx-bf16"     AMX tiles (TDPBF16PS), bf16 at the avx512 level where the CPU has
//                  amx_tile + amx_bf16 and Linux granted the tile state
//   "avx512-bf16"  VDPBF16PS dot products of bf16 pairs, where AMX is absent or refused
//   "f32-pack"     half values converted to float32 while packing, into the float32
//                  micro-kernel of gemm.cpp: float16 everywhere, bf16 below AVX-512
// Every path accumulates each C element in float32 (the order of the additions differs
// between paths; AMX and VDPBF16PS flush float32 subnormal results to zero).
#pragma once

#include "core.h"  // tf::half, tf::bhalf
#include "isa.h"

#include <cstdint>

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)

/// C[m, n] = A[m, k] @ B[k, n] (C += A @ B when `accumulate`) for H = tf::half or
/// tf::bhalf, C in float32.  Strides are in elements, as gemm(); `nthreads` <= 0 picks a
/// count from the problem size (call it with 1 from inside a parallel region).
template <class H>
void gemm_half(int64_t m, int64_t n, int64_t k, const H* a, int64_t rsa, int64_t csa, const H* b,
               int64_t rsb, int64_t csb, float* c, int64_t rsc, int64_t csc, bool accumulate,
               int nthreads = 0);

/// C[m, n] = A @ B with C in H: each element rounded once (to nearest, ties to even) from
/// its float32 sum, as numpy's float32 matmul followed by astype.
template <class H>
void gemm_half(int64_t m, int64_t n, int64_t k, const H* a, int64_t rsa, int64_t csa, const H* b,
               int64_t rsb, int64_t csb, H* c, int64_t rsc, int64_t csc, int nthreads = 0);

/// The path gemm_half<H> takes in this process ("amx-bf16", "avx512-bf16", "f32-pack").
template <class H> const char* gemm_half_path();

TINYFW_ISA_END
}  // namespace tinyfw
