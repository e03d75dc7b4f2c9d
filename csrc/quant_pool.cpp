// Quantized pooling on uint8 / int8 codes (tinyfw/backend/ref_quant.py): qmax_pool2d takes
// the largest code of each window (codes order as the values they stand for), qavg_pool2d
// sums (x - zero_point) exactly in int32 and rounds float32(sum) * float32(1 / count) once.
// Windows follow PyTorch's output sizes (ceil_mode included); padding never wins a max
// and adds zero to a sum.
#pragma GCC optimize("fp-contract=off")

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core.h"
#include "nn_common.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace {

std::vector<int64_t> pair_of(const py::object& t, const char* op, const char* what) {
    auto v = t.cast<std::vector<int64_t>>();
    if (v.size() != 2) throw py::value_error(std::string(op) + ": " + what + " must have 2 values");
    return v;
}

int64_t pool_out(int64_t size, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {  // ref_nn._pool_out
    const int64_t span = size + 2 * p - d * (k - 1) - 1;
    const int64_t num = span + (ceil_mode ? s - 1 : 0);
    int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;  // floor division
    if (ceil_mode && (out - 1) * s >= size + p) --out;
    return out;
}

struct Pool {
    int64_t N, C, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw;
};

Pool geometry(const py::array& x, const py::object& kernel, const py::object& stride, const py::object& padding,
              const py::object* dilation, bool ceil_mode, const char* op) {
    Pool g{};
    g.N = x.shape(0), g.C = x.shape(1), g.H = x.shape(2), g.W = x.shape(3);
    auto k = pair_of(kernel, op, "kernel"), s = pair_of(stride, op, "stride"), p = pair_of(padding, op, "padding");
    std::vector<int64_t> d = dilation ? pair_of(*dilation, op, "dilation") : std::vector<int64_t>{1, 1};
    g.kh = k[0], g.kw = k[1], g.sh = s[0], g.sw = s[1], g.ph = p[0], g.pw = p[1], g.dh = d[0], g.dw = d[1];
    if (g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1 || g.ph < 0 || g.pw < 0)
        throw py::value_error(std::string(op) + ": kernel, stride and dilation must be >= 1 and padding >= 0");
    g.OH = pool_out(g.H, g.kh, g.sh, g.ph, g.dh, ceil_mode);
    g.OW = pool_out(g.W, g.kw, g.sw, g.pw, g.dw, ceil_mode);
    if (g.OH < 1 || g.OW < 1) throw py::value_error(std::string(op) + ": the window is larger than the padded input");
    return g;
}

bool nchw_codes(const py::array& q) {
    return q.ndim() == 4 && q.itemsize() == 1 && (q.dtype().kind() == 'u' || q.dtype().kind() == 'i');
}

template <class T> void max_planes(const Pool& g, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (g.N * g.C * g.OH * g.OW > 32768 && !omp_in_parallel())
    for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
        const T* src = x + nc * g.H * g.W;
        T* dst = y + nc * g.OH * g.OW;
        for (int64_t oh = 0; oh < g.OH; ++oh)
            for (int64_t ow = 0; ow < g.OW; ++ow) {
                T best = std::numeric_limits<T>::min();  // the padding value of ref_quant
                for (int64_t a = 0; a < g.kh; ++a) {
                    const int64_t ih = oh * g.sh - g.ph + a * g.dh;
                    if (ih < 0 || ih >= g.H) continue;
                    for (int64_t b = 0; b < g.kw; ++b) {
                        const int64_t iw = ow * g.sw - g.pw + b * g.dw;
                        if (iw >= 0 && iw < g.W) best = std::max(best, src[ih * g.W + iw]);
                    }
                }
                dst[oh * g.OW + ow] = best;
            }
    }
}

py::object qmax_pool2d(py::object x_obj, py::object kernel, py::object stride, py::object padding,
                       py::object dilation, bool ceil_mode) {
    const char* op = "qmax_pool2d";
    py::array x = as_array(x_obj, op, "x_q");
    if (!nchw_codes(x)) return tf::call_ref(op, x, kernel, stride, padding, dilation, ceil_mode);
    const Pool g = geometry(x, kernel, stride, padding, &dilation, ceil_mode, op);
    if (g.ph > g.kh / 2 || g.pw > g.kw / 2)
        throw py::value_error("qmax_pool2d: padding (" + std::to_string(g.ph) + ", " + std::to_string(g.pw) +
                              ") must be at most half the kernel (" + std::to_string(g.kh) + ", " +
                              std::to_string(g.kw) + ")");
    x = py::array::ensure(x, py::array::c_style);
    py::array y = empty_array(x.dtype(), {g.N, g.C, g.OH, g.OW});
    const bool u8 = x.dtype().kind() == 'u';
    py::gil_scoped_release nogil;
    if (u8) max_planes(g, static_cast<const uint8_t*>(x.data()), static_cast<uint8_t*>(y.mutable_data()));
    else max_planes(g, static_cast<const int8_t*>(x.data()), static_cast<int8_t*>(y.mutable_data()));
    return y;
}

// taps of window o along one dimension that count (ref_quant: clip(start + k) - clip(start))
int64_t taps(int64_t o, int64_t k, int64_t s, int64_t p, int64_t size, bool include_pad) {
    const int64_t start = o * s - p, lo = include_pad ? -p : 0, hi = include_pad ? size + p : size;
    return std::clamp(start + k, lo, hi) - std::clamp(start, lo, hi);
}

template <class T> void avg_planes(const Pool& g, const T* x, T* y, int32_t zp, bool include_pad) {
    std::vector<float> inv(g.OH * g.OW);
    for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
            const int32_t count = int32_t(taps(oh, g.kh, g.sh, g.ph, g.H, include_pad) *
                                          taps(ow, g.kw, g.sw, g.pw, g.W, include_pad));
            inv[oh * g.OW + ow] = 1.f / float(count);
        }
    const float lo = float(std::numeric_limits<T>::min()), hi = float(std::numeric_limits<T>::max());
#pragma omp parallel for schedule(static) if (g.N * g.C * g.OH * g.OW > 32768 && !omp_in_parallel())
    for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
        const T* src = x + nc * g.H * g.W;
        T* dst = y + nc * g.OH * g.OW;
        for (int64_t oh = 0; oh < g.OH; ++oh)
            for (int64_t ow = 0; ow < g.OW; ++ow) {
                int32_t s = 0;
                for (int64_t a = 0; a < g.kh; ++a) {
                    const int64_t ih = oh * g.sh - g.ph + a;
                    if (ih < 0 || ih >= g.H) continue;
                    for (int64_t b = 0; b < g.kw; ++b) {
                        const int64_t iw = ow * g.sw - g.pw + b;
                        if (iw >= 0 && iw < g.W) s += int32_t(src[ih * g.W + iw]) - zp;
                    }
                }
                // rint(float32(s) * inv) + zero_point (float32), clipped to the code range
                float v = std::nearbyint(float(s) * inv[oh * g.OW + ow]) + float(zp);
                v = v < lo ? lo : (v > hi ? hi : v);
                dst[oh * g.OW + ow] = T(v);
            }
    }
}

py::object qavg_pool2d(py::object x_obj, int64_t zero_point, py::object kernel, py::object stride,
                       py::object padding, bool ceil_mode, bool count_include_pad) {
    const char* op = "qavg_pool2d";
    py::array x = as_array(x_obj, op, "x_q");
    if (!nchw_codes(x) || zero_point < -(1 << 20) || zero_point > (1 << 20))
        return tf::call_ref(op, x, zero_point, kernel, stride, padding, ceil_mode, count_include_pad);
    const Pool g = geometry(x, kernel, stride, padding, nullptr, ceil_mode, op);
    x = py::array::ensure(x, py::array::c_style);
    py::array y = empty_array(x.dtype(), {g.N, g.C, g.OH, g.OW});
    const bool u8 = x.dtype().kind() == 'u';
    py::gil_scoped_release nogil;
    if (u8) avg_planes(g, static_cast<const uint8_t*>(x.data()), static_cast<uint8_t*>(y.mutable_data()),
                       int32_t(zero_point), count_include_pad);
    else avg_planes(g, static_cast<const int8_t*>(x.data()), static_cast<int8_t*>(y.mutable_data()),
                    int32_t(zero_point), count_include_pad);
    return y;
}

}  // namespace

void register_quant_pool(py::module_& m) {
    m.def("qmax_pool2d", &qmax_pool2d, py::arg("x_q"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
          py::arg("dilation"), py::arg("ceil_mode"), "max pooling of codes (same scale and zero point)");
    m.def("qavg_pool2d", &qavg_pool2d, py::arg("x_q"), py::arg("zero_point"), py::arg("kernel"), py::arg("stride"),
          py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"),
          "average pooling of codes in the input's scale (int32 sums, one float32 rounding)");
}

TINYFW_ISA_END
}  // namespace tinyfw
