// The three paths of the half-precision GEMM (gemm_half.h): for each, how A and B are
// packed and the micro-kernel computing one MR x NR float32 tile from packed panels.
// gemm_half.cpp runs them all through the same cache-blocking driver.
//
// A path is a struct with
//   P                 the packed element (float for f32-pack, raw bf16 bits otherwise)
//   MR, NR            the tile; KU: every packed k slice is zero-padded to a multiple of KU
//   KC, MC, NC        the cache blocking (k slice, rows of A, columns of B); mc(kcp) the rows
//                     of A in a block for a k slice of kcp (MC, or fitted to L2)
//   pack_a(mc, kc, kcp, a, rsa, csa, dst)   MR-row panels of MR * kcp elements each
//   pack_b(kc, kcp, nc, b, rsb, csb, dst)   NR-column panels of NR * kcp elements each
//   kernel(kcp, pa, pb, c, ldc, acc, mr)    c[MR][NR] (rows ldc apart) = (or += when acc)
//                                           panel A @ panel B; rows from mr on may be left
//                                           unwritten (the A panel's zero padding)
//   begin(), end()                          per-thread set-up (the AMX tile configuration)
// Zero padding of rows, columns and k makes every tile full: the driver keeps mr x nr.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core.h"
#include "gemm_simd.h"
#include "isa.h"
#include "transpose4x4.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace gemm_half_paths {

using tf::bhalf;
using tf::half;

inline float to_f32(bhalf v) { return tf::bf16_to_float(v.bits); }
inline float to_f32(half v) { return tf::f16_to_float(v.bits); }
inline void row_to_f32(const bhalf* s, int64_t n, float* d) { tf::bhalf_to_float_n(s, d, n); }
inline void row_to_f32(const half* s, int64_t n, float* d) { tf::half_to_float_n(s, d, n); }

// ---- f32-pack: convert while packing, then gemm.cpp's float32 micro-kernel -------------
template <class H> struct F32Pack {
    using P = float;
    using BL = gemm_simd::Blocking<float>;
    static constexpr int MR = BL::MR, NR = BL::NR, KU = 1;
    static constexpr int64_t KC = BL::KC, MC = BL::MC, NC = BL::NC;
    static int64_t mc(int64_t) { return MC; }
    static void begin() {}
    static void end() {}

    static void pack_a(int64_t mc, int64_t kc, int64_t, const H* a, int64_t rsa, int64_t csa, float* dst) {
        alignas(64) float row[KC];
        for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kc) {
            const int64_t mr = std::min<int64_t>(MR, mc - i0);
            const H* src = a + i0 * rsa;
            if (rsa == 1 && csa != 1) {  // column-major A (g.T): each k's rows are contiguous
                for (int64_t p = 0; p < kc; ++p) {
                    row_to_f32(src + p * csa, mr, dst + p * MR);
                    std::fill(dst + p * MR + mr, dst + (p + 1) * MR, 0.f);
                }
                continue;
            }
            for (int64_t i = 0; i < MR; ++i) {
                if (i >= mr) {
                    for (int64_t p = 0; p < kc; ++p) dst[p * MR + i] = 0.f;
                } else if (csa == 1) {  // a row is contiguous: convert it in bulk, then scatter
                    row_to_f32(src + i * rsa, kc, row);
                    for (int64_t p = 0; p < kc; ++p) dst[p * MR + i] = row[p];
                } else {
                    for (int64_t p = 0; p < kc; ++p) dst[p * MR + i] = to_f32(src[i * rsa + p * csa]);
                }
            }
        }
    }

    static void pack_b(int64_t kc, int64_t, int64_t nc, const H* b, int64_t rsb, int64_t csb, float* dst) {
        for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += NR * kc) {
            const int64_t nr = std::min<int64_t>(NR, nc - j0);
            const H* src = b + j0 * csb;
            if (nr == NR && csb == 1) {
                for (int64_t p = 0; p < kc; ++p) row_to_f32(src + p * rsb, NR, dst + p * NR);
            } else if (rsb == 1) {  // transposed B (x @ W.T): columns converted in bulk, then transposed
                alignas(64) float cols[NR * KC];
                for (int64_t j = 0; j < nr; ++j) row_to_f32(src + j * csb, kc, cols + j * kc);
                std::fill(cols + nr * kc, cols + NR * kc, 0.f);
                tf::transpose_into_panel<float>(NR, kc, cols, kc, dst, NR);
            } else {  // other strides: element by element
                for (int64_t j = 0; j < NR; ++j)
                    for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = j < nr ? to_f32(src[j * csb + p * rsb]) : 0.f;
            }
        }
    }

    static void kernel(int64_t kcp, const float* pa, const float* pb, float* c, int64_t ldc, bool acc, int64_t) {
        gemm_simd::micro_kernel<float>(kcp, pa, pb, c, ldc, acc);
    }
};

#if defined(__AVX512F__)
// permutex2var_epi16 indices interleaving the first 16 elements of x and y: x0 y0 x1 y1 ...
alignas(64) constexpr uint16_t kPairLo[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                              8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};

/// 16 k pairs x 16 columns of a B panel (4-byte pairs, rows ldd floats apart) from a
/// transposed B: `cols` of its columns, each k-contiguous from src (columns lds floats
/// apart), the rest zero.  The pairs of a column are one row of 16 4-byte items, so the
/// block is a 16 x 16 transpose (the element loop took ~3/4 of x @ W.T's time at 128 x
/// 784 x 512 on AMX).
inline void pairs_of_columns(const uint16_t* src, int64_t lds, int64_t cols, uint16_t* dst, int64_t ldd) {
    const float* s = reinterpret_cast<const float*>(src);  // 4-byte items moved as bits
    alignas(64) float blk[16 * 16];
    if (cols < 16) {  // a last, partial panel: its columns copied next to zero ones
        std::memset(blk, 0, sizeof blk);
        for (int64_t j = 0; j < cols; ++j) std::memcpy(blk + 16 * j, s + j * lds, 64);
        s = blk, lds = 16;
    }
    tf::transpose16x16(reinterpret_cast<float*>(dst), ldd, s, lds);
}

// ---- bf16 pairs (VNNI layout): what VDPBF16PS and TDPBF16PS read ------------------------
// A B panel of 32 columns holds, for each k pair q, 32 columns x {b[2q][j], b[2q+1][j]}:
// columns 0-15 in the 32 bf16 at lo(q), columns 16-31 at hi(q).  Rows (`Tiled` false):
// lo(q) = 64 q, hi = lo + 32, what VDPBF16PS reads.  `Tiled`: each AMX B tile (16 pairs x
// 16 columns) is 1 KiB of contiguous memory, [k block][column half][16 pairs][32 bf16], so a
// tile load reads 16 consecutive cache lines instead of every other line of 32 (which mapped
// the two column halves' loads onto the same few L1 sets).
template <bool Tiled>
void pack_b_pairs(int64_t kc, int64_t kcp, int64_t nc, const bhalf* b, int64_t rsb, int64_t csb, uint16_t* dst) {
    constexpr int NR = 32;
    constexpr int64_t kHi = Tiled ? 512 : 32;  // columns 16-31 of a pair, from columns 0-15
    const __m512i lo = _mm512_load_si512(kPairLo), hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    const uint16_t* bb = reinterpret_cast<const uint16_t*>(b);
    auto pair_at = [&](int64_t panel, int64_t q) {  // columns 0-15 of k pair q in a panel
        uint16_t* d = dst + panel * NR * kcp;
        return Tiled ? d + (q / 16) * 1024 + (q % 16) * 32 : d + q * 64;
    };
    const int64_t panels = (nc + NR - 1) / NR;
    // transposed B with an even column stride (its pairs are 4-byte items): the k pairs
    // below `qt`, in blocks of 16, for every panel (a linear layer's x @ W.T)
    const int64_t qt = rsb == 1 && csb != 1 && csb % 2 == 0 ? kc / 32 * 16 : 0;
    for (int64_t j0 = 0; j0 < panels && qt; ++j0)
        for (int64_t h = 0; h < 2; ++h) {
            const int64_t cols = std::clamp<int64_t>(nc - j0 * NR - 16 * h, 0, 16);
            for (int64_t q0 = 0; q0 < qt; q0 += 16)
                pairs_of_columns(bb + (j0 * NR + 16 * h) * csb + 2 * q0, csb / 2, cols, pair_at(j0, q0) + h * kHi,
                                 Tiled ? 16 : 32);
        }
    // row-major B: each pair of rows is read once, front to back, and its 64-byte pieces are
    // interleaved into every full panel (walking one panel down all k rows instead read a
    // cache line every rsb elements: 2 MiB of 1024 x 1024 took 0.3 ms, the kernel's 15%)
    const int64_t full = csb == 1 ? nc / NR : 0, pairs = kc / 2;
    for (int64_t q = 0; q < pairs && full; ++q) {
        const uint16_t* r0 = bb + 2 * q * rsb;
        const uint16_t* r1 = r0 + rsb;
        for (int64_t j = 0; j < full; ++j) {
            const __m512i x = _mm512_loadu_si512(r0 + j * NR), y = _mm512_loadu_si512(r1 + j * NR);
            uint16_t* d = pair_at(j, q);
            _mm512_storeu_si512(d, _mm512_permutex2var_epi16(x, lo, y));
            _mm512_storeu_si512(d + kHi, _mm512_permutex2var_epi16(x, hi, y));
        }
    }
    // the rest element by element: the last, partial panel, the odd last row and the zero
    // padding to kcp, and B with other strides
    for (int64_t j0 = 0; j0 < panels; ++j0) {
        const int64_t nr = std::min<int64_t>(NR, nc - j0 * NR);
        const uint16_t* src = bb + j0 * NR * csb;
        for (int64_t q = j0 < full ? pairs : qt; q < kcp / 2; ++q) {
            const int64_t p0 = 2 * q, p1 = 2 * q + 1;
            uint16_t* d0 = pair_at(j0, q);
            if (p0 >= kc) {  // padding past k (a k of 10 padded to AMX's 32: most of the pairs)
                std::memset(d0, 0, 64), std::memset(d0 + kHi, 0, 64);
                continue;
            }
            for (int64_t j = 0; j < NR; ++j) {
                uint16_t* d = (j < 16 ? d0 : d0 + kHi) + 2 * (j % 16);
                d[0] = j < nr && p0 < kc ? src[j * csb + p0 * rsb] : 0;
                d[1] = j < nr && p1 < kc ? src[j * csb + p1 * rsb] : 0;
            }
        }
    }
}

// ---- avx512-bf16: 12 x 32 tiles of VDPBF16PS ---------------------------------------------
struct DpBf16 {
    using P = uint16_t;
    static constexpr int MR = 12, NR = 32, KU = 2;
    // the B micro-panel (KC x 32 bf16) 32 KiB of L1; the A block (MC x KC) ~240 KiB of L2
    static constexpr int64_t KC = 512, MC = 240, NC = 4096;
    static int64_t mc(int64_t) { return MC; }
    static void begin() {}
    static void end() {}

    // A panel: for each k pair q, MR rows x {a[i][2q], a[i][2q+1]} (one 32-bit broadcast)
    static void pack_a(int64_t mc, int64_t kc, int64_t kcp, const bhalf* a, int64_t rsa, int64_t csa, uint16_t* dst) {
        const uint16_t* aa = reinterpret_cast<const uint16_t*>(a);
        const __m512i lo = _mm512_load_si512(kPairLo);
        for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kcp) {
            const int64_t mr = std::min<int64_t>(MR, mc - i0);
            // column-major A (g.T): a k pair's two columns interleaved into its MR 4-byte pairs
            constexpr __mmask16 rows = (1u << MR) - 1;
            int64_t qv = rsa == 1 && csa != 1 && mr == MR ? kc / 2 : 0;
            for (int64_t q = 0; q < qv; ++q) {
                const uint16_t* c0 = aa + i0 + 2 * q * csa;
                const __m512i x = _mm512_maskz_loadu_epi16(rows, c0), y = _mm512_maskz_loadu_epi16(rows, c0 + csa);
                _mm512_mask_storeu_epi32(dst + 2 * MR * q, rows, _mm512_permutex2var_epi16(x, lo, y));
            }
            // row-major A: a row's k pairs are consecutive 4-byte items, so 16 pairs of the
            // MR rows are a 16 x 16 transpose (4 rows of zeros); the element loop below took
            // 3/4 of 128x512 @ W(10x512).T on Zen 4 (12 GFLOP/s)
            if (csa == 1 && mr == MR) {
                alignas(64) float blk[16 * 16] = {}, out[16 * 16];
                for (qv = 0; 2 * (qv + 16) <= kc; qv += 16) {
                    for (int64_t i = 0; i < MR; ++i) std::memcpy(blk + 16 * i, aa + (i0 + i) * rsa + 2 * qv, 64);
                    tf::transpose16x16(out, 16, blk, 16);
                    for (int64_t q = 0; q < 16; ++q) std::memcpy(dst + 2 * MR * (qv + q), out + 16 * q, 4 * MR);
                }
            }
            for (int64_t i = 0; i < MR; ++i) {
                const uint16_t* src = aa + (i0 + i) * rsa;
                for (int64_t p = 2 * qv; p < kcp; ++p)
                    dst[(p / 2 * MR + i) * 2 + p % 2] = i < mr && p < kc ? src[p * csa] : 0;
            }
        }
    }
    static void pack_b(int64_t kc, int64_t kcp, int64_t nc, const bhalf* b, int64_t rsb, int64_t csb, uint16_t* dst) {
        pack_b_pairs<false>(kc, kcp, nc, b, rsb, csb, dst);
    }

    __attribute__((target("avx512bf16"), noinline)) static void kernel(int64_t kcp, const uint16_t* pa,
                                                                       const uint16_t* pb, float* c, int64_t ldc,
                                                                       bool acc, int64_t) {
        __m512 r[MR][2];
        for (int i = 0; i < MR; ++i) r[i][0] = r[i][1] = _mm512_setzero_ps();
        for (int64_t q = 0; q < kcp / 2; ++q, pa += 2 * MR, pb += 2 * NR) {
            const __m512bh b0 = (__m512bh)_mm512_loadu_si512(pb), b1 = (__m512bh)_mm512_loadu_si512(pb + 32);
#pragma GCC unroll 12
            for (int i = 0; i < MR; ++i) {
                uint32_t pair;
                std::memcpy(&pair, pa + 2 * i, 4);
                const __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair);
                r[i][0] = _mm512_dpbf16_ps(r[i][0], av, b0);
                r[i][1] = _mm512_dpbf16_ps(r[i][1], av, b1);
            }
        }
        for (int i = 0; i < MR; ++i) {
            float* ci = c + i * ldc;
            _mm512_storeu_ps(ci, acc ? _mm512_add_ps(_mm512_loadu_ps(ci), r[i][0]) : r[i][0]);
            _mm512_storeu_ps(ci + 16, acc ? _mm512_add_ps(_mm512_loadu_ps(ci + 16), r[i][1]) : r[i][1]);
        }
    }
};

// ---- amx-bf16: 48 x 32 tiles as 3 x 2 AMX tiles of 16 x 16 float32 -----------------------
// Tiles 0-5 accumulate C (tile 2 r + c: rows 16 r.., columns 16 c..), 6 holds an A tile (16
// rows x 32 k), 7 a B tile (16 k pairs x 16 columns); every tile is 16 rows of 64 bytes.  One
// TDPBF16PS is 16 x 16 x 32 multiply-adds.  With one register for each operand, a k block
// reads 5 distinct KiB for 6 products (2 x 2 C tiles with two registers per operand: 4 KiB
// for 4), and the operands mostly come from L2: 1024^3 and 2048^3 on one Sapphire Rapids
// core, kernel over packed panels, 1110-1190 and 1210-1320 GFLOP/s against 1060-1140 and
// 1090-1190 for 2 x 2.  Keeping either operand or C in L1 through k slices (C stored and
// reloaded between slices) was slower, as was software prefetching.
struct AmxBf16 {
    using P = uint16_t;
    static constexpr int MR = 48, NR = 32, KU = 32;
    // k in slices of up to 2048: the C tiles stay in the tile registers over the whole
    // slice, since storing and reloading float32 partial sums between slices cost more
    // than the operands' trips from L2.  (Every B panel of 512 columns for each A panel,
    // instead of every A panel of the block for each B panel, measured the same.)
    static constexpr int64_t KC = 2048, MC = 144, NC = 1024;  // packed B block <= 4 MiB
    // The A block (mc x kcp) about 700 KiB of L2, up to 336 rows (the float32 sums of a
    // half output hold mc x NC): 1024^3 1043 GFLOP/s at 336 rows against 1001 at 144,
    // 2048^3 1099 at 144 rows against 1000 at 336 (interleaved, one SPR core)
    static int64_t mc(int64_t kcp) {
        return std::clamp<int64_t>((720 << 10) / (2 * kcp) / MR * MR, MR, 336);
    }

    struct alignas(64) Config {
        uint8_t palette = 1, start_row = 0, reserved[14] = {};
        uint16_t colsb[16] = {};
        uint8_t rows[16] = {};
        Config() {
            for (int t = 0; t < 8; ++t) colsb[t] = 64, rows[t] = 16;
        }
    };
    __attribute__((target("amx-tile"), noinline)) static void begin() {
        static const Config cfg;
        _tile_loadconfig(&cfg);
    }
    __attribute__((target("amx-tile"), noinline)) static void end() { _tile_release(); }

    // A panel: [k block][row third r][16 rows][32 k]: each A tile is 1 KiB of contiguous
    // memory (see pack_b_pairs); row i, column p at tile_of(i, p) + (i % 16) * 32 + p % 32
    static uint16_t* at(uint16_t* dst, int64_t i, int64_t p) {
        return dst + ((p / 32) * 3 + i / 16) * 512 + (i % 16) * 32 + p % 32;
    }
    static void pack_a(int64_t mc, int64_t kc, int64_t kcp, const bhalf* a, int64_t rsa, int64_t csa, uint16_t* dst) {
        const uint16_t* aa = reinterpret_cast<const uint16_t*>(a);
        for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kcp) {
            const int64_t mr = std::min<int64_t>(MR, mc - i0);
            const uint16_t* src = aa + i0 * rsa;
            if (csa == 1) {  // row-major A: 64-byte pieces of each row
                for (int64_t i = 0; i < mr; ++i) {
                    int64_t p = 0;
                    for (; p + 32 <= kc; p += 32) std::memcpy(at(dst, i, p), src + i * rsa + p, 64);
                    if (p < kcp) {  // the last k block (kcp - p <= 32 of one tile row): the rest, zeros
                        std::memcpy(at(dst, i, p), src + i * rsa + p, size_t(kc - p) * 2);
                        std::memset(at(dst, i, p) + (kc - p), 0, size_t(kcp - kc) * 2);
                    }
                }
            } else {  // column-major A (a weight gradient's g.T): read down its columns
                // where rows are contiguous, 16 rows x 32 k at a time: each k pair's two
                // columns interleaved into 16 4-byte pairs, then transposed into the tile's rows
                const int64_t pv = rsa == 1 ? kc / 32 * 32 : 0, iv = rsa == 1 ? mr / 16 * 16 : 0;
                const __m512i lo = _mm512_load_si512(kPairLo);
                alignas(64) float blk[16 * 16];
                for (int64_t p0 = 0; p0 < pv; p0 += 32)
                    for (int64_t i = 0; i < iv; i += 16) {
                        for (int64_t q = 0; q < 16; ++q) {
                            const uint16_t* c0 = src + i + (p0 + 2 * q) * csa;
                            const __m512i x = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)c0));
                            const __m512i y = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(c0 + csa)));
                            _mm512_store_si512(blk + 16 * q, _mm512_permutex2var_epi16(x, lo, y));
                        }
                        tf::transpose16x16(reinterpret_cast<float*>(at(dst, i, p0)), 16, blk, 16);
                    }
                for (int64_t p = 0; p < kcp; ++p)
                    for (int64_t i = p < pv ? iv : 0; i < mr; ++i) *at(dst, i, p) = p < kc ? src[i * rsa + p * csa] : 0;
            }
            for (int64_t i = mr; i < MR; ++i)
                for (int64_t p = 0; p < kcp; p += 32) std::memset(at(dst, i, p), 0, 64);
        }
    }
    static void pack_b(int64_t kc, int64_t kcp, int64_t nc, const bhalf* b, int64_t rsb, int64_t csb, uint16_t* dst) {
        pack_b_pairs<true>(kc, kcp, nc, b, rsb, csb, dst);
    }

    // The R row tiles of C that hold rows of A (the last panel of 1024 rows has 16): the
    // rest of the 48 x 32 tile is neither computed nor stored.  (The tile loads and stores
    // of C are spelled out: the intrinsics paste the tile number into the assembly text,
    // so it must be a literal, not a template parameter.)
    template <int R>
    __attribute__((target("amx-tile,amx-bf16"), noinline)) static void rows(int64_t kcp, const uint16_t* pa,
                                                                            const uint16_t* pb, float* c,
                                                                            int64_t ldc, bool acc) {
        const long sc = long(ldc) * 4;  // C's row stride in bytes
        float* c1 = c + 16 * ldc;
        float* c2 = c + 32 * ldc;
        if (acc) {
            _tile_loadd(0, c, sc);
            _tile_loadd(1, c + 16, sc);
            if constexpr (R >= 2) {
                _tile_loadd(2, c1, sc);
                _tile_loadd(3, c1 + 16, sc);
            }
            if constexpr (R == 3) {
                _tile_loadd(4, c2, sc);
                _tile_loadd(5, c2 + 16, sc);
            }
        } else {
            _tile_zero(0);
            _tile_zero(1);
            if constexpr (R >= 2) {
                _tile_zero(2);
                _tile_zero(3);
            }
            if constexpr (R == 3) {
                _tile_zero(4);
                _tile_zero(5);
            }
        }
        // down the first B column tile, back up the second: the A tile in the register
        // at the turn serves both
        for (int64_t kb = 0; kb < kcp / 32; ++kb, pa += 1536, pb += 1024) {
            _tile_loadd(7, pb, 64);
            _tile_loadd(6, pa, 64);
            _tile_dpbf16ps(0, 6, 7);
            if constexpr (R >= 2) {
                _tile_loadd(6, pa + 512, 64);
                _tile_dpbf16ps(2, 6, 7);
            }
            if constexpr (R == 3) {
                _tile_loadd(6, pa + 1024, 64);
                _tile_dpbf16ps(4, 6, 7);
            }
            _tile_loadd(7, pb + 512, 64);
            if constexpr (R == 3) {
                _tile_dpbf16ps(5, 6, 7);
                _tile_loadd(6, pa + 512, 64);
            }
            if constexpr (R >= 2) {
                _tile_dpbf16ps(3, 6, 7);
                _tile_loadd(6, pa, 64);
            }
            _tile_dpbf16ps(1, 6, 7);
        }
        _tile_stored(0, c, sc);
        _tile_stored(1, c + 16, sc);
        if constexpr (R >= 2) {
            _tile_stored(2, c1, sc);
            _tile_stored(3, c1 + 16, sc);
        }
        if constexpr (R == 3) {
            _tile_stored(4, c2, sc);
            _tile_stored(5, c2 + 16, sc);
        }
    }
    static void kernel(int64_t kcp, const uint16_t* pa, const uint16_t* pb, float* c, int64_t ldc, bool acc,
                       int64_t mr) {
        if (mr > 32) rows<3>(kcp, pa, pb, c, ldc, acc);
        else if (mr > 16) rows<2>(kcp, pa, pb, c, ldc, acc);
        else rows<1>(kcp, pa, pb, c, ldc, acc);
    }
};
#endif  // __AVX512F__

}  // namespace gemm_half_paths
TINYFW_ISA_END
}  // namespace tinyfw
