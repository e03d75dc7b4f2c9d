// cast(x, dtype): every pair of the contract's 8 dtypes, by tinyfw's conversion rules
// (docs/semantics.md, "Casts"; ref_cast.py is the specification).
//
// Element conversions are core.h's convert<To, From>: float -> int truncates toward zero,
// NaN / inf / out-of-range give the minimum of the 32- or 64-bit conversion and int8
// wraps that (defined behaviour here, never a UB cast); conversions to a float type round
// once (float64 and int -> float16/bfloat16 go through a round-to-odd float32).
// Contiguous float32 <-> float16/bfloat16 rows use the bulk (F16C / SIMD) conversions
// below, which core.h declares: compiled here once per ISA level.
// The output keeps the input's memory order, as astype's default order='K'.
#include "core.h"

namespace tf {
TINYFW_ISA_BEGIN

void half_to_float_n(const half* src, float* dst, int64_t n) {
    int64_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
#endif
    for (; i < n; ++i) dst[i] = f16_to_float(src[i].bits);
}

void float_to_half_n(const float* src, half* dst, int64_t n) {
    int64_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    for (; i < n; ++i) dst[i].bits = float_to_f16(src[i]);
}

void bhalf_to_float_n(const bhalf* src, float* dst, int64_t n) {
    const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
    uint32_t* d = reinterpret_cast<uint32_t*>(dst);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = uint32_t(s[i]) << 16;
}

void float_to_bhalf_n(const float* src, bhalf* dst, int64_t n) {
    const uint32_t* s = reinterpret_cast<const uint32_t*>(src);
    uint16_t* d = reinterpret_cast<uint16_t*>(dst);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
        uint32_t u = s[i];
        uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        d[i] = uint16_t((u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) : r);
    }
}

namespace {

template <class To, class From> void cast_contig(To* __restrict o, const From* __restrict x, int64_t n) {
    if constexpr (std::is_same_v<From, float> && std::is_same_v<To, half>) float_to_half_n(x, o, n);
    else if constexpr (std::is_same_v<From, float> && std::is_same_v<To, bhalf>) float_to_bhalf_n(x, o, n);
    else if constexpr (std::is_same_v<From, half> && std::is_same_v<To, float>) half_to_float_n(x, o, n);
    else if constexpr (std::is_same_v<From, bhalf> && std::is_same_v<To, float>) bhalf_to_float_n(x, o, n);
    else if constexpr (std::is_same_v<From, To>) std::memcpy(o, x, size_t(n) * sizeof(To));
    else if constexpr (std::is_same_v<From, double> && is_half_v<To>) {
        // a block of round-to-odd floats (a vector loop), then the bulk conversion: the
        // same values as convert<To, double>, ~4x faster than one element at a time
        float buf[256];
        for (int64_t i0 = 0; i0 < n; i0 += 256) {
            const int64_t m = std::min<int64_t>(256, n - i0);
            for (int64_t i = 0; i < m; ++i) buf[i] = float_round_odd(x[i0 + i]);
            cast_contig<To, float>(o + i0, buf, m);
        }
    } else
        for (int64_t i = 0; i < n; ++i) o[i] = convert<To, From>(x[i]);
}

template <class To, class From> void cast_loop(const View& o, const View& x) {
    char* data[2] = {o.data, x.data};
    const int64_t* st[2] = {o.strides, x.strides};
    const int64_t isz[2] = {int64_t(sizeof(To)), int64_t(sizeof(From))};
    auto L = make_loop<2>(x.shape, x.ndim, data, st, isz);
    run_loop(L, [](int64_t n, char** p, const int64_t* s) {
        if (s[0] == int64_t(sizeof(To)) && s[1] == int64_t(sizeof(From))) {
            cast_contig<To, From>(reinterpret_cast<To*>(p[0]), reinterpret_cast<const From*>(p[1]), n);
        } else {
            for (int64_t i = 0; i < n; ++i)
                *reinterpret_cast<To*>(p[0] + i * s[0]) = convert<To, From>(*reinterpret_cast<const From*>(p[1] + i * s[1]));
        }
    });
}

py::object cast(const py::array& xa, const py::object& dtype) {
    const char* K = "cast";
    View x = view_of(xa, K);
    DType to = dtype_from_numpy(py::dtype::from_args(dtype), K);
    if (!level_has(x.dtype) || !level_has(to)) return call_scalar_level(K, xa, dtype);
    int perm[kMaxDims];
    const View* ins[1] = {&x};
    py::array out = keep_order(x.shape, x.ndim, ins, 1, perm) ? empty_permuted(to, x.shape, x.ndim, perm)
                                                              : empty(to, x.shape, x.ndim);
    View o = view_of(out, K);
    py::gil_scoped_release nogil;
    dispatch_level(to, K, [&](auto t) {
        using To = decltype(t);
        dispatch_level(x.dtype, K, [&](auto f) { cast_loop<To, decltype(f)>(o, x); });
    });
    return std::move(out);
}

}  // namespace

void register_cast(py::module_& m) {
    m.def("cast", &cast, py::arg("x"), py::arg("dtype"),
          "x converted to dtype by tinyfw's conversion rules (C++ kernel, all 8x8 dtype pairs).");
}

TINYFW_ISA_END
}  // namespace tf
