// The small C++ core every tinyfw kernel uses.
//
//  - DType and the storage types `half` (float16) / `bhalf` (bfloat16) with round-to-
//    nearest-even conversions (F16C when the compiler targets it, portable bit code else);
//  - View: a strided view of a numpy array (data pointer, dtype, shape, strides in
//    ELEMENTS; read-only and 0-stride expanded arrays included);
//  - dispatch_*: call a generic lambda with a value of the C++ type of a DType;
//  - output allocation as numpy arrays (bfloat16's dtype object comes from ml_dtypes);
//  - Loop<N>: broadcasting / strided iteration over N operands with contiguous dims
//    collapsed, so that the innermost loop is a plain SIMD-friendly loop, run in parallel
//    with OpenMP over a fixed partition;
//  - fail(): errors become Python ValueError naming the kernel (never an abort).
//
// The inline code and templates sit in the ISA level's namespace (isa.h): they are
// compiled once per level with the kernels that use them.  Types and the out-of-line
// functions of core.cpp (compiled once, at the baseline level) stay in tf itself.
//
// Kernel pattern: validate and allocate with the GIL held, then
// `py::gil_scoped_release nogil;` around the computation.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "isa.h"

#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace tf {
namespace py = pybind11;

// numpy 2 allows 64 dims; fixed arrays keep the hot paths free of allocation.
constexpr int kMaxDims = 64;

// ---------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------
/// Throw std::invalid_argument "kernel: msg" (pybind11 turns it into ValueError).
[[noreturn]] void fail(const char* kernel, const std::string& msg);

/// "(2, 3, 4)" for error messages.
std::string shape_str(const int64_t* shape, int ndim);

// ---------------------------------------------------------------------------------------
// dtypes and half-precision storage types
// ---------------------------------------------------------------------------------------
enum class DType : uint8_t { Bool, Int8, Int32, Int64, Float16, BFloat16, Float32, Float64 };

/// The tinyfw name of a dtype ("float32", "bfloat16", ...).
const char* dtype_name(DType dt);
/// Size in bytes of one element.
int64_t dtype_size(DType dt);
/// The DType of a numpy array, or fail(kernel, ...) for dtypes outside the contract.
DType dtype_of(const py::array& a, const char* kernel);
/// The DType of a numpy dtype object (np.float32, ml_dtypes.bfloat16, ...).
DType dtype_from_numpy(const py::dtype& d, const char* kernel);
/// The numpy dtype object for a DType (bfloat16 from ml_dtypes, cached).
py::dtype numpy_dtype(DType dt);

struct half {  // IEEE binary16 storage
    uint16_t bits;
};
struct bhalf {  // bfloat16 storage (upper half of a float32)
    uint16_t bits;
};

/// The type arithmetic on T is done in: float for the half types, T otherwise.
template <class T> struct compute_type { using type = T; };
template <> struct compute_type<half> { using type = float; };
template <> struct compute_type<bhalf> { using type = float; };
template <class T> using compute_t = typename compute_type<T>::type;

template <class T> constexpr bool is_half_v = std::is_same_v<T, half> || std::is_same_v<T, bhalf>;
template <class T> constexpr bool is_float_v = std::is_floating_point_v<T> || is_half_v<T>;

// ---- everything below up to the strided views is inline code: one copy per ISA level
TINYFW_ISA_BEGIN

inline float f32_from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline uint32_t bits_from_f32(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

inline float bf16_to_float(uint16_t h) { return f32_from_bits(uint32_t(h) << 16); }
inline uint16_t float_to_bf16(float f) {
    uint32_t u = bits_from_f32(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
    return uint16_t(u >> 16);
}

inline float f16_to_float(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (man << 13));  // inf / NaN
    if (exp == 0) {  // zero or subnormal: man * 2^-24, exact in float
        float v = float(man) * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    return f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
#endif
}

inline uint16_t float_to_f16(float f) {
#if defined(__F16C__)
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
    uint32_t u = bits_from_f32(f);
    uint16_t sign = uint16_t((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
    if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (a < 0x38800000u) {  // below the smallest normal half: subnormal or zero
        // adding 0.5 makes the FPU round the mantissa to a multiple of 2^-24 (RNE)
        float v = f32_from_bits(a) + 0.5f;
        return uint16_t(sign | uint16_t(bits_from_f32(v) - 0x3f000000u));
    }
    uint32_t odd = (a >> 13) & 1u;
    a += 0xc8000fffu + odd;  // rebias exponent (-112 << 23) and round to nearest even
    return uint16_t(sign | uint16_t(a >> 13));
#endif
}

/// Bulk conversions (vectorised with F16C for float16; the bf16 ones auto-vectorise);
/// defined in cast.cpp, once per ISA level.
void half_to_float_n(const half* src, float* dst, int64_t n);
void float_to_half_n(const float* src, half* dst, int64_t n);
void bhalf_to_float_n(const bhalf* src, float* dst, int64_t n);
void float_to_bhalf_n(const float* src, bhalf* dst, int64_t n);

/// Value of a stored element in its compute type, and back (rounding once, RNE).
template <class T> inline compute_t<T> load(T v) {
    if constexpr (std::is_same_v<T, half>) return f16_to_float(v.bits);
    else if constexpr (std::is_same_v<T, bhalf>) return bf16_to_float(v.bits);
    else return v;
}
template <class T> inline T store(compute_t<T> v) {
    if constexpr (std::is_same_v<T, half>) return half{float_to_f16(v)};
    else if constexpr (std::is_same_v<T, bhalf>) return bhalf{float_to_bf16(v)};
    else return v;
}

/// v rounded to float32 "to odd": truncated, with the last bit set when inexact.  Float32
/// keeps at least 13 more bits than float16 or bfloat16, so rounding this value to nearest
/// even gives exactly the once-rounded result of v (going through a round-to-nearest
/// float32 would round twice: 690.0000188 became bfloat16 688 instead of 692).
inline float float_round_odd(double d) {  // branch-free, so that loops of it vectorise
    const float f = static_cast<float>(d);
    const uint32_t inexact = double(f) != d && d == d;                  // NaN stays as it is
    const uint32_t away = std::fabs(double(f)) > std::fabs(d);          // then f != 0
    return f32_from_bits(((bits_from_f32(f) - (inexact & away)) | inexact));
}
inline float float_round_odd(int64_t v) {
    const uint64_t a = v < 0 ? 0 - uint64_t(v) : uint64_t(v);
    if (a < (uint64_t(1) << 24)) return static_cast<float>(v);  // exact
    const int sh = 40 - __builtin_clzll(a);                   // keep the top 24 bits
    const uint64_t t = (a >> sh) | ((a & ((uint64_t(1) << sh) - 1)) != 0);
    const float f = static_cast<float>(t) * f32_from_bits(uint32_t(127 + sh) << 23);  // exact
    return v < 0 ? -f : f;
}

/// Convert any element type to any other by tinyfw's rules (docs/semantics.md, "Casts";
/// tinyfw/backend/ref_cast.py is the specification):
///  - to a float type: rounded once to nearest even from the exact value;
///  - float -> int8/int32/int64: truncated toward zero; NaN, +-inf and values outside
///    the 32-bit (int8, int32) or 64-bit (int64) range give that width's minimum, and
///    int8 then keeps the low 8 bits of the 32-bit result (PyTorch's x86 behaviour);
///  - int -> int wraps modulo 2^n; anything -> bool is `v != 0` (NaN is true).
template <class To, class From> inline To convert(From v) {
    if constexpr (std::is_same_v<To, From>) {
        return v;
    } else if constexpr (is_half_v<From>) {
        return convert<To, float>(load(v));
    } else if constexpr (is_half_v<To>) {
        if constexpr (std::is_same_v<From, bool>) return store<To>(v ? 1.f : 0.f);
        else if constexpr (std::is_same_v<From, float>) return store<To>(v);
        else if constexpr (std::is_same_v<From, double>) return store<To>(float_round_odd(v));
        else return store<To>(float_round_odd(int64_t(v)));
    } else if constexpr (std::is_same_v<To, bool>) {
        return v != From(0);
    } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
        // a plain C++ cast is undefined out of range; this is the rule above, defined
        using Wide = std::conditional_t<(sizeof(To) > 4), int64_t, int32_t>;
        constexpr double lim = sizeof(To) > 4 ? 9223372036854775808.0 : 2147483648.0;
        Wide w = (v == v && double(v) < lim && double(v) >= -lim) ? static_cast<Wide>(v)
                                                                  : std::numeric_limits<Wide>::min();
        return static_cast<To>(static_cast<std::make_unsigned_t<To>>(static_cast<std::make_unsigned_t<Wide>>(w)));
    } else if constexpr (std::is_integral_v<To> && std::is_integral_v<From>) {
        // wrap modulo 2^n; done on unsigned types to stay defined
        // (signed -> unsigned is modular and sign-extends, then back: defined in C++17/g++)
        return static_cast<To>(static_cast<std::make_unsigned_t<To>>(v));
    } else {
        return static_cast<To>(v);  // int/float -> float32/float64: one IEEE rounding
    }
}

/// Call f(T{}) with T the storage type of dt. Variants restrict the dtypes accepted;
/// others fail(kernel, "unsupported dtype ...").
template <class F> decltype(auto) dispatch_all(DType dt, const char* kernel, F&& f) {
    switch (dt) {
        case DType::Float32: return f(float{});
        case DType::Float64: return f(double{});
        case DType::Float16: return f(half{});
        case DType::BFloat16: return f(bhalf{});
        case DType::Int8: return f(int8_t{});
        case DType::Int32: return f(int32_t{});
        case DType::Int64: return f(int64_t{});
        case DType::Bool: return f(bool{});
    }
    fail(kernel, "unsupported dtype");
}
template <class F> decltype(auto) dispatch_float(DType dt, const char* kernel, F&& f) {
    switch (dt) {
        case DType::Float32: return f(float{});
        case DType::Float64: return f(double{});
        case DType::Float16: return f(half{});
        case DType::BFloat16: return f(bhalf{});
        default: break;
    }
    fail(kernel, std::string("expected a floating-point array, got ") + dtype_name(dt));
}
/// Numbers (everything but bool).
template <class F> decltype(auto) dispatch_numeric(DType dt, const char* kernel, F&& f) {
    if (dt == DType::Bool) fail(kernel, "bool arrays are not supported");
    return dispatch_all(dt, kernel, std::forward<F>(f));
}

/// The AVX2 and AVX-512 levels compile their own kernels for the floating-point dtypes
/// only; integer and bool inputs run the scalar level's kernel of the same name
/// (call_scalar_level), at every level.  The models compute in the float types, and
/// three copies of every integer instantiation made the build 2.5x today's instead of 2x
/// (the AVX2 level's largest unit: 53 s of compile time with them, 34 s without).  The
/// scalar and native levels compile everything.
#if TINYFW_ISA_LEVEL == 1 || TINYFW_ISA_LEVEL == 2
#define TINYFW_LEVEL_FLOAT_ONLY 1
#else
#define TINYFW_LEVEL_FLOAT_ONLY 0
#endif
inline bool level_has(DType dt) {
    return !TINYFW_LEVEL_FLOAT_ONLY || dt == DType::Float32 || dt == DType::Float64 || dt == DType::Float16 ||
           dt == DType::BFloat16;
}
/// dispatch_all over the dtypes of this level (level_has): check level_has first.
template <class F> decltype(auto) dispatch_level(DType dt, const char* kernel, F&& f) {
#if TINYFW_LEVEL_FLOAT_ONLY
    return dispatch_float(dt, kernel, std::forward<F>(f));
#else
    return dispatch_all(dt, kernel, std::forward<F>(f));
#endif
}
/// The scalar level's kernel `name` (tinyfw._C._scalar_level, see isa.cpp), for the
/// dtypes this level does not compile.
template <class... A> py::object call_scalar_level(const char* name, A&&... args) {
    return py::module_::import("tinyfw._C").attr("_scalar_level").attr(name)(std::forward<A>(args)...);
}

/// Call the reference (numpy) primitive `name` of tinyfw.backend.ref: kernels use it for
/// the dtype combinations they do not specialise, so semantics stay the specification's.
template <class... A> py::object call_ref(const char* name, A&&... args) {
    return py::module_::import("tinyfw.backend.ref").attr(name)(std::forward<A>(args)...);
}

TINYFW_ISA_END

// ---------------------------------------------------------------------------------------
// strided views
// ---------------------------------------------------------------------------------------
struct View {
    char* data = nullptr;
    DType dtype = DType::Float32;
    int ndim = 0;
    bool writeable = false;
    int64_t shape[kMaxDims];
    int64_t strides[kMaxDims];  // in elements (may be 0 or negative)

    int64_t numel() const {
        int64_t n = 1;
        for (int i = 0; i < ndim; ++i) n *= shape[i];
        return n;
    }
    int64_t itemsize() const { return dtype_size(dtype); }
    bool is_contiguous() const;  // row-major, no gaps
    template <class T> T* ptr() const { return reinterpret_cast<T*>(data); }
    std::string shape_str() const { return tf::shape_str(shape, ndim); }
};

/// A view of numpy array `a` (its dtype must be in the contract; strides that are not a
/// multiple of the item size fail). `a` must outlive the view.
View view_of(const py::array& a, const char* kernel);
/// view_of + fail unless writeable (for in-place kernels).
View writeable_view_of(const py::array& a, const char* kernel);

// ---------------------------------------------------------------------------------------
// output allocation (GIL held)
// ---------------------------------------------------------------------------------------
/// A new C-contiguous, uninitialised numpy array (large ones from the caching pool).
py::array empty(DType dt, const int64_t* shape, int ndim);
/// A pooled block of at least `nbytes` (its address in *data) as the capsule that gives it
/// back when released, or None for small requests or when the pool is off (pool.cpp).
py::object pooled_buffer(size_t nbytes, void** data);
inline py::array empty(DType dt, const std::vector<int64_t>& shape) {
    return empty(dt, shape.data(), int(shape.size()));
}
/// The same for any numpy dtype (the kernels outside the dtype contract: int8 quantised
/// data, float32 outputs of half inputs).
py::array empty(const py::dtype& dt, const std::vector<int64_t>& shape);
/// A new uninitialised array whose memory order follows `perm` (perm[0] outermost):
/// used to give elementwise results the layout of their inputs, as numpy's K order.
py::array empty_permuted(DType dt, const int64_t* shape, int ndim, const int* perm);

/// The broadcast shape of several shapes, or fail(kernel) naming them.
int broadcast_shape(const char* kernel, const View* const* views, int n, int64_t* out);

/// Memory order of the dims of `shape` that follows the strides of `views` (numpy's K
/// order: the first operand with distinct non-zero strides for two dims decides).
/// Writes a permutation (outermost first) and returns true if it differs from C order.
bool keep_order(const int64_t* shape, int ndim, const View* const* views, int n, int* perm);

// ---------------------------------------------------------------------------------------
// threads
// ---------------------------------------------------------------------------------------
int get_num_threads();
void set_num_threads(int n);
/// This thread's own count (n >= 1), overriding set_num_threads here only; 0 clears it.
/// Returns the previous per-thread count (0: none).
int set_local_num_threads(int n);
/// The threads a kernel of n elements uses (1 when serial): n >= grain, not nested.
int omp_threads_for(int64_t n, int64_t grain);

/// Elements of work below which a kernel stays serial: an OpenMP fork costs a few
/// microseconds, about what a core needs to stream this many elements.
constexpr int64_t kGrain = 32768;

/// Strides of view `v` broadcast to `shape` (ndim >= v.ndim; leading/size-1 dims get 0).
void broadcast_strides(const View& v, const int64_t* shape, int ndim, int64_t* out);

// ---- templates: one copy per ISA level
TINYFW_ISA_BEGIN

/// f(begin, end) over [0, n) split into at most get_num_threads() equal contiguous parts;
/// serial when n < grain, one thread, or already inside a parallel region. The split
/// depends only on n and the thread count, never on timing.
template <class F> void parallel_for(int64_t n, int64_t grain, F&& f);

/// f(W{}) with W the unsigned integer type of `isz` bytes (1, 2, 4, else 8): kernels that
/// only move elements (copies, fills, sorts of raw bits) need the width, not the dtype.
template <class F> decltype(auto) dispatch_width(int64_t isz, F&& f) {
    switch (isz) {
        case 1: return f(uint8_t{});
        case 2: return f(uint16_t{});
        case 4: return f(uint32_t{});
        default: return f(uint64_t{});
    }
}

// ---------------------------------------------------------------------------------------
// N-operand strided loops (operand 0 is usually the output)
// ---------------------------------------------------------------------------------------
template <int N> struct Loop {
    int ndim = 0;  // collapsed; dims[ndim-1] is the inner loop
    int64_t shape[kMaxDims];
    int64_t bstrides[N][kMaxDims];  // in BYTES, so operands of different dtypes mix
    char* base[N];
    int64_t numel = 0;
};

/// Build a loop over `shape` for operands (data, element strides already broadcast to
/// `shape`, itemsize). Dims are ordered by operand 0's strides (outermost = largest), size-1
/// dims dropped and dims that are contiguous for every operand merged.
template <int N>
Loop<N> make_loop(const int64_t* shape, int ndim, char* const* data,
                  const int64_t* const* elem_strides, const int64_t* itemsizes);

/// Run inner(n, ptrs, bstrides) over every innermost row of the loop, splitting the work
/// (rows, or pieces of a long row) across threads. `inner` gets byte pointers and the
/// inner byte strides of each operand.
template <int N, class Inner> void run_loop(const Loop<N>& L, Inner&& inner, int64_t grain = kGrain);

// ====================================== implementation of the templates

template <class F> void parallel_for(int64_t n, int64_t grain, F&& f) {
    if (n <= 0) return;
    int nt = omp_threads_for(n, grain);
    if (nt <= 1) {
        f(int64_t(0), n);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num(), T = omp_get_num_threads();
#else
        int t = 0, T = 1;
#endif
        int64_t b = n * t / T, e = n * (t + 1) / T;
        if (b < e) f(b, e);
    }
}

template <int N>
Loop<N> make_loop(const int64_t* shape, int ndim, char* const* data,
                  const int64_t* const* elem_strides, const int64_t* itemsizes) {
    Loop<N> L;
    for (int k = 0; k < N; ++k) L.base[k] = data[k];
    L.numel = 1;
    for (int d = 0; d < ndim; ++d) L.numel *= shape[d];
    // order: stable sort of dims by |stride of operand 0| descending
    int order[kMaxDims];
    int m = 0;
    for (int d = 0; d < ndim; ++d)
        if (shape[d] != 1) order[m++] = d;
    auto key = [&](int d) {
        int64_t s = elem_strides[0][d];
        return s < 0 ? -s : s;
    };
    std::stable_sort(order, order + m, [&](int a, int b) { return key(a) > key(b); });
    int nd = 0;
    for (int i = 0; i < m; ++i) {
        int d = order[i];
        if (nd > 0) {  // merge into the previous (outer) dim if contiguous for all operands
            bool ok = true;
            for (int k = 0; k < N && ok; ++k)
                ok = L.bstrides[k][nd - 1] == elem_strides[k][d] * itemsizes[k] * shape[d];
            if (ok) {
                L.shape[nd - 1] *= shape[d];
                for (int k = 0; k < N; ++k) L.bstrides[k][nd - 1] = elem_strides[k][d] * itemsizes[k];
                continue;
            }
        }
        L.shape[nd] = shape[d];
        for (int k = 0; k < N; ++k) L.bstrides[k][nd] = elem_strides[k][d] * itemsizes[k];
        ++nd;
    }
    if (nd == 0) {  // a single element
        L.shape[0] = L.numel == 0 ? 0 : 1;
        for (int k = 0; k < N; ++k) L.bstrides[k][0] = 0;
        nd = 1;
    }
    L.ndim = nd;
    return L;
}

template <int N, class Inner> void run_loop(const Loop<N>& L, Inner&& inner, int64_t grain) {
    if (L.numel == 0) return;
    const int nd = L.ndim;
    const int64_t n_in = L.shape[nd - 1];
    const int64_t rows = L.numel / n_in;
    int64_t sin[N];
    for (int k = 0; k < N; ++k) sin[k] = L.bstrides[k][nd - 1];
    // pieces: split long rows so that even a 1-D loop spreads over the threads
    int nt = omp_threads_for(L.numel, grain);
    int64_t pieces = 1;
    if (nt > 1 && rows < int64_t(nt) * 4) {
        pieces = (int64_t(nt) * 4 + rows - 1) / rows;
        pieces = std::min<int64_t>(pieces, std::max<int64_t>(1, n_in / 1024));
    }
    const int64_t piece_len = (n_in + pieces - 1) / pieces;
    auto work = [&](int64_t b, int64_t e) {
        // items [b, e): item = row * pieces + piece
        int64_t idx[kMaxDims];
        int64_t row = b / pieces;
        int64_t r = row;
        for (int d = nd - 2; d >= 0; --d) {
            idx[d] = r % L.shape[d];
            r /= L.shape[d];
        }
        char* p[N];
        for (int k = 0; k < N; ++k) {
            p[k] = L.base[k];
            for (int d = 0; d < nd - 1; ++d) p[k] += idx[d] * L.bstrides[k][d];
        }
        for (int64_t it = b; it < e;) {
            int64_t pc = it - row * pieces;
            for (; pc < pieces && it < e; ++pc, ++it) {
                int64_t c0 = pc * piece_len, c1 = std::min(n_in, c0 + piece_len);
                if (c0 >= c1) continue;
                char* q[N];
                for (int k = 0; k < N; ++k) q[k] = p[k] + c0 * sin[k];
                inner(c1 - c0, q, sin);
            }
            if (it >= e) break;
            // next row: odometer increment over the outer dims
            ++row;
            for (int d = nd - 2; d >= 0; --d) {
                for (int k = 0; k < N; ++k) p[k] += L.bstrides[k][d];
                if (++idx[d] < L.shape[d]) break;
                for (int k = 0; k < N; ++k) p[k] -= L.bstrides[k][d] * L.shape[d];
                idx[d] = 0;
            }
        }
    };
    int64_t items = rows * pieces;
    if (nt <= 1) {
        work(0, items);
        return;
    }
    parallel_for(items, 1, work);
}

TINYFW_ISA_END
}  // namespace tf
