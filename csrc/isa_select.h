// The ISA levels a build holds and the choice among them at import (isa.cpp, module.cpp).
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>

#include "isa.h"

namespace tf {
namespace isa {

/// One compiled ISA level: its name, the features its code needs (isa_kernels.cpp of
/// that level) and the function registering its kernels.
struct Level {
    const char* name;
    uint64_t (*required)();
    void (*reg)(pybind11::module_& m);
};

/// Pick the best level of `levels` (ascending) that this CPU and OS can run, or the one
/// TINYFW_ISA names (std::runtime_error, naming what is missing, if it cannot run here);
/// register its kernels and the functions isa() and isa_info() on `m`.
void install(pybind11::module_& m, const Level* levels, int n);

}  // namespace isa
}  // namespace tf
