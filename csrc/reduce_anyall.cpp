// any, all over arbitrary dims (the engine is in reduce.h).
//
// Compiled once, at the scalar level (outside the per-ISA namespace of isa.h): they ran
// no faster in the AVX2 or AVX-512 build (4096x1024 at 1 thread on Sapphire Rapids: any
// of bool rows 0.55-0.69 ms, all of float32 columns 7.5-8.3 ms at every level), so two
// more copies would only cost build time.
#include "reduce.h"

namespace tf {
namespace red {
namespace {

void any_all(Red kind, const View& x, const Plan& P, char* od) {
    dispatch_all(x.dtype, kind == Red::Any ? "any" : "all", [&](auto tag) {
        using T = decltype(tag);
        using C = compute_t<T>;
        if (kind == Red::Any) reduce_into<T, AnyR<T, C>>(x, P, reinterpret_cast<bool*>(od));
        else reduce_into<T, AllR<T, C>>(x, P, reinterpret_cast<bool*>(od));
    });
}

}  // namespace
}  // namespace red
}  // namespace tf

void register_reduce_anyall(pybind11::module_& m) {
    namespace py = pybind11;
    using tf::red::Red;
#define R1(NAME, KIND)                                                                                 \
    m.def(#NAME, [](const py::array& x, const py::iterable& dims, bool keepdim) {                        \
        return tf::red::reduce_front(#NAME, KIND, x, dims, keepdim, &tf::red::any_all); }, py::arg("x"), \
        py::arg("dims"), py::arg("keepdim"), #NAME " over `dims` (C++ kernel, deterministic order)");
    R1(any, Red::Any)
    R1(all, Red::All)
#undef R1
}
