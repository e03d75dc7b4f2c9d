// Channels-last (NHWC) companions of the conv kernel in layout_conv.cpp: the two layout
// conversions and max / avg pooling (inference: values only, no argmax indices).
// Semantics: tinyfw/backend/ref_layout.py (the NCHW reference ops, transposed).
//
// In NHWC a pooling window's taps are rows of C contiguous channels, so the inner loop
// runs over channels with unit stride (the compiler vectorises it) instead of gathering
// one element per tap as the NCHW planes do.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "nn_common.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace layout_k {

// dst (cols x rows) = src (rows x cols)^T for `planes` planes, element size E bytes, in
// 32 x 32 blocks so both sides stream through cache lines.
template <typename E>
void transpose_planes(const E* src, E* dst, int64_t planes, int64_t rows, int64_t cols) {
    constexpr int64_t B = 32;
    const int64_t rb = (rows + B - 1) / B, cb = (cols + B - 1) / B, tasks = planes * rb * cb;
    const int maxt = omp_in_parallel() ? 1 : omp_get_max_threads();
    const int nt = (int)std::max<int64_t>(1, std::min<int64_t>(maxt, planes * rows * cols / (1 << 18)));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t t = 0; t < tasks; ++t) {
        const int64_t p = t / (rb * cb), i0 = (t / cb) % rb * B, j0 = t % cb * B;
        const E* s = src + p * rows * cols;
        E* d = dst + p * rows * cols;
        const int64_t i1 = std::min(rows, i0 + B), j1 = std::min(cols, j0 + B);
        for (int64_t j = j0; j < j1; ++j)
            for (int64_t i = i0; i < i1; ++i) d[j * rows + i] = s[i * cols + j];
    }
}

py::object convert(py::object x_obj, bool to_nhwc) {
    const char* op = to_nhwc ? "nchw_to_nhwc" : "nhwc_to_nchw";
    py::array x0 = as_array(x_obj, op, "input");
    if (x0.ndim() != 4) throw py::value_error(std::string(op) + ": input must be 4-d, got " + shape_str(x0));
    py::array x = py::array::ensure(x0, py::array::c_style);
    const int64_t n = x.shape(0), a = x.shape(1), b = x.shape(2), c = x.shape(3);
    // NCHW -> NHWC: each image's (C, H*W) matrix transposed; NHWC -> NCHW: (H*W, C)
    py::array y = to_nhwc ? empty_array(x.dtype(), {n, b, c, a}) : empty_array(x.dtype(), {n, c, a, b});
    const int64_t rows = to_nhwc ? a : a * b, cols = to_nhwc ? b * c : c;
    const auto item = x.itemsize();
    {
        py::gil_scoped_release nogil;
        const void* s = x.data();
        void* d = y.mutable_data();
        switch (item) {
            case 1: transpose_planes((const uint8_t*)s, (uint8_t*)d, n, rows, cols); break;
            case 2: transpose_planes((const uint16_t*)s, (uint16_t*)d, n, rows, cols); break;
            case 4: transpose_planes((const uint32_t*)s, (uint32_t*)d, n, rows, cols); break;
            case 8: transpose_planes((const uint64_t*)s, (uint64_t*)d, n, rows, cols); break;
            default: {
                py::gil_scoped_acquire gil;
                throw py::type_error(std::string(op) + ": unsupported dtype " + dtype_name(x.dtype()));
            }
        }
    }
    return y;
}

py::object nchw_to_nhwc(py::object x) { return convert(x, true); }
py::object nhwc_to_nchw(py::object x) { return convert(x, false); }

// ---- pooling --------------------------------------------------------------------------------
struct Pool {
    int64_t N, H, W, C, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw;
};

int64_t out_size(int64_t size, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    const int64_t span = size + 2 * p - d * (k - 1) - 1;
    const int64_t num = span + (ceil_mode ? s - 1 : 0);
    int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;  // floor division, as Python
    if (ceil_mode && (out - 1) * s >= size + p) --out;
    return out;
}

std::vector<int64_t> ints2(const py::object& t, const char* op, const char* what) {
    auto v = t.cast<std::vector<int64_t>>();
    if (v.size() != 2) throw py::value_error(std::string(op) + ": " + what + " must have 2 values");
    return v;
}

Pool pool_geometry(const py::array& x, py::object kernel, py::object stride, py::object padding, py::object dilation,
                   bool ceil_mode, const char* op) {
    if (x.ndim() != 4) throw py::value_error(std::string(op) + ": input must be (N, H, W, C), got " + shape_str(x));
    Pool g{};
    g.N = x.shape(0), g.H = x.shape(1), g.W = x.shape(2), g.C = x.shape(3);
    auto k = ints2(kernel, op, "kernel_size"), s = ints2(stride, op, "stride"), p = ints2(padding, op, "padding"),
         d = ints2(dilation, op, "dilation");
    g.kh = k[0], g.kw = k[1], g.sh = s[0], g.sw = s[1], g.ph = p[0], g.pw = p[1], g.dh = d[0], g.dw = d[1];
    if (g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1 || g.ph < 0 || g.pw < 0 ||
        2 * g.ph > g.dh * (g.kh - 1) + 1 || 2 * g.pw > g.dw * (g.kw - 1) + 1)
        throw py::value_error(std::string(op) + ": invalid window (kernel >= 1, stride >= 1, dilation >= 1, padding "
                                                "at most half the effective kernel)");
    g.OH = out_size(g.H, g.kh, g.sh, g.ph, g.dh, ceil_mode);
    g.OW = out_size(g.W, g.kw, g.sw, g.pw, g.dw, ceil_mode);
    if (g.OH < 1 || g.OW < 1) throw py::value_error(std::string(op) + ": input too small for the window");
    return g;
}

template <class F> void for_pixels(const Pool& g, F&& f) {
    const int64_t px = g.N * g.OH * g.OW;
    const int maxt = omp_in_parallel() ? 1 : omp_get_max_threads();
    const int nt = (int)std::max<int64_t>(1, std::min<int64_t>(maxt, px * g.C * g.kh * g.kw / (1 << 17)));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t q = 0; q < px; ++q) f(q / (g.OH * g.OW), q / g.OW % g.OH, q % g.OW);
}

// y = max over the window's input elements, NaN winning; -inf for a window without any
template <typename T> void max_pool(const Pool& g, const T* x, T* y) {
    for_pixels(g, [&](int64_t n, int64_t i, int64_t j) {
        T* out = y + ((n * g.OH + i) * g.OW + j) * g.C;
        std::fill(out, out + g.C, -std::numeric_limits<T>::infinity());
        for (int64_t a = 0; a < g.kh; ++a) {
            const int64_t ih = i * g.sh - g.ph + a * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t b = 0; b < g.kw; ++b) {
                const int64_t iw = j * g.sw - g.pw + b * g.dw;
                if (iw < 0 || iw >= g.W) continue;
                const T* in = x + ((n * g.H + ih) * g.W + iw) * g.C;
                for (int64_t c = 0; c < g.C; ++c) {
                    const T v = in[c], m = out[c];
                    out[c] = (v > m || v != v) && m == m ? v : m;  // the first NaN stays
                }
            }
        }
    });
}

// the window length along one dim, PyTorch's rule (ref_nn._avg_divisor)
int64_t avg_len(int64_t o, int64_t size, int64_t k, int64_t s, int64_t p, bool include_pad) {
    const int64_t start = o * s - p, end = std::min(start + k, size + p);
    if (include_pad) return end - start;
    return std::min(end, size) - std::max<int64_t>(start, 0);
}

template <typename T> void avg_pool(const Pool& g, const T* x, T* y, bool include_pad, int64_t divisor_override) {
    for_pixels(g, [&](int64_t n, int64_t i, int64_t j) {
        T* out = y + ((n * g.OH + i) * g.OW + j) * g.C;
        std::fill(out, out + g.C, T(0));
        for (int64_t a = 0; a < g.kh; ++a) {
            const int64_t ih = i * g.sh - g.ph + a;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t b = 0; b < g.kw; ++b) {
                const int64_t iw = j * g.sw - g.pw + b;
                if (iw < 0 || iw >= g.W) continue;
                const T* in = x + ((n * g.H + ih) * g.W + iw) * g.C;
                for (int64_t c = 0; c < g.C; ++c) out[c] += in[c];
            }
        }
        const double d = divisor_override ? double(divisor_override)
                                          : double(avg_len(i, g.H, g.kh, g.sh, g.ph, include_pad) *
                                                   avg_len(j, g.W, g.kw, g.sw, g.pw, include_pad));
        const T div = T(d);
        for (int64_t c = 0; c < g.C; ++c) out[c] /= div;
    });
}

py::array pool_input(py::object x_obj, const char* op) {
    py::array x = as_array(x_obj, op, "input");
    const Kind k = kind_of(x.dtype());
    if (k != Kind::F32 && k != Kind::F64)
        throw py::type_error(std::string(op) + ": input must be float32 or float64, got " + dtype_name(x.dtype()));
    return py::array::ensure(x, py::array::c_style);
}

py::object max_pool2d_nhwc(py::object x_obj, py::object kernel, py::object stride, py::object padding,
                           py::object dilation, bool ceil_mode) {
    const char* op = "max_pool2d_nhwc";
    py::array x = pool_input(x_obj, op);
    const Pool g = pool_geometry(x, kernel, stride, padding, dilation, ceil_mode, op);
    py::array y = empty_array(x.dtype(), {g.N, g.OH, g.OW, g.C});
    const bool f64 = kind_of(x.dtype()) == Kind::F64;
    py::gil_scoped_release nogil;
    if (f64) max_pool<double>(g, (const double*)x.data(), (double*)y.mutable_data());
    else max_pool<float>(g, (const float*)x.data(), (float*)y.mutable_data());
    return y;
}

py::object avg_pool2d_nhwc(py::object x_obj, py::object kernel, py::object stride, py::object padding, bool ceil_mode,
                           bool count_include_pad, py::object divisor_override) {
    const char* op = "avg_pool2d_nhwc";
    py::array x = pool_input(x_obj, op);
    const Pool g = pool_geometry(x, kernel, stride, padding, py::make_tuple(1, 1), ceil_mode, op);
    const int64_t dov = divisor_override.is_none() ? 0 : divisor_override.cast<int64_t>();
    py::array y = empty_array(x.dtype(), {g.N, g.OH, g.OW, g.C});
    const bool f64 = kind_of(x.dtype()) == Kind::F64;
    py::gil_scoped_release nogil;
    if (f64) avg_pool<double>(g, (const double*)x.data(), (double*)y.mutable_data(), count_include_pad, dov);
    else avg_pool<float>(g, (const float*)x.data(), (float*)y.mutable_data(), count_include_pad, dov);
    return y;
}

}  // namespace layout_k

void register_layout_ops(py::module_& m) {
    using namespace layout_k;
    m.def("nchw_to_nhwc", &nchw_to_nhwc, py::arg("x"), "(N, C, H, W) -> C-contiguous (N, H, W, C)");
    m.def("nhwc_to_nchw", &nhwc_to_nchw, py::arg("x"), "(N, H, W, C) -> C-contiguous (N, C, H, W)");
    m.def("max_pool2d_nhwc", &max_pool2d_nhwc, py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
          py::arg("dilation"), py::arg("ceil_mode"), "max pooling of NHWC x (values only)");
    m.def("avg_pool2d_nhwc", &avg_pool2d_nhwc, py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
          py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("divisor_override"), "average pooling of NHWC x");
}

TINYFW_ISA_END
}  // namespace tinyfw
