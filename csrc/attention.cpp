// Fused scaled dot-product attention, forward and backward (semantics and formulas:
// tinyfw/backend/ref_attention.py).  Arrays are 4-d (B, H, L, E) with any strides.
//
// Forward (flash-attention style): a panel of MR query rows sweeps the keys in blocks of
// kBlock; each block's scores (MR x kBlock, in L1) come from the GEMM micro-kernel
// (gemm_simd.h) over packed K, the softmax is kept online (running row max m and sum l,
// the output rescaled when m grows), and P @ V is accumulated by the same micro-kernel
// reading P in place.  The L x S scores are never stored; only out and the row
// logsumexp lse = m + log(l) are written.
//
// Backward (FlashAttention-2's order, per batch-head): for each key block, every query
// block recomputes P = exp(s - lse) from the saved lse and dP = g Vᵀ, forms
// dS = P * (dP - D) with D = rowsum(g * out), and accumulates dV += Pᵀ g and
// dK += dSᵀ Q for the key block and dQ += dS K for all queries: five small GEMMs on tiles
// that stay in cache.
//
// Threads: the forward runs batch-heads x query panels, the backward batch-heads (each
// owns its dQ/dK/dV, so no reduction between threads); GIL released.  float16/bfloat16
// are converted to float32 while packing and rounded once when stored (no float32 copy
// of a tensor is made); lse is float32 then.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "core.h"
#include "gemm_simd.h"
#include "half_stage.h"
#include "nn_common.h"
#include "nn_rows.h"
#include "transpose4x4.h"
#include "vexp.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace attn_k {
namespace {
namespace gs = gemm_simd;

constexpr int64_t kBlock = 256;  // keys per block: a multiple of every level's NR
constexpr int64_t kPanels = 4;   // MR-row panels per forward task
// MR-row panels per backward query block: 2 measured 4-7% faster than 1, 3 or 4 (the
// causal blocks' dead keys are trimmed closer, and P, dP, dS stay smaller)
constexpr int64_t kBwdPanels = 2;

constexpr int64_t round_up_c(int64_t n, int64_t m) { return (n + m - 1) / m * m; }
inline int64_t round_up(int64_t n, int64_t m) { return round_up_c(n, m); }

/// A 4-d strided array of element type E (element strides).
template <class E> struct A4 {
    const E* p;
    int64_t s[4];
    const E* row(int64_t b, int64_t h, int64_t i) const { return p + b * s[0] + h * s[1] + i * s[2]; }
};
template <class E> A4<E> a4(const View& v) {
    return {v.ptr<const E>(), {v.strides[0], v.strides[1], v.strides[2], v.strides[3]}};
}

/// The mask: kind 0 none, 1 bool (keep where nonzero), 2 float of the compute type (added).
struct Mask {
    int kind = 0;
    const char* p = nullptr;
    int64_t s[4] = {0, 0, 0, 0};
};

/// n elements of a strided row of In converted to T (half types through core's converters).
template <class T, class In> void load_row(const In* src, int64_t n, int64_t st, T* dst) {
    if constexpr (std::is_same_v<In, T>) {
        if (st == 1) std::memcpy(dst, src, size_t(n) * sizeof(T));
        else
            for (int64_t j = 0; j < n; ++j) dst[j] = src[j * st];
    } else if (st == 1) {
        half_stage::to_f32(src, n, dst);
    } else {
        for (int64_t j = 0; j < n; ++j) half_stage::to_f32(src + j * st, 1, dst + j);
    }
}
/// n elements of T stored contiguously as Out (rounded once for half types).
template <class T, class Out> void store_row(const T* src, int64_t n, Out* dst) {
    if constexpr (std::is_same_v<Out, T>) std::memcpy(dst, src, size_t(n) * sizeof(T));
    else half_stage::from_f32(src, n, dst);
}

/// dst[0, n) <- src[0, n) * s stored as Out: straight into dst when Out is T (copies
/// through a row buffer were 6% of a float32 fwd+bwd), else through buf, rounded once.
template <class T, class Out> void store_scaled_row(const T* src, int64_t n, T s, T* buf, Out* dst) {
    if constexpr (std::is_same_v<Out, T>) {
        for (int64_t c = 0; c < n; ++c) dst[c] = src[c] * s;
    } else {
        for (int64_t c = 0; c < n; ++c) buf[c] = src[c] * s;
        half_stage::from_f32(buf, n, dst);
    }
}

/// A head's rows [0, n) as a matrix with unit column stride and rows *ld apart: in place
/// when In is T and the rows are contiguous, else converted into `buf` (ld = cols).
template <class T, class In>
const T* rows_of(const A4<In>& a, int64_t b, int64_t h, int64_t n, int64_t cols, std::vector<T>& buf, int64_t* ld) {
    if constexpr (std::is_same_v<In, T>)
        if (a.s[3] == 1) {
            *ld = a.s[2];
            return a.row(b, h, 0);
        }
    if (buf.size() < size_t(n * cols)) buf.resize(size_t(n * cols));
    for (int64_t i = 0; i < n; ++i) load_row<T>(a.row(b, h, i), cols, a.s[3], buf.data() + i * cols);
    *ld = cols;
    return buf.data();
}

/// B panels with the rows as columns: dst[r / NR][p][r % NR] = src[r * lds + p], kc = cols;
/// rows after n (up to a multiple of NR) are zero.  (Kᵀ for the scores, Vᵀ for dP.)
template <class T, int NR> void panels_of_rows(const T* src, int64_t n, int64_t cols, int64_t lds, T* dst) {
    const int64_t full = n / NR * NR;
    for (int64_t r0 = 0; r0 < full; r0 += NR) tf::transpose_into_panel<T>(NR, cols, src + r0 * lds, lds, dst + r0 * cols, NR);
    if (full < n) {
        T* d = dst + full * cols;
        std::fill(d, d + NR * cols, T(0));
        tf::transpose_into_panel<T>(n - full, cols, src + full * lds, lds, d, NR);
    }
}

/// B panels of the columns: dst[c / NR][r][c % NR] = src[r * lds + c] for r < rows, zero
/// for rows up to `kc` (the panel depth) and for the columns after `cols`.  (V for P @ V,
/// g for Pᵀ g, Q for dSᵀ Q, K for dS K.)
template <class T, int NR>
void panels_of_cols(const T* src, int64_t rows, int64_t kc, int64_t cols, int64_t lds, T* dst) {
    const int64_t ncp = round_up(cols, NR) / NR;
    for (int64_t c = 0; c < ncp; ++c) {
        const int64_t w = std::min<int64_t>(NR, cols - c * NR);
        for (int64_t r = 0; r < rows; ++r) {
            T* d = dst + (c * kc + r) * NR;
            const T* s = src + r * lds + c * NR;
            if (w == NR) {  // a fixed-size copy the compiler inlines (memcpy calls were 8%)
                for (int j = 0; j < NR; ++j) d[j] = s[j];
            } else {
                std::copy(s, s + w, d);
                std::fill(d + w, d + NR, T(0));
            }
        }
        std::fill(dst + (c * kc + rows) * NR, dst + (c + 1) * kc * NR, T(0));
    }
}

/// The MR rows i .. i + MR of a matrix of n rows (ld apart, `cols` used) as an A operand:
/// in place, or, where they run past row n, the rows left copied into `tail` with zero
/// rows after them.  Sets *lda to the rows' distance.
template <class T, int MR>
const T* mr_rows(const T* rows, int64_t ld, int64_t n, int64_t cols, int64_t i, T* tail, int64_t* lda) {
    if (i + MR <= n) {
        *lda = ld;
        return rows + i * ld;
    }
    const int64_t k = std::clamp<int64_t>(n - i, 0, MR);
    for (int64_t r = 0; r < k; ++r) std::copy(rows + (i + r) * ld, rows + (i + r) * ld + cols, tail + r * cols);
    std::fill(tail + k * cols, tail + MR * cols, T(0));
    *lda = cols;
    return tail;
}

/// Keys [0, n) of a block of nb from kb0 that query row i may attend under causality
/// (all nb without it).
inline int64_t causal_keys(int64_t i, int64_t kb0, int64_t nb, bool causal) {
    return causal ? std::clamp<int64_t>(i - kb0 + 1, 0, nb) : nb;
}

/// The largest of s[0, n) (NaN skipped), -inf when there is none.
template <class T> T row_max(const T* s, int64_t n) {
    const T ninf = -std::numeric_limits<T>::infinity();
    vec<T> mx = vsplat<T>(ninf);
    for_vectors<T>(n, [&](int64_t j, int64_t k) { mx = vmax<T>(vload_k<T>(s + j, k, ninf), mx); });
    return vhmax<T>(mx);
}

/// Scores of query row i against keys kb0 .. kb0+nb: s *= scale, then the mask (bool:
/// -inf where false; float: added) and causality (-inf for keys after i); returns the
/// row's max (NaN skipped; -inf when every key is masked out).  The common cases (no
/// mask, a float mask with contiguous rows) are one vector pass.
template <class T>
T apply_row(T* s, int64_t nb, T scale, const Mask& m, int64_t b, int64_t h, int64_t i, int64_t kb0,
            bool causal) {
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    const int64_t off = b * m.s[0] + h * m.s[1] + i * m.s[2] + kb0 * m.s[3], st = m.s[3];
    // keys [0, n) are candidates; those after i are masked out by causality
    const int64_t n = causal_keys(i, kb0, nb, causal);
    std::fill(s + n, s + nb, ninf);
    const T* mf = reinterpret_cast<const T*>(m.p) + off;
    if (m.kind == 0 || (m.kind == 2 && st == 1)) {
        const vec<T> vs = vsplat<T>(scale);
        vec<T> mx = vsplat<T>(ninf);
        for_vectors<T>(n, [&](int64_t j, int64_t k) {
            vec<T> x = vload_k<T>(s + j, k, T(0)) * vs;
            if (m.kind == 2) x += vload_k<T>(mf + j, k, T(0));
            vstore_k<T>(s + j, x, k);
            mx = vmax<T>(k == Vec<T>::W ? x : vload_k<T>(s + j, k, ninf), mx);
        });
        return vhmax<T>(mx);
    }
    if (m.kind == 1) {
        const uint8_t* r = reinterpret_cast<const uint8_t*>(m.p) + off;
        for (int64_t j = 0; j < n; ++j) s[j] = r[j * st] ? s[j] * scale : ninf;
    } else {
        for (int64_t j = 0; j < n; ++j) s[j] = s[j] * scale + mf[j * st];
    }
    return row_max<T>(s, n);
}

/// n, lowered past the trailing entries of mask row r (element stride st) equal to `dead`,
/// but not below `live`.  Contiguous rows are compared 16 entries at a time, bit for bit
/// (-inf and false have one pattern each).
template <class E> int64_t trim_dead(const E* r, int64_t n, int64_t st, int64_t live, E dead) {
    constexpr int C = 16;
    if (st == 1) {
        E ref[C];
        std::fill(ref, ref + C, dead);
        while (n - C >= live && std::memcmp(r + n - C, ref, sizeof ref) == 0) n -= C;
    }
    while (n > live && r[(n - 1) * st] == dead) --n;
    return n;
}

/// One past the last key of [kb0, kb0 + nb) that query rows [i0, i1) may attend (0 when
/// none): keys after it are masked out for every row (causality, a causal or padding
/// mask), so the products stop there.  A backward scan of the mask from the block's end.
inline int64_t live_keys(const Mask& m, int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t kb0, int64_t nb,
                         bool causal, bool f64) {
    int64_t live = 0;
    for (int64_t i = i0; i < i1 && live < nb; ++i) {
        int64_t n = causal_keys(i, kb0, nb, causal);
        const int64_t off = b * m.s[0] + h * m.s[1] + i * m.s[2] + kb0 * m.s[3], st = m.s[3];
        if (m.kind == 1)
            n = trim_dead<uint8_t>(reinterpret_cast<const uint8_t*>(m.p) + off, n, st, live, 0);
        else if (m.kind == 2 && f64)
            n = trim_dead<double>(reinterpret_cast<const double*>(m.p) + off, n, st, live, -INFINITY);
        else if (m.kind == 2)
            n = trim_dead<float>(reinterpret_cast<const float*>(m.p) + off, n, st, live, -INFINITY);
        live = std::max(live, n);
    }
    return live;
}

/// s[j] = exp(s[j] - shift) in place over [0, n) (s - shift <= 0 up to rounding); returns
/// their sum.  float: the vectorised exp of the softmax kernels (vexp.h); double: libm.
template <class T> T exp_shift(T* s, int64_t n, T shift) {
    if constexpr (std::is_same_v<T, float>) {
        vec<float> acc{};
        const vec<float> sh = vsplat<float>(shift);
        for_vectors<float>(n, [&](int64_t j, int64_t k) {
            const vec<float> e = vexp_nonpos(vload_k<float>(s + j, k, -INFINITY) - sh);
            vstore_k<float>(s + j, e, k);
            acc += e;  // tail lanes: exp(-inf) = 0
        });
        return vhsum<float>(acc);
    } else {
        T sum = 0;
        for (int64_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - shift));
        return sum;
    }
}

/// The backward's row of query i: P = exp(scores - lse) as the forward's apply_row and
/// exp_shift would give them, and dS = P * (dP - D), in one pass where the mask allows
/// (none, or float rows with unit stride) instead of three.
template <class T>
void probs_and_grads(T* p, const T* dp, T* ds, int64_t nb, T scale, const Mask& m, int64_t b, int64_t h, int64_t i,
                     int64_t kb0, bool causal, T lse, T dd) {
    if constexpr (std::is_same_v<T, float>) {
        if (m.kind == 0 || (m.kind == 2 && m.s[3] == 1)) {
            const int64_t n = causal_keys(i, kb0, nb, causal);
            const float* mf = reinterpret_cast<const float*>(m.p) + b * m.s[0] + h * m.s[1] + i * m.s[2] + kb0;
            const vec<float> vs = vsplat<float>(scale), sh = vsplat<float>(lse), vd = vsplat<float>(dd);
            for_vectors<float>(n, [&](int64_t j, int64_t k) {
                vec<float> x = vload_k<float>(p + j, k, 0.f) * vs;
                if (m.kind == 2) x += vload_k<float>(mf + j, k, 0.f);
                const vec<float> e = vexp_nonpos(x - sh);
                vstore_k<float>(p + j, e, k);
                vstore_k<float>(ds + j, e * (vload_k<float>(dp + j, k, 0.f) - vd), k);
            });
            std::fill(p + n, p + nb, T(0)), std::fill(ds + n, ds + nb, T(0));  // after the diagonal
            return;
        }
    }
    apply_row<T>(p, nb, scale, m, b, h, i, kb0, causal);
    exp_shift<T>(p, nb, lse);
    for (int64_t j = 0; j < nb; ++j) ds[j] = p[j] * (dp[j] - dd);
}

/// sum a[c] * b[c] over [0, n) in double, in 8 interleaved partial sums (one running sum
/// is a chain of dependent adds: the backward at 4x8x256x64 took 7.7 ms with it, 7.5 without)
template <class T> double dot_f64(const T* a, const T* b, int64_t n) {
    double acc[8] = {};
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int u = 0; u < 8; ++u) acc[u] += double(a[c + u]) * double(b[c + u]);
    for (; c < n; ++c) acc[c % 8] += double(a[c]) * double(b[c]);
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

struct Dims {
    int64_t B, H, L, S, E, Ev;
};

/// live_keys of every (block of `rows` queries, key block) when they are the same for every
/// head (no mask, or one broadcast over batch and heads: a causal mask was scanned again
/// for each head, a fifth of the forward's time); empty otherwise.  Entry
/// [(i0 / rows) * key blocks + kb0 / kBlock].
inline std::vector<int64_t> live_table(const Mask& m, const Dims& d, int64_t rows, bool causal, bool f64) {
    std::vector<int64_t> tab;
    if (m.kind != 0 && !((d.B == 1 || m.s[0] == 0) && (d.H == 1 || m.s[1] == 0))) return tab;
    for (int64_t i0 = 0; i0 < d.L; i0 += rows)
        for (int64_t kb0 = 0; kb0 < d.S; kb0 += kBlock)
            tab.push_back(live_keys(m, 0, 0, i0, std::min(i0 + rows, d.L), kb0, std::min(kBlock, d.S - kb0), causal, f64));
    return tab;
}

/// Threads for `units` independent tasks of `flops` in all (one below ~2 MFLOP per thread:
/// waking a thread costs more than it saves).
inline int threads_for(int64_t units, double flops) { return plan_threads(units, flops / 16); }

/// Runs body(task) for task in [0, n) on nt threads, each with its own `Scratch`; the
/// first exception of any thread is rethrown after the region.
template <class Scratch, class Body> void parallel_tasks(int64_t n, int nt, Body&& body) {
    gs::RegionError err;
#pragma omp parallel num_threads(nt)
    {
        Scratch scratch;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < n; ++t) {
            try {
                body(t, scratch);
            } catch (...) {
                err.record();
            }
        }
    }
    err.rethrow();
}

// -- forward ------------------------------------------------------------------------------------
template <class T> struct FwdScratch {
    int64_t head = -1;       // the batch-head whose q, k, v are packed below
    const T* qrows = nullptr;  // its q rows (in place, or converted into q), ldq apart
    int64_t ldq = 0;
    const T* vrows = nullptr;  // v's rows when P @ V reads them in place (else the panels vp), ldv apart
    int64_t ldv = 0;
    std::vector<T> q, k, v, qp, kp, vp, s, o, m, l, row;
};

template <class T, class In>
void forward(const A4<In>& q, const A4<In>& k, const A4<In>& v, const Mask& mask, T scale, bool causal,
             const Dims& d, In* out, T* lse) {
    constexpr int MR = gs::Simd<T>::MR, NR = gs::Blocking<T>::NR;
    constexpr int64_t SW = kBlock + 16;  // row length of the score block
    const int64_t LP = round_up(d.L, MR), SP = round_up(d.S, NR), EvP = round_up(d.Ev, NR);
    const int64_t panels = LP / MR, groups = (panels + kPanels - 1) / kPanels;
    const int64_t tasks = d.B * d.H * groups;
    const double flops = 2.0 * double(d.B * d.H) * double(d.L) * double(d.S) * double(d.E + d.Ev);
    const T ninf = -std::numeric_limits<T>::infinity();
    const int64_t kblocks = (d.S + kBlock - 1) / kBlock;
    const std::vector<int64_t> live = live_table(mask, d, MR, causal, std::is_same_v<T, double>);
    parallel_tasks<FwdScratch<T>>(tasks, threads_for(tasks, flops), [&](int64_t t, FwdScratch<T>& w) {
        const int64_t bh = t / groups, b = bh / d.H, h = bh % d.H;
        if (w.head != bh) {  // this head's q rows, and kᵀ and v as B panels
            w.kp.resize(size_t(SP * d.E)), w.qp.resize(size_t(MR * d.E));
            w.s.resize(size_t(MR * SW)), w.o.resize(size_t(MR * EvP)), w.m.resize(MR), w.l.resize(MR);
            w.row.resize(size_t(std::max<int64_t>(d.Ev, 1)));
            int64_t ld;
            const T* rows = rows_of<T>(k, b, h, d.S, d.E, w.k, &ld);
            panels_of_rows<T, NR>(rows, d.S, d.E, ld, w.kp.data());
            rows = rows_of<T>(v, b, h, d.S, d.Ev, w.v, &ld);
            if (rows != w.v.data() && d.Ev % NR == 0) {  // P @ V reads v's rows in place
                w.vp.clear();
                w.vrows = rows, w.ldv = ld;
            } else {
                w.vp.resize(size_t(EvP * d.S));
                panels_of_cols<T, NR>(rows, d.S, d.S, d.Ev, ld, w.vp.data());
                w.vrows = nullptr, w.ldv = NR;
            }
            w.qrows = rows_of<T>(q, b, h, d.L, d.E, w.q, &w.ldq);
            w.head = bh;
        }
        const int64_t g = t % groups;
        for (int64_t r = g * kPanels; r < std::min(panels, (g + 1) * kPanels); ++r) {
            const int64_t i0 = r * MR, nr = std::min<int64_t>(MR, d.L - i0);
            T *s = w.s.data(), *o = w.o.data(), *m = w.m.data(), *l = w.l.data();
            std::fill(m, m + MR, ninf), std::fill(l, l + MR, T(0)), std::fill(o, o + MR * EvP, T(0));
            int64_t lq;  // the panel's MR rows of q, lq apart
            const T* qa = mr_rows<T, MR>(w.qrows, w.ldq, d.L, d.E, i0, w.qp.data(), &lq);
            for (int64_t kb0 = 0; kb0 < d.S; kb0 += kBlock) {
                // keys after `nb` are masked out for every row of the panel: not computed
                const int64_t nb = live.empty() ? live_keys(mask, b, h, i0, i0 + nr, kb0, std::min(kBlock, d.S - kb0),
                                                            causal, std::is_same_v<T, double>)
                                                : live[size_t(r * kblocks + kb0 / kBlock)];
                if (nb == 0) continue;
                const int64_t nbp = round_up(nb, NR);
                for (int64_t jp = 0; jp < nbp; jp += NR)
                    gs::micro_kernel_strided_a<T>(d.E, qa, lq, 1, w.kp.data() + (kb0 + jp) * d.E, s + jp, SW, false);
                for (int64_t i = 0; i < MR; ++i) {
                    T* si = s + i * SW;
                    if (i >= nr) {  // padding rows: P = 0
                        std::fill(si, si + nb, T(0));
                        continue;
                    }
                    const T mn = std::max(m[i], apply_row<T>(si, nb, scale, mask, b, h, i0 + i, kb0, causal));
                    if (mn == ninf) {  // every key so far masked out: nothing to add
                        std::fill(si, si + nb, T(0));
                        continue;
                    }
                    const T corr = m[i] == ninf ? T(0) : std::exp(m[i] - mn);
                    l[i] = l[i] * corr + exp_shift<T>(si, nb, mn);
                    m[i] = mn;
                    if (corr != T(1))
                        for (int64_t c = 0; c < EvP; ++c) o[i * EvP + c] *= corr;
                }
                for (int64_t cp = 0; cp < EvP; cp += NR)
                    gs::micro_kernel_strided_a<T>(nb, s, SW, 1,
                                                  w.vrows ? w.vrows + kb0 * w.ldv + cp : w.vp.data() + cp * d.S + kb0 * NR,
                                                  o + cp, EvP, true, w.ldv);
            }
            for (int64_t i = 0; i < nr; ++i) {
                // a row with every key masked out: out 0, lse -inf (l = 0; NaN stays NaN)
                const T inv = l[i] == T(0) ? T(0) : T(1) / l[i];
                store_scaled_row<T>(o + i * EvP, d.Ev, inv, w.row.data(), out + (bh * d.L + i0 + i) * d.Ev);
                lse[bh * d.L + i0 + i] = l[i] == T(0) ? ninf : m[i] + std::log(l[i]);
            }
        }
    });
}


// -- backward -----------------------------------------------------------------------------------
template <class T> struct BwdScratch {
    std::vector<T> q, g, k, v, out, qt, gt, kp, vt, gb, qb, kc, p, dp, ds, dq, dk, dv, dd, lse, row;
};

template <class T, class In>
void backward(const A4<In>& g, const A4<In>& q, const A4<In>& k, const A4<In>& v, const A4<In>& out,
              const T* lse, const Mask& mask, T scale, bool causal, const Dims& d, In* gq, In* gk, In* gv) {
    constexpr int MR = gs::Simd<T>::MR, NR = gs::Blocking<T>::NR;
    constexpr int64_t QB = kBwdPanels * MR;                  // query rows per block
    constexpr int64_t QC = round_up_c(kBlock, QB);           // query rows per chunk
    constexpr int64_t SW = round_up_c(kBlock + MR, 16);      // row length of P, dP, dS
    const int64_t LQ = round_up(d.L, QB), SP = round_up(d.S, NR);
    const int64_t EP = round_up(d.E, NR), EvP = round_up(d.Ev, NR);
    constexpr int64_t BM = round_up_c(kBlock, MR);
    const int64_t heads = d.B * d.H;
    const double flops = 5.0 * double(heads) * double(d.L) * double(d.S) * double(d.E + d.Ev);
    const T ninf = -std::numeric_limits<T>::infinity();
    const int64_t kblocks = (d.S + kBlock - 1) / kBlock;
    const std::vector<int64_t> live = live_table(mask, d, QB, causal, std::is_same_v<T, double>);
    parallel_tasks<BwdScratch<T>>(heads, threads_for(heads, flops), [&](int64_t bh, BwdScratch<T>& w) {
        const int64_t b = bh / d.H, h = bh % d.H;
        auto sized = [](std::vector<T>& x, int64_t n) {  // every element is written before it is read
            if (x.size() < size_t(n)) x.resize(size_t(n));
            return x.data();
        };
        // the head's operands: rows (in place where they can be) for the A side, B panels
        int64_t ldq, ldg, ldk, ldv;
        const T* Q = rows_of<T>(q, b, h, d.L, d.E, w.q, &ldq);
        const T* G = rows_of<T>(g, b, h, d.L, d.Ev, w.g, &ldg);
        const T* K = rows_of<T>(k, b, h, d.S, d.E, w.k, &ldk);
        const T* V = rows_of<T>(v, b, h, d.S, d.Ev, w.v, &ldv);
        T *Qt = sized(w.qt, MR * d.E), *Gt = sized(w.gt, MR * d.Ev);  // a last panel's rows, zero-padded
        T *Kp = sized(w.kp, SP * d.E), *Vt = sized(w.vt, SP * d.Ev);
        panels_of_rows<T, NR>(K, d.S, d.E, ldk, Kp);         // scores: Q Kᵀ
        panels_of_rows<T, NR>(V, d.S, d.Ev, ldv, Vt);        // dP = g Vᵀ
        // the B operands of dV += Pᵀ g, dK += dSᵀ Q and dQ += dS K: g, Q and K's rows read
        // in place (rows ld apart) when whole NR-column panels cover them, else packed
        // (panels kc rows deep, zero-padded)
        const bool in_place = d.E % NR == 0 && d.Ev % NR == 0;
        struct BOp {
            const T* p;
            int64_t kc;  // packed: the panels' depth; 0: rows in place
            int64_t ld;  // the row stride the micro-kernel steps by (NR when packed)
            // B from row r, column c (a multiple of NR) on
            const T* at(int64_t r, int64_t c) const { return kc ? p + c * kc + r * NR : p + r * ld + c; }
        };
        auto b_op = [&](const T* rows, int64_t n, int64_t kc, int64_t cols, int64_t ld, std::vector<T>& buf) {
            if (in_place) return BOp{rows, 0, ld};
            T* dst = sized(buf, round_up(cols, NR) * kc);
            panels_of_cols<T, NR>(rows, n, kc, cols, ld, dst);
            return BOp{dst, kc, NR};
        };
        const BOp Gb = b_op(G, d.L, LQ, d.Ev, ldg, w.gb), Qb = b_op(Q, d.L, LQ, d.E, ldq, w.qb);
        const BOp Kc = b_op(K, d.S, d.S, d.E, ldk, w.kc);
        // D = rowsum(g * out) (= rowsum(P * dP)) and this head's lse
        T *D = sized(w.dd, LQ), *Lse = sized(w.lse, LQ), *row = sized(w.row, std::max<int64_t>({d.Ev, d.E, 1}));
        int64_t ldo;
        const T* O = rows_of<T>(out, b, h, d.L, d.Ev, w.out, &ldo);
        for (int64_t i = 0; i < d.L; ++i) {
            D[i] = T(dot_f64(G + i * ldg, O + i * ldo, d.Ev));
            Lse[i] = lse[bh * d.L + i];
        }
        // P and dS of a chunk of query rows stay in scratch, so that dV and dK are products
        // as deep as the chunk instead of a block (24 rows deep, each call loading and storing
        // its C tile: ~115 GFLOP/s, ~135 over the chunk)
        T *P = sized(w.p, QC * SW), *dP = sized(w.dp, QB * SW), *dS = sized(w.ds, QC * SW);
        T *dQ = sized(w.dq, LQ * EP), *dK = sized(w.dk, BM * EP), *dV = sized(w.dv, BM * EvP);
        int64_t nbs[QC / QB], lo[BM / MR], hi[BM / MR], need[QC / QB];
        std::fill(dQ, dQ + LQ * EP, T(0));  // accumulated over the key blocks
        for (int64_t kb0 = 0; kb0 < d.S; kb0 += kBlock) {
            const int64_t kn = std::min(kBlock, d.S - kb0), knm = round_up(kn, MR);
            std::fill(dK, dK + BM * EP, T(0)), std::fill(dV, dV + BM * EvP, T(0));
            for (int64_t c0 = 0; c0 < d.L; c0 += QC) {
                const int64_t rows = std::min(QC, d.L - c0), blocks = (rows + QB - 1) / QB;
                for (int64_t ib = 0; ib < blocks; ++ib) {
                    const int64_t i0 = c0 + ib * QB, nq = std::min(QB, d.L - i0);
                    // keys after `nb` are masked out for every row of the block: not computed
                    const int64_t nb = live.empty() ? live_keys(mask, b, h, i0, i0 + nq, kb0, kn, causal, std::is_same_v<T, double>)
                                                    : live[size_t(i0 / QB * kblocks + kb0 / kBlock)];
                    nbs[ib] = nb;
                    if (nb == 0) continue;
                    const int64_t nbp = round_up(nb, NR), nbm = round_up(nb, MR);
                    T *Pb = P + ib * QB * SW, *dSb = dS + ib * QB * SW;
                    for (int64_t r = 0; r < QB; r += MR) {
                        int64_t la, lb;
                        const T* qa = mr_rows<T, MR>(Q, ldq, d.L, d.E, i0 + r, Qt, &la);
                        const T* ga = mr_rows<T, MR>(G, ldg, d.L, d.Ev, i0 + r, Gt, &lb);
                        for (int64_t jp = 0; jp < nbp; jp += NR) {
                            gs::micro_kernel_strided_a<T>(d.E, qa, la, 1, Kp + (kb0 + jp) * d.E, Pb + r * SW + jp, SW, false);
                            gs::micro_kernel_strided_a<T>(d.Ev, ga, lb, 1, Vt + (kb0 + jp) * d.Ev, dP + r * SW + jp, SW,
                                                          false);
                        }
                    }
                    for (int64_t i = 0; i < QB; ++i) {
                        T *pi = Pb + i * SW, *dsi = dSb + i * SW;
                        const T li = i < nq ? Lse[i0 + i] : ninf;
                        if (li == ninf) {  // padding, or every key masked out: P = dS = 0
                            std::fill(pi, pi + nbm, T(0)), std::fill(dsi, dsi + nbm, T(0));
                            continue;
                        }
                        probs_and_grads<T>(pi, dP + i * SW, dsi, nb, scale, mask, b, h, i0 + i, kb0, causal, li,
                                           D[i0 + i]);
                        std::fill(pi + nb, pi + nbm, T(0));  // the products read columns < nbm
                        std::fill(dsi + nb, dsi + nbm, T(0));
                    }
                    // dQ (queries x E) += dS K
                    for (int64_t r = 0; r < QB; r += MR)
                        for (int64_t c = 0; c < EP; c += NR)
                            gs::micro_kernel_strided_a<T>(nb, dSb + r * SW, SW, 1, Kc.at(kb0, c), dQ + (i0 + r) * EP + c,
                                                          EP, true, Kc.ld);
                }
                // the MR keys from t have a product over the chunk's blocks lo .. hi - 1 (the
                // first and last where one of them is live); a block in between where they are
                // dead must read as zeros in P and dS (a causal mask has none)
                std::fill(need, need + blocks, int64_t(0));
                for (int64_t t = 0; t < knm; t += MR) {
                    int64_t l = 0, u = blocks;
                    while (l < blocks && nbs[l] <= t) ++l;
                    while (u > l && nbs[u - 1] <= t) --u;
                    lo[t / MR] = l, hi[t / MR] = u;
                    for (int64_t ib = l; ib < u; ++ib) need[ib] = std::max(need[ib], t + MR);
                }
                for (int64_t ib = 0; ib < blocks; ++ib) {
                    const int64_t from = nbs[ib] == 0 ? 0 : round_up(nbs[ib], MR);
                    if (need[ib] > from)
                        for (int64_t i = ib * QB; i < (ib + 1) * QB; ++i) {
                            std::fill(P + i * SW + from, P + i * SW + need[ib], T(0));
                            std::fill(dS + i * SW + from, dS + i * SW + need[ib], T(0));
                        }
                }
                // dV (keys x Ev) += Pᵀ g and dK (keys x E) += dSᵀ Q over the chunk's live rows:
                // A is P / dS read transposed, B the rows of g / Q from r0 on
                for (int64_t t = 0; t < knm; t += MR) {
                    const int64_t r0 = lo[t / MR] * QB, r1 = std::min(hi[t / MR] * QB, rows);
                    if (r1 <= r0) continue;
                    for (int64_t c = 0; c < EvP; c += NR)
                        gs::micro_kernel_strided_a<T>(r1 - r0, P + r0 * SW + t, 1, SW, Gb.at(c0 + r0, c),
                                                      dV + t * EvP + c, EvP, true, Gb.ld);
                    for (int64_t c = 0; c < EP; c += NR)
                        gs::micro_kernel_strided_a<T>(r1 - r0, dS + r0 * SW + t, 1, SW, Qb.at(c0 + r0, c),
                                                      dK + t * EP + c, EP, true, Qb.ld);
                }
            }
            for (int64_t j = 0; j < kn; ++j) {
                store_row<T>(dV + j * EvP, d.Ev, gv + (bh * d.S + kb0 + j) * d.Ev);
                store_scaled_row<T>(dK + j * EP, d.E, scale, row, gk + (bh * d.S + kb0 + j) * d.E);
            }
        }
        for (int64_t i = 0; i < d.L; ++i) store_scaled_row<T>(dQ + i * EP, d.E, scale, row, gq + (bh * d.L + i) * d.E);
    });
}

// -- bindings -------------------------------------------------------------------------------------
/// A 4-d floating array argument (any strides).
py::array operand(const py::handle& h, const char* op, const char* what) {
    py::array a = as_array(h, op, what);
    const Kind kd = kind_of(a.dtype());
    if (kd != Kind::F32 && kd != Kind::F64 && kd != Kind::Half)
        throw py::type_error(std::string(op) + ": " + what + " must be a floating-point array, got " + dtype_name(a.dtype()));
    if (a.ndim() != 4)
        throw py::value_error(std::string(op) + ": " + what + " must be 4-d (B, H, rows, features), got " + shape_str(a));
    return a;
}

void expect_shape(const py::array& a, const char* op, const char* what, std::vector<int64_t> want) {
    bool ok = a.ndim() == py::ssize_t(want.size());
    for (size_t i = 0; ok && i < want.size(); ++i) ok = a.shape(py::ssize_t(i)) == want[i];
    if (!ok) {
        std::string w = "(";
        for (size_t i = 0; i < want.size(); ++i) w += (i ? ", " : "") + std::to_string(want[i]);
        throw py::value_error(std::string(op) + ": " + what + " must have shape " + w + "), got " + shape_str(a));
    }
}

void expect_dtype(const py::array& a, const py::array& q, const char* op, const char* what) {
    if (!a.dtype().equal(q.dtype()))
        throw py::type_error(std::string(op) + ": " + what + " dtype " + dtype_name(a.dtype()) + " does not match q's " +
                             dtype_name(q.dtype()));
}

/// The dims of q (B, H, L, E), k (B, H, S, E), v (B, H, S, Ev), checked.
Dims dims_of(const py::array& q, const py::array& k, const py::array& v, const char* op) {
    expect_dtype(k, q, op, "k"), expect_dtype(v, q, op, "v");
    Dims d{q.shape(0), q.shape(1), q.shape(2), k.shape(2), q.shape(3), v.shape(3)};
    expect_shape(k, op, "k", {d.B, d.H, d.S, d.E});
    expect_shape(v, op, "v", {d.B, d.H, d.S, d.Ev});
    return d;
}

/// The mask argument: None, bool, or q's dtype (converted to float32 with half q, kept
/// alive in `keep`), shape (B, H, L, S).
Mask mask_of(const py::object& h, const py::array& q, const Dims& d, const char* op, py::array& keep) {
    Mask m;
    if (h.is_none()) return m;
    keep = as_array(h, op, "mask");
    if (keep.dtype().kind() == 'b') {
        m.kind = 1;
    } else {
        expect_dtype(keep, q, op, "a float mask");
        keep = to_compute(keep);
        m.kind = 2;
    }
    expect_shape(keep, op, "mask", {d.B, d.H, d.L, d.S});
    const View mv = view_of(keep, op);
    m.p = mv.data;
    for (int i = 0; i < 4; ++i) m.s[i] = mv.strides[size_t(i)];
    return m;
}

/// f(T{}, In{}) for q's dtype: float / double, or float with a half input type.
template <class F> void with_types(const py::array& q, F&& f) {
    const int hi = half_stage::half_index(q);
    if (hi >= 0) half_stage::with_half(hi, [&](auto in) { f(float{}, in); });
    else if (q.itemsize() == 4) f(float{}, float{});
    else f(double{}, double{});
}

py::tuple sdpa_forward(py::object q_o, py::object k_o, py::object v_o, py::object mask_o, double scale, bool causal) {
    const char* op = "sdpa_forward";
    py::array q = operand(q_o, op, "q"), k = operand(k_o, op, "k"), v = operand(v_o, op, "v"), keep;
    const Dims d = dims_of(q, k, v, op);
    const Mask mask = mask_of(mask_o, q, d, op, keep);
    const py::dtype cdt = half_stage::half_index(q) >= 0 ? py::dtype::of<float>() : q.dtype();
    py::array out = empty_array(q.dtype(), {d.B, d.H, d.L, d.Ev});
    py::array lse = empty_array(cdt, {d.B, d.H, d.L});
    const View qv = view_of(q, op), kv = view_of(k, op), vv = view_of(v, op);
    with_types(q, [&](auto tt, auto it) {
        using T = decltype(tt);
        using In = decltype(it);
        In* po = static_cast<In*>(out.mutable_data());
        T* pl = static_cast<T*>(lse.mutable_data());
        py::gil_scoped_release nogil;
        forward<T, In>(a4<In>(qv), a4<In>(kv), a4<In>(vv), mask, T(scale), causal, d, po, pl);
    });
    return py::make_tuple(out, lse);
}

py::tuple sdpa_backward(py::object g_o, py::object q_o, py::object k_o, py::object v_o, py::object out_o,
                        py::object lse_o, py::object mask_o, double scale, bool causal) {
    const char* op = "sdpa_backward";
    py::array q = operand(q_o, op, "q"), k = operand(k_o, op, "k"), v = operand(v_o, op, "v"), keep;
    py::array g = operand(g_o, op, "g"), out = operand(out_o, op, "out");
    const Dims d = dims_of(q, k, v, op);
    expect_dtype(g, q, op, "g"), expect_dtype(out, q, op, "out");
    expect_shape(g, op, "g", {d.B, d.H, d.L, d.Ev});
    expect_shape(out, op, "out", {d.B, d.H, d.L, d.Ev});
    const Mask mask = mask_of(mask_o, q, d, op, keep);
    const py::dtype cdt = half_stage::half_index(q) >= 0 ? py::dtype::of<float>() : q.dtype();
    py::array lse = as_array(lse_o, op, "lse");
    if (!lse.dtype().equal(cdt))
        throw py::type_error(std::string(op) + ": lse must be " + dtype_name(cdt) + ", got " + dtype_name(lse.dtype()));
    expect_shape(lse, op, "lse", {d.B, d.H, d.L});
    lse = py::array::ensure(lse, py::array::c_style);
    py::array gq = empty_array(q.dtype(), {d.B, d.H, d.L, d.E});
    py::array gk = empty_array(q.dtype(), {d.B, d.H, d.S, d.E});
    py::array gv = empty_array(q.dtype(), {d.B, d.H, d.S, d.Ev});
    const View gvw = view_of(g, op), qv = view_of(q, op), kv = view_of(k, op), vv = view_of(v, op), ov = view_of(out, op);
    with_types(q, [&](auto tt, auto it) {
        using T = decltype(tt);
        using In = decltype(it);
        const T* pl = static_cast<const T*>(lse.data());
        In *pq = static_cast<In*>(gq.mutable_data()), *pk = static_cast<In*>(gk.mutable_data()),
           *pv = static_cast<In*>(gv.mutable_data());
        py::gil_scoped_release nogil;
        backward<T, In>(a4<In>(gvw), a4<In>(qv), a4<In>(kv), a4<In>(vv), a4<In>(ov), pl, mask, T(scale), causal, d, pq, pk, pv);
    });
    return py::make_tuple(gq, gk, gv);
}

}  // namespace
}  // namespace attn_k

void register_attention(py::module_& m) {
    m.def("sdpa_forward", &attn_k::sdpa_forward, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"),
          py::arg("scale"), py::arg("is_causal"),
          "fused softmax(scale q kᵀ + mask) v -> (out, row logsumexp); see backend/ref_attention.py");
    m.def("sdpa_backward", &attn_k::sdpa_backward, py::arg("g"), py::arg("q"), py::arg("k"), py::arg("v"),
          py::arg("out"), py::arg("lse"), py::arg("mask"), py::arg("scale"), py::arg("is_causal"),
          "(gq, gk, gv) of sdpa_forward, the probabilities recomputed from lse");
}
TINYFW_ISA_END
}  // namespace tinyfw
