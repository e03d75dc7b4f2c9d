// The arithmetic of tinyfw.distributed's collectives: the sum of the buffers of several
// ranks, divided by the rank count for an average, written to one or more outputs in one
// pass over memory.  The shm backend's reductions are memory-bound, so every pass it saves
// is time: the ring's last reduce-scatter step writes the sum to its own segment and to
// the message slot it sends on at once, and an average needs no second pass for the
// division.  The terms are added in list order, so every rank that computes a sum from
// the same buffers gets the same bits.
#include <sched.h>
#include <time.h>

#include <chrono>
#if defined(__SSE2__)
#include <immintrin.h>  // _mm_pause
#endif

#include "core.h"
#include "isa.h"

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h): the passes vectorise with the level

namespace {

constexpr int64_t kBlock = 1024;  // elements staged in float/double per step (L1-resident)

// Two terms into one or two outputs (the ring's step, DDP's average of two ranks): one
// loop the compiler vectorises, with the choices made outside it.
template <class T, bool Divide, bool TwoOuts>
void sum_pair(T* o0, T* o1, const T* a, const T* b, int64_t n, T d) {
    // no iteration reads what another writes (an output is an input exactly or apart from
    // all, sum_into checks): the compiler's own overlap test fails on o0 == a
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
        T v = a[i] + b[i];
        if constexpr (Divide) v = v / d;
        o0[i] = v;
        if constexpr (TwoOuts) o1[i] = v;
    }
}

template <class T>
void sum_rows(const std::vector<T*>& outs, const std::vector<const T*>& ins, int64_t n,
              double divisor) {
    using C = compute_t<T>;
    if constexpr (std::is_same_v<T, C>) {
        if (ins.size() == 2 && outs.size() <= 2) {
            T* o1 = outs.size() == 2 ? outs[1] : nullptr;
            const T d = T(divisor);
            if (divisor == 1.0)
                o1 ? sum_pair<T, false, true>(outs[0], o1, ins[0], ins[1], n, d)
                   : sum_pair<T, false, false>(outs[0], o1, ins[0], ins[1], n, d);
            else
                o1 ? sum_pair<T, true, true>(outs[0], o1, ins[0], ins[1], n, d)
                   : sum_pair<T, true, false>(outs[0], o1, ins[0], ins[1], n, d);
            return;
        }
    }
    C acc[kBlock];
    const C d = C(divisor);
    for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
        const int64_t m = std::min(kBlock, n - b0);
        for (int64_t i = 0; i < m; ++i) acc[i] = load(ins[0][b0 + i]);
        for (size_t k = 1; k < ins.size(); ++k) {
            const T* in = ins[k] + b0;
            for (int64_t i = 0; i < m; ++i) acc[i] += load(in[i]);
        }
        if (divisor != 1.0)
            for (int64_t i = 0; i < m; ++i) acc[i] /= d;  // a division, as AVG's definition
        for (T* o : outs)
            for (int64_t i = 0; i < m; ++i) o[b0 + i] = store<T>(acc[i]);
    }
}

bool overlaps(const View& a, const View& b) {
    const char *alo = a.data, *ahi = a.data + a.numel() * a.itemsize();
    const char *blo = b.data, *bhi = b.data + b.numel() * b.itemsize();
    return alo < bhi && blo < ahi;
}

py::object sum_into(const py::list& outs_obj, const py::list& ins_obj, double divisor) {
    const char* name = "sum_into";
    if (outs_obj.empty() || ins_obj.empty()) fail(name, "needs at least one output and one input");
    if (!(divisor > 0)) fail(name, "divisor must be positive");
    std::vector<py::array> keep;  // the views point into these
    std::vector<View> outs, ins;
    auto collect = [&](const py::list& l, std::vector<View>& vs, bool write) {
        for (const auto& o : l) {
            if (!py::isinstance<py::array>(o)) fail(name, "outputs and inputs must be numpy arrays");
            keep.push_back(py::reinterpret_borrow<py::array>(o));
            vs.push_back(write ? writeable_view_of(keep.back(), name) : view_of(keep.back(), name));
        }
    };
    collect(outs_obj, outs, true);
    collect(ins_obj, ins, false);
    const View& first = ins[0];
    if (first.dtype != DType::Float32 && first.dtype != DType::Float64 &&
        first.dtype != DType::Float16 && first.dtype != DType::BFloat16)
        fail(name, std::string("needs a floating dtype, got ") + dtype_name(first.dtype));
    const int64_t n = first.numel();
    for (const auto* vs : {&outs, &ins})
        for (const View& v : *vs) {
            if (v.dtype != first.dtype)
                fail(name, std::string("dtypes differ: ") + dtype_name(v.dtype) + " and " + dtype_name(first.dtype));
            if (v.numel() != n) fail(name, "sizes differ: " + std::to_string(v.numel()) + " and " + std::to_string(n));
            if (!v.is_contiguous()) fail(name, "needs contiguous buffers");
        }
    // each element is read from every input before any output is written, so an output
    // may be one of the inputs; a partial overlap would read what was just written
    for (const View& o : outs) {
        for (const View& i : ins)
            if (o.data != i.data && overlaps(o, i)) fail(name, "an output partly overlaps an input");
        for (const View& p : outs)
            if (&p != &o && overlaps(o, p)) fail(name, "two outputs overlap");
    }
    py::gil_scoped_release nogil;
    auto run = [&](auto tag) {
        using T = decltype(tag);
        std::vector<T*> o;
        std::vector<const T*> in;
        for (const View& v : outs) o.push_back(v.ptr<T>());
        for (const View& v : ins) in.push_back(v.ptr<T>());
        sum_rows<T>(o, in, n, divisor);
    };
    switch (first.dtype) {
        case DType::Float32: run(float{}); break;
        case DType::Float64: run(double{}); break;
        case DType::Float16: run(half{}); break;
        default: run(bhalf{}); break;
    }
    return py::none();
}

// The waits of the shm backend, with the GIL released.  A Python loop that polls a shared
// word holds the GIL between polls, so a communication thread waiting for a peer starved
// its own main thread (backward, which needs the GIL between kernels) for up to the
// interpreter's 5 ms switch interval at a time: DDP steps took 5-11 ms instead of 4.
bool wait_word_ge(const py::array& ctl, int64_t index, int64_t value, double timeout_s,
                  double yield_s) {
    const char* name = "wait_word_ge";
    View v = view_of(ctl, name);
    if (v.dtype != DType::Int64 || !v.is_contiguous()) fail(name, "needs a contiguous int64 array");
    if (index < 0 || index >= v.numel()) fail(name, "index out of range");
    const int64_t* word = v.ptr<int64_t>() + index;
    auto reached = [&] { return __atomic_load_n(word, __ATOMIC_ACQUIRE) >= value; };
    if (reached()) return true;
    py::gil_scoped_release nogil;
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    for (int i = 0; i < 200; ++i) {  // the peer is often a few microseconds away
        if (reached()) return true;
#if defined(__SSE2__)
        _mm_pause();
#endif
    }
    long sleep_ns = 5000;
    for (;;) {
        if (reached()) return true;
        const double waited = std::chrono::duration<double>(clock::now() - start).count();
        if (waited >= timeout_s) return false;
        if (waited < yield_s) {
            sched_yield();  // keep the core for a peer that shares it, but stay close
        } else {            // a long wait: sleep, backing off to 0.2 ms
            timespec ts{0, sleep_ns};
            nanosleep(&ts, nullptr);
            sleep_ns = std::min(sleep_ns * 2, 200000L);
        }
    }
}

}  // namespace

void register_collective(py::module_& m) {
    m.def("sum_into", &tf::sum_into, py::arg("outs"), py::arg("ins"), py::arg("divisor") = 1.0,
          "In place: every array of outs <- (ins[0] + ins[1] + ...) / divisor, summed in list "
          "order in the compute type (float32 for half types, rounded once).  Equal-sized "
          "contiguous floating arrays; an output may be one of the inputs.");
    m.def("wait_word_ge", &tf::wait_word_ge, py::arg("ctl"), py::arg("index"), py::arg("value"),
          py::arg("timeout_s"), py::arg("yield_s"),
          "Wait, with the GIL released, until ctl[index] >= value (an int64 word another "
          "process writes): True when it did, False after timeout_s.  Polls, then yields "
          "the core for yield_s seconds, then sleeps with backoff.");
}

TINYFW_ISA_END
}  // namespace tf
