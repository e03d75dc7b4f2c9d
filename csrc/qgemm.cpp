// The int8 GEMM (qgemm.h): weight packing with row sums, the blocking driver over the
// paths of qgemm_paths.h, and the requantising epilogue applied to each finished int32 tile.
//
// The epilogue is ref_quant's float32 sequence, operation by operation; fused
// multiply-adds would change its roundings, so this file is compiled without contraction.
#pragma GCC optimize("fp-contract=off")

#include "qgemm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <immintrin.h>
#include <cstring>
#include <stdexcept>
#include <string>

#include "gemm.h"
#include "gemm_simd.h"
#include "qgemm_paths.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace {

using namespace qgemm_paths;

constexpr uint64_t kCompiled = tf::isa_compiled_features();
enum Path { kAmx = 0, kVnni512 = 1, kAvxVnni = 2, kAvx2 = 3, kScalar = 4 };

int path_id(const char* name) {
    const std::string s = name;
    if (s == "amx-int8") return kAmx;
    if (s == "avx512-vnni") return kVnni512;
    if (s == "avx-vnni") return kAvxVnni;
    if (s == "avx2") return kAvx2;
    return kScalar;
}

constexpr int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

thread_local gemm_simd::Buffers qbuffers;  // packed A, int32 tile

// One row of the epilogue: columns [0, nr) of the int32 sums t, with the row sums rs,
// multipliers mul and bias (may be null) of those columns, into y (float output) or q.
struct RowEpi {
    int32_t a_zp;
    const QEpilogue& e;
    float lo, hi;  // y * inv_out clamped to these integers first (see epilogue)

    void scalar(const int32_t* t, const int32_t* rs, const float* mul, const float* bias, int64_t j, int64_t nr,
                float* y, uint8_t* q) const {
        for (; j < nr; ++j) {
            // modulo 2^32: the exact sum whenever it fits int32 (qgemm.h)
            const uint32_t acc = uint32_t(t[j]) - uint32_t(a_zp) * uint32_t(rs[j]);
            float v = float(int32_t(acc)) * mul[j];
            if (bias) v = v + bias[j];
            if (e.relu) v = v < 0.f ? 0.f : v;  // np.maximum(v, 0): -0.0 and NaN stay
            if (y) {
                y[j] = v;
                continue;
            }
            float s = v * e.inv_out;
            s = s < lo ? lo : (s > hi ? hi : s);
            int32_t c = int32_t(std::lrintf(s)) + e.out_zp;  // lrintf: half to even (np.rint)
            q[j] = uint8_t(c < 0 ? 0 : (c > 255 ? 255 : c));
        }
    }

    void row(const int32_t* t, const int32_t* rs, const float* mul, const float* bias, int64_t nr, float* y,
             uint8_t* q) const {
        int64_t j = 0;
#if defined(__AVX512F__)
        // the same operations 16 lanes at a time (conversions round to nearest even; relu
        // blends on v < 0 as the scalar code, which maxps would not do for NaN)
        const __m512i zp = _mm512_set1_epi32(a_zp), ozp = _mm512_set1_epi32(e.out_zp);
        const __m512 zero = _mm512_setzero_ps(), inv = _mm512_set1_ps(e.inv_out), vlo = _mm512_set1_ps(lo),
                     vhi = _mm512_set1_ps(hi);
        for (; j + 16 <= nr; j += 16) {
            const __m512i acc = _mm512_sub_epi32(_mm512_loadu_si512(t + j),
                                                 _mm512_mullo_epi32(zp, _mm512_loadu_si512(rs + j)));
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(mul + j));
            if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + j));
            if (e.relu) v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, zero);
            if (y) {
                _mm512_storeu_ps(y + j, v);
                continue;
            }
            const __m512 s = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, inv), vlo), vhi);
            __m512i c = _mm512_add_epi32(_mm512_cvtps_epi32(s), ozp);
            c = _mm512_min_epi32(_mm512_max_epi32(c, _mm512_setzero_si512()), _mm512_set1_epi32(255));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(q + j), _mm512_cvtepi32_epi8(c));
        }
#elif defined(__AVX2__)
        const __m256i zp = _mm256_set1_epi32(a_zp), ozp = _mm256_set1_epi32(e.out_zp);
        const __m256 zero = _mm256_setzero_ps(), inv = _mm256_set1_ps(e.inv_out), vlo = _mm256_set1_ps(lo),
                     vhi = _mm256_set1_ps(hi);
        for (; j + 8 <= nr; j += 8) {
            const __m256i acc = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + j)),
                                                 _mm256_mullo_epi32(zp, _mm256_loadu_si256(
                                                                            reinterpret_cast<const __m256i*>(rs + j))));
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(mul + j));
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j));
            if (e.relu) v = _mm256_blendv_ps(v, zero, _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
            if (y) {
                _mm256_storeu_ps(y + j, v);
                continue;
            }
            const __m256 s = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v, inv), vlo), vhi);
            __m256i c = _mm256_add_epi32(_mm256_cvtps_epi32(s), ozp);
            c = _mm256_min_epi32(_mm256_max_epi32(c, _mm256_setzero_si256()), _mm256_set1_epi32(255));
            const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
            _mm_storel_epi64(reinterpret_cast<__m128i*>(q + j), _mm_packus_epi16(w16, w16));
        }
#endif
        scalar(t, rs, mul, bias, j, nr, y, q);
    }
};

// The epilogue of rows [i0, i0 + mr) and columns [j0, j0 + nr) from t (rows ldt apart).
void epilogue(const int32_t* t, int64_t ldt, int64_t i0, int64_t j0, int64_t mr, int64_t nr, const QWeights& w,
              int32_t a_zp, const QEpilogue& e, const QOut& o) {
    // rint(y * inv_out) + out_zp clamped to 0..255 is unchanged by first clamping y * inv_out
    // to integers beyond that range (lo, hi), which keeps the conversion to int in range
    const RowEpi re{a_zp, e, float(-256 - int64_t(e.out_zp)), float(511 - int64_t(e.out_zp))};
    const int32_t* rs = w.rowsum.get() + j0;
    const float* mul = e.mul + j0;
    const float* bias = e.bias ? e.bias + j0 : nullptr;
    // the offset of row i0 + i, stepped row by row (a division per row cost more than the
    // row's epilogue)
    int64_t blk = 0, rem = o.row0 + i0;
    if (o.block_rows > 0) blk = rem / o.block_rows, rem %= o.block_rows;
    auto row_offset = [&o, &blk, &rem] {
        const int64_t off = blk * o.block_stride + rem * o.rs;
        if (++rem == o.block_rows) rem = 0, ++blk;
        return off;
    };
    if (o.cs == 1) {
        for (int64_t i = 0; i < mr; ++i, t += ldt) {
            const int64_t off = row_offset() + j0;
            if (o.f32) re.row(t, rs, mul, bias, nr, o.f32 + off, nullptr);
            else re.row(t, rs, mul, bias, nr, nullptr, o.u8 + off);
        }
        return;
    }
    // columns apart in memory (an NCHW output: rs 1, cs the plane size): the tile's rows
    // are finished into y / q first, then scattered a row at a time
    alignas(64) float y[64 * 64];
    alignas(64) uint8_t q[64 * 64];
    for (int64_t i = 0; i < mr; ++i, t += ldt)
        re.row(t, rs, mul, bias, nr, o.f32 ? y + i * 64 : nullptr, o.f32 ? nullptr : q + i * 64);
    // (locals, not o's fields: a byte store may alias them, which reloads them every store)
    const int64_t cs = o.cs;
    for (int64_t i = 0; i < mr; ++i) {
        const int64_t off = row_offset() + j0 * cs;
        if (float* d = o.f32 ? o.f32 + off : nullptr) {
            const float* src = y + i * 64;
            for (int64_t j = 0; j < nr; ++j, d += cs) *d = src[j];
        } else {
            uint8_t* du = o.u8 + off;
            const uint8_t* src = q + i * 64;
            for (int64_t j = 0; j < nr; ++j, du += cs) *du = src[j];
        }
    }
}

template <class P>
void pack_panels(const int8_t* w, int64_t rsw, int64_t csw, QWeights& out, int64_t npanels) {
    auto* d = reinterpret_cast<typename P::BE*>(out.data.get());
    const int64_t elems = 16 * out.kp;
#pragma omp parallel for schedule(static) if (out.n * out.k > (1 << 16) && !omp_in_parallel())
    for (int64_t p = 0; p < npanels; ++p) P::pack_b(w, rsw, csw, out.n, out.k, out.kp, p, d + p * elems);
}

template <class P>
void pack(const int8_t* w, int64_t rsw, int64_t csw, int64_t n, int64_t k, QWeights& out) {
    out.kp = round_up(std::max<int64_t>(k, 1), P::KU);
    const int64_t npanels = round_up(n, P::NR) / 16;
    out.panel_bytes = 16 * out.kp * int64_t(sizeof(typename P::BE));
    out.data.reset(new uint8_t[npanels * out.panel_bytes]);
    pack_panels<P>(w, rsw, csw, out, npanels);
}

template <class P>
void serial(int64_t m, const uint8_t* a, int64_t rsa, int64_t csa, int32_t a_zp, const QWeights& w, int64_t j0,
            int64_t j1, const QEpilogue& e, const QOut& o) {
    using AE = typename P::AE;
    using BE = typename P::BE;
    constexpr int MR = P::MR, NR = P::NR;
    static_assert(MR <= 64 && NR <= 64, "epilogue() finishes a tile in 64 x 64 buffers");
    const int64_t kp = w.kp;
    // rows of A per packed block: its panels ~256 KiB of L2, at least one panel
    const int64_t mc_max = std::max<int64_t>(MR, std::min<int64_t>(round_up(m, MR),
                                                                   (262144 / (kp * sizeof(AE))) / MR * MR));
    AE* pa = qbuffers.get<AE>(0, mc_max * kp);
    int32_t* tile = qbuffers.get<int32_t>(1, MR * NR);
    const BE* pb0 = reinterpret_cast<const BE*>(w.data.get());
    const int64_t pstride = 16 * kp;  // elements from one B panel to the next
    P::begin();
    for (int64_t ic = 0; ic < m; ic += mc_max) {
        const int64_t mc = std::min<int64_t>(mc_max, m - ic);
        P::pack_a(mc, w.k, kp, a + ic * rsa, rsa, csa, pa);
        for (int64_t jr = j0; jr < j1; jr += NR) {
            const BE* pb = pb0 + (jr / 16) * pstride;
            for (int64_t ir = 0; ir < mc; ir += MR) {
                P::kernel(kp, pa + ir * kp, pb, pstride, tile);
                epilogue(tile, NR, ic + ir, jr, std::min<int64_t>(MR, mc - ir), std::min<int64_t>(NR, j1 - jr), w,
                         a_zp, e, o);
            }
        }
    }
    P::end();
}

template <class P>
void run(int64_t m, const uint8_t* a, int64_t rsa, int64_t csa, int32_t a_zp, const QWeights& w, const QEpilogue& e,
         const QOut& o, int nthreads) {
    constexpr int MR = P::MR, NR = P::NR;
    const int64_t n = w.n, mu = (m + MR - 1) / MR, nu = (n + NR - 1) / NR;
    // an int8 product costs about a quarter of a float32 one: size the thread count so
    int nt = nthreads > 0 ? nthreads : gemm_threads(m, n, std::max<int64_t>(1, w.k / 4));
    nt = (int)std::min<int64_t>(nt, mu * nu);
    if (nt <= 1) return serial<P>(m, a, rsa, csa, a_zp, w, 0, n, e, o);
    gemm_simd::parallel_tiles(nt, m, n, w.k, MR, NR, [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
        QOut r = o;
        r.row0 += i0;
        serial<P>(i1 - i0, a + i0 * rsa, rsa, csa, a_zp, w, j0, j1, e, r);
    });
}

}  // namespace

const char* qgemm_path() { return tf::isa::int8_gemm_path(kCompiled); }

// Every path this level compiles, by id; F is called as f(Path{}).
template <class F> void with_path(int id, F&& f) {
#if defined(__AVX512F__)
    if (id == kAmx) return f(AmxInt8{});
    if (id == kVnni512) return f(Avx512Vnni{});
#endif
#if defined(__AVX2__)
    if (id == kAvxVnni) return f(AvxVnni{});
    if (id == kAvx2) return f(Avx2{});
#endif
    f(Scalar{});
}

void qpack_weights(const int8_t* w, int64_t rsw, int64_t csw, int64_t n, int64_t k, QWeights& out) {
    out.n = n, out.k = k, out.path = path_id(qgemm_path());
    with_path(out.path, [&](auto p) { pack<decltype(p)>(w, rsw, csw, n, k, out); });
    out.rowsum.reset(new int32_t[std::max<int64_t>(n, 1)]);
    for (int64_t j = 0; j < n; ++j) {
        uint32_t s = 0;  // modulo 2^32, as the sums it is subtracted from
        const int8_t* r = w + j * rsw;
        if (csw == 1)
            for (int64_t t = 0; t < k; ++t) s += uint32_t(int32_t(r[t]));
        else
            for (int64_t t = 0; t < k; ++t) s += uint32_t(int32_t(r[t * csw]));
        out.rowsum[j] = int32_t(s);
    }
}

void qgemm(int64_t m, const uint8_t* a, int64_t rsa, int64_t csa, int32_t a_zp, const QWeights& w,
           const QEpilogue& e, const QOut& o, int nthreads) {
    if (m <= 0 || w.n <= 0) return;
    // the path the weights were packed for (a path forced in between does not apply to them)
    with_path(w.path, [&](auto p) { run<decltype(p)>(m, a, rsa, csa, a_zp, w, e, o, nthreads); });
}

TINYFW_ISA_END
}  // namespace tinyfw
