// interpolate's separable resampling: resample_axis (a fixed-tap weighted gather along the
// middle axis of a (B, L, I) array) and its adjoint resample_axis_backward.  Semantics:
// tinyfw/backend/ref_resample.py (index -1 is an absent tap; taps are summed in order, so
// the W-then-H application nests as PyTorch's bilinear/bicubic kernels do).
//
// Forward: rows (b, o) in parallel; each output row is a sum of T input rows scaled by
// the tap weights, a contiguous inner loop the compiler vectorises when I > 1 (the H and D
// passes), a scalar one for the W pass (I = 1).  Backward: the scatter-add, parallel over
// (b, block of inner columns): disjoint writes, every item walks the taps in ref's order
// (tap-major, then output position, as np.add.at), so the result does not depend on the
// thread count.  float32 / float64 with a weight of the same dtype; other dtypes go to the
// reference primitive.  The GIL is released around the loops.
#include "core.h"

namespace tf {
namespace {

constexpr const char* kFwd = "resample_axis";
constexpr const char* kBwd = "resample_axis_backward";

std::string dims(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t k = 0; k < a.ndim(); ++k) s += (k ? ", " : "") + std::to_string(a.shape(k));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

struct Taps {
    py::array index, weight;
    int64_t O = 0, T = 0;
};

/// index (O, T) int64 in [-1, L) and weight (O, T) of dtype dt, both C-contiguous.
Taps taps_of(const py::array& ia, const py::array& wa, DType dt, int64_t L, const char* K) {
    if (ia.ndim() != 2 || wa.ndim() != 2 || ia.shape(0) != wa.shape(0) || ia.shape(1) != wa.shape(1))
        fail(K, "index and weight must both be (O, T), got " + dims(ia) + " and " + dims(wa));
    const char kind = ia.dtype().kind();
    if (kind != 'i' && kind != 'u') fail(K, "index must be an integer array");
    Taps t;
    t.index = py::module_::import("numpy").attr("ascontiguousarray")(ia, py::arg("dtype") = "int64");
    t.weight = py::array::ensure(wa, py::array::c_style);
    if (view_of(t.weight, K).dtype != dt) fail(K, "weight dtype must match the data's");
    t.O = ia.shape(0), t.T = ia.shape(1);
    const int64_t* I = static_cast<const int64_t*>(t.index.data());
    for (int64_t k = 0; k < t.O * t.T; ++k)
        if (I[k] < -1 || I[k] >= L)
            throw py::index_error(std::string(K) + ": tap index " + std::to_string(I[k]) +
                                  " is out of range for an axis of size " + std::to_string(L));
    return t;
}

bool supported(const py::array& x, const py::array& w) {
    const DType d = view_of(x, kFwd).dtype;
    return (d == DType::Float32 || d == DType::Float64) && x.ndim() == 3 && w.dtype().equal(x.dtype());
}

template <class T>
void forward(const T* x, const int64_t* I, const T* W, T* y, int64_t B, int64_t L, int64_t inner, int64_t O,
             int64_t taps) {
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner * taps));
    parallel_for(B * O, grain, [&](int64_t r0, int64_t r1) {
        int64_t b = r0 / O, o = r0 % O;  // stepped below: no division per row
        for (int64_t r = r0; r < r1; ++r) {
            T* yr = y + r * inner;
            const T* xb = x + b * L * inner;
            const int64_t* Io = I + o * taps;
            const T* Wo = W + o * taps;
            if (inner == 1) {  // the W pass: one scalar per output
                T acc = T(0);
                bool any = false;
                for (int64_t t = 0; t < taps; ++t) {
                    if (Io[t] < 0) continue;
                    const T v = Wo[t] * xb[Io[t]];
                    acc = any ? acc + v : v;
                    any = true;
                }
                *yr = acc;
            } else {
                bool first = true;
                for (int64_t t = 0; t < taps; ++t) {
                    const int64_t i = Io[t];
                    if (i < 0) continue;
                    const T w = Wo[t];
                    const T* xr = xb + i * inner;
                    if (first) {
                        for (int64_t j = 0; j < inner; ++j) yr[j] = w * xr[j];
                        first = false;
                    } else {
                        for (int64_t j = 0; j < inner; ++j) yr[j] += w * xr[j];
                    }
                }
                if (first) std::fill(yr, yr + inner, T(0));
            }
            if (++o == O) o = 0, ++b;
        }
    });
}

template <class T>
void backward(const T* g, const int64_t* I, const T* W, T* gx, int64_t B, int64_t L, int64_t inner, int64_t O,
              int64_t taps) {
    constexpr int64_t kBlock = 512;  // inner columns per work item
    const int64_t blocks = (inner + kBlock - 1) / kBlock;
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, O * taps * std::min(inner, kBlock)));
    parallel_for(B * blocks, grain, [&](int64_t q0, int64_t q1) {
        for (int64_t q = q0; q < q1; ++q) {
            const int64_t b = q / blocks, j0 = (q % blocks) * kBlock, j1 = std::min(inner, j0 + kBlock);
            T* gb = gx + b * L * inner;
            for (int64_t j = j0; j < j1; ++j)
                for (int64_t l = 0; l < L; ++l) gb[l * inner + j] = T(0);
            const T* g0 = g + b * O * inner;
            for (int64_t t = 0; t < taps; ++t)
                for (int64_t o = 0; o < O; ++o) {
                    const int64_t i = I[o * taps + t];
                    if (i < 0) continue;
                    const T w = W[o * taps + t];
                    const T* gr = g0 + o * inner;
                    T* dst = gb + i * inner;
                    for (int64_t j = j0; j < j1; ++j) dst[j] += w * gr[j];
                }
        }
    });
}

py::object resample_axis(const py::array& xa, const py::array& ia, const py::array& wa) {
    if (!supported(xa, wa)) return call_ref(kFwd, xa, ia, wa);
    py::array x = py::array::ensure(xa, py::array::c_style);
    const DType dt = view_of(x, kFwd).dtype;
    const int64_t B = x.shape(0), L = x.shape(1), inner = x.shape(2);
    Taps tp = taps_of(ia, wa, dt, L, kFwd);
    py::array y = empty(dt, std::vector<int64_t>{B, tp.O, inner});
    if (B * tp.O * inner == 0) return y;
    const int64_t* I = static_cast<const int64_t*>(tp.index.data());
    py::gil_scoped_release nogil;
    if (dt == DType::Float32)
        forward(static_cast<const float*>(x.data()), I, static_cast<const float*>(tp.weight.data()),
                static_cast<float*>(y.mutable_data()), B, L, inner, tp.O, tp.T);
    else
        forward(static_cast<const double*>(x.data()), I, static_cast<const double*>(tp.weight.data()),
                static_cast<double*>(y.mutable_data()), B, L, inner, tp.O, tp.T);
    return y;
}

py::object resample_axis_backward(const py::array& ga, const py::array& ia, const py::array& wa, int64_t in_size) {
    if (!supported(ga, wa)) return call_ref(kBwd, ga, ia, wa, in_size);
    py::array g = py::array::ensure(ga, py::array::c_style);
    const DType dt = view_of(g, kBwd).dtype;
    const int64_t B = g.shape(0), O = g.shape(1), inner = g.shape(2);
    if (in_size < 0) fail(kBwd, "in_size must be non-negative");
    Taps tp = taps_of(ia, wa, dt, in_size, kBwd);
    if (tp.O != O) fail(kBwd, "grad " + dims(g) + " does not match " + std::to_string(tp.O) + " outputs");
    py::array gx = empty(dt, std::vector<int64_t>{B, in_size, inner});
    if (B * in_size * inner == 0) return gx;
    const int64_t* I = static_cast<const int64_t*>(tp.index.data());
    py::gil_scoped_release nogil;
    if (dt == DType::Float32)
        backward(static_cast<const float*>(g.data()), I, static_cast<const float*>(tp.weight.data()),
                 static_cast<float*>(gx.mutable_data()), B, in_size, inner, O, tp.T);
    else
        backward(static_cast<const double*>(g.data()), I, static_cast<const double*>(tp.weight.data()),
                 static_cast<double*>(gx.mutable_data()), B, in_size, inner, O, tp.T);
    return gx;
}

}  // namespace
}  // namespace tf

void register_interpolate(pybind11::module_& m) {
    namespace py = pybind11;
    m.def("resample_axis", &tf::resample_axis, py::arg("x"), py::arg("index"), py::arg("weight"),
          "y[b, o, i] = sum_t weight[o, t] * x[b, index[o, t], i] (C++ kernel).");
    m.def("resample_axis_backward", &tf::resample_axis_backward, py::arg("g"), py::arg("index"),
          py::arg("weight"), py::arg("in_size"), "The adjoint of resample_axis (C++ kernel).");
}
