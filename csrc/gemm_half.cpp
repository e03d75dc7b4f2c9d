// The half-precision GEMM (gemm_half.h): one cache-blocking driver (the loop nest of
// gemm.cpp: NC columns of B, KC-deep slices, MC rows of A, MR x NR tiles) over the paths of
// gemm_half_paths.h, and the choice of path at run time.
//
// Each tile is computed into a float32 scratch tile and then finished: added to the
// partial sums of the previous k slices, and either stored as float32 or, after the last
// slice, rounded once to the half output.  A half output whose k needs several slices
// keeps its partial sums in a per-thread float32 block (m x NC of the thread's rows), never
// a float32 copy of A or B.
#include "gemm_half.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <utility>

#include "gemm.h"
#include "gemm_half_paths.h"
#include "gemm_simd.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace {

using namespace gemm_half_paths;
using gemm_simd::Buffers;
using gemm_simd::RegionError;

thread_local Buffers half_buffers;  // packed A, packed B, partial sums

#if defined(__AVX512F__)
// 16 floats rounded to bf16 (nearest, ties to even; NaN stays a quiet NaN) as core.h's
// float_to_bf16, inline: the epilogue of every tile calls it.
inline __m256i bf16x16(__m512 v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff))), 16);
    const __m512i abs = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7f800000));
    const __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, r, q));
}
inline void row_from_f32_avx512(const float* s, int64_t n, bhalf* d) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + j), bf16x16(_mm512_loadu_ps(s + j)));
    if (j < n) tf::float_to_bhalf_n(s + j, d + j, n - j);
}
// The same rounding with VCVTNE2PS2BF16 (one instruction for 32 floats, against a dozen
// for 16 above: 1024^3's epilogue was a tenth of the AMX kernel's time).  It agrees with
// float_to_bf16 on every input but subnormals, which it flushes to zero: a 32-float piece
// holding one goes the long way.
__attribute__((target("avx512bf16"))) inline void row_from_f32_dp(const float* s, int64_t n, bhalf* d) {
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        const __m512 lo = _mm512_loadu_ps(s + j), hi = _mm512_loadu_ps(s + j + 16);
        if (_mm512_fpclass_ps_mask(lo, 0x20) | _mm512_fpclass_ps_mask(hi, 0x20))  // 0x20: subnormal
            row_from_f32_avx512(s + j, 32, d + j);
        else _mm512_storeu_si512(d + j, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
    if (j < n) row_from_f32_avx512(s + j, n - j, d + j);
}
inline void row_from_f32(const float* s, int64_t n, bhalf* d) {
    static const bool dp = (tf::isa::machine_features() & tf::isa::bit(tf::isa::AVX512BF16)) != 0;
    if (dp) row_from_f32_dp(s, n, d);
    else row_from_f32_avx512(s, n, d);
}
#else
inline void row_from_f32(const float* s, int64_t n, bhalf* d) { tf::float_to_bhalf_n(s, d, n); }
#endif
inline void row_from_f32(const float* s, int64_t n, half* d) { tf::float_to_half_n(s, d, n); }
inline bhalf from_f32(float v, bhalf*) { return bhalf{tf::float_to_bf16(v)}; }
inline half from_f32(float v, half*) { return half{tf::float_to_f16(v)}; }

/// Where finished tiles go: float32 C (`c`), or H (`h`) after the last k slice.
template <class H> struct Out {
    float* c = nullptr;
    int64_t rsc = 0, csc = 0;
    H* h = nullptr;
    int64_t rsh = 0, csh = 0;
    bool accumulate = false;  // the first slice adds to c (float32 output only)
};

// tile[mr][nr] (rows `ld` apart) + the float32 C (unless `first`), stored to C: the
// edge tiles and strided C of a float32 output.
inline void finish_tile(const float* tile, int ld, int64_t mr, int64_t nr, float* c, int64_t rsc, int64_t csc,
                        bool first) {
    for (int64_t i = 0; i < mr; ++i)
        for (int64_t j = 0; j < nr; ++j) {
            float& d = c[i * rsc + j * csc];
            d = first ? tile[i * ld + j] : d + tile[i * ld + j];
        }
}

// The finished sums t[mr][nr] (rows `ld` apart) rounded once to h.
template <class H>
void round_rows(const float* t, int64_t ld, int64_t mr, int64_t nr, H* h, int64_t rsh, int64_t csh) {
    for (int64_t i = 0; i < mr; ++i, t += ld, h += rsh) {
        if (csh == 1) row_from_f32(t, nr, h);
        else for (int64_t j = 0; j < nr; ++j) h[j * csh] = from_f32(t[j], h);
    }
}

constexpr int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

template <class Path, class H>
void serial(int64_t m, int64_t n, int64_t k, const H* a, int64_t rsa, int64_t csa, const H* b, int64_t rsb,
            int64_t csb, const Out<H>& o) {
    using P = typename Path::P;
    constexpr int MR = Path::MR, NR = Path::NR, KU = Path::KU;
    // k in equal slices of at most KC, each a multiple of KU (see gemm_serial)
    const int64_t kchunks = (k + Path::KC - 1) / Path::KC;
    const int64_t kstep = round_up((k + kchunks - 1) / kchunks, KU);
    // a block of rows holds up to mc_block + MR - 1 of them: the rows left after the last full
    // block join it, so that a B block is never swept for a few rows of A (1024 rows were
    // 7 blocks of 144 and one of 16, which read all of B again for 2% of the products)
    const int64_t mc_block = Path::mc(kstep);  // rows of A per block
    const int64_t mc_max = std::min<int64_t>(mc_block + MR, round_up(m, MR));
    const int64_t nc_max = std::min<int64_t>(Path::NC, round_up(n, NR));
    P* pa = half_buffers.get<P>(0, mc_max * kstep);
    P* pb = half_buffers.get<P>(1, nc_max * kstep);
    // A half output's sums stay in float32 rows until the last k slice, then a block of
    // rows is rounded at once: whole rows of the output written front to back, instead
    // of 64 bytes to each of a tile's 48 rows, 2 KiB apart at 1024 columns (AMX 1024^3,
    // interleaved: 1009 against 980 GFLOP/s; with no output written at all, 1170: the
    // epilogue's cost is mostly the output's stores, and neither streaming stores nor
    // prefetching them nor rounding one tile behind the kernel reduced it).  The rows
    // are a block's (MC x NC), or all of m's when the sums must outlive a k slice.  A
    // row is padded by one cache line so that a tile's 16 rows do not share an L1 set.
    const bool partial = o.h && k > kstep;
    const int64_t ld_sums = nc_max + 64 / sizeof(float);
    float* sums = o.h ? half_buffers.get<float>(2, round_up(partial ? m : mc_max, MR) * ld_sums) : nullptr;
    alignas(64) float tile[MR * NR];
    Path::begin();
    for (int64_t jc = 0; jc < n; jc += Path::NC) {
        const int64_t nc = std::min<int64_t>(Path::NC, n - jc);
        for (int64_t pc = 0; pc < k; pc += kstep) {
            const int64_t kc = std::min<int64_t>(kstep, k - pc), kcp = round_up(kc, KU);
            const bool first = pc == 0 && !o.accumulate, last = pc + kc >= k;
            Path::pack_b(kc, kcp, nc, b + pc * rsb + jc * csb, rsb, csb, pb);
            for (int64_t ic = 0, mc = 0; ic < m; ic += mc) {
                mc = m - ic < mc_block + MR ? m - ic : mc_block;
                float* block_sums = o.h ? sums + (partial ? ic : 0) * ld_sums : nullptr;
                Path::pack_a(mc, kc, kcp, a + ic * rsa + pc * csa, rsa, csa, pa);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const int64_t nr = std::min<int64_t>(NR, nc - jr);
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int64_t mr = std::min<int64_t>(MR, mc - ir), i = ic + ir, j = jc + jr;
                        const P* pap = pa + ir * kcp;
                        const P* pbp = pb + jr * kcp;
                        if (o.h) {
                            Path::kernel(kcp, pap, pbp, block_sums + ir * ld_sums + jr, ld_sums, !first, mr);
                        } else if (mr == MR && nr == NR && o.csc == 1) {
                            Path::kernel(kcp, pap, pbp, o.c + i * o.rsc + j, o.rsc, !first, MR);
                        } else {  // edge tile or strided C
                            Path::kernel(kcp, pap, pbp, tile, NR, false, mr);
                            finish_tile(tile, NR, mr, nr, o.c + i * o.rsc + j * o.csc, o.rsc, o.csc, first);
                        }
                    }
                }
                if (o.h && last) round_rows(block_sums, ld_sums, mc, nc, o.h + ic * o.rsh + jc * o.csh, o.rsh, o.csh);
            }
        }
    }
    Path::end();
}

// C = A @ B over a grid of threads (gemm.cpp's gemm_grid), each running `serial` on its block.
template <class Path, class H>
void run(int64_t m, int64_t n, int64_t k, const H* a, int64_t rsa, int64_t csa, const H* b, int64_t rsb,
         int64_t csb, const Out<H>& o, int nthreads) {
    constexpr int MR = Path::MR, NR = Path::NR;
    const int64_t mu = (m + MR - 1) / MR, nu = (n + NR - 1) / NR;
    int nt = (int)std::min<int64_t>(nthreads > 0 ? nthreads : gemm_threads(m, n, k), mu * nu);
    if (nt <= 1) {
        serial<Path>(m, n, k, a, rsa, csa, b, rsb, csb, o);
        return;
    }
    gemm_simd::parallel_tiles(nt, m, n, k, MR, NR, [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
        Out<H> r = o;
        if (r.c) r.c += i0 * o.rsc + j0 * o.csc;
        if (r.h) r.h += i0 * o.rsh + j0 * o.csh;
        serial<Path>(i1 - i0, j1 - j0, k, a + i0 * rsa, rsa, csa, b + j0 * csb, rsb, csb, r);
    });
}

constexpr bool kAvx512 = (tf::isa_compiled_features() & tf::isa::bit(tf::isa::AVX512F)) != 0;

thread_local Buffers thin_buffers;  // float32 B and blocks of A for `thin`

// H values (rows `rs` apart, elements `cs` apart) as float32 in `d`, laid out as the source
// is (row-major, or column-major when only the rows are contiguous); returns d's strides.
template <class H>
std::pair<int64_t, int64_t> block_to_f32(int64_t rows, int64_t cols, const H* s, int64_t rs, int64_t cs, float* d) {
    if (cs != 1 && rs == 1) {
        for (int64_t j = 0; j < cols; ++j) row_to_f32(s + j * cs, rows, d + j * rows);
        return {1, rows};
    }
    for (int64_t i = 0; i < rows; ++i) {
        if (cs == 1) row_to_f32(s + i * rs, cols, d + i * cols);
        else for (int64_t j = 0; j < cols; ++j) d[i * cols + j] = to_f32(s[i * rs + j * cs]);
    }
    return {cols, 1};
}

// A product of at most 16 columns (a classifier layer's x @ W.T, its weight gradient's
// x.T @ g) through the float32 GEMM and its thin-product tiles, over float32 copies of B
// and of 1 MiB blocks of A's rows: the half paths pad n to their 32-column tiles, and on
// Zen 4 (VDPBF16PS) 128x512 @ W(10x512).T ran at a sixth of float32's speed.
template <class H>
void thin(int64_t m, int64_t n, int64_t k, const H* a, int64_t rsa, int64_t csa, const H* b, int64_t rsb,
          int64_t csb, const Out<H>& o, int nthreads) {
    const int64_t mb = std::min(m, std::max<int64_t>((int64_t(1) << 18) / k, 16));
    float* fb = thin_buffers.get<float>(0, k * n);
    float* fa = thin_buffers.get<float>(1, mb * k);
    float* fc = o.h ? thin_buffers.get<float>(2, mb * n) : nullptr;
    const auto [rsb32, csb32] = block_to_f32(k, n, b, rsb, csb, fb);
    for (int64_t i0 = 0; i0 < m; i0 += mb) {
        const int64_t rows = std::min(mb, m - i0);
        const auto [rsa32, csa32] = block_to_f32(rows, k, a + i0 * rsa, rsa, csa, fa);
        if (o.h) {
            gemm<float>(rows, n, k, fa, rsa32, csa32, fb, rsb32, csb32, fc, n, 1, false, nthreads);
            round_rows(fc, n, rows, n, o.h + i0 * o.rsh, o.rsh, o.csh);
        } else {
            gemm<float>(rows, n, k, fa, rsa32, csa32, fb, rsb32, csb32, o.c + i0 * o.rsc, o.rsc, o.csc,
                        o.accumulate, nthreads);
        }
    }
}

template <class H>
void dispatch(int64_t m, int64_t n, int64_t k, const H* a, int64_t rsa, int64_t csa, const H* b, int64_t rsb,
              int64_t csb, const Out<H>& o, int nthreads) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {  // an empty sum: zeros (or C unchanged when accumulating)
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                if (o.h) o.h[i * o.rsh + j * o.csh] = H{0};
                else if (!o.accumulate) o.c[i * o.rsc + j * o.csc] = 0.f;
            }
        return;
    }
    if (n <= 16) return thin(m, n, k, a, rsa, csa, b, rsb, csb, o, nthreads);
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<H, bhalf>) {
        static const std::string path = tf::isa::half_gemm_path(true, kAvx512);
        if (path == "amx-bf16") return run<AmxBf16>(m, n, k, a, rsa, csa, b, rsb, csb, o, nthreads);
        if (path == "avx512-bf16") return run<DpBf16>(m, n, k, a, rsa, csa, b, rsb, csb, o, nthreads);
    }
#endif
    run<F32Pack<H>>(m, n, k, a, rsa, csa, b, rsb, csb, o, nthreads);
}

}  // namespace

template <class H>
void gemm_half(int64_t m, int64_t n, int64_t k, const H* a, int64_t rsa, int64_t csa, const H* b, int64_t rsb,
               int64_t csb, float* c, int64_t rsc, int64_t csc, bool accumulate, int nthreads) {
    Out<H> o;
    o.c = c, o.rsc = rsc, o.csc = csc, o.accumulate = accumulate;
    dispatch(m, n, k, a, rsa, csa, b, rsb, csb, o, nthreads);
}

template <class H>
void gemm_half(int64_t m, int64_t n, int64_t k, const H* a, int64_t rsa, int64_t csa, const H* b, int64_t rsb,
               int64_t csb, H* c, int64_t rsc, int64_t csc, int nthreads) {
    Out<H> o;
    o.h = c, o.rsh = rsc, o.csh = csc;
    dispatch(m, n, k, a, rsa, csa, b, rsb, csb, o, nthreads);
}

template <class H> const char* gemm_half_path() {
    return tf::isa::half_gemm_path(std::is_same_v<H, bhalf>, kAvx512);
}

#define TF_GEMM_HALF(H)                                                                                          \
    template void gemm_half<H>(int64_t, int64_t, int64_t, const H*, int64_t, int64_t, const H*, int64_t, int64_t, \
                               float*, int64_t, int64_t, bool, int);                                             \
    template void gemm_half<H>(int64_t, int64_t, int64_t, const H*, int64_t, int64_t, const H*, int64_t, int64_t, \
                               H*, int64_t, int64_t, int);                                                       \
    template const char* gemm_half_path<H>();
TF_GEMM_HALF(tf::half)
TF_GEMM_HALF(tf::bhalf)
#undef TF_GEMM_HALF

TINYFW_ISA_END
}  // namespace tinyfw
