// qlinear and qconv2d: the int8 GEMM (qgemm.h) bound as the primitives of
// tinyfw/backend/ref_quant.py, with its names, signatures and exact results.
//
// qconv2d runs one GEMM per chunk of images and group over im2col rows of uint8 codes
// (padding holds x_zp, the code of 0.0, as in ref_quant), writing each image's NCHW output
// in place; a 1x1 / stride 1 / unpadded convolution reads each input plane in place.  Inputs outside the kernels' cases (other code
// dtypes, x of another rank, zero points outside 0..255) go to the reference primitive.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core.h"
#include "nn_common.h"
#include "qgemm.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace {

using FloatArr = py::array_t<float, py::array::c_style | py::array::forcecast>;

bool is_dtype(const py::array& a, char kind, int size) {
    return a.dtype().kind() == kind && a.itemsize() == size;
}

// The per-channel constants of the epilogue: mul = float32(x_scale) * w_scale (float32),
// bias (float32) or none, inv_out = float32(1) / float32(out_scale).
struct Channels {
    std::vector<float> mul;
    FloatArr bias;
    bool has_bias = false;
    QEpilogue e;
};

Channels channels(const char* op, int64_t n, double x_scale, const py::object& w_scale, const py::object& bias,
                  const py::object& out_scale, int64_t out_zp, bool relu) {
    Channels c;
    FloatArr ws = FloatArr::ensure(w_scale);
    if (!ws || ws.size() != n)
        throw py::value_error(std::string(op) + ": w_scale must hold one float per output channel (" +
                              std::to_string(n) + ")");
    c.mul.resize(n);
    const float xs = float(x_scale);
    for (int64_t j = 0; j < n; ++j) c.mul[j] = xs * ws.data()[j];
    if (!bias.is_none()) {
        c.bias = FloatArr::ensure(bias);
        if (!c.bias || c.bias.size() != n)
            throw py::value_error(std::string(op) + ": bias must hold one float per output channel (" +
                                  std::to_string(n) + ")");
        c.has_bias = true;
    }
    c.e.mul = c.mul.data();
    c.e.bias = c.has_bias ? c.bias.data() : nullptr;
    c.e.relu = relu;
    c.e.inv_out = out_scale.is_none() ? 0.f : 1.f / float(out_scale.cast<double>());
    c.e.out_zp = int32_t(out_zp);
    return c;
}

void check_depth(const char* op, int64_t k) {  // ref_quant._acc_bound
    if (k * 255 * 128 >= (int64_t(1) << 31))
        throw py::value_error(std::string(op) + ": a reduction over " + std::to_string(k) +
                              " products may overflow the int32 accumulator (at most " +
                              std::to_string(((int64_t(1) << 31) - 1) / (255 * 128)) + ")");
}

bool zero_points_ok(int64_t x_zp, int64_t out_zp) {
    return x_zp >= 0 && x_zp <= 255 && out_zp >= -(int64_t(1) << 20) && out_zp <= (int64_t(1) << 20);
}

py::object qlinear(py::object x_obj, double x_scale, int64_t x_zp, py::object w_obj, py::object w_scale,
                   py::object bias, py::object out_scale, int64_t out_zp, bool relu) {
    const char* op = "qlinear";
    py::array x = as_array(x_obj, op, "x_q"), w = as_array(w_obj, op, "w_q");
    if (x.ndim() != 2 || w.ndim() != 2 || !is_dtype(x, 'u', 1) || !is_dtype(w, 'i', 1) ||
        !zero_points_ok(x_zp, out_zp))
        return tf::call_ref(op, x, x_scale, x_zp, w, w_scale, bias, out_scale, out_zp, relu);
    const int64_t m = x.shape(0), k = x.shape(1), n = w.shape(0);
    if (w.shape(1) != k)
        throw py::value_error("qlinear: x_q " + shape_str(x) + " and w_q " + shape_str(w) +
                              " disagree on k (w_q is [n, k])");
    check_depth(op, k);
    Channels c = channels(op, n, x_scale, w_scale, bias, out_scale, out_zp, relu);
    const View xv = view_of(x, op), wv = view_of(w, op);
    const bool f32 = out_scale.is_none();
    py::array out = empty_array(f32 ? py::dtype::of<float>() : py::dtype::of<uint8_t>(), {m, n});
    QOut o;
    if (f32) o.f32 = static_cast<float*>(out.mutable_data());
    else o.u8 = static_cast<uint8_t*>(out.mutable_data());
    o.rs = n, o.cs = 1;
    {
        py::gil_scoped_release nogil;
        QWeights pw;
        qpack_weights(wv.ptr<int8_t>(), wv.strides[0], wv.strides[1], n, k, pw);
        qgemm(m, xv.ptr<uint8_t>(), xv.strides[0], xv.strides[1], int32_t(x_zp), pw, c.e, o);
    }
    return out;
}

// im2col of one image's group (Cg channels, strides in elements) in channels-last order:
// the image is first copied into `padded` as [Hp][Wp][Cg] (already filled with the x_zp
// code, so the copy loop has no bounds checks); row p = (oh, ow) of d then holds columns
// (kh, kw, c), and each kernel row's KW x Cg codes are one contiguous run of `padded` when
// dw is 1.  (The weights are permuted to the same column order, and integer sums do not
// depend on it.)  Everything arrives by value: through a lambda's captures every uint8
// store (which may alias anything) made the compiler reload them all.
void im2col_codes(const uint8_t* x, int64_t sC, int64_t sH, int64_t sW, int64_t Cg, int64_t H, int64_t W, int64_t ph,
                  int64_t pw, uint8_t* padded, int64_t Wp, int64_t OH, int64_t OW, int64_t KH, int64_t KW,
                  int64_t sh, int64_t sw, int64_t dh, int64_t dw, uint8_t* d) {
    for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
            uint8_t* px = padded + ((i + ph) * Wp + j + pw) * Cg;
            const uint8_t* src = x + i * sH + j * sW;
            for (int64_t ci = 0; ci < Cg; ++ci) px[ci] = src[ci * sC];
        }
    const int64_t run = KW * Cg;
    for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow)
            for (int64_t a = 0; a < KH; ++a) {
                const uint8_t* src = padded + ((oh * sh + a * dh) * Wp + ow * sw) * Cg;
                if (dw == 1) {
                    std::memcpy(d, src, size_t(run));
                    d += run;
                } else {
                    for (int64_t b = 0; b < KW; ++b, d += Cg) std::memcpy(d, src + b * dw * Cg, size_t(Cg));
                }
            }
}

int64_t pair_at(const py::object& t, int i, const char* op, const char* what) {
    auto v = t.cast<std::vector<int64_t>>();
    if (v.size() != 2) throw py::value_error(std::string(op) + ": " + what + " must have 2 values");
    return v[i];
}

py::object qconv2d(py::object x_obj, double x_scale, int64_t x_zp, py::object w_obj, py::object w_scale,
                   py::object bias, py::object stride, py::object padding, py::object dilation, int64_t groups,
                   py::object out_scale, int64_t out_zp, bool relu) {
    const char* op = "qconv2d";
    py::array x = as_array(x_obj, op, "x_q"), w = as_array(w_obj, op, "w_q");
    if (x.ndim() != 4 || w.ndim() != 4 || !is_dtype(x, 'u', 1) || !is_dtype(w, 'i', 1) ||
        !zero_points_ok(x_zp, out_zp))
        return tf::call_ref(op, x, x_scale, x_zp, w, w_scale, bias, stride, padding, dilation, groups, out_scale,
                            out_zp, relu);
    const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
    const int64_t O = w.shape(0), Cg = w.shape(1), KH = w.shape(2), KW = w.shape(3);
    const int64_t sh = pair_at(stride, 0, op, "stride"), sw = pair_at(stride, 1, op, "stride");
    const int64_t ph = pair_at(padding, 0, op, "padding"), pw = pair_at(padding, 1, op, "padding");
    const int64_t dh = pair_at(dilation, 0, op, "dilation"), dw = pair_at(dilation, 1, op, "dilation");
    if (groups < 1 || C != Cg * groups || O % groups != 0)
        throw py::value_error("qconv2d: input " + shape_str(x) + " and weight " + shape_str(w) + " do not fit groups " +
                              std::to_string(groups));
    if (sh < 1 || sw < 1 || dh < 1 || dw < 1 || ph < 0 || pw < 0)
        throw py::value_error("qconv2d: stride and dilation must be >= 1 and padding >= 0");
    const int64_t OH = (H + 2 * ph - dh * (KH - 1) - 1) / sh + 1, OW = (W + 2 * pw - dw * (KW - 1) - 1) / sw + 1;
    if (KH < 1 || KW < 1 || H + 2 * ph < dh * (KH - 1) + 1 || W + 2 * pw < dw * (KW - 1) + 1)
        throw py::value_error("qconv2d: the kernel " + shape_str(w) + " is larger than the padded input " +
                              shape_str(x));
    const int64_t K = Cg * KH * KW, P = OH * OW, Og = O / groups;
    check_depth(op, K);
    Channels c = channels(op, O, x_scale, w_scale, bias, out_scale, out_zp, relu);
    py::array wc = py::array::ensure(w, py::array::c_style);  // rows [Cg * KH * KW] of each o
    const View xv = view_of(x, op);
    const bool f32 = out_scale.is_none();
    py::array out = empty_array(f32 ? py::dtype::of<float>() : py::dtype::of<uint8_t>(), {N, O, OH, OW});
    uint8_t* out_u8 = f32 ? nullptr : static_cast<uint8_t*>(out.mutable_data());
    float* out_f32 = f32 ? static_cast<float*>(out.mutable_data()) : nullptr;
    const int8_t* wp = static_cast<const int8_t*>(wc.data());
    const uint8_t* xp = xv.ptr<uint8_t>();
    const int64_t sN = xv.strides[0], sC = xv.strides[1], sH = xv.strides[2], sW = xv.strides[3];
    // a 1x1 / stride 1 / unpadded convolution's column matrix is the input plane itself
    const bool direct = KH == 1 && KW == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 && (H == 1 || sH == W * sW);
    auto compute = [&] {
        // the weights with their columns in im2col's (kh, kw, c) order (for a 1x1 kernel,
        // the direct path's, that is the order they are stored in)
        std::vector<QWeights> pk(groups);
        {
            std::vector<int8_t> wt(Og * K);
            for (int64_t g = 0; g < groups; ++g) {
                const int8_t* wg = wp + g * Og * K;
                for (int64_t o = 0; o < Og; ++o)
                    for (int64_t ci = 0; ci < Cg; ++ci)
                        for (int64_t t = 0; t < KH * KW; ++t) wt[o * K + t * Cg + ci] = wg[(o * Cg + ci) * KH * KW + t];
                qpack_weights(wt.data(), K, 1, Og, K, pk[g]);
            }
        }
        const uint8_t pad = uint8_t(x_zp);
        // im2col of image n, group g into cols [P, K] (im2col_codes), padded [Hp][Wp][Cg]
        const int64_t Hp = H + 2 * ph, Wp = W + 2 * pw;
        auto im2col = [&](int64_t n, int64_t g, uint8_t* d, std::vector<uint8_t>& padded) {
            padded.assign(Hp * Wp * Cg, pad);
            im2col_codes(xp + n * sN + g * Cg * sC, sC, sH, sW, Cg, H, W, ph, pw, padded.data(), Wp, OH, OW, KH, KW,
                         sh, sw, dh, dw, d);
        };
        auto epi_of = [&](int64_t g) {
            QEpilogue e = c.e;
            e.mul += g * Og;
            if (e.bias) e.bias += g * Og;
            return e;
        };
        const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
        if (direct) {  // per image, the plane read in place, the output written in place
            for (int64_t n = 0; n < N; ++n)
                for (int64_t g = 0; g < groups; ++g) {
                    QOut o;
                    const int64_t off = (n * O + g * Og) * P;
                    if (f32) o.f32 = out_f32 + off;
                    else o.u8 = out_u8 + off;
                    o.rs = 1, o.cs = P;
                    qgemm(P, xp + n * sN + g * Cg * sC, sW, sC, int32_t(x_zp), pk[g], epi_of(g), o, 0);
                }
            return;
        }
        // Images in chunks of ~16K positions: one GEMM per chunk and group over their im2col
        // rows (small images alone make GEMMs too small to run at speed), each image's rows
        // written in place into its NCHW output (QOut's row blocks)
        const int64_t nb_max = std::max<int64_t>(1, std::min<int64_t>(N, 16384 / P));
        std::vector<uint8_t> cols(nb_max * P * K);
        for (int64_t n0 = 0; n0 < N; n0 += nb_max) {
            const int64_t nb = std::min(nb_max, N - n0);
            for (int64_t g = 0; g < groups; ++g) {
    #pragma omp parallel num_threads(threads) if (nb > 1 && threads > 1)
                {
                    std::vector<uint8_t> padded;
#pragma omp for schedule(static)
                    for (int64_t b = 0; b < nb; ++b) im2col(n0 + b, g, cols.data() + b * P * K, padded);
                }
                QOut o;
                const int64_t off = (n0 * O + g * Og) * P;
                if (f32) o.f32 = out_f32 + off;
                else o.u8 = out_u8 + off;
                o.rs = 1, o.cs = P, o.block_rows = P, o.block_stride = O * P;
                qgemm(nb * P, cols.data(), K, 1, int32_t(x_zp), pk[g], epi_of(g), o, 0);
            }
        }
    };
    {
        py::gil_scoped_release nogil;
        compute();
    }
    return out;
}

}  // namespace

void register_quant_ops(py::module_& m);  // quant_ops.cpp

void register_quant(py::module_& m) {
    m.def("qlinear", &qlinear, py::arg("x_q"), py::arg("x_scale"), py::arg("x_zp"), py::arg("w_q"), py::arg("w_scale"),
          py::arg("bias"), py::arg("out_scale"), py::arg("out_zp"), py::arg("relu"),
          "uint8 x_q [m, k] @ int8 w_q [n, k]^T in int32, then ref_quant's epilogue (int8 GEMM)");
    m.def("qconv2d", &qconv2d, py::arg("x_q"), py::arg("x_scale"), py::arg("x_zp"), py::arg("w_q"), py::arg("w_scale"),
          py::arg("bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
          py::arg("out_scale"), py::arg("out_zp"), py::arg("relu"),
          "quantized cross-correlation through the int8 GEMM (padding holds x_zp)");
    m.def("_int8_gemm_path", [] { return std::string(qgemm_path()); },
          "The int8 GEMM path this level's kernels take now.");
    register_quant_ops(m);
}

TINYFW_ISA_END
}  // namespace tinyfw
