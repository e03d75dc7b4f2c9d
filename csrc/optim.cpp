// Fused optimizer updates: one call updates one parameter and its state in place.
//
// Each kernel mirrors the numpy reference in tinyfw/backend/ref_optim.py operation by
// operation (same association order, every scalar rounded to the element type first),
// and contraction into FMA is switched off for this file, so the results agree with the
// reference bit for bit and with torch.optim's single-tensor path to float32 rounding.
#pragma GCC optimize("fp-contract=off")

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "isa.h"

namespace py = pybind11;

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)

namespace {

// below this many elements, starting OpenMP threads costs more than it saves
constexpr int64_t kParallelGrain = 1 << 15;

// The buffers of one call, checked: same dtype, same size, C-contiguous, writeable.
struct Buffers {
    std::vector<void*> ptr;  // null where the caller passed None
    int64_t n = 0;
    bool is_double = false;
};

// Index 1 is always the gradient (read only); every other buffer is written.
Buffers check(const char* op, std::initializer_list<std::pair<const char*, py::object>> arrays) {
    Buffers b;
    py::dtype dt;
    bool first = true;
    int i = 0;
    for (auto& [name, obj] : arrays) {
        if (obj.is_none()) {
            b.ptr.push_back(nullptr);
            ++i;
            continue;
        }
        if (!py::isinstance<py::array>(obj))
            throw py::type_error(std::string(op) + ": " + name + " must be a numpy array");
        auto a = py::reinterpret_borrow<py::array>(obj);
        if (first) {
            dt = a.dtype();
            if (!dt.is(py::dtype::of<float>()) && !dt.is(py::dtype::of<double>()))
                throw py::type_error(std::string(op) + ": " + name + " has dtype " +
                                     std::string(py::str(dt)) +
                                     "; only float32 and float64 are supported");
            b.is_double = dt.is(py::dtype::of<double>());
            b.n = a.size();
            first = false;
        } else {
            if (!a.dtype().is(dt))
                throw py::type_error(std::string(op) + ": " + name + " has dtype " +
                                     std::string(py::str(a.dtype())) + " but param has " +
                                     std::string(py::str(dt)));
            if (a.size() != b.n)
                throw py::value_error(std::string(op) + ": " + name + " has " +
                                      std::to_string(a.size()) + " elements but param has " +
                                      std::to_string(b.n));
        }
        if (!(a.flags() & py::array::c_style))
            throw py::value_error(std::string(op) + ": " + name + " must be C-contiguous");
        if (reinterpret_cast<uintptr_t>(a.data()) % uintptr_t(a.itemsize()) != 0)  // UB through T* (UBSan)
            throw py::value_error(std::string(op) + ": " + name + " data is not aligned to its elements");
        if (i != 1 && !a.writeable())
            throw py::value_error(std::string(op) + ": " + name + " is read-only");
        b.ptr.push_back(const_cast<void*>(a.data()));
        ++i;
    }
    return b;
}

void need(const char* op, const Buffers& b, size_t idx, const char* name) {
    if (b.ptr[idx] == nullptr)
        throw py::value_error(std::string(op) + ": " + name + " is required by these options");
}

// a + w * (b - a) for |w| < 0.5, else b - (b - a) * (1 - w): PyTorch's lerp
template <typename T>
inline T lerp(T a, T b, T w) {
    return std::abs(w) < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

template <typename T>
void sgd_impl(T* p, const T* g, T* buf, int64_t n, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool maximize,
              bool first_step) {
    const T wd = T(weight_decay), mom = T(momentum), damp1 = T(1 - dampening), nlr = T(-lr);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
        T d = maximize ? -g[i] : g[i];
        if (weight_decay != 0) d = d + wd * p[i];
        if (momentum != 0) {
            T m = first_step ? d : buf[i] * mom + damp1 * d;
            buf[i] = m;
            d = nesterov ? d + mom * m : m;
        }
        p[i] = p[i] + nlr * d;
    }
}

// One instantiation per option set: with the options as template constants the loop has
// no branches on them and vectorises (a ~3-4x faster update than the branchy loop).
template <typename T, bool kAmsgrad, bool kMaximize, int kDecay>
void adam_loop(T* __restrict p, const T* __restrict g, T* __restrict m1, T* __restrict m2,
               T* __restrict mx, int64_t n, T decay, T wd, T w1, T b2, T c2, T bc2s, T e,
               T nss) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
        T gi = kMaximize ? -g[i] : g[i];
        T pi = p[i];
        if (kDecay == 1) pi = pi * decay;   // decoupled (AdamW)
        if (kDecay == 2) gi = gi + wd * pi;  // L2
        T a = lerp(m1[i], gi, w1);
        m1[i] = a;
        T v = m2[i] * b2;
        v = v + c2 * gi * gi;
        m2[i] = v;
        if (kAmsgrad) {
            // np.maximum propagates NaN from either side
            T cur = mx[i];
            v = (std::isnan(cur) || cur > v) ? cur : v;
            mx[i] = v;
        }
        T denom = std::sqrt(v) / bc2s + e;
        p[i] = pi + nss * a / denom;
    }
}

template <typename T, bool kAmsgrad, bool kMaximize>
void adam_decay(int decay_kind, T* p, const T* g, T* m1, T* m2, T* mx, int64_t n, T decay,
                T wd, T w1, T b2, T c2, T bc2s, T e, T nss) {
    if (decay_kind == 1)
        adam_loop<T, kAmsgrad, kMaximize, 1>(p, g, m1, m2, mx, n, decay, wd, w1, b2, c2, bc2s, e, nss);
    else if (decay_kind == 2)
        adam_loop<T, kAmsgrad, kMaximize, 2>(p, g, m1, m2, mx, n, decay, wd, w1, b2, c2, bc2s, e, nss);
    else
        adam_loop<T, kAmsgrad, kMaximize, 0>(p, g, m1, m2, mx, n, decay, wd, w1, b2, c2, bc2s, e, nss);
}

template <typename T>
void adam_impl(T* p, const T* g, T* m1, T* m2, T* mx, int64_t n, int64_t step, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
               bool maximize, bool decoupled) {
    const double bc1 = 1 - std::pow(beta1, double(step));
    const double bc2_sqrt = std::pow(1 - std::pow(beta2, double(step)), 0.5);
    const T decay = T(1 - lr * weight_decay), wd = T(weight_decay), w1 = T(1 - beta1),
            b2 = T(beta2), c2 = T(1 - beta2), bc2s = T(bc2_sqrt), e = T(eps),
            nss = T(-(lr / bc1));
    const int kind = weight_decay != 0 ? (decoupled ? 1 : 2) : 0;
    if (amsgrad && maximize)
        adam_decay<T, true, true>(kind, p, g, m1, m2, mx, n, decay, wd, w1, b2, c2, bc2s, e, nss);
    else if (amsgrad)
        adam_decay<T, true, false>(kind, p, g, m1, m2, mx, n, decay, wd, w1, b2, c2, bc2s, e, nss);
    else if (maximize)
        adam_decay<T, false, true>(kind, p, g, m1, m2, mx, n, decay, wd, w1, b2, c2, bc2s, e, nss);
    else
        adam_decay<T, false, false>(kind, p, g, m1, m2, mx, n, decay, wd, w1, b2, c2, bc2s, e, nss);
}

template <typename T>
void rmsprop_impl(T* p, const T* g, T* sq, T* ga, T* buf, int64_t n, double lr, double alpha,
                  double eps, double weight_decay, double momentum, bool centered,
                  bool maximize) {
    const T wd = T(weight_decay), al = T(alpha), c = T(1 - alpha), e = T(eps),
            mom = T(momentum), nlr = T(-lr);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
        T gi = maximize ? -g[i] : g[i];
        if (weight_decay != 0) gi = gi + wd * p[i];
        T s = sq[i] * al;
        s = s + c * gi * gi;
        sq[i] = s;
        T avg;
        if (centered) {
            T m = lerp(ga[i], gi, c);
            ga[i] = m;
            avg = std::sqrt(s + T(-1) * m * m);
        } else {
            avg = std::sqrt(s);
        }
        avg = avg + e;
        if (momentum > 0) {
            T b = buf[i] * mom;
            b = b + T(1) * gi / avg;
            buf[i] = b;
            p[i] = p[i] + nlr * b;
        } else {
            p[i] = p[i] + nlr * gi / avg;
        }
    }
}

template <typename T>
void adagrad_impl(T* p, const T* g, T* ss, int64_t n, int64_t step, double lr,
                  double lr_decay, double weight_decay, double eps, bool maximize) {
    const double clr = lr / (1 + double(step - 1) * lr_decay);
    const T wd = T(weight_decay), e = T(eps), nclr = T(-clr);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
        T gi = maximize ? -g[i] : g[i];
        if (weight_decay != 0) gi = gi + wd * p[i];
        T s = ss[i] + T(1) * gi * gi;
        ss[i] = s;
        T std_ = std::sqrt(s) + e;
        p[i] = p[i] + nclr * gi / std_;
    }
}

template <typename T>
inline T* P(const Buffers& b, size_t i) {
    return static_cast<T*>(b.ptr[i]);
}

void sgd_step(py::object param, py::object grad, py::object momentum_buf, double lr,
              double momentum, double dampening, double weight_decay, bool nesterov,
              bool maximize, bool first_step) {
    const char* op = "sgd_step";
    Buffers b = check(op, {{"param", param}, {"grad", grad}, {"momentum_buf", momentum_buf}});
    if (b.ptr[0] == nullptr || b.ptr[1] == nullptr)
        throw py::type_error("sgd_step: param and grad must be arrays");
    if (momentum != 0) need(op, b, 2, "momentum_buf");
    py::gil_scoped_release nogil;
    if (b.is_double)
        sgd_impl(P<double>(b, 0), P<double>(b, 1), P<double>(b, 2), b.n, lr, momentum,
                 dampening, weight_decay, nesterov, maximize, first_step);
    else
        sgd_impl(P<float>(b, 0), P<float>(b, 1), P<float>(b, 2), b.n, lr, momentum, dampening,
                 weight_decay, nesterov, maximize, first_step);
}

void adam_step(py::object param, py::object grad, py::object exp_avg, py::object exp_avg_sq,
               py::object max_exp_avg_sq, int64_t step, double lr, double beta1, double beta2,
               double eps, double weight_decay, bool amsgrad, bool maximize, bool decoupled) {
    const char* op = "adam_step";
    Buffers b = check(op, {{"param", param}, {"grad", grad}, {"exp_avg", exp_avg},
                           {"exp_avg_sq", exp_avg_sq}, {"max_exp_avg_sq", max_exp_avg_sq}});
    need(op, b, 0, "param");
    need(op, b, 1, "grad");
    need(op, b, 2, "exp_avg");
    need(op, b, 3, "exp_avg_sq");
    if (amsgrad) need(op, b, 4, "max_exp_avg_sq");
    if (step < 1) throw py::value_error("adam_step: step must be >= 1, got " + std::to_string(step));
    py::gil_scoped_release nogil;
    if (b.is_double)
        adam_impl(P<double>(b, 0), P<double>(b, 1), P<double>(b, 2), P<double>(b, 3),
                  P<double>(b, 4), b.n, step, lr, beta1, beta2, eps, weight_decay, amsgrad,
                  maximize, decoupled);
    else
        adam_impl(P<float>(b, 0), P<float>(b, 1), P<float>(b, 2), P<float>(b, 3),
                  P<float>(b, 4), b.n, step, lr, beta1, beta2, eps, weight_decay, amsgrad,
                  maximize, decoupled);
}

void rmsprop_step(py::object param, py::object grad, py::object square_avg, py::object grad_avg,
                  py::object momentum_buf, double lr, double alpha, double eps,
                  double weight_decay, double momentum, bool centered, bool maximize) {
    const char* op = "rmsprop_step";
    Buffers b = check(op, {{"param", param}, {"grad", grad}, {"square_avg", square_avg},
                           {"grad_avg", grad_avg}, {"momentum_buf", momentum_buf}});
    need(op, b, 0, "param");
    need(op, b, 1, "grad");
    need(op, b, 2, "square_avg");
    if (centered) need(op, b, 3, "grad_avg");
    if (momentum > 0) need(op, b, 4, "momentum_buf");
    py::gil_scoped_release nogil;
    if (b.is_double)
        rmsprop_impl(P<double>(b, 0), P<double>(b, 1), P<double>(b, 2), P<double>(b, 3),
                     P<double>(b, 4), b.n, lr, alpha, eps, weight_decay, momentum, centered,
                     maximize);
    else
        rmsprop_impl(P<float>(b, 0), P<float>(b, 1), P<float>(b, 2), P<float>(b, 3),
                     P<float>(b, 4), b.n, lr, alpha, eps, weight_decay, momentum, centered,
                     maximize);
}

void adagrad_step(py::object param, py::object grad, py::object state_sum, int64_t step,
                  double lr, double lr_decay, double weight_decay, double eps, bool maximize) {
    const char* op = "adagrad_step";
    Buffers b = check(op, {{"param", param}, {"grad", grad}, {"state_sum", state_sum}});
    need(op, b, 0, "param");
    need(op, b, 1, "grad");
    need(op, b, 2, "state_sum");
    if (step < 1) throw py::value_error("adagrad_step: step must be >= 1, got " + std::to_string(step));
    py::gil_scoped_release nogil;
    if (b.is_double)
        adagrad_impl(P<double>(b, 0), P<double>(b, 1), P<double>(b, 2), b.n, step, lr, lr_decay,
                     weight_decay, eps, maximize);
    else
        adagrad_impl(P<float>(b, 0), P<float>(b, 1), P<float>(b, 2), b.n, step, lr, lr_decay,
                     weight_decay, eps, maximize);
}

}  // namespace

void register_optim(py::module_& m) {
    m.def("sgd_step", &sgd_step, "SGD update of one parameter in place (see ref_optim.sgd_step)",
          py::arg("param"), py::arg("grad"), py::arg("momentum_buf"), py::arg("lr"),
          py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"),
          py::arg("nesterov"), py::arg("maximize"), py::arg("first_step"));
    m.def("adam_step", &adam_step, "Adam/AdamW update of one parameter in place",
          py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
          py::arg("max_exp_avg_sq"), py::arg("step"), py::arg("lr"), py::arg("beta1"),
          py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("amsgrad"),
          py::arg("maximize"), py::arg("decoupled"));
    m.def("rmsprop_step", &rmsprop_step, "RMSprop update of one parameter in place",
          py::arg("param"), py::arg("grad"), py::arg("square_avg"), py::arg("grad_avg"),
          py::arg("momentum_buf"), py::arg("lr"), py::arg("alpha"), py::arg("eps"),
          py::arg("weight_decay"), py::arg("momentum"), py::arg("centered"),
          py::arg("maximize"));
    m.def("adagrad_step", &adagrad_step, "Adagrad update of one parameter in place",
          py::arg("param"), py::arg("grad"), py::arg("state_sum"), py::arg("step"),
          py::arg("lr"), py::arg("lr_decay"), py::arg("weight_decay"), py::arg("eps"),
          py::arg("maximize"));
}

TINYFW_ISA_END
}  // namespace tf
