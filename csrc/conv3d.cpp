// conv3d forward and both backward passes by 3-d im2col + GEMM (groups, stride, padding
// and dilation per dim).  Semantics: tinyfw/backend/ref_conv3d.py (cross-correlation, no
// bias, zero padding); conv_transpose3d is conv3d_backward_input applied to its input.
//
// The column matrix of one image is K x P (K = C/groups * kd * kh * kw, P = OD * OH * OW):
// too big to build whole for real volumes (64 channels x 27 taps x 32^3 positions is 220 MB
// in float), so it is built for a slab of output depths at a time, sized to about 4 MB
// (SLAB_ELEMS), and each slab is one GEMM whose output lands in place in the (O, P) plane
// (row stride P).  Work is split over the batch when it holds at least as many images as
// threads (one single-threaded GEMM per slab, each thread with its own buffers; the weight
// gradient summed from per-thread partials in thread order, so results do not depend on
// scheduling); otherwise images run in turn with threaded GEMMs.  A 1x1x1, stride-1,
// unpadded convolution of a spatially contiguous input skips im2col (the input plane is
// the column matrix).  float16 / bfloat16 run in float32 and are rounded once at the end
// (nn_common.h's to_compute / from_compute), as the reference does.
#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "gemm.h"
#include "nn_common.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace conv3d_k {

constexpr int64_t SLAB_ELEMS = int64_t(1) << 20;  // column-buffer size per slab, elements

struct Geom3 {
    int64_t N, C, D, H, W, O, Cg, KD, KH, KW, OD, OH, OW, G;
    int64_t sd, sh, sw, pd, ph, pw, dd, dh, dw;
    int64_t K() const { return Cg * KD * KH * KW; }  // GEMM depth of one group
    int64_t plane() const { return OH * OW; }        // output positions of one depth
    int64_t P() const { return OD * OH * OW; }       // output positions of one image
    bool pointwise() const {
        return KD == 1 && KH == 1 && KW == 1 && sd == 1 && sh == 1 && sw == 1 && pd == 0 && ph == 0 && pw == 0;
    }
    // output depths per slab: the column buffer stays near SLAB_ELEMS
    int64_t slab() const { return std::max<int64_t>(1, std::min<int64_t>(OD, SLAB_ELEMS / std::max<int64_t>(1, K() * plane()))); }
};

std::vector<int64_t> triple(const py::object& t, const char* op, const char* what) {
    auto v = t.cast<std::vector<int64_t>>();
    if (v.size() != 3) throw py::value_error(std::string(op) + ": " + what + " must have 3 values");
    return v;
}

std::string dims(const std::vector<int64_t>& v) {
    std::string s = "(";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + ")";
}

Geom3 geometry(const std::vector<int64_t>& xs, const std::vector<int64_t>& ws, const py::object& stride,
               const py::object& padding, const py::object& dilation, int64_t groups, const char* op) {
    if (xs.size() != 5 || ws.size() != 5) throw py::value_error(std::string(op) + ": input and weight must be 5-d");
    const auto s = triple(stride, op, "stride"), p = triple(padding, op, "padding"), d = triple(dilation, op, "dilation");
    Geom3 g{};
    g.N = xs[0], g.C = xs[1], g.D = xs[2], g.H = xs[3], g.W = xs[4];
    g.O = ws[0], g.Cg = ws[1], g.KD = ws[2], g.KH = ws[3], g.KW = ws[4], g.G = groups;
    g.sd = s[0], g.sh = s[1], g.sw = s[2], g.pd = p[0], g.ph = p[1], g.pw = p[2], g.dd = d[0], g.dh = d[1], g.dw = d[2];
    const std::string shapes = " (input " + dims(xs) + ", weight " + dims(ws) + ", groups " + std::to_string(groups) + ")";
    if (groups < 1 || g.C != g.Cg * groups || g.O % groups != 0 || g.KD < 1 || g.KH < 1 || g.KW < 1)
        throw py::value_error(std::string(op) + ": inconsistent shapes" + shapes);
    for (int i = 0; i < 3; ++i)
        if (s[i] < 1 || d[i] < 1 || p[i] < 0)
            throw py::value_error(std::string(op) + ": stride and dilation must be >= 1 and padding >= 0" + shapes);
    const int64_t span[3] = {g.D + 2 * g.pd - g.dd * (g.KD - 1) - 1, g.H + 2 * g.ph - g.dh * (g.KH - 1) - 1,
                             g.W + 2 * g.pw - g.dw * (g.KW - 1) - 1};
    if (span[0] < 0 || span[1] < 0 || span[2] < 0)
        throw py::value_error(std::string(op) + ": kernel larger than the padded input" + shapes);
    g.OD = span[0] / g.sd + 1, g.OH = span[1] / g.sh + 1, g.OW = span[2] / g.sw + 1;
    return g;
}

// output columns j of a row whose input column x0 + j*sw lies in [0, W): [jlo, jhi)
inline void column_range(const Geom3& g, int64_t x0, int64_t& jlo, int64_t& jhi) {
    jlo = std::min(g.OW, x0 >= 0 ? 0 : (-x0 + g.sw - 1) / g.sw);
    jhi = std::max(jlo, std::min(g.OW, x0 >= g.W ? 0 : (g.W - 1 - x0) / g.sw + 1));
}

// col[((c*KD + a)*KH + b)*KW + e][((i - i0)*OH + j)*OW + k] =
//   x[c, i*sd - pd + a*dd, j*sh - ph + b*dh, k*sw - pw + e*dw] (0 outside), output depths
// i in [i0, i1), for the Cg channels at x (element strides sc, sz, sy, sx); rows ld apart.
template <typename T>
void im2col(const Geom3& g, const T* x, int64_t sc, int64_t sz, int64_t sy, int64_t sx, int64_t i0, int64_t i1,
            T* col, int64_t ld) {
    for (int64_t c = 0; c < g.Cg; ++c)
        for (int64_t a = 0; a < g.KD; ++a)
            for (int64_t b = 0; b < g.KH; ++b)
                for (int64_t e = 0; e < g.KW; ++e) {
                    T* dst = col + (((c * g.KD + a) * g.KH + b) * g.KW + e) * ld;
                    const int64_t x0 = e * g.dw - g.pw;
                    int64_t jlo, jhi;
                    column_range(g, x0, jlo, jhi);
                    for (int64_t i = i0; i < i1; ++i) {
                        const int64_t z = i * g.sd - g.pd + a * g.dd;
                        for (int64_t j = 0; j < g.OH; ++j) {
                            T* d = dst + ((i - i0) * g.OH + j) * g.OW;
                            const int64_t y = j * g.sh - g.ph + b * g.dh;
                            if (z < 0 || z >= g.D || y < 0 || y >= g.H) {
                                std::fill(d, d + g.OW, T(0));
                                continue;
                            }
                            const T* src = x + c * sc + z * sz + y * sy + x0 * sx;
                            std::fill(d, d + jlo, T(0));
                            if (sx == 1 && g.sw == 1) std::copy(src + jlo, src + jhi, d + jlo);
                            else for (int64_t k = jlo; k < jhi; ++k) d[k] = src[k * g.sw * sx];
                            std::fill(d + jhi, d + g.OW, T(0));
                        }
                    }
                }
}

// The adjoint of im2col: x[c, ...] += col[...] for the Cg channels at x (contiguous D, H, W).
template <typename T>
void col2im(const Geom3& g, const T* col, int64_t ld, int64_t i0, int64_t i1, T* x) {
    for (int64_t c = 0; c < g.Cg; ++c)
        for (int64_t a = 0; a < g.KD; ++a)
            for (int64_t b = 0; b < g.KH; ++b)
                for (int64_t e = 0; e < g.KW; ++e) {
                    const T* src = col + (((c * g.KD + a) * g.KH + b) * g.KW + e) * ld;
                    const int64_t x0 = e * g.dw - g.pw;
                    int64_t jlo, jhi;
                    column_range(g, x0, jlo, jhi);
                    for (int64_t i = i0; i < i1; ++i) {
                        const int64_t z = i * g.sd - g.pd + a * g.dd;
                        if (z < 0 || z >= g.D) continue;
                        for (int64_t j = 0; j < g.OH; ++j) {
                            const int64_t y = j * g.sh - g.ph + b * g.dh;
                            if (y < 0 || y >= g.H) continue;
                            T* d = x + ((c * g.D + z) * g.H + y) * g.W + x0;
                            const T* s = src + ((i - i0) * g.OH + j) * g.OW;
                            for (int64_t k = jlo; k < jhi; ++k) d[k * g.sw] += s[k];
                        }
                    }
                }
}

// Threads over images (each with single-threaded GEMMs), or 1 (images in turn, GEMMs
// threaded): below ~1 MFLOP per thread a parallel region costs more than it saves.
int image_threads(const Geom3& g) {
    const int maxt = omp_in_parallel() ? 1 : omp_get_max_threads();
    const double flops = 2.0 * double(g.N) * double(g.O) * double(g.P()) * double(g.K());
    const int by_work = int(std::max(1.0, std::min<double>(maxt, flops / 1e6)));
    return g.N >= by_work ? by_work : 1;
}

bool direct(const Geom3& g, const View& xv) {
    return g.pointwise() && xv.strides[4] == 1 && xv.strides[3] == g.W && xv.strides[2] == g.H * g.W;
}

template <typename T>
void forward(const Geom3& g, const View& xv, const T* w, T* y) {
    const int64_t K = g.K(), P = g.P(), Og = g.O / g.G, S = g.slab(), Q = g.plane();
    if (K == 0) {  // no input channels: every output is an empty sum
        std::fill(y, y + g.N * g.O * P, T(0));
        return;
    }
    const bool dir = direct(g, xv);
    const int nt = image_threads(g);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        std::vector<T> col(dir ? 0 : size_t(K * S * Q));
        const int gnt = nt > 1 ? 1 : 0;
#pragma omp for schedule(static)
        for (int64_t n = 0; n < g.N; ++n)
            for (int64_t gi = 0; gi < g.G; ++gi) {
                const T* wg = w + gi * Og * K;
                const T* xs = xv.ptr<T>() + n * xv.strides[0] + gi * g.Cg * xv.strides[1];
                T* yg = y + (n * g.O + gi * Og) * P;
                if (dir) {
                    gemm<T>(Og, P, K, wg, K, 1, xs, xv.strides[1], 1, yg, P, 1, false, gnt);
                    continue;
                }
                for (int64_t i0 = 0; i0 < g.OD; i0 += S) {
                    const int64_t i1 = std::min(g.OD, i0 + S), L = (i1 - i0) * Q;
                    im2col(g, xs, xv.strides[1], xv.strides[2], xv.strides[3], xv.strides[4], i0, i1, col.data(), L);
                    gemm<T>(Og, L, K, wg, K, 1, col.data(), L, 1, yg + i0 * Q, P, 1, false, gnt);
                }
            }
    }
}

template <typename T>
void backward_input(const Geom3& g, const T* gy, const T* w, T* gx) {
    const int64_t K = g.K(), P = g.P(), Og = g.O / g.G, S = g.slab(), Q = g.plane();
    const int64_t img = g.Cg * g.D * g.H * g.W;
    const bool dir = g.pointwise();
    const int nt = image_threads(g);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        std::vector<T> col(dir ? 0 : size_t(K * S * Q));
        const int gnt = nt > 1 ? 1 : 0;
#pragma omp for schedule(static)
        for (int64_t n = 0; n < g.N; ++n)
            for (int64_t gi = 0; gi < g.G; ++gi) {
                const T* wg = w + gi * Og * K;
                const T* gyg = gy + (n * g.O + gi * Og) * P;
                T* gxg = gx + (n * g.C + gi * g.Cg) * g.D * g.H * g.W;
                // gcol (K x L) = wg^T (K x Og) @ gy (Og x L)
                if (dir) {
                    gemm<T>(K, P, Og, wg, 1, K, gyg, P, 1, gxg, P, 1, false, gnt);
                    continue;
                }
                std::fill(gxg, gxg + img, T(0));
                for (int64_t i0 = 0; i0 < g.OD; i0 += S) {
                    const int64_t i1 = std::min(g.OD, i0 + S), L = (i1 - i0) * Q;
                    gemm<T>(K, L, Og, wg, 1, K, gyg + i0 * Q, P, 1, col.data(), L, 1, false, gnt);
                    col2im(g, col.data(), L, i0, i1, gxg);
                }
            }
    }
}

template <typename T>
void backward_weight(const Geom3& g, const T* gy, const View& xv, T* gw) {
    const int64_t K = g.K(), P = g.P(), Og = g.O / g.G, S = g.slab(), Q = g.plane(), wsize = g.O * K;
    const bool dir = direct(g, xv);
    const int nt = image_threads(g);
    std::vector<T> partial(size_t(nt > 1 ? nt * wsize : 0));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        T* acc = nt > 1 ? partial.data() + omp_get_thread_num() * wsize : gw;
        std::fill(acc, acc + wsize, T(0));
        std::vector<T> col(dir ? 0 : size_t(K * S * Q));
        const int gnt = nt > 1 ? 1 : 0;
#pragma omp for schedule(static)
        for (int64_t n = 0; n < g.N; ++n)
            for (int64_t gi = 0; gi < g.G; ++gi) {
                const T* xs = xv.ptr<T>() + n * xv.strides[0] + gi * g.Cg * xv.strides[1];
                const T* gyg = gy + (n * g.O + gi * Og) * P;
                // gw_g (Og x K) += gy (Og x L) @ col^T (L x K)
                if (dir) {
                    gemm<T>(Og, K, P, gyg, P, 1, xs, 1, xv.strides[1], acc + gi * Og * K, K, 1, true, gnt);
                    continue;
                }
                for (int64_t i0 = 0; i0 < g.OD; i0 += S) {
                    const int64_t i1 = std::min(g.OD, i0 + S), L = (i1 - i0) * Q;
                    im2col(g, xs, xv.strides[1], xv.strides[2], xv.strides[3], xv.strides[4], i0, i1, col.data(), L);
                    gemm<T>(Og, K, L, gyg + i0 * Q, P, 1, col.data(), 1, L, acc + gi * Og * K, K, 1, true, gnt);
                }
            }
    }
    if (nt > 1)  // partial sums in thread order: the result does not depend on scheduling
        for (int64_t i = 0; i < wsize; ++i) {
            T s = 0;
            for (int t = 0; t < nt; ++t) s += partial[t * wsize + i];
            gw[i] = s;
        }
}

py::array float_arg(const py::handle& h, const char* op, const char* what) {
    py::array a = as_array(h, op, what);
    const Kind k = kind_of(a.dtype());
    if (k != Kind::F32 && k != Kind::F64 && k != Kind::Half)
        throw py::type_error(std::string(op) + ": " + what + " must be a floating-point array, got " + dtype_name(a.dtype()));
    return a;
}

void same_dtype(const py::array& a, const py::array& b, const char* op) {
    if (!a.dtype().equal(b.dtype()))
        throw py::type_error(std::string(op) + ": operands have different dtypes (" + dtype_name(a.dtype()) + ", " +
                             dtype_name(b.dtype()) + ")");
}

std::vector<int64_t> shape_of(const py::array& a) { return std::vector<int64_t>(a.shape(), a.shape() + a.ndim()); }

void check_grad(const py::array& gy, const Geom3& g, const char* op) {
    const std::vector<int64_t> want = {g.N, g.O, g.OD, g.OH, g.OW};
    if (shape_of(gy) != want)
        throw py::value_error(std::string(op) + ": grad has shape " + shape_str(gy) + ", expected " + dims(want));
}

// f(T{}) for the compute type of a float32 / float64 array
template <class F> void by_type(const py::array& a, F&& f) {
    if (kind_of(a.dtype()) == Kind::F64) f(double{});
    else f(float{});
}

py::object conv3d(py::object x_obj, py::object w_obj, py::object stride, py::object padding, py::object dilation,
                   int64_t groups) {
    const char* op = "conv3d";
    py::array x0 = float_arg(x_obj, op, "input"), w0 = float_arg(w_obj, op, "weight");
    same_dtype(x0, w0, op);
    const Geom3 g = geometry(shape_of(x0), shape_of(w0), stride, padding, dilation, groups, op);
    py::array x = to_compute(x0), w = py::array::ensure(to_compute(w0), py::array::c_style);
    const View xv = view_of(x, op);
    py::array y = empty_array(x.dtype(), {g.N, g.O, g.OD, g.OH, g.OW});
    {
        py::gil_scoped_release nogil;
        by_type(x, [&](auto t) {
            using T = decltype(t);
            forward<T>(g, xv, (const T*)w.data(), (T*)y.mutable_data());
        });
    }
    return from_compute(y, x0.dtype());
}

py::object conv3d_backward_input(py::object g_obj, py::object w_obj, std::vector<int64_t> x_shape, py::object stride,
                                 py::object padding, py::object dilation, int64_t groups) {
    const char* op = "conv3d_backward_input";
    py::array g0 = float_arg(g_obj, op, "grad"), w0 = float_arg(w_obj, op, "weight");
    same_dtype(g0, w0, op);
    const Geom3 g = geometry(x_shape, shape_of(w0), stride, padding, dilation, groups, op);
    check_grad(g0, g, op);
    py::array gy = py::array::ensure(to_compute(g0), py::array::c_style);
    py::array w = py::array::ensure(to_compute(w0), py::array::c_style);
    py::array gx = empty_array(gy.dtype(), x_shape);
    {
        py::gil_scoped_release nogil;
        by_type(gy, [&](auto t) {
            using T = decltype(t);
            backward_input<T>(g, (const T*)gy.data(), (const T*)w.data(), (T*)gx.mutable_data());
        });
    }
    return from_compute(gx, g0.dtype());
}

py::object conv3d_backward_weight(py::object g_obj, py::object x_obj, std::vector<int64_t> w_shape, py::object stride,
                                  py::object padding, py::object dilation, int64_t groups) {
    const char* op = "conv3d_backward_weight";
    py::array g0 = float_arg(g_obj, op, "grad"), x0 = float_arg(x_obj, op, "input");
    same_dtype(g0, x0, op);
    const Geom3 g = geometry(shape_of(x0), w_shape, stride, padding, dilation, groups, op);
    check_grad(g0, g, op);
    py::array gy = py::array::ensure(to_compute(g0), py::array::c_style);
    py::array x = to_compute(x0);
    const View xv = view_of(x, op);
    py::array gw = empty_array(gy.dtype(), w_shape);
    {
        py::gil_scoped_release nogil;
        by_type(gy, [&](auto t) {
            using T = decltype(t);
            backward_weight<T>(g, (const T*)gy.data(), xv, (T*)gw.mutable_data());
        });
    }
    return from_compute(gw, g0.dtype());
}

}  // namespace conv3d_k

void register_conv3d(py::module_& m) {
    using namespace conv3d_k;
    m.def("conv3d", &conv3d, py::arg("x"), py::arg("w"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
          py::arg("groups"), "3-d cross-correlation without bias: x (N, C, D, H, W), w (O, C/groups, kd, kh, kw)");
    m.def("conv3d_backward_input", &conv3d_backward_input, py::arg("g"), py::arg("w"), py::arg("x_shape"),
          py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
          "gradient of conv3d w.r.t. its input (conv_transpose3d)");
    m.def("conv3d_backward_weight", &conv3d_backward_weight, py::arg("g"), py::arg("x"), py::arg("w_shape"),
          py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
          "gradient of conv3d w.r.t. its weight");
}

TINYFW_ISA_END
}  // namespace tinyfw
