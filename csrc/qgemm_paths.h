// The paths of the int8 GEMM (qgemm.h): for each, how A (uint8 activations) and B (int8
// weights, [n, k]) are packed and the micro-kernel computing one MR x NR int32 tile.
//
// A path is a struct with
//   AE, BE            packed element types of A and B
//   MR, NR            the tile (NR a multiple of 16: B is packed in panels of 16 columns)
//   KU                k is zero padded to a multiple of KU (zeros add nothing to the sums)
//   pack_a(mc, k, kp, a, rsa, csa, dst)      MR-row panels of A, MR * kp elements each
//   pack_b(w, rsw, csw, n, k, kp, p, dst)    panel p of B (16 columns), 16 * kp elements
//   kernel(kp, pa, pb, pstride, c)           c[MR][NR] = panel A @ panels B (the second B
//                                            panel pstride bytes after the first)
//   begin(), end()                           per-thread set-up (the AMX tile configuration)
//
// Layouts.  The dot-product instructions multiply groups of G consecutive k: B panels are
// [k / G][16 columns][G], so one 64-byte row holds a k group of 16 columns; broadcast
// kernels read A as [k / G][MR rows][G] (one 32-bit broadcast per row and group).
//
// Why "avx2" widens to int16 for VPMADDWD instead of using VPMADDUBSW: VPMADDUBSW adds two
// u8 x s8 products into a saturating int16, and 255 * 127 * 2 = 64770 overflows it, so an
// exact VPMADDUBSW scheme must split the activations (x & 127 and x >> 7: two VPMADDUBSW,
// two VPMADDWD and two adds per 32 products) or limit the weights to 7 bits (not the
// contract).  VPMADDWD on int16 operands gives the int32 pair sums exactly with one
// multiply and one add per 16 products: fewer instructions per product than the split, at
// twice the bytes of packed operands.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "isa.h"
#if defined(__AVX512F__)
#include "gemm_half_paths.h"  // the AMX tile configuration of the bf16 GEMM
#endif

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace qgemm_paths {

/// A in broadcast panels: [q][MR][G] elements T, zero padded to mc -> MR rows and k -> kp.
template <int MR, int G, class T>
void pack_a_groups(int64_t mc, int64_t k, int64_t kp, const uint8_t* a, int64_t rsa, int64_t csa, T* dst) {
    for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kp) {
        const int64_t mr = std::min<int64_t>(MR, mc - i0);
        for (int64_t i = 0; i < MR; ++i) {
            const uint8_t* src = a + (i0 + i) * rsa;
            for (int64_t q = 0; q < kp / G; ++q) {
                T* d = dst + (q * MR + i) * G;
                if (i >= mr) {
                    for (int t = 0; t < G; ++t) d[t] = 0;
                } else if (csa == 1 && q * G + G <= k) {
                    for (int t = 0; t < G; ++t) d[t] = T(src[q * G + t]);
                } else {
                    for (int t = 0; t < G; ++t) d[t] = q * G + t < k ? T(src[(q * G + t) * csa]) : T(0);
                }
            }
        }
    }
}

/// Panel p of B: [q][16][G] elements T of w[p * 16 + j, q * G + t], zero padded.
template <int G, class T>
void pack_b_groups(const int8_t* w, int64_t rsw, int64_t csw, int64_t n, int64_t k, int64_t kp, int64_t p, T* dst) {
    for (int j = 0; j < 16; ++j) {
        const int64_t row = p * 16 + j;
        if (row >= n) {
            for (int64_t q = 0; q < kp / G; ++q)
                for (int t = 0; t < G; ++t) dst[(q * 16 + j) * G + t] = 0;
            continue;
        }
        const int8_t* src = w + row * rsw;
        int64_t q0 = 0;
        if constexpr (sizeof(T) == 1 && G == 4) {  // a row's k groups as 32-bit moves
            if (csw == 1)
                for (; q0 < k / 4; ++q0) std::memcpy(dst + (q0 * 16 + j) * 4, src + q0 * 4, 4);
        }
        for (int64_t q = q0; q < kp / G; ++q) {
            T* d = dst + (q * 16 + j) * G;
            if (csw == 1 && q * G + G <= k) {
                for (int t = 0; t < G; ++t) d[t] = T(src[q * G + t]);
            } else {
                for (int t = 0; t < G; ++t) d[t] = q * G + t < k ? T(src[(q * G + t) * csw]) : T(0);
            }
        }
    }
}

// ---- scalar ------------------------------------------------------------------------------
struct Scalar {
    using AE = uint8_t;
    using BE = int8_t;
    static constexpr int MR = 4, NR = 16, KU = 4, G = 4;
    static void begin() {}
    static void end() {}
    static void pack_a(int64_t mc, int64_t k, int64_t kp, const uint8_t* a, int64_t rsa, int64_t csa, AE* d) {
        pack_a_groups<MR, G>(mc, k, kp, a, rsa, csa, d);
    }
    static void pack_b(const int8_t* w, int64_t rsw, int64_t csw, int64_t n, int64_t k, int64_t kp, int64_t p, BE* d) {
        pack_b_groups<G>(w, rsw, csw, n, k, kp, p, d);
    }
    static void kernel(int64_t kp, const AE* pa, const BE* pb, int64_t, int32_t* c) {
        int32_t acc[MR][NR] = {};
        for (int64_t q = 0; q < kp / G; ++q, pa += MR * G, pb += NR * G)
            for (int i = 0; i < MR; ++i)
                for (int j = 0; j < NR; ++j)
                    for (int t = 0; t < G; ++t) acc[i][j] += int32_t(pa[i * G + t]) * int32_t(pb[j * G + t]);
        std::memcpy(c, acc, sizeof acc);
    }
};

#if defined(__AVX2__)
// ---- 16 columns as two ymm of int32, MR rows: the AVX2 and AVX-VNNI kernels -----------
// Op::dot(acc, a, b) adds the G products of each 32-bit lane of a and b to acc.
template <class Op, class A, class B, int G_> struct Ymm16 {
    using AE = A;
    using BE = B;
    static constexpr int MR = 6, NR = 16, G = G_, KU = G_;
    static void begin() {}
    static void end() {}
    static void pack_a(int64_t mc, int64_t k, int64_t kp, const uint8_t* a, int64_t rsa, int64_t csa, AE* d) {
        pack_a_groups<MR, G>(mc, k, kp, a, rsa, csa, d);
    }
    static void pack_b(const int8_t* w, int64_t rsw, int64_t csw, int64_t n, int64_t k, int64_t kp, int64_t p, BE* d) {
        pack_b_groups<G>(w, rsw, csw, n, k, kp, p, d);
    }
    static void kernel(int64_t kp, const AE* pa, const BE* pb, int64_t, int32_t* c) {
        __m256i r[MR][2];
        for (int i = 0; i < MR; ++i) r[i][0] = r[i][1] = _mm256_setzero_si256();
        for (int64_t q = 0; q < kp / G; ++q, pa += MR * G, pb += NR * G) {
            const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb));
            const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + NR * G / 2));
#pragma GCC unroll 6
            for (int i = 0; i < MR; ++i) {
                int32_t group;
                std::memcpy(&group, pa + i * G, 4);
                const __m256i av = _mm256_set1_epi32(group);
                r[i][0] = Op::dot(r[i][0], av, b0);
                r[i][1] = Op::dot(r[i][1], av, b1);
            }
        }
        for (int i = 0; i < MR; ++i) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * NR), r[i][0]);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * NR + 8), r[i][1]);
        }
    }
};

struct MaddWd {  // int16 pairs: acc + a0 * b0 + a1 * b1, exact in int32
    static inline __m256i dot(__m256i acc, __m256i a, __m256i b) {
        return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
    }
};
using Avx2 = Ymm16<MaddWd, int16_t, int16_t, 2>;

// AVX-VNNI: the same tile with VPDPBUSD (four u8 x s8 products per lane in one
// instruction); its own loop, since an intrinsic of a feature outside the level's flags
// can only be inlined into a function with that target
struct AvxVnni : Ymm16<MaddWd, uint8_t, int8_t, 4> {
    __attribute__((target("avxvnni"), noinline)) static void kernel(int64_t kp, const uint8_t* pa, const int8_t* pb,
                                                                   int64_t, int32_t* c) {
        __m256i r[MR][2];
        for (int i = 0; i < MR; ++i) r[i][0] = r[i][1] = _mm256_setzero_si256();
        for (int64_t q = 0; q < kp / G; ++q, pa += MR * G, pb += NR * G) {
            const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb));
            const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + 32));
#pragma GCC unroll 6
            for (int i = 0; i < MR; ++i) {
                int32_t group;
                std::memcpy(&group, pa + i * G, 4);
                const __m256i av = _mm256_set1_epi32(group);
                r[i][0] = _mm256_dpbusd_avx_epi32(r[i][0], av, b0);
                r[i][1] = _mm256_dpbusd_avx_epi32(r[i][1], av, b1);
            }
        }
        for (int i = 0; i < MR; ++i) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * NR), r[i][0]);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * NR + 8), r[i][1]);
        }
    }
};
#endif  // __AVX2__

#if defined(__AVX512F__)
// ---- avx512-vnni: 8 x 32 tiles of VPDPBUSD on zmm ---------------------------------------
struct Avx512Vnni {
    using AE = uint8_t;
    using BE = int8_t;
    static constexpr int MR = 8, NR = 32, KU = 4, G = 4;
    static void begin() {}
    static void end() {}
    static void pack_a(int64_t mc, int64_t k, int64_t kp, const uint8_t* a, int64_t rsa, int64_t csa, AE* d) {
        pack_a_groups<MR, G>(mc, k, kp, a, rsa, csa, d);
    }
    static void pack_b(const int8_t* w, int64_t rsw, int64_t csw, int64_t n, int64_t k, int64_t kp, int64_t p, BE* d) {
        pack_b_groups<G>(w, rsw, csw, n, k, kp, p, d);
    }
    __attribute__((target("avx512vnni"), noinline)) static void kernel(int64_t kp, const AE* pa, const BE* pb,
                                                                      int64_t pstride, int32_t* c) {
        __m512i r[MR][2];
        for (int i = 0; i < MR; ++i) r[i][0] = r[i][1] = _mm512_setzero_si512();
        const BE* pb1 = pb + pstride;
        for (int64_t q = 0; q < kp / G; ++q, pa += MR * G, pb += 64, pb1 += 64) {
            const __m512i b0 = _mm512_loadu_si512(pb), b1 = _mm512_loadu_si512(pb1);
#pragma GCC unroll 8
            for (int i = 0; i < MR; ++i) {
                int32_t group;
                std::memcpy(&group, pa + i * G, 4);
                const __m512i av = _mm512_set1_epi32(group);
                r[i][0] = _mm512_dpbusd_epi32(r[i][0], av, b0);
                r[i][1] = _mm512_dpbusd_epi32(r[i][1], av, b1);
            }
        }
        for (int i = 0; i < MR; ++i) {
            _mm512_storeu_si512(c + i * NR, r[i][0]);
            _mm512_storeu_si512(c + i * NR + 16, r[i][1]);
        }
    }
};

// ---- amx-int8: 32 x 32 tiles as 2 x 2 AMX tiles of 16 x 16 int32 -------------------------
// Tiles 0-3 accumulate C, 4-5 hold A (16 rows x 64 k), 6-7 hold B (16 k quads x 16
// columns): the tile configuration of the bf16 GEMM (8 tiles of 16 rows x 64 bytes).  A
// B tile is 16 consecutive 64-byte rows of a panel: 1 KiB of contiguous memory.
struct AmxInt8 {
    using AE = uint8_t;
    using BE = int8_t;
    static constexpr int MR = 32, NR = 32, KU = 64, G = 4;
    static void begin() { gemm_half_paths::AmxBf16::begin(); }
    static void end() { gemm_half_paths::AmxBf16::end(); }

    // A panel: [k block][row half][16 rows][64 k], each A tile 1 KiB contiguous
    static void pack_a(int64_t mc, int64_t k, int64_t kp, const uint8_t* a, int64_t rsa, int64_t csa, AE* dst) {
        for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kp) {
            const int64_t mr = std::min<int64_t>(MR, mc - i0);
            for (int64_t i = 0; i < MR; ++i) {
                const uint8_t* src = a + (i0 + i) * rsa;
                for (int64_t p0 = 0; p0 < kp; p0 += 64) {
                    uint8_t* d = dst + ((p0 / 64) * 2 + i / 16) * 1024 + (i % 16) * 64;
                    if (i >= mr) std::memset(d, 0, 64);
                    else if (csa == 1 && p0 + 64 <= k) std::memcpy(d, src + p0, 64);
                    else
                        for (int64_t p = 0; p < 64; ++p) d[p] = p0 + p < k ? src[(p0 + p) * csa] : 0;
                }
            }
        }
    }
    static void pack_b(const int8_t* w, int64_t rsw, int64_t csw, int64_t n, int64_t k, int64_t kp, int64_t p, BE* d) {
        pack_b_groups<G>(w, rsw, csw, n, k, kp, p, d);
    }
    __attribute__((target("amx-tile,amx-int8"), noinline)) static void kernel(int64_t kp, const AE* pa, const BE* pb,
                                                                              int64_t pstride, int32_t* c) {
        constexpr long sc = NR * 4;  // C's row stride in bytes
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        const BE* pb1 = pb + pstride;
        for (int64_t kb = 0; kb < kp / 64; ++kb, pa += 2048, pb += 1024, pb1 += 1024) {
            _tile_loadd(4, pa, 64);
            _tile_loadd(5, pa + 1024, 64);
            _tile_loadd(6, pb, 64);
            _tile_loadd(7, pb1, 64);
            _tile_dpbusd(0, 4, 6);
            _tile_dpbusd(1, 4, 7);
            _tile_dpbusd(2, 5, 6);
            _tile_dpbusd(3, 5, 7);
        }
        _tile_stored(0, c, sc);
        _tile_stored(1, c + 16, sc);
        _tile_stored(2, c + 16 * NR, sc);
        _tile_stored(3, c + 16 * NR + 16, sc);
    }
};
#endif  // __AVX512F__

}  // namespace qgemm_paths
TINYFW_ISA_END
}  // namespace tinyfw
