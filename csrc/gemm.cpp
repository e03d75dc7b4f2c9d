// GEMM: cache-blocked (MC x KC x NC), packed A and B panels, a register-tiled SIMD
// micro-kernel (AVX-512 or AVX2+FMA intrinsics, a scalar fallback for portable builds),
// OpenMP across cores.  The `matmul` primitive built on it lives in matmul.cpp.
//
// Loop nest (the classic Goto/BLIS order): for each NC-wide column block of B, for each
// KC-deep slice, B's slice is packed into NR-wide panels that stay in L3/L2; for each
// MC-high row block of A, A is packed into MR-high panels that stay in L2; the
// micro-kernel then runs MR x NR tiles with the B panel in L1, streaming A.
#include "gemm.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <type_traits>

#include "gemm_simd.h"
#include "nn_common.h"
#include "transpose4x4.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace {

using namespace gemm_simd;  // Simd, Blocking, micro_kernel (gemm_simd.h)

// Pack rows [0, mc) x cols [0, kc) of A into MR-high panels, zero-padding the last one.
template <typename T>
void pack_a(int64_t mc, int64_t kc, const T* a, int64_t rsa, int64_t csa, T* dst) {
    constexpr int MR = Blocking<T>::MR;
    for (int64_t i0 = 0; i0 < mc; i0 += MR) {
        const int64_t mr = std::min<int64_t>(MR, mc - i0);
        const T* src = a + i0 * rsa;
        if (mr == MR && csa == 1) {  // row-major A: the panel is a transpose of MR rows
            tf::transpose_into_panel(MR, kc, src, rsa, dst, MR);
        } else {
            for (int64_t p = 0; p < kc; ++p) {
                int i = 0;
                for (; i < mr; ++i) dst[p * MR + i] = src[i * rsa + p * csa];
                for (; i < MR; ++i) dst[p * MR + i] = T(0);
            }
        }
        dst += MR * kc;
    }
}

// Pack rows [0, kc) x cols [0, nc) of B into NR-wide panels, zero-padding the last one.
template <typename T>
void pack_b(int64_t kc, int64_t nc, const T* b, int64_t rsb, int64_t csb, T* dst) {
    constexpr int NR = Blocking<T>::NR;
    for (int64_t j0 = 0; j0 < nc; j0 += NR) {
        const int64_t nr = std::min<int64_t>(NR, nc - j0);
        const T* src = b + j0 * csb;
        if (nr == NR && csb == 1) {
            for (int64_t p = 0; p < kc; ++p) std::memcpy(dst + p * NR, src + p * rsb, NR * sizeof(T));
        } else if (nr == NR && rsb == 1) {  // transposed B (x @ W.T's weight): columns contiguous
            tf::transpose_into_panel(NR, kc, src, csb, dst, NR);
        } else {
            for (int64_t p = 0; p < kc; ++p) {
                int j = 0;
                for (; j < nr; ++j) dst[p * NR + j] = src[j * csb + p * rsb];
                for (; j < NR; ++j) dst[p * NR + j] = T(0);
            }
        }
        dst += NR * kc;
    }
}

thread_local Buffers tls_buffers;  // gemm_simd.h


template <typename T>
void gemm_serial(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa,
                 const T* b, int64_t rsb, int64_t csb, T* c, int64_t rsc, int64_t csc,
                 bool accumulate, bool big_c) {
    using BL = Blocking<T>;
    constexpr int MR = BL::MR, NR = BL::NR;
    // k in equal slices of at most KC: 784 as 4 x 196 rather than 3 x 256 + 16, whose thin
    // last slice would pay a full C load/store per tile for 16 FMA steps (slices above KC,
    // e.g. 288, overfill L1 with the B micro-panel and the streamed A panel: 40% slower).
    // Every slice loads and stores all of C: a C larger than L2 makes that a sweep through
    // L3 per slice, which costs more than a B micro-panel streamed from L2, so such a C
    // (`big_c`, judged by the caller on the whole product, so that the slices and the
    // result do not depend on the thread count) gets slices up to KC_BIG deep
    // (interleaved, 1 thread, SPR: 2048^3 0.88 -> 0.98x numpy, 8192x784 @ 784x512 0.95 ->
    // 1.04x; 1024^3, whose 4 MiB C stays, unchanged)
    const int64_t KC = big_c ? BL::KC_BIG : BL::KC, NC = big_c ? BL::NC_BIG : BL::NC;
    const int64_t kchunks = (k + KC - 1) / KC;
    const int64_t kstep = (k + kchunks - 1) / kchunks;
    const int64_t kc_max = kstep;
    const int64_t mc_max = std::min<int64_t>(BL::MC, (m + MR - 1) / MR * MR);
    const int64_t nc_max = std::min<int64_t>(NC, (n + NR - 1) / NR * NR);
    T* pa = tls_buffers.get<T>(0, mc_max * kc_max);
    T* pb = tls_buffers.get<T>(1, nc_max * kc_max);
    alignas(64) T tile[MR * NR];
    for (int64_t jc = 0; jc < n; jc += NC) {
        const int64_t nc = std::min<int64_t>(NC, n - jc);
        for (int64_t pc = 0; pc < k; pc += kstep) {
            const int64_t kc = std::min<int64_t>(kstep, k - pc);
            const bool acc = accumulate || pc > 0;
            // with one A panel each B panel is read once: a row-major B's full panels are
            // read in place (packing 128 x 512 of x for g(128 x 10).T @ x cost more than the
            // product); only a last, partial panel is packed (zero-padded)
            const bool b_in_place = m <= MR && csb == 1;
            if (!b_in_place) pack_b(kc, nc, b + pc * rsb + jc * csb, rsb, csb, pb);
            else if (nc % NR) pack_b(kc, nc % NR, b + pc * rsb + jc + nc / NR * NR, rsb, csb, pb);
            for (int64_t ic = 0; ic < m; ic += BL::MC) {
                const int64_t mc = std::min<int64_t>(BL::MC, m - ic);
                // A row-major A met by at most 16 B panels is read in place, each panel's
                // MR rows straight from A's rows (only a last, partial panel is packed: the
                // kernel runs an even number of rows and would read one past A's end).
                // Packing cost a read and a write of A that too few tiles amortised
                // (1 thread, SPR, against the packing build, alternated: 256x256 @ 256x64
                // (eager attention's P @ V) 131 -> 160 GFLOP/s, 1024x512 @ 512x32 105 ->
                // 149, 128x784 @ 784x64 127 -> 146); with 64 panels or more (2048^3,
                // 512x1024 @ 1024x4096) in place lost 2-3%.  It is kept to 64 deep and
                // more, where it was measured; a shallower panel is small and cheap to pack.
                const bool a_in_place = csa == 1 && nc <= 16 * NR && kc >= 64;
                const int64_t mfull = a_in_place ? mc / MR * MR : 0;
                if (mfull < mc) pack_a(mc - mfull, kc, a + (ic + mfull) * rsa + pc * csa, rsa, csa, pa);
                auto tile_at = [&](int64_t jr, int64_t ir) {
                    const int64_t nr = std::min<int64_t>(NR, nc - jr);
                    const bool in_place = b_in_place && nr == NR;
                    const T* pbp = in_place ? b + pc * rsb + jc + jr : b_in_place ? pb : pb + jr * kc;
                    const int64_t brs = in_place ? rsb : NR;
                    const int64_t mr = std::min<int64_t>(MR, mc - ir);
                    T* cp = c + (ic + ir) * rsc + (jc + jr) * csc;
                    // the strides as literals in each call, and the kernels inlined here
                    // (one function for both: at four call sites GCC called them out of line
                    // with runtime strides, dx g(128x10) @ W(10x512) 11.3 -> 12.6 us)
                    auto kernel = [&](T* dst, int64_t ldd, bool ac) __attribute__((noinline, flatten)) {
                        if (ir < mfull)
                            micro_kernel_rows<T>(kc, a + (ic + ir) * rsa + pc, rsa, 1, pbp, dst, ldd, ac, brs, mr);
                        else
                            micro_kernel_rows<T>(kc, pa + (ir - mfull) * kc, 1, MR, pbp, dst, ldd, ac, brs, mr);
                    };
                    if (nr == NR && csc == 1) {
                        // (a last panel of a few rows too: m = 10 or 128 = 10 x 12 + 8
                        // went through the scratch tile, element by element, for the
                        // MLP's dW / dx products)
                        kernel(cp, rsc, acc);
                    } else {
                        // edge columns or strided C: compute into a scratch tile
                        kernel(tile, NR, false);
                        if (rsc == 1) {
                            // a column-major C (a thin product computed transposed, C^T =
                            // B^T A^T, e.g. x(128x512).T @ g(128x10)): each column of the
                            // tile is a run of C's memory (14.6 -> 12.0 us, SPR, 1 thread)
                            for (int64_t j = 0; j < nr; ++j) {
                                T* dst = cp + j * csc;
                                if (acc) for (int64_t i = 0; i < mr; ++i) dst[i] += tile[i * NR + j];
                                else for (int64_t i = 0; i < mr; ++i) dst[i] = tile[i * NR + j];
                            }
                        } else {
                            for (int64_t i = 0; i < mr; ++i)
                                for (int64_t j = 0; j < nr; ++j) {
                                    T& dst = cp[i * rsc + j * csc];
                                    dst = acc ? dst + tile[i * NR + j] : tile[i * NR + j];
                                }
                        }
                    }
                };
                // Tiles along C's rows when the packed B block stays in L2 (256 KiB, half
                // of Zen 3's): each of the MR rows is then written as one sequential stream
                // that the prefetchers follow, where tiles down a column strip store two
                // lines per row and jump a row stride (1 thread, SPR: dx g(128x10) @
                // W(10x512) 12.1 -> 11.2 us, 1024x16 @ 16x1024 417 -> 257 us).  A larger B
                // block would be re-read from L3 for every tile (128x256 @ 256x8192: 1.3x
                // slower so), so the column strips stay there.
                if (kc * nc * (int64_t)sizeof(T) <= (int64_t(256) << 10)) {
                    for (int64_t ir = 0; ir < mc; ir += MR)
                        for (int64_t jr = 0; jr < nc; jr += NR) tile_at(jr, ir);
                } else {
                    for (int64_t jr = 0; jr < nc; jr += NR)
                        for (int64_t ir = 0; ir < mc; ir += MR) tile_at(jr, ir);
                }
            }
        }
    }
}

// ---- thin products: n of at most kThinN columns, dotted along k -------------------------
// With a few columns the packed path wastes most of each NR-wide tile and spends as long
// packing A as multiplying.  Here A's rows (contiguous along k) are read in place and
// dotted with B's columns (contiguous along k, or packed so: n x k is small): an R x C
// block of dot products keeps R*C vector accumulators for R + C loads per R*C FMAs.
constexpr int64_t kThinN = 12;

template <typename T, int R, int C>
inline void dot_tile(int64_t k, const T* __restrict a, int64_t rsa, const T* __restrict bt,
                     int64_t ldb, T* c, int64_t rsc, int64_t csc, bool acc) {
    using S = Simd<T>;
    using V = typename S::V;
    constexpr int W = S::W;
    V r[R][C];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 5
        for (int j = 0; j < C; ++j) r[i][j] = S::zero();
    int64_t p = 0;
    for (; p + W <= k; p += W) {
        V bv[C];
#pragma GCC unroll 5
        for (int j = 0; j < C; ++j) bv[j] = S::load(bt + j * ldb + p);
#pragma GCC unroll 4
        for (int i = 0; i < R; ++i) {
            const V av = S::load(a + i * rsa + p);
#pragma GCC unroll 5
            for (int j = 0; j < C; ++j) r[i][j] = S::fma(av, bv[j], r[i][j]);
        }
    }
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j) {
            T s = S::hsum(r[i][j]);
            for (int64_t q = p; q < k; ++q) s += a[i * rsa + q] * bt[j * ldb + q];
            T& d = c[i * rsc + j * csc];
            d = acc ? d + s : s;
        }
}

// R rows of C, all n columns: tiles of 3 columns, never leaving a single one (4 = 2 + 2).
template <typename T, int R>
void dot_rows(int64_t k, int64_t n, const T* a, int64_t rsa, const T* bt, int64_t ldb, T* c,
              int64_t rsc, int64_t csc, bool acc) {
    // 32 vector registers (AVX-512) hold an R x 5 tile: A's rows are then read once per 5
    // columns, not per 3 (n = 10: twice instead of four times).  128x512 @ 512x10, SPR, 1
    // thread: 19.2 -> 13.7 us; 24.6 -> 15.4 us when A's rows do not start on a cache line
    // (a numpy array over 128 KiB starts 16 bytes into its page: every load splits).
    // (Copying such rows to an aligned scratch first cost more than it saved, with 3- and
    // 5-column tiles alike.)
    constexpr bool wide = sizeof(typename Simd<T>::V) == 64;
    for (int64_t j = 0; j < n;) {
        const int64_t left = n - j;
        if (wide && left >= 5 && left != 6) {
            dot_tile<T, R, 5>(k, a, rsa, bt + j * ldb, ldb, c + j * csc, rsc, csc, acc);
            j += 5;
        } else if (left >= 5 || left == 3) {
            dot_tile<T, R, 3>(k, a, rsa, bt + j * ldb, ldb, c + j * csc, rsc, csc, acc);
            j += 3;
        } else if (left >= 2) {
            dot_tile<T, R, 2>(k, a, rsa, bt + j * ldb, ldb, c + j * csc, rsc, csc, acc);
            j += 2;
        } else {
            dot_tile<T, R, 1>(k, a, rsa, bt + j * ldb, ldb, c + j * csc, rsc, csc, acc);
            j += 1;
        }
    }
}

// C = (or +=) A @ B for A with unit column stride and n <= kThinN.  Row blocks of 4 are
// split across threads; every row is computed by the same code whatever the split, so the
// result does not depend on the thread count.
template <typename T>
void gemm_thin(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, const T* b,
               int64_t rsb, int64_t csb, T* c, int64_t rsc, int64_t csc, bool acc, int nt) {
    const bool transpose = rsb != 1;  // B's columns are not contiguous: transpose it (n x k)
    const int64_t blocks = (m + 3) / 4;
    // the transposed B's rows padded to whole vectors: each starts on a cache line
    const int64_t ld = (k + Simd<T>::W - 1) / Simd<T>::W * Simd<T>::W;
    RegionError err;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const T* bt = b;
        int64_t ldb = csb;
        bool ok = true;
        if (transpose) {
            // each thread its own copy (n x k is small): no cache lines written by one core
            // and read by the other on every call
            T* buf = nullptr;
            try {
                buf = tls_buffers.get<T>(1, n * ld);
            } catch (...) {
                err.record();
                ok = false;
            }
            if (ok) {
                if (csb == 1) tf::transpose_into_panel(k, n, b, rsb, buf, ld);  // buf[j ld + p] = b[p rsb + j]
                else
                    for (int64_t p = 0; p < k; ++p)
                        for (int64_t j = 0; j < n; ++j) buf[j * ld + p] = b[p * rsb + j * csb];
            }
            bt = buf;
            ldb = ld;
        }
        // every thread reaches the worksharing loop (OpenMP requires it); one whose buffer
        // failed skips its rows, and the error is rethrown once the region has ended
#pragma omp for schedule(static) nowait
        for (int64_t ib = 0; ib < blocks; ++ib) {
            if (!ok) continue;
            const int64_t i = ib * 4;
            const T* ai = a + i * rsa;
            T* ci = c + i * rsc;
            switch (std::min<int64_t>(4, m - i)) {
                case 4: dot_rows<T, 4>(k, n, ai, rsa, bt, ldb, ci, rsc, csc, acc); break;
                case 3: dot_rows<T, 3>(k, n, ai, rsa, bt, ldb, ci, rsc, csc, acc); break;
                case 2: dot_rows<T, 2>(k, n, ai, rsa, bt, ldb, ci, rsc, csc, acc); break;
                default: dot_rows<T, 1>(k, n, ai, rsa, bt, ldb, ci, rsc, csc, acc); break;
            }
        }
    }
    err.rethrow();
}

// The least work (flops) that pays for one more thread in gemm_threads.
constexpr double kMinWorkPerThread = 2.5e5;


}  // namespace

int gemm_threads(int64_t m, int64_t n, int64_t k) {
    if (omp_in_parallel()) return 1;
    const int maxt = omp_get_max_threads();
    // A parallel region costs a few microseconds when the pool is spinning (as it is between
    // the products of a training step): below ~0.25 MFLOP (~10 us) per thread it costs more
    // than it saves.  The thin products of an MLP's last layer (128x512 @ 512x10 and its
    // backward ones, ~1.3 MFLOP) are above that and split across threads.
    const double work = 2.0 * (double)m * (double)n * (double)k;
    const int by_work = (int)std::max(1.0, work / kMinWorkPerThread);
    return std::max(1, std::min(maxt, by_work));
}

int gemm_tile_rows() { return Blocking<float>::MR; }
int gemm_tile_cols() { return Blocking<float>::NR; }

void gemm_grid(int nt, int64_t m, int64_t n, int64_t k, int64_t mu, int64_t nu, int& tm, int& tn) {
    // A tm x tn grid of C blocks, one per thread.  Each thread packs its own rows of A and
    // columns of B: a packed volume of k * (m * tn + n * tm), subject to every thread
    // having at least one tile.  A grid that splits C's columns (tn > 1) makes every thread
    // write a part of every row of C, next to the lines another core writes; for a shallow
    // product, whose time is mostly C's stores, that cost more than the packing saved
    // (Zen 4, 2 threads, runs of one process: 512x512 @ 512x10 1.03x one thread's speed
    // with the columns split, 1.95x with the rows; k = 16: 1.16 / 1.91; k = 32: 1.70 /
    // 1.93; in other runs both ~2x), so such a grid is charged C's size as well.
    tm = 1, tn = nt;
    double best = -1;
    for (int d = 1; d <= nt; ++d) {
        if (nt % d) continue;
        const int e = nt / d;
        if (d > mu || e > nu) continue;
        const double cost = (double)k * ((double)m * e + (double)n * d) + (e > 1 ? (double)m * (double)n : 0.0);
        if (best < 0 || cost < best) best = cost, tm = d, tn = e;
    }
    if (best < 0) {  // no exact factorisation fits: fall back to splitting the larger side
        if (mu >= nu) tm = (int)std::min<int64_t>(nt, mu), tn = 1;
        else tm = 1, tn = (int)std::min<int64_t>(nt, nu);
    }
}

template <typename T>
void gemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b,
          int64_t rsb, int64_t csb, T* c, int64_t rsc, int64_t csc, bool accumulate,
          int nthreads) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (!accumulate)
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) c[i * rsc + j * csc] = T(0);
        return;
    }
    int nt = nthreads > 0 ? nthreads : gemm_threads(m, n, k);
    constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
    if (n <= kThinN && m >= n && k >= 4 * Simd<T>::W) {
        if (csa == 1) {
            gemm_thin(m, n, k, a, rsa, b, rsb, csb, c, rsc, csc, accumulate,
                      (int)std::min<int64_t>(nt, (m + 3) / 4));
            return;
        }
        // A stored column-major (a transposed activation in a weight gradient): C^T = B^T A^T
        // puts the thin side on the MR rows, whose padding wastes far less than NR's
        const int64_t pad_n = (n + NR - 1) / NR * NR, pad_nt = (n + MR - 1) / MR * MR;
        if (rsa == 1 && pad_nt * ((m + NR - 1) / NR * NR) < pad_n * ((m + MR - 1) / MR * MR)) {
            gemm<T>(n, m, k, b, csb, rsb, a, csa, rsa, c, csc, rsc, accumulate, nthreads);
            return;
        }
    }
    const int64_t mu = (m + MR - 1) / MR, nu = (n + NR - 1) / NR;
    nt = (int)std::min<int64_t>(nt, mu * nu);
    const bool big_c = double(m) * double(n) * double(sizeof(T)) > double(Blocking<T>::kBigC);
    if (nt <= 1) {
        gemm_serial(m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, csc, accumulate, big_c);
        return;
    }
    gemm_simd::parallel_tiles(nt, m, n, k, MR, NR, [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
        gemm_serial(i1 - i0, j1 - j0, k, a + i0 * rsa, rsa, csa, b + j0 * csb, rsb, csb,
                    c + i0 * rsc + j0 * csc, rsc, csc, accumulate, big_c);
    });
}

template void gemm<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t,
                          const float*, int64_t, int64_t, float*, int64_t, int64_t, bool, int);
template void gemm<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                           const double*, int64_t, int64_t, double*, int64_t, int64_t, bool, int);

TINYFW_ISA_END
}  // namespace tinyfw
