// amax, amin over arbitrary dims (the engine is in reduce.h; any/all: reduce_anyall.cpp).
#include "reduce.h"

namespace tf {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace red {
namespace {

void minmax(Red kind, const View& x, const Plan& P, char* od) {
    dispatch_level(x.dtype, kind == Red::Max ? "amax" : "amin", [&](auto tag) {
        using T = decltype(tag);
        using C = compute_t<T>;
        if (kind == Red::Max) reduce_into<T, MaxR<T, C>>(x, P, reinterpret_cast<T*>(od));
        else reduce_into<T, MinR<T, C>>(x, P, reinterpret_cast<T*>(od));
    });
}

}  // namespace

void register_minmax(py::module_& m) {
#define R1(NAME, KIND)                                                                         \
    m.def(#NAME, [](const py::array& x, const py::iterable& dims, bool keepdim) {                \
        return reduce_front(#NAME, KIND, x, dims, keepdim, &minmax); }, py::arg("x"), py::arg("dims"), \
        py::arg("keepdim"), #NAME " over `dims` (C++ kernel, deterministic order)");
    R1(amax, Red::Max)
    R1(amin, Red::Min)
#undef R1
}

}  // namespace red
TINYFW_ISA_END
}  // namespace tf
