// Runtime ISA dispatch: the hot kernel files are compiled once per instruction-set level,
// each copy inside its own namespace, and tinyfw._C registers one level's kernels at
// import (isa.cpp picks it from cpuid, the OS's enabled register state and TINYFW_ISA).
//
//   level  namespace          compiler target (tinyfw/backend/_isa.py)
//   0      tf::isa_scalar     -march=x86-64: SSE2 only (also every ISA-independent file)
//   1      tf::isa_avx2       -march=x86-64-v3: AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE
//   2      tf::isa_avx512     -march=x86-64-v4: + AVX-512 F/CD/BW/DQ/VL
//   3      tf::isa_native     -march=native, the only level of a TINYFW_NATIVE=1 build
//
// setup.py passes -DTINYFW_ISA_LEVEL (default 0).  Kernel code keeps choosing its SIMD
// code with `#if defined(__AVX512F__)` / `__AVX2__` as before: each copy sees the macros
// of its own target.  The avx2 and avx512 levels compile the floating-point dtypes only;
// integer and bool inputs run the scalar level's kernels (core.h, level_has), which keeps
// the build near twice today's instead of 2.5 times.
//
// Why a namespace per level: inline functions and templates are emitted in every object
// that uses them, and the linker keeps ONE copy of each.  Without distinct names an
// AVX-512 copy of a header function could serve the scalar kernels (SIGILL on a machine
// without AVX-512), and a function taking a vector type would be called with another
// level's calling convention (ymm registers vs memory).  So everything a kernel file or
// a kernel header defines sits in TINYFW_ISA_BEGIN ... TINYFW_ISA_END (an inline
// namespace: the code still says tf::name), and what must be shared (types, core.cpp's
// out-of-line functions) stays outside.  Third-party inline code (the standard library,
// pybind11) cannot be renamed: setup.py links the levels' objects in ascending order and
// the linker keeps the first copy, so such code always comes from the lowest level that
// uses it; tests/test_isa_build.py checks the linked module for both properties.
#pragma once

#ifndef TINYFW_ISA_LEVEL
#define TINYFW_ISA_LEVEL 0
#endif

#if TINYFW_ISA_LEVEL == 0
#define TINYFW_ISA_NS isa_scalar
#if defined(__AVX__)
#error "the scalar level (and the ISA-independent files) must be compiled without AVX: check CFLAGS"
#endif
#elif TINYFW_ISA_LEVEL == 1
#define TINYFW_ISA_NS isa_avx2
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__) || defined(__AVX512F__)
#error "TINYFW_ISA_LEVEL=1 needs exactly AVX2+FMA+F16C (-march=x86-64-v3)"
#endif
#elif TINYFW_ISA_LEVEL == 2
#define TINYFW_ISA_NS isa_avx512
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || !defined(__AVX512VL__)
#error "TINYFW_ISA_LEVEL=2 needs AVX-512 F/BW/DQ/VL (-march=x86-64-v4)"
#endif
#elif TINYFW_ISA_LEVEL == 3
#define TINYFW_ISA_NS isa_native
#else
#error "TINYFW_ISA_LEVEL must be 0 (scalar), 1 (avx2), 2 (avx512) or 3 (native)"
#endif

#define TINYFW_ISA_BEGIN inline namespace TINYFW_ISA_NS {
#define TINYFW_ISA_END }

#include <cstdint>
#include <string>

namespace tf {
namespace isa {

// The CPU features a compiler may use on its own at some level (named as Linux's
// /proc/cpuinfo names them, lzcnt aside), and the register state the OS must enable.
enum Feature : int {
    SSE3, SSSE3, SSE4_1, SSE4_2, POPCNT, AVX, AVX2, FMA, F16C, BMI1, BMI2, LZCNT, MOVBE,
    AVX512F, AVX512CD, AVX512BW, AVX512DQ, AVX512VL, AVX512VNNI, AVX512BF16, AVX512FP16,
    AVX512IFMA, AVX512VBMI, AVX512VBMI2, AVX512BITALG, AVX512VPOPCNTDQ, GFNI, VAES,
    VPCLMULQDQ, AVXVNNI, AMX_TILE, AMX_BF16, AMX_INT8,
    OS_YMM,  // XCR0: the OS saves the AVX (YMM) state
    OS_ZMM,  // XCR0: ... and the AVX-512 opmask and ZMM state
    kNumFeatures
};
constexpr uint64_t bit(Feature f) { return uint64_t(1) << f; }

/// The machine's features (cpuid and the OS's register state, less TINYFW_ISA_HIDE) as
/// install() found them; 0 before.  Kernels read it for instructions their level's
/// compiler flags do not assume (AVX512-BF16, AMX), whose code has function-level targets.
uint64_t machine_features();

/// "" when this process may run AMX tile instructions, else why not (the CPU lacks
/// amx_tile/amx_bf16, TINYFW_AMX=0, the OS does not enable the tile state in XCR0, or
/// Linux refused the arch_prctl(ARCH_REQ_XCOMP_PERM) request).  The first call makes the
/// request (once per process; Linux grants it to the whole process).
const char* amx_refusal();

/// "" when this process may run AMX-INT8 tile instructions (TDPBUSD), else why not: as
/// amx_refusal, with amx_int8 in place of amx_bf16 (one tile-state request serves both).
const char* amx_int8_refusal();

/// The int8 GEMM path (u8 x s8 -> s32) that code compiled with the features `compiled`
/// (isa_compiled_features of a level) runs: "amx-int8", "avx512-vnni" (avx512 level),
/// "avx-vnni", "avx2" (avx2 level and up), "scalar" -- the fastest this machine runs,
/// or the one TINYFW_INT8_GEMM / set_int8_gemm_path chose when this level has it.
const char* int8_gemm_path(uint64_t compiled);

/// "" when `path` is an int8 GEMM path that code compiled with `compiled` can run on
/// this machine, else why not.
std::string int8_gemm_refusal(const std::string& path, uint64_t compiled);

/// The bf16 (`bf16`) or float16 GEMM path at a level with or without AVX-512:
/// "amx-bf16", "avx512-bf16" or "f32-pack" (converted while packing into the float32
/// micro-kernel).  The one rule both gemm_half.cpp and isa_info() follow.
const char* half_gemm_path(bool bf16, bool avx512_level);

}  // namespace isa
TINYFW_ISA_BEGIN

/// The features this translation unit's code may contain (from the compiler's target
/// macros, so it can never disagree with the -m flags of the level).  In the level's
/// namespace: every level has its own answer (a shared inline copy would give one answer
/// for all).
constexpr uint64_t isa_compiled_features() {
    using namespace tf::isa;
    uint64_t r = 0;
#ifdef __SSE3__
    r |= bit(SSE3);
#endif
#ifdef __SSSE3__
    r |= bit(SSSE3);
#endif
#ifdef __SSE4_1__
    r |= bit(SSE4_1);
#endif
#ifdef __SSE4_2__
    r |= bit(SSE4_2);
#endif
#ifdef __POPCNT__
    r |= bit(POPCNT);
#endif
#ifdef __AVX__
    r |= bit(AVX);
    r |= bit(OS_YMM);
#endif
#ifdef __AVX2__
    r |= bit(AVX2);
#endif
#ifdef __FMA__
    r |= bit(FMA);
#endif
#ifdef __F16C__
    r |= bit(F16C);
#endif
#ifdef __BMI__
    r |= bit(BMI1);
#endif
#ifdef __BMI2__
    r |= bit(BMI2);
#endif
#ifdef __LZCNT__
    r |= bit(LZCNT);
#endif
#ifdef __MOVBE__
    r |= bit(MOVBE);
#endif
#ifdef __AVX512F__
    r |= bit(AVX512F);
    r |= bit(OS_ZMM);
#endif
#ifdef __AVX512CD__
    r |= bit(AVX512CD);
#endif
#ifdef __AVX512BW__
    r |= bit(AVX512BW);
#endif
#ifdef __AVX512DQ__
    r |= bit(AVX512DQ);
#endif
#ifdef __AVX512VL__
    r |= bit(AVX512VL);
#endif
#ifdef __AVX512VNNI__
    r |= bit(AVX512VNNI);
#endif
#ifdef __AVX512BF16__
    r |= bit(AVX512BF16);
#endif
#ifdef __AVX512FP16__
    r |= bit(AVX512FP16);
#endif
#ifdef __AVX512IFMA__
    r |= bit(AVX512IFMA);
#endif
#ifdef __AVX512VBMI__
    r |= bit(AVX512VBMI);
#endif
#ifdef __AVX512VBMI2__
    r |= bit(AVX512VBMI2);
#endif
#ifdef __AVX512BITALG__
    r |= bit(AVX512BITALG);
#endif
#ifdef __AVX512VPOPCNTDQ__
    r |= bit(AVX512VPOPCNTDQ);
#endif
#ifdef __GFNI__
    r |= bit(GFNI);
#endif
#ifdef __VAES__
    r |= bit(VAES);
#endif
#ifdef __VPCLMULQDQ__
    r |= bit(VPCLMULQDQ);
#endif
#ifdef __AVXVNNI__
    r |= bit(AVXVNNI);
#endif
    return r;
}

TINYFW_ISA_END
}  // namespace tf
