// The elementwise and pooling int8 primitives of tinyfw/backend/ref_quant.py: quantize
// and dequantize per tensor / per channel, qadd, qmax_pool2d, qavg_pool2d.  Each follows
// ref_quant's float32 operations one by one (its module doc), so results are bit-exact;
// no contraction into fused multiply-adds except the one quantize_per_tensor asks for.
// Code dtypes or layouts outside these kernels (broadcasting qadd, wider codes) go to the
// reference primitive.
#pragma GCC optimize("fp-contract=off")

#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "core.h"
#include "nn_common.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace {

using FloatArr = py::array_t<float, py::array::c_style | py::array::forcecast>;
using IntArr = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

constexpr int64_t kGrain = 1 << 15;  // elements per thread below which one thread does all

std::pair<int, int> qrange(const std::string& qdtype) {
    if (qdtype == "uint8") return {0, 255};
    if (qdtype == "int8") return {-128, 127};
    throw py::value_error("quantize: qdtype must be 'uint8' or 'int8', got '" + qdtype + "'");
}

// rint(v) clamped to [lo, hi] (clamping first is the same: the bounds are integers)
inline int32_t rint_clamp(float v, int lo, int hi) {
    v = v < float(lo) ? float(lo) : (v > float(hi) ? float(hi) : v);
    return int32_t(std::lrintf(v));  // the current rounding mode: half to even
}

std::vector<py::ssize_t> shape_of(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

// A new array of `a`'s shape (large ones from the caching pool: no page faults per call)
py::array empty_like_shape(const py::dtype& dt, const py::array& a) {
    return empty_array(dt, std::vector<int64_t>(a.shape(), a.shape() + a.ndim()));
}

// x as C-ordered float32: float64 rounded to nearest (overflow to inf, as numpy's cast
// that ref_quant makes with overflow warnings off); other dtypes through numpy
FloatArr finite_input(const py::object& x_obj, const char* op) {
    py::array x = as_array(x_obj, op, "x");
    FloatArr f;
    if (x.dtype().kind() == 'f' && x.itemsize() == 8) {
        py::array_t<double, py::array::c_style> d = py::array_t<double, py::array::c_style>::ensure(x);
        f = FloatArr(shape_of(d));
        for (py::ssize_t i = 0; i < d.size(); ++i) f.mutable_data()[i] = static_cast<float>(d.data()[i]);
    } else {
        f = FloatArr::ensure(x);
    }
    if (!f) throw py::value_error(std::string(op) + ": x must be an array of numbers");
    const float* p = f.data();
    for (py::ssize_t i = 0; i < f.size(); ++i)
        if (std::isnan(p[i])) throw py::value_error(std::string(op) + ": the input holds NaN, which has no quantized value");
    return f;
}

// (outer, channels, inner) of a C-ordered array split at `axis`
void split_axis(const py::array& a, int64_t axis, int64_t& outer, int64_t& ch, int64_t& inner, const char* op) {
    const int64_t nd = a.ndim();
    if (axis < -nd || axis >= nd) throw py::value_error(std::string(op) + ": axis " + std::to_string(axis) + " is out of range");
    if (axis < 0) axis += nd;
    outer = inner = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= a.shape(i);
    ch = a.shape(axis);
    for (int64_t i = axis + 1; i < nd; ++i) inner *= a.shape(i);
}

template <class F> void parallel_range(int64_t n, F&& f) {
#pragma omp parallel for schedule(static) if (n > 2 * kGrain && !omp_in_parallel())
    for (int64_t b = 0; b < n; b += kGrain) f(b, std::min(n, b + kGrain));
}

py::array quantize_per_tensor(py::object x_obj, double scale, int64_t zero_point, std::string qdtype) {
    const auto [lo, hi] = qrange(qdtype);
    FloatArr x = finite_input(x_obj, "quantize_per_tensor");
    py::array out = empty_like_shape(lo == 0 ? py::dtype::of<uint8_t>() : py::dtype::of<int8_t>(), x);
    const float inv = 1.f / float(scale), zp = float(zero_point);
    const float* s = x.data();
    uint8_t* d = static_cast<uint8_t*>(out.mutable_data());
    const bool u8 = lo == 0;
    {
        py::gil_scoped_release nogil;
        parallel_range(x.size(), [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {  // one rounding of x * inv + zp (torch's x86 build)
                const int32_t q = rint_clamp(std::fma(s[i], inv, zp), lo, hi);
                d[i] = u8 ? uint8_t(q) : uint8_t(int8_t(q));
            }
        });
    }
    return out;
}

py::array quantize_per_channel(py::object x_obj, py::object scales, py::object zero_points, int64_t axis,
                               std::string qdtype) {
    const char* op = "quantize_per_channel";
    const auto [lo, hi] = qrange(qdtype);
    FloatArr x = finite_input(x_obj, op);
    int64_t outer, ch, inner;
    split_axis(x, axis, outer, ch, inner, op);
    FloatArr sc = FloatArr::ensure(scales);
    IntArr zps = IntArr::ensure(zero_points);
    if (!sc || !zps || sc.size() != ch || zps.size() != ch)
        throw py::value_error(std::string(op) + ": scales and zero_points need one value per channel (" +
                              std::to_string(ch) + ")");
    std::vector<float> inv(ch), zp(ch);
    for (int64_t c = 0; c < ch; ++c) inv[c] = 1.f / sc.data()[c], zp[c] = float(zps.data()[c]);
    py::array out = empty_like_shape(lo == 0 ? py::dtype::of<uint8_t>() : py::dtype::of<int8_t>(), x);
    const float* s = x.data();
    uint8_t* d = static_cast<uint8_t*>(out.mutable_data());
    const bool u8 = lo == 0;
    py::gil_scoped_release nogil;
    parallel_range(outer * ch, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
            const int64_t c = r % ch;
            for (int64_t i = r * inner; i < (r + 1) * inner; ++i) {
                const float v = s[i] * inv[c];  // two roundings: multiply, then add
                const int32_t q = rint_clamp(v + zp[c], lo, hi);
                d[i] = u8 ? uint8_t(q) : uint8_t(int8_t(q));
            }
        }
    });
    return out;
}

bool small_codes(const py::array& q) { return q.itemsize() == 1 && (q.dtype().kind() == 'u' || q.dtype().kind() == 'i'); }

template <class T> inline int32_t code(const void* p, int64_t i) { return int32_t(static_cast<const T*>(p)[i]); }

py::object dequantize_per_tensor(py::object q_obj, double scale, int64_t zero_point) {
    py::array q = as_array(q_obj, "dequantize_per_tensor", "q");
    if (!small_codes(q) || zero_point < INT32_MIN || zero_point > INT32_MAX)
        return tf::call_ref("dequantize_per_tensor", q, scale, zero_point);
    q = py::array::ensure(q, py::array::c_style);
    py::array out = empty_like_shape(py::dtype::of<float>(), q);
    const bool u8 = q.dtype().kind() == 'u';
    const float s = float(scale);
    const int32_t zp = int32_t(zero_point);
    const void* src = q.data();
    float* d = static_cast<float*>(out.mutable_data());
    py::gil_scoped_release nogil;
    parallel_range(q.size(), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) d[i] = float((u8 ? code<uint8_t>(src, i) : code<int8_t>(src, i)) - zp) * s;
    });
    return std::move(out);
}

py::object dequantize_per_channel(py::object q_obj, py::object scales, py::object zero_points, int64_t axis) {
    const char* op = "dequantize_per_channel";
    py::array q = as_array(q_obj, op, "q");
    if (!small_codes(q)) return tf::call_ref(op, q, scales, zero_points, axis);
    q = py::array::ensure(q, py::array::c_style);
    int64_t outer, ch, inner;
    split_axis(q, axis, outer, ch, inner, op);
    FloatArr sc = FloatArr::ensure(scales);
    py::array_t<int32_t, py::array::c_style | py::array::forcecast> zps =
        py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(zero_points);
    if (!sc || !zps || sc.size() != ch || zps.size() != ch)
        throw py::value_error(std::string(op) + ": scales and zero_points need one value per channel (" +
                              std::to_string(ch) + ")");
    py::array out = empty_like_shape(py::dtype::of<float>(), q);
    const bool u8 = q.dtype().kind() == 'u';
    const void* src = q.data();
    const float* s = sc.data();
    const int32_t* z = zps.data();
    float* d = static_cast<float*>(out.mutable_data());
    py::gil_scoped_release nogil;
    parallel_range(outer * ch, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
            const int64_t c = r % ch;
            for (int64_t i = r * inner; i < (r + 1) * inner; ++i)
                d[i] = float((u8 ? code<uint8_t>(src, i) : code<int8_t>(src, i)) - z[c]) * s[c];
        }
    });
    return std::move(out);
}

py::object qadd(py::object a_obj, double a_scale, int64_t a_zp, py::object b_obj, double b_scale, int64_t b_zp,
                double out_scale, int64_t out_zp, bool relu) {
    py::array a = as_array(a_obj, "qadd", "a_q"), b = as_array(b_obj, "qadd", "b_q");
    auto fits = [](int64_t z) { return z >= -(int64_t(1) << 20) && z <= (int64_t(1) << 20); };
    if (!small_codes(a) || !small_codes(b) || shape_of(a) != shape_of(b) || !fits(a_zp) || !fits(b_zp) ||
        !fits(out_zp))  // broadcasting and wide codes: the reference
        return tf::call_ref("qadd", a, a_scale, a_zp, b, b_scale, b_zp, out_scale, out_zp, relu);
    a = py::array::ensure(a, py::array::c_style);
    b = py::array::ensure(b, py::array::c_style);
    py::array out = empty_like_shape(py::dtype::of<uint8_t>(), a);
    const bool au = a.dtype().kind() == 'u', bu = b.dtype().kind() == 'u';
    const float as = float(a_scale), bs = float(b_scale), inv = 1.f / float(out_scale);
    const int32_t az = int32_t(a_zp), bz = int32_t(b_zp), oz = int32_t(out_zp);
    const void *pa = a.data(), *pb = b.data();
    uint8_t* d = static_cast<uint8_t*>(out.mutable_data());
    py::gil_scoped_release nogil;
    parallel_range(a.size(), [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
            const float x = float((au ? code<uint8_t>(pa, i) : code<int8_t>(pa, i)) - az) * as;
            const float y = float((bu ? code<uint8_t>(pb, i) : code<int8_t>(pb, i)) - bz) * bs;
            float s = x + y;
            if (relu) s = s < 0.f ? 0.f : s;
            const int32_t q = rint_clamp(s * inv, -256 - oz, 511 - oz) + oz;
            d[i] = uint8_t(q < 0 ? 0 : (q > 255 ? 255 : q));
        }
    });
    return std::move(out);
}

}  // namespace

void register_quant_pool(py::module_& m);  // quant_pool.cpp

void register_quant_ops(py::module_& m) {
    m.def("quantize_per_tensor", &quantize_per_tensor, py::arg("x"), py::arg("scale"), py::arg("zero_point"),
          py::arg("qdtype"), "clamp(rint(fma(x, 1/scale, zero_point))) codes (ref_quant)");
    m.def("quantize_per_channel", &quantize_per_channel, py::arg("x"), py::arg("scales"), py::arg("zero_points"),
          py::arg("axis"), py::arg("qdtype"), "clamp(rint(x * (1/scales[c]) + zero_points[c])) codes (ref_quant)");
    m.def("dequantize_per_tensor", &dequantize_per_tensor, py::arg("q"), py::arg("scale"), py::arg("zero_point"),
          "float32(q - zero_point) * scale");
    m.def("dequantize_per_channel", &dequantize_per_channel, py::arg("q"), py::arg("scales"), py::arg("zero_points"),
          py::arg("axis"), "float32(q - zero_points[c]) * scales[c]");
    m.def("qadd", &qadd, py::arg("a_q"), py::arg("a_scale"), py::arg("a_zp"), py::arg("b_q"), py::arg("b_scale"),
          py::arg("b_zp"), py::arg("out_scale"), py::arg("out_zp"), py::arg("relu"),
          "quantized a + b requantized (ref_quant's float32 order)");
    register_quant_pool(m);
}

TINYFW_ISA_END
}  // namespace tinyfw
