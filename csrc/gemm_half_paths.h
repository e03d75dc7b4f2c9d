// The three paths of the half-precision GEMM (gemm_half.h): for each, how A and B are
// packed and the micro-kernel computing one MR x NR float32 tile from packed panels.
// gemm_half.cpp runs them all through the same cache-blocking driver.
//
// A path is a struct with
//   P                 the packed element (float for f32-pack, raw bf16 bits otherwise)
//   MR, NR            the tile; KU: every packed k slice is zero-padded to a multiple of KU
//   KC, MC, NC        the cache blocking (k slice, rows of A, columns of B)
//   pack_a(mc, kc, kcp, a, rsa, csa, dst)   MR-row panels of MR * kcp elements each
//   pack_b(kc, kcp, nc, b, rsb, csb, dst)   NR-column panels of NR * kcp elements each
//   kernel(kcp, pa, pb, c, ldc, acc)        c[MR][NR] (rows ldc apart) = (or += when acc)
//                                           panel A @ panel B
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
    static void begin() {}
    static void end() {}

    static void pack_a(int64_t mc, int64_t kc, int64_t, const H* a, int64_t rsa, int64_t csa, float* dst) {
        alignas(64) float row[KC];
        for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kc) {
            const int64_t mr = std::min<int64_t>(MR, mc - i0);
            const H* src = a + i0 * rsa;
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
            } else {  // transposed B walks down its (contiguous) columns
                for (int64_t j = 0; j < NR; ++j)
                    for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = j < nr ? to_f32(src[j * csb + p * rsb]) : 0.f;
            }
        }
    }

    static void kernel(int64_t kcp, const float* pa, const float* pb, float* c, int64_t ldc, bool acc) {
        gemm_simd::micro_kernel<float>(kcp, pa, pb, c, ldc, acc);
    }
};

#if defined(__AVX512F__)
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
    alignas(64) static const uint16_t kLo[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                                 8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
    const __m512i lo = _mm512_load_si512(kLo), hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    const uint16_t* bb = reinterpret_cast<const uint16_t*>(b);
    for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += NR * kcp) {
        const int64_t nr = std::min<int64_t>(NR, nc - j0);
        const uint16_t* src = bb + j0 * csb;
        for (int64_t q = 0; q < kcp / 2; ++q) {
            const int64_t p0 = 2 * q, p1 = 2 * q + 1;
            uint16_t* d0 = Tiled ? dst + (q / 16) * 1024 + (q % 16) * 32 : dst + q * 64;
            uint16_t* d1 = Tiled ? d0 + 512 : d0 + 32;
            if (nr == NR && csb == 1 && p1 < kc) {  // row-major B: interleave two rows
                const __m512i r0 = _mm512_loadu_si512(src + p0 * rsb), r1 = _mm512_loadu_si512(src + p1 * rsb);
                _mm512_storeu_si512(d0, _mm512_permutex2var_epi16(r0, lo, r1));
                _mm512_storeu_si512(d1, _mm512_permutex2var_epi16(r0, hi, r1));
                continue;
            }
            for (int64_t j = 0; j < NR; ++j) {
                uint16_t* d = (j < 16 ? d0 : d1) + 2 * (j % 16);
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
    static void begin() {}
    static void end() {}

    // A panel: for each k pair q, MR rows x {a[i][2q], a[i][2q+1]} (one 32-bit broadcast)
    static void pack_a(int64_t mc, int64_t kc, int64_t kcp, const bhalf* a, int64_t rsa, int64_t csa, uint16_t* dst) {
        const uint16_t* aa = reinterpret_cast<const uint16_t*>(a);
        for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kcp) {
            const int64_t mr = std::min<int64_t>(MR, mc - i0);
            for (int64_t i = 0; i < MR; ++i) {
                const uint16_t* src = aa + (i0 + i) * rsa;
                for (int64_t p = 0; p < kcp; ++p)
                    dst[(p / 2 * MR + i) * 2 + p % 2] = i < mr && p < kc ? src[p * csa] : 0;
            }
        }
    }
    static void pack_b(int64_t kc, int64_t kcp, int64_t nc, const bhalf* b, int64_t rsb, int64_t csb, uint16_t* dst) {
        pack_b_pairs<false>(kc, kcp, nc, b, rsb, csb, dst);
    }

    __attribute__((target("avx512bf16"), noinline)) static void kernel(int64_t kcp, const uint16_t* pa,
                                                                       const uint16_t* pb, float* c, int64_t ldc,
                                                                       bool acc) {
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

// ---- amx-bf16: 32 x 32 tiles as 2 x 2 AMX tiles of 16 x 16 float32 -----------------------
// Tiles 0-3 accumulate C, 4-5 hold A (16 rows x 32 k), 6-7 hold B (16 k pairs x 16 columns);
// every tile is 16 rows of 64 bytes.  One TDPBF16PS is 16 x 16 x 32 multiply-adds.
struct AmxBf16 {
    using P = uint16_t;
    static constexpr int MR = 32, NR = 32, KU = 32;
    // k in slices of up to 2048: the C tiles stay in the tile registers over the whole
    // slice, since storing and reloading float32 partial sums between slices cost more
    // than the operands' trips from L2 (1024^3 on one Sapphire Rapids core: 2.5 ms in one
    // slice, 3.2 ms in four of 256); the A block (MC x KC) 512 KiB of L2, MC = 128 was
    // faster than 64 or 256 (2048^3: 18.5 ms, 21-24 ms)
    static constexpr int64_t KC = 2048, MC = 128, NC = 1024;  // packed B block <= 4 MiB

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

    // A panel: [k block][row half r][16 rows][32 k]: each A tile is 1 KiB of contiguous
    // memory (see pack_b_pairs); row i, column p at tile_of(i, p) + (i % 16) * 32 + p % 32
    static uint16_t* at(uint16_t* dst, int64_t i, int64_t p) {
        return dst + ((p / 32) * 2 + i / 16) * 512 + (i % 16) * 32 + p % 32;
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
                    for (; p < kcp; ++p) *at(dst, i, p) = p < kc ? src[i * rsa + p] : 0;
                }
            } else {  // column-major A (a transposed operand): read down its columns
                for (int64_t p = 0; p < kcp; ++p)
                    for (int64_t i = 0; i < mr; ++i) *at(dst, i, p) = p < kc ? src[i * rsa + p * csa] : 0;
            }
            for (int64_t i = mr; i < MR; ++i)
                for (int64_t p = 0; p < kcp; p += 32) std::memset(at(dst, i, p), 0, 64);
        }
    }
    static void pack_b(int64_t kc, int64_t kcp, int64_t nc, const bhalf* b, int64_t rsb, int64_t csb, uint16_t* dst) {
        pack_b_pairs<true>(kc, kcp, nc, b, rsb, csb, dst);
    }

    __attribute__((target("amx-tile,amx-bf16"), noinline)) static void kernel(int64_t kcp, const uint16_t* pa,
                                                                              const uint16_t* pb, float* c,
                                                                              int64_t ldc, bool acc) {
        const long sc = long(ldc) * 4;  // C's row stride in bytes
        if (acc) {
            _tile_loadd(0, c, sc);
            _tile_loadd(1, c + 16, sc);
            _tile_loadd(2, c + 16 * ldc, sc);
            _tile_loadd(3, c + 16 * ldc + 16, sc);
        } else {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
        }
        // no software prefetch: fetching the operands a few k blocks ahead into L1 was
        // slower (1024^3: 2.5 ms with, 2.4 without) than the hardware prefetchers alone
        for (int64_t kb = 0; kb < kcp / 32; ++kb, pa += 1024, pb += 1024) {
            _tile_loadd(4, pa, 64);
            _tile_loadd(5, pa + 512, 64);
            _tile_loadd(6, pb, 64);
            _tile_loadd(7, pb + 512, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(0, c, sc);
        _tile_stored(1, c + 16, sc);
        _tile_stored(2, c + 16 * ldc, sc);
        _tile_stored(3, c + 16 * ldc + 16, sc);
    }
};
#endif  // __AVX512F__

}  // namespace gemm_half_paths
TINYFW_ISA_END
}  // namespace tinyfw
