// The int8 GEMM of the quantized kernels: uint8 activations (with a zero point) times
// int8 weights (symmetric, [n, k] layout) accumulated exactly in int32, and the
// requantising epilogue of tinyfw/backend/ref_quant.py fused into it.
//
//   acc[i, j] = sum_k a[i, k] * w[j, k] - a_zp * rowsum(w[j])   (= sum (a - a_zp) * w)
//
// The row sums are computed once per packing.  Both terms and their difference are taken
// modulo 2^32: whenever the exact sum fits int32 (the primitives check k * 255 * 128 <
// 2^31) the wrapped difference is that sum, and otherwise it equals numpy's wrapping int32
// arithmetic in ref_quant.
//
// Paths (tf::isa::int8_gemm_path, reported by isa_info()["int8_gemm"]):
//   "amx-int8"     AMX tiles, TDPBUSD (16 x 16 x 64 per instruction), avx512 level
//   "avx512-vnni"  VPDPBUSD on zmm (4 u8 x s8 products per int32 lane), avx512 level
//   "avx-vnni"     VPDPBUSD on ymm (the VEX form of AVX-VNNI), avx2 level and up
//   "avx2"         VPMADDWD on operands widened to int16 (exact; see qgemm_paths.h for why
//                  not VPMADDUBSW), avx2 level and up
//   "scalar"       plain int32 loops
// All paths give identical results (integer sums are exact).
#pragma once

#include <cstdint>
#include <memory>

#include "isa.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)

/// The float32 epilogue of ref_quant (fp-contract off): per column j,
///   y = float(acc) * mul[j]; y = y + bias[j] (bias may be null); relu: y = y < 0 ? 0 : y;
///   float output: y; uint8 output: clamp(rint(y * inv_out) + out_zp, 0, 255).
struct QEpilogue {
    const float* mul = nullptr;   // float32(x_scale) * w_scale[j], computed in float32
    const float* bias = nullptr;
    bool relu = false;
    float inv_out = 0.f;          // float32(1) / float32(out_scale)
    int32_t out_zp = 0;
};

/// Where the epilogue writes: exactly one of u8 / f32, element (i, j) at
/// row_offset(i) + j * cs.  Rows may come in blocks (`block_rows` > 0): row i is then row
/// i % block_rows of block i / block_rows, blocks `block_stride` apart, so that one GEMM
/// over the im2col rows of several images writes each image's NCHW output in place.
struct QOut {
    uint8_t* u8 = nullptr;
    float* f32 = nullptr;
    int64_t rs = 0, cs = 0;
    int64_t block_rows = 0, block_stride = 0;
    int64_t row0 = 0;  // the GEMM's row 0 is row row0 of this layout (a thread's share)
};

/// Weights w [n, k] packed for one int8 GEMM path, with their row sums.
struct QWeights {
    int64_t n = 0, k = 0, kp = 0;     // kp: k padded to the path's k unit
    int path = -1;                   // the path the packing is for (qgemm.cpp)
    int64_t panel_bytes = 0;         // one panel of 16 columns
    std::unique_ptr<uint8_t[]> data;  // panels of 16 columns, zero padded
    std::unique_ptr<int32_t[]> rowsum;
};

/// Pack int8 w[j, k] (element (j, t) at w[j * rsw + t * csw]) for this process's path.
void qpack_weights(const int8_t* w, int64_t rsw, int64_t csw, int64_t n, int64_t k, QWeights& out);

/// out = epilogue(a @ w^T - a_zp * rowsum) for uint8 a [m, k] (element (i, t) at
/// a[i * rsa + t * csa]).  `nthreads` <= 0 picks a count from the size (1 inside a
/// parallel region).
void qgemm(int64_t m, const uint8_t* a, int64_t rsa, int64_t csa, int32_t a_zp, const QWeights& w,
           const QEpilogue& e, const QOut& o, int nthreads = 0);

/// The path qpack_weights / qgemm take in this process at this level.
const char* qgemm_path();

TINYFW_ISA_END
}  // namespace tinyfw
