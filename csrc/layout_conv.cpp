// conv2d forward in the channels-last layout (NHWC), for the traced mode's layout pass
// (tinyfw/jit/passes/layout.py).  Semantics: tinyfw/backend/ref_layout.py, which is the
// NCHW reference conv2d with both layouts transposed.
//
// Why a direct kernel instead of im2col + GEMM: in NHWC a kernel tap (a, b) of R adjacent
// output pixels reads R rows of C contiguous input channels, so the register tile
// (R pixels x V vectors of output channels) can broadcast each input value straight from
// the activation and FMA it with V vectors of the packed filter: no im2col buffer, no
// GEMM packing.  The 64-channel 3x3 conv at 56x56 (batch 8) ran 28 ms against 58 ms for
// the NCHW im2col + GEMM path and ~29-33 ms for PyTorch's (Sapphire Rapids, 1 thread,
// shared machine; benchmarks/bench_layout.py).
//
// The filter is pre-packed (conv2d_nhwc_pack) into blocks of OB = V*W output channels:
// wp[ob][a][b][c][k] = w[ob*OB + k][c][a][b] (zero past O), so each tile's filter reads
// are one sequential stream.  OB is chosen per ISA level and O (conv2d_nhwc_block): the
// AVX-512 level keeps 32 zmm registers (tiles 6x4, 12x2, 12x1 vectors), AVX2 16 ymm
// (6x2, 12x1: accumulators + filter vectors + one broadcast), the scalar level 4x8.
// Pixels whose tap falls in the zero padding read a row of zeros instead (a pointer per
// pixel and tap), so padding, stride and dilation need no special path.  The input
// channels are summed in L1-sized chunks (see run).
//
// The input may also be NCHW (x_layout="nchw"): each thread copies the input rows it
// needs out of their planes once (RowRing), and the tiles read those (C x W) blocks.  The
// layout pass lets a conv read a chain entry so when no other chain op reads it and the
// measurement says so (at 8x64x56x56 on an idle machine the NCHW read cost ~1.4 ms more
// than an NHWC input when the tiles gathered from the planes, ~0.6 ms with the ring,
// against a 0.7-1.2 ms conversion).  y_layout="nchw" writes each output row's sums
// transposed into the O planes (8x8 register blocks for float); the layout pass uses it
// for a chain's exit conv when it measures cheaper than the NHWC store plus a conversion.
//
// The epilogue (bias, residual, relu; passes/layout_epilogue.py folds them in) is applied
// in registers: by the tiles of an NHWC row's last pass, or in the 8x8 transposes of an
// NCHW row, before the one store of each value (8x64x56x56: bias + residual + relu +0.3
// ms over the bare conv in NHWC, against ~1 ms for a pass over the finished row and ~0.7
// ms for a separate op).

#include <omp.h>

#include <algorithm>
#include <array>
#include <type_traits>
#include <utility>
#include <vector>

#include "gemm_simd.h"
#include "nn_common.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace nhwc_k {
using gemm_simd::Simd;

struct Geo {
    int64_t N, H, W, C, O, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, OB;
    // input strides (elements) of a channel, a pixel, a row and an image: NHWC (1, C, W*C,
    // H*W*C) or NCHW (H*W, 1, W, C*H*W); y_nchw: the output is written (N, O, OH, OW)
    int64_t xc, xp, xr, xn;
    bool y_nchw;
    // the epilogue applied as each output row is stored: y = relu?((sum + bias[o]) + res),
    // bias: O values or null, res: an array of y's shape and layout or null
    const void* bias;
    const void* res;
    bool relu;
};

// One output value's epilogue in the graph's order: (sum + bias) + res, then relu (Relu's
// rule: negatives to +0, NaN and -0 kept).
template <typename T> inline T finish_one(T v, const T* bias, const T* res, bool relu) {
    if (bias) v += *bias;
    if (res) v += *res;
    return relu && v < T(0) ? T(0) : v;
}

// The epilogue of `cnt` sums of output channels (one pixel of an NHWC row that the tiles
// did not finish: a separate sums buffer, or a row all in the padding), copied from src to
// y.  The order ((sum + bias) + res, then relu) is the graph's, so each step rounds as the
// unfused ops do.
template <typename T>
inline void finish(const Geo& g, T* y, const T* src, int64_t cnt, const T* bias, const T* res) {
    for (int64_t i = 0; i < cnt; ++i)
        y[i] = finish_one(src[i], bias ? bias + i : nullptr, res ? res + i : nullptr, g.relu);
}

// The epilogue of an NHWC output row's channel block, for the tiles of its last pass:
// bias (the block's OB values) or null, res (the residual row, pixels `ld` apart, at the
// block's first channel) or null, relu.
template <typename T> struct Fin {
    const T* bias;
    const T* res;
    bool relu;
};

// Relu's rule on a vector: negatives to +0, NaN and -0 kept (a blend, not max, which would
// turn -0 into +0 or a NaN into 0 depending on the operand order)
inline float relu(float v) { return v < 0.f ? 0.f : v; }
inline double relu(double v) { return v < 0.0 ? 0.0 : v; }
#if defined(__AVX2__)  // (also the AVX-512 level: its NCHW transposes work in ymm registers)
inline __m256 relu(__m256 v) { return _mm256_blendv_ps(v, _mm256_setzero_ps(), _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ)); }
inline __m256d relu(__m256d v) { return _mm256_blendv_pd(v, _mm256_setzero_pd(), _mm256_cmp_pd(v, _mm256_setzero_pd(), _CMP_LT_OQ)); }
#endif
#if defined(__AVX512F__)
inline __m512 relu(__m512 v) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), v, _mm512_setzero_ps()); }
inline __m512d relu(__m512d v) { return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_LT_OQ), v, _mm512_setzero_pd()); }
#endif

// dst[k * ldd + j] = epilogue(src[j * lds + k]) for j < rows, k < cols: an output row's
// (OW x OB) sums into OB output planes, finished on the way (bias[k], res[k * ldd + j],
// relu; each may be absent).  A float 8 x 8 block is transposed in ymm registers (AVX2,
// both SIMD levels) and finished there before its one store: element by element, the
// strided copy cost ~3 ms more than the NHWC store for the 8x64x56x56 block output
// (Sapphire Rapids, 1 thread), more than the ~1.8 ms of the conversion it replaces; and
// finishing the planes' rows in a second pass (reading them back) cost 2.4 ms of the
// residual block's 16.6 ms conv.
template <typename T>
inline void store_transposed(T* dst, int64_t ldd, const T* src, int64_t lds, int64_t rows, int64_t cols,
                             const T* bias, const T* res, bool apply_relu) {
    int64_t k0 = 0;
#if defined(__AVX2__)
    if constexpr (std::is_same<T, float>::value) {
        auto put = [&](int64_t k, int64_t j, __m256 v) {
            if (bias) v = _mm256_add_ps(v, _mm256_set1_ps(bias[k]));
            if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res + k * ldd + j));
            if (apply_relu) v = relu(v);
            _mm256_storeu_ps(dst + k * ldd + j, v);
        };
        for (; k0 + 8 <= cols; k0 += 8) {
            int64_t j0 = 0;
            for (; j0 + 8 <= rows; j0 += 8) {
                __m256 r[8], t[8];
                for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (j0 + i) * lds + k0);
                for (int i = 0; i < 8; i += 2) {  // pairs of rows interleaved
                    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
                }
                for (int i = 0; i < 8; i += 4) {  // then 64-bit pairs
                    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
                    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
                    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
                    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
                }
                // r[a] (a < 4): column a of rows 0-3 | column a + 4 of rows 0-3; r[a + 4] rows 4-7
                for (int a = 0; a < 4; ++a) {
                    put(k0 + a, j0, _mm256_permute2f128_ps(r[a], r[a + 4], 0x20));
                    put(k0 + a + 4, j0, _mm256_permute2f128_ps(r[a], r[a + 4], 0x31));
                }
            }
            for (; j0 < rows; ++j0)
                for (int64_t k = k0; k < k0 + 8; ++k)
                    dst[k * ldd + j0] = finish_one(src[j0 * lds + k], bias ? bias + k : nullptr,
                                                   res ? res + k * ldd + j0 : nullptr, apply_relu);
        }
    }
#endif
    for (int64_t k = k0; k < cols; ++k)
        for (int64_t j = 0; j < rows; ++j)
            dst[k * ldd + j] = finish_one(src[j * lds + k], bias ? bias + k : nullptr, res ? res + k * ldd + j : nullptr,
                                          apply_relu);
}

// The tile height R (output pixels) for V filter vectors: what fits the register file.
template <typename T, int V> constexpr int rows_for() {
#if defined(__AVX512F__)
    return V >= 4 ? 6 : 12;
#elif defined(__AVX2__)
    return V >= 2 ? 6 : 12;
#else
    return 4;
#endif
}

// The filter-vector counts this level instantiates (the block OB is V * W).
#if defined(__AVX512F__) || defined(__AVX2__)
constexpr bool v_supported(int v) {
#if defined(__AVX512F__)
    return v == 1 || v == 2 || v == 4;
#else
    return v == 1 || v == 2;
#endif
}
#else
constexpr bool v_supported(int v) { return v == 8; }
#endif

template <typename T> int64_t block_for(int64_t O) {
    constexpr int W = Simd<T>::W;
#if defined(__AVX512F__)
    const int v = O <= W ? 1 : O <= 2 * W ? 2 : 4;
#elif defined(__AVX2__)
    const int v = O <= W ? 1 : 2;
#else
    const int v = 8;
#endif
    return int64_t(v) * W;
}

// acc[j * ld + k] (+)= the sum over kernel row a (its input row at `xrow`), taps b and
// input channels [c0, c1) for output pixels ow0 + j (j < R), block channels k < OB; R x V
// registers hold the sums, `first` starts them at zero instead of loading acc.  With `fin`
// (the last pass over an NHWC output that the sums fill in place) the epilogue is applied
// to the registers before their one store.
template <typename T, int R, int V>
void tile(const Geo& g, const T* xrow, const T* zeros, const T* wb, int64_t ow0, int64_t a, int64_t c0, int64_t c1,
          T* acc, int64_t ld, bool first, const Fin<T>* fin) {
    using S = Simd<T>;
    using VT = typename S::V;
    constexpr int W = S::W, OB = V * W;
    VT r[R][V];
#pragma GCC unroll 16
    for (int j = 0; j < R; ++j)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) r[j][v] = first ? S::zero() : S::load(acc + j * ld + v * W);
    const int64_t C = g.C;
    for (int64_t b = 0; b < g.KW; ++b) {
        const T* p[R];
#pragma GCC unroll 16
        for (int j = 0; j < R; ++j) {
            const int64_t iw = (ow0 + j) * g.sw - g.pw + b * g.dw;
            p[j] = (iw >= 0 && iw < g.W) ? xrow + iw * g.xp : zeros;
        }
        const T* wt = wb + ((a * g.KW + b) * C + c0) * OB;
        for (int64_t c = c0, off = c0 * g.xc; c < c1; ++c, off += g.xc) {
            VT wv[V];
#pragma GCC unroll 4
            for (int v = 0; v < V; ++v) wv[v] = S::load(wt + v * W);
            wt += OB;
#pragma GCC unroll 16
            for (int j = 0; j < R; ++j) {
                const VT xb = S::bcast(p[j] + off);
#pragma GCC unroll 4
                for (int v = 0; v < V; ++v) r[j][v] = S::fma(xb, wv[v], r[j][v]);
            }
        }
    }
    if (fin) {
#pragma GCC unroll 16
        for (int j = 0; j < R; ++j)
#pragma GCC unroll 4
            for (int v = 0; v < V; ++v) {
                if (fin->bias) r[j][v] = S::add(r[j][v], S::load(fin->bias + v * W));
                if (fin->res) r[j][v] = S::add(r[j][v], S::load(fin->res + (ow0 + j) * ld + v * W));
                if (fin->relu) r[j][v] = relu(r[j][v]);
            }
    }
#pragma GCC unroll 16
    for (int j = 0; j < R; ++j)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) S::store(acc + j * ld + v * W, r[j][v]);
}

template <typename T>
using TileFn = void (*)(const Geo&, const T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t, T*, int64_t,
                        bool, const Fin<T>*);

template <typename T, int V, std::size_t... I>
std::array<TileFn<T>, sizeof...(I)> tiles(std::index_sequence<I...>) {
    return {{&tile<T, int(I) + 1, V>...}};
}

// An NCHW input's rows copied out of their planes as the output rows need them: each
// thread keeps the last KH rows (tagged n * H + ih) as contiguous (C x W) blocks, so with
// stride 1 every input row is copied once and the tiles' reads hit L1.  Reading the planes
// in place instead cost ~1.3 ms more than an NHWC input on the 8x64x56x56 3x3 conv
// (Sapphire Rapids, 1 thread; now ~0.6 ms): a pixel tile's loads went to 32 planes at once,
// more streams than the prefetchers follow.  Transposing the copy to NHWC cost 0.5 ms more
// than reading it planar; software prefetching the next row did not help.
template <typename T> struct RowRing {
    const Geo& g;
    std::vector<T> rows;
    std::vector<int64_t> tag;
    std::vector<char> keep;
    RowRing(const Geo& geo, bool on)
        : g(geo), rows(on ? size_t(g.KH * g.W * g.C) : 0), tag(on ? g.KH : 0, -1), keep(on ? g.KH : 0) {}

    // the rows ih[a] (a < KH; -1: padding) of image n as (C x W) blocks, copied where not held
    void get(const T* x, int64_t n, const int64_t* ih, const T** out) {
        std::fill(keep.begin(), keep.end(), 0);
        for (int64_t a = 0; a < g.KH; ++a) {
            out[a] = nullptr;
            for (int64_t s = 0; s < g.KH && ih[a] >= 0; ++s)
                if (tag[s] == n * g.H + ih[a]) out[a] = slot(s), keep[s] = 1;
        }
        for (int64_t a = 0; a < g.KH; ++a) {
            if (out[a] || ih[a] < 0) continue;
            int64_t s = 0;
            while (keep[s]) ++s;  // KH slots for at most KH distinct rows (dilation >= 1): one is free
            keep[s] = 1, tag[s] = n * g.H + ih[a];
            const T* src = x + n * g.xn + ih[a] * g.xr;
            for (int64_t c = 0; c < g.C; ++c) std::copy_n(src + c * g.xc, g.W, slot(s) + c * g.W);
            out[a] = slot(s);
        }
    }
    T* slot(int64_t s) { return rows.data() + s * g.W * g.C; }
};

// Work order per output row and channel block: kernel row a, then chunks of input
// channels whose filter slice (kw x CB x OB) stays in L1 (~24 KiB) while every pixel tile
// of the row reads it; the sums wait in the output row between chunks.  Summing all of K
// per tile in registers instead streamed the whole 147 KiB filter block from L2 for each
// tile of the 64-channel 3x3 conv.
template <typename T, int V>
void run(const Geo& g, const T* x, const T* wp, T* y) {
    constexpr int R = rows_for<T, V>();
    static const auto table = tiles<T, V>(std::make_index_sequence<R>{});
    const bool copy_rows = g.xc != 1 && g.C > 1;  // NCHW rows through a RowRing
    Geo gt = g;  // the geometry the tiles read: the ring's (C x W) rows when copied
    if (copy_rows) gt.xc = g.W, gt.xr = g.W * g.C;
    // what a padding pixel reads: zeros at every channel offset (c * xc)
    const std::vector<T> zeros(size_t(std::max<int64_t>((g.C - 1) * gt.xc + 1, 1)), T(0));
    const int64_t rows = g.N * g.OH, nob = (g.O + g.OB - 1) / g.OB, K = g.KH * g.KW * g.C;
    const int64_t CB = std::max<int64_t>(8, 24576 / int64_t(sizeof(T) * g.KW * g.OB));
    const bool in_place = g.O % g.OB == 0 && !g.y_nchw;  // the sums can wait in y itself
    const double flops = 2.0 * double(rows) * double(g.OW) * double(g.O) * double(K);
    const int maxt = omp_in_parallel() ? 1 : omp_get_max_threads();
    // below ~1 MFLOP per thread a parallel region costs more than it saves
    const int nt = (int)std::max(1.0, std::min<double>({double(maxt), flops / 1e6, double(rows)}));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        std::vector<T> buf(in_place ? 0 : size_t(g.OW * g.OB));
        RowRing<T> ring(g, copy_rows);
        std::vector<int64_t> ih(g.KH);
        std::vector<const T*> xrow(g.KH);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t n = r / g.OH, oh = r % g.OH;
            for (int64_t a = 0; a < g.KH; ++a) {
                ih[a] = oh * g.sh - g.ph + a * g.dh;
                if (ih[a] >= g.H) ih[a] = -1;  // a row of padding adds nothing
                xrow[a] = ih[a] < 0 ? nullptr : x + n * g.xn + ih[a] * g.xr;
            }
            if (copy_rows) ring.get(x, n, ih.data(), xrow.data());
            T* yrow = y + r * g.OW * g.O;
            int64_t last_a = -1;  // the last kernel row that is not padding
            for (int64_t a = 0; a < g.KH; ++a)
                if (xrow[a]) last_a = a;
            const bool epilogue = g.bias || g.res || g.relu;
            for (int64_t ob = 0; ob < nob; ++ob) {
                const T* wb = wp + ob * K * g.OB;
                T* acc = in_place ? yrow + ob * g.OB : buf.data();
                const int64_t ld = in_place ? g.O : g.OB;
                const T* bias = g.bias ? static_cast<const T*>(g.bias) + ob * g.OB : nullptr;
                const T* res = static_cast<const T*>(g.res);
                // an in-place NHWC row is finished in the registers of its last pass
                const Fin<T> fin{bias, res ? res + r * g.OW * g.O + ob * g.OB : nullptr, g.relu};
                bool first = true;
                for (int64_t a = 0; a <= last_a; ++a) {
                    if (!xrow[a]) continue;
                    for (int64_t c0 = 0; c0 < g.C; c0 += CB) {
                        const int64_t c1 = std::min(g.C, c0 + CB);
                        const Fin<T>* f = in_place && epilogue && a == last_a && c1 == g.C ? &fin : nullptr;
                        int64_t ow = 0;
                        for (; ow + R <= g.OW; ow += R)
                            tile<T, R, V>(gt, xrow[a], zeros.data(), wb, ow, a, c0, c1, acc + ow * ld, ld, first, f);
                        if (ow < g.OW)
                            table[g.OW - ow - 1](gt, xrow[a], zeros.data(), wb, ow, a, c0, c1, acc + ow * ld, ld, first,
                                                 f);
                        first = false;
                    }
                }
                if (first)  // every kernel row in the padding (or no input channel)
                    for (int64_t j = 0; j < g.OW; ++j) std::fill_n(acc + j * ld, g.OB, T(0));
                const int64_t valid = std::min<int64_t>(g.OB, g.O - ob * g.OB);
                if (g.y_nchw) {  // the row's (OW x OB) sums transposed into OB output planes
                    const int64_t at0 = ((n * g.O + ob * g.OB) * g.OH + oh) * g.OW, plane = g.OH * g.OW;
                    store_transposed(y + at0, plane, buf.data(), g.OB, g.OW, valid, bias, res ? res + at0 : nullptr,
                                     g.relu);
                } else if (!in_place || (epilogue && first)) {
                    for (int64_t j = 0; j < g.OW; ++j) {
                        const int64_t at = (r * g.OW + j) * g.O + ob * g.OB;
                        finish(g, y + at, acc + j * ld, valid, bias, res ? res + at : nullptr);
                    }
                }
            }
        }
    }
}

template <typename T> void dispatch(const Geo& g, const T* x, const T* wp, T* y) {
    const int64_t v = g.OB / Simd<T>::W;
#if defined(__AVX512F__)
    if (v == 4) return run<T, 4>(g, x, wp, y);
    if (v == 2) return run<T, 2>(g, x, wp, y);
    return run<T, 1>(g, x, wp, y);
#elif defined(__AVX2__)
    if (v == 2) return run<T, 2>(g, x, wp, y);
    return run<T, 1>(g, x, wp, y);
#else
    (void)v;
    return run<T, 8>(g, x, wp, y);
#endif
}

// ---- bindings -----------------------------------------------------------------------------
py::array float_array(const py::handle& h, const char* op, const char* what) {
    py::array a = as_array(h, op, what);
    const Kind k = kind_of(a.dtype());
    if (k != Kind::F32 && k != Kind::F64)
        throw py::type_error(std::string(op) + ": " + what + " must be float32 or float64, got " + dtype_name(a.dtype()));
    return py::array::ensure(a, py::array::c_style);
}

std::pair<int64_t, int64_t> two(const py::object& t, const char* op, const char* what) {
    auto v = t.cast<std::vector<int64_t>>();
    if (v.size() != 2) throw py::value_error(std::string(op) + ": " + what + " must have 2 values");
    return {v[0], v[1]};
}

int64_t conv2d_nhwc_block(int64_t O, py::object dtype) {
    const py::dtype dt = py::dtype::from_args(dtype);
    if (O < 1) throw py::value_error("conv2d_nhwc_block: out_channels must be >= 1, got " + std::to_string(O));
    if (kind_of(dt) == Kind::F64) return block_for<double>(O);
    if (kind_of(dt) == Kind::F32) return block_for<float>(O);
    throw py::type_error("conv2d_nhwc_block: dtype must be float32 or float64, got " + dtype_name(dt));
}

template <typename T> void pack(const T* w, int64_t O, int64_t C, int64_t KH, int64_t KW, int64_t OB, T* wp) {
    const int64_t nob = (O + OB - 1) / OB;
    for (int64_t ob = 0; ob < nob; ++ob)
        for (int64_t a = 0; a < KH; ++a)
            for (int64_t b = 0; b < KW; ++b)
                for (int64_t c = 0; c < C; ++c) {
                    T* d = wp + (((ob * KH + a) * KW + b) * C + c) * OB;
                    for (int64_t k = 0; k < OB; ++k) {
                        const int64_t o = ob * OB + k;
                        d[k] = o < O ? w[((o * C + c) * KH + a) * KW + b] : T(0);
                    }
                }
}

py::object conv2d_nhwc_pack(py::object w_obj, int64_t block) {
    const char* op = "conv2d_nhwc_pack";
    py::array w = float_array(w_obj, op, "weight");
    if (w.ndim() != 4) throw py::value_error(std::string(op) + ": weight must be 4-d (O, C, kh, kw), got " + shape_str(w));
    const int64_t O = w.shape(0), C = w.shape(1), KH = w.shape(2), KW = w.shape(3);
    if (block < 1) throw py::value_error(std::string(op) + ": block must be >= 1, got " + std::to_string(block));
    const int64_t nob = (O + block - 1) / block;
    py::array wp = empty_array(w.dtype(), {nob, KH, KW, C, block});
    const bool f64 = kind_of(w.dtype()) == Kind::F64;
    {
        py::gil_scoped_release nogil;
        if (f64) pack<double>((const double*)w.data(), O, C, KH, KW, block, (double*)wp.mutable_data());
        else pack<float>((const float*)w.data(), O, C, KH, KW, block, (float*)wp.mutable_data());
    }
    return wp;
}

bool is_nchw(const std::string& layout, const char* op, const char* what) {
    if (layout != "nhwc" && layout != "nchw")
        throw py::value_error(std::string(op) + ": " + what + " must be 'nhwc' or 'nchw', got '" + layout + "'");
    return layout == "nchw";
}

py::object conv2d_nhwc(py::object x_obj, py::object wp_obj, int64_t out_channels, py::object stride, py::object padding,
                       py::object dilation, const std::string& x_layout, const std::string& y_layout,
                       py::object bias_obj, py::object res_obj, bool relu) {
    const char* op = "conv2d_nhwc";
    py::array x = float_array(x_obj, op, "input"), wp = float_array(wp_obj, op, "packed weight");
    if (!x.dtype().equal(wp.dtype()))
        throw py::type_error(std::string(op) + ": input and packed weight have different dtypes (" + dtype_name(x.dtype()) +
                             ", " + dtype_name(wp.dtype()) + ")");
    const bool x_nchw = is_nchw(x_layout, op, "x_layout");
    if (x.ndim() != 4) throw py::value_error(std::string(op) + ": input must be 4-d, got " + shape_str(x));
    if (wp.ndim() != 5)
        throw py::value_error(std::string(op) + ": packed weight must be 5-d (blocks, kh, kw, C, block), got " + shape_str(wp));
    Geo g{};
    g.y_nchw = is_nchw(y_layout, op, "y_layout");
    if (x_nchw) {
        g.N = x.shape(0), g.C = x.shape(1), g.H = x.shape(2), g.W = x.shape(3);
        g.xc = g.H * g.W, g.xp = 1, g.xr = g.W;
    } else {
        g.N = x.shape(0), g.H = x.shape(1), g.W = x.shape(2), g.C = x.shape(3);
        g.xc = 1, g.xp = g.C, g.xr = g.W * g.C;
    }
    g.xn = g.C * g.H * g.W;
    g.KH = wp.shape(1), g.KW = wp.shape(2), g.OB = wp.shape(4), g.O = out_channels;
    std::tie(g.sh, g.sw) = two(stride, op, "stride");
    std::tie(g.ph, g.pw) = two(padding, op, "padding");
    std::tie(g.dh, g.dw) = two(dilation, op, "dilation");
    const bool f64 = kind_of(x.dtype()) == Kind::F64;
    const int W = f64 ? Simd<double>::W : Simd<float>::W;
    if (wp.shape(3) != g.C)
        throw py::value_error(std::string(op) + ": input has " + std::to_string(g.C) + " channels, packed weight " +
                              shape_str(wp) + " expects " + std::to_string(wp.shape(3)));
    if (g.O < 1 || wp.shape(0) != (g.O + g.OB - 1) / g.OB)
        throw py::value_error(std::string(op) + ": packed weight " + shape_str(wp) + " does not hold " +
                              std::to_string(g.O) + " output channels");
    if (g.OB % W != 0 || !v_supported(int(g.OB / W)))
        throw py::value_error(std::string(op) + ": block " + std::to_string(g.OB) +
                              " is not one this ISA level runs; pack with conv2d_nhwc_block's block");
    if (g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1 || g.ph < 0 || g.pw < 0)
        throw py::value_error(std::string(op) + ": stride and dilation must be >= 1 and padding >= 0");
    const int64_t sh = g.H + 2 * g.ph - g.dh * (g.KH - 1) - 1, sw = g.W + 2 * g.pw - g.dw * (g.KW - 1) - 1;
    if (sh < 0 || sw < 0) throw py::value_error(std::string(op) + ": kernel larger than the padded input");
    g.OH = sh / g.sh + 1, g.OW = sw / g.sw + 1;
    py::array y = g.y_nchw ? empty_array(x.dtype(), {g.N, g.O, g.OH, g.OW}) : empty_array(x.dtype(), {g.N, g.OH, g.OW, g.O});
    py::array bias, res;  // kept alive (and contiguous) until the kernel has run
    if (!bias_obj.is_none()) {
        bias = float_array(bias_obj, op, "bias");
        if (!bias.dtype().equal(x.dtype()) || bias.size() != g.O)
            throw py::value_error(std::string(op) + ": bias must hold " + std::to_string(g.O) + " values of the input's dtype, got " +
                                  dtype_name(bias.dtype()) + shape_str(bias));
        g.bias = bias.data();
    }
    if (!res_obj.is_none()) {
        res = float_array(res_obj, op, "residual");
        bool same = res.ndim() == 4 && res.dtype().equal(x.dtype());
        for (int d = 0; same && d < 4; ++d) same = res.shape(d) == y.shape(d);
        if (!same)
            throw py::value_error(std::string(op) + ": residual must have the output's shape " + shape_str(y) + " and dtype " +
                                  dtype_name(x.dtype()) + ", got " + dtype_name(res.dtype()) + shape_str(res));
        g.res = res.data();
    }
    g.relu = relu;
    {
        py::gil_scoped_release nogil;
        if (f64) dispatch<double>(g, (const double*)x.data(), (const double*)wp.data(), (double*)y.mutable_data());
        else dispatch<float>(g, (const float*)x.data(), (const float*)wp.data(), (float*)y.mutable_data());
    }
    return y;
}

}  // namespace nhwc_k

void register_layout_conv(py::module_& m) {
    using namespace nhwc_k;
    m.def("conv2d_nhwc_block", &conv2d_nhwc_block, py::arg("out_channels"), py::arg("dtype"),
          "the output-channel block this ISA level's conv2d_nhwc runs for O channels of dtype");
    m.def("conv2d_nhwc_pack", &conv2d_nhwc_pack, py::arg("w"), py::arg("block"),
          "(O, C, kh, kw) filter -> (ceil(O/block), kh, kw, C, block), zero past O");
    m.def("conv2d_nhwc", &conv2d_nhwc, py::arg("x"), py::arg("wp"), py::arg("out_channels"), py::arg("stride"),
          py::arg("padding"), py::arg("dilation"), py::arg("x_layout") = "nhwc", py::arg("y_layout") = "nhwc",
          py::arg("bias") = py::none(), py::arg("residual") = py::none(), py::arg("relu") = false,
          "2-d cross-correlation of x ((N, H, W, C), or (N, C, H, W) with x_layout='nchw') with a "
          "packed filter -> (N, OH, OW, O) (or (N, O, OH, OW) with y_layout='nchw'); then, as each row is "
          "stored, + bias (O values), + residual (the output's shape and layout), relu");
}

TINYFW_ISA_END
}  // namespace tinyfw
