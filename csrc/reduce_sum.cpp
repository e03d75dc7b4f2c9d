// sum and prod over arbitrary dims, and the front end every reduce primitive shares
// (reduce.h has the engine and its determinism rules).
#include "reduce.h"

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace red {

// Split x's dims into kept/reduced, drop size-1 dims, merge contiguous neighbours.
Plan make_plan(const View& x, const bool* red) {
    Plan P;
    int64_t ostride[kMaxDims], s = 1;
    for (int d = x.ndim - 1; d >= 0; --d) {  // C-contiguous output over the kept dims
        ostride[d] = s;
        if (!red[d]) s *= x.shape[d];
    }
    int kd[kMaxDims], rd[kMaxDims], nk = 0, nr = 0;
    for (int d = 0; d < x.ndim; ++d) {
        if (red[d]) P.n_red *= x.shape[d];
        else P.n_out *= x.shape[d];
        if (x.shape[d] == 1) continue;
        if (red[d]) rd[nr++] = d;
        else kd[nk++] = d;
    }
    auto mag = [&](int d) { return x.strides[d] < 0 ? -x.strides[d] : x.strides[d]; };
    std::stable_sort(rd, rd + nr, [&](int a, int b) { return mag(a) > mag(b); });
    for (int i = 0; i < nk; ++i) {
        int d = kd[i];
        if (P.nk > 0 && P.kin[P.nk - 1] == x.strides[d] * x.shape[d] && P.kout[P.nk - 1] == ostride[d] * x.shape[d]) {
            P.kshape[P.nk - 1] *= x.shape[d];
            P.kin[P.nk - 1] = x.strides[d];
            P.kout[P.nk - 1] = ostride[d];
            continue;
        }
        P.kshape[P.nk] = x.shape[d];
        P.kin[P.nk] = x.strides[d];
        P.kout[P.nk] = ostride[d];
        ++P.nk;
    }
    for (int i = 0; i < nr; ++i) {
        int d = rd[i];
        if (P.nr > 0 && P.rin[P.nr - 1] == x.strides[d] * x.shape[d]) {
            P.rshape[P.nr - 1] *= x.shape[d];
            P.rin[P.nr - 1] = x.strides[d];
            continue;
        }
        P.rshape[P.nr] = x.shape[d];
        P.rin[P.nr] = x.strides[d];
        ++P.nr;
    }
    return P;
}

py::object reduce_front(const char* name, Red kind, const py::array& xa, const py::iterable& dims, bool keepdim,
                        TypedReduce run) {
    View x = view_of(xa, name);
    if (!level_has(x.dtype)) return call_scalar_level(name, xa, dims, keepdim);  // before dims is read
    bool red[kMaxDims] = {};
    for (auto d : dims) {
        int64_t k = d.cast<int64_t>();
        if (k < 0 || k >= x.ndim) fail(name, "dim " + std::to_string(k) + " out of range for shape " + x.shape_str());
        if (red[k]) fail(name, "dim " + std::to_string(k) + " repeated");
        red[k] = true;
    }
    Plan P = make_plan(x, red);
    if ((kind == Red::Max || kind == Red::Min) && P.n_red == 0)
        fail(name, "zero-size reduction over a dim of shape " + x.shape_str() + " (max/min have no identity)");
    const bool ints = x.dtype == DType::Bool || x.dtype == DType::Int8 || x.dtype == DType::Int32 || x.dtype == DType::Int64;
    DType out_dt = x.dtype;
    if ((kind == Red::Sum || kind == Red::Prod) && ints) out_dt = DType::Int64;
    if (kind == Red::Any || kind == Red::All) out_dt = DType::Bool;
    std::vector<int64_t> oshape;
    for (int d = 0; d < x.ndim; ++d) {
        if (!red[d]) oshape.push_back(x.shape[d]);
        else if (keepdim) oshape.push_back(1);
    }
    py::array out = empty(out_dt, oshape);
    char* od = static_cast<char*>(out.mutable_data());
    {
        py::gil_scoped_release nogil;
        run(kind, x, P, od);
    }
    return std::move(out);
}

namespace {

void sum_prod(Red kind, const View& x, const Plan& P, char* od) {
    dispatch_level(x.dtype, "sum", [&](auto tag) {
        using T = decltype(tag);
        using C = compute_t<T>;
        using SA = std::conditional_t<std::is_integral_v<T>, int64_t, C>;  // accumulator
        using SO = std::conditional_t<std::is_integral_v<T>, int64_t, T>;
        if (kind == Red::Sum) reduce_into<T, SumR<T, SA>>(x, P, reinterpret_cast<SO*>(od));
        else reduce_into<T, ProdR<T, SA>>(x, P, reinterpret_cast<SO*>(od));
    });
}

}  // namespace
}  // namespace red

void register_reduce(pybind11::module_& m) {
    namespace py = pybind11;
    using tf::red::Red;
    m.def("sum", [](const py::array& x, const py::iterable& dims, bool keepdim) {
        return tf::red::reduce_front("sum", Red::Sum, x, dims, keepdim, &tf::red::sum_prod); },
        py::arg("x"), py::arg("dims"), py::arg("keepdim"), "sum over `dims` (C++ kernel, deterministic order)");
    m.def("prod", [](const py::array& x, const py::iterable& dims, bool keepdim) {
        return tf::red::reduce_front("prod", Red::Prod, x, dims, keepdim, &tf::red::sum_prod); },
        py::arg("x"), py::arg("dims"), py::arg("keepdim"), "prod over `dims` (C++ kernel, deterministic order)");
    tf::red::register_minmax(m);
}

TINYFW_ISA_END
}  // namespace tf
