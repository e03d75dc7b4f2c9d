// Choosing the ISA level at import (see isa.h): what the CPU reports (cpuid), what the OS
// has enabled (xgetbv: a CPU with AVX-512 under an OS that does not save the ZMM state
// must not run AVX-512 code), and TINYFW_ISA.  Compiled once, at the baseline level.
#include "isa_select.h"

#include <pybind11/stl.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define TF_X86 1
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#define TF_LINUX_X86_64 1
#endif

namespace tf {
namespace isa {
namespace py = pybind11;

namespace {

const char* const kNames[kNumFeatures] = {
    "sse3", "ssse3", "sse4_1", "sse4_2", "popcnt", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2",
    "lzcnt", "movbe", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "avx512ifma", "avx512vbmi", "avx512_vbmi2", "avx512_bitalg",
    "avx512_vpopcntdq", "gfni", "vaes", "vpclmulqdq", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "os_ymm_state", "os_zmm_state"};

struct Machine {
    uint64_t features = 0;  // CPU features and OS state (OS_YMM, OS_ZMM) together
    uint64_t xcr0 = 0;
    std::string cpu;        // the brand string, e.g. "Intel(R) Xeon(R) Platinum 8480+"
};

#ifdef TF_X86
struct CpuBit {
    unsigned leaf, sub;
    int reg;  // 0 eax, 1 ebx, 2 ecx, 3 edx
    int bit;
    Feature f;
};
// Intel SDM vol. 2A, CPUID; AMD APM vol. 3, appendix E (LZCNT is AMD's ABM bit)
const CpuBit kBits[] = {
    {1, 0, 2, 0, SSE3},        {1, 0, 2, 9, SSSE3},        {1, 0, 2, 12, FMA},
    {1, 0, 2, 19, SSE4_1},     {1, 0, 2, 20, SSE4_2},      {1, 0, 2, 22, MOVBE},
    {1, 0, 2, 23, POPCNT},     {1, 0, 2, 28, AVX},         {1, 0, 2, 29, F16C},
    {7, 0, 1, 3, BMI1},        {7, 0, 1, 5, AVX2},         {7, 0, 1, 8, BMI2},
    {7, 0, 1, 16, AVX512F},    {7, 0, 1, 17, AVX512DQ},    {7, 0, 1, 21, AVX512IFMA},
    {7, 0, 1, 28, AVX512CD},   {7, 0, 1, 30, AVX512BW},    {7, 0, 1, 31, AVX512VL},
    {7, 0, 2, 1, AVX512VBMI},  {7, 0, 2, 6, AVX512VBMI2},  {7, 0, 2, 8, GFNI},
    {7, 0, 2, 9, VAES},        {7, 0, 2, 10, VPCLMULQDQ},  {7, 0, 2, 11, AVX512VNNI},
    {7, 0, 2, 12, AVX512BITALG}, {7, 0, 2, 14, AVX512VPOPCNTDQ}, {7, 0, 3, 23, AVX512FP16},
    {7, 0, 3, 22, AMX_BF16},   {7, 0, 3, 24, AMX_TILE},   {7, 0, 3, 25, AMX_INT8},
    {7, 1, 0, 4, AVXVNNI},     {7, 1, 0, 5, AVX512BF16},   {0x80000001u, 0, 2, 5, LZCNT},
};

bool cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    // __get_cpuid_count checks the highest supported (basic or extended) leaf first
    return __get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3]) != 0;
}
#endif

Machine detect() {
    Machine m;
#ifdef TF_X86
    unsigned r[4];
    for (const CpuBit& b : kBits)
        if (cpuid(b.leaf, b.sub, r) && (r[b.reg] >> b.bit) & 1u) m.features |= bit(b.f);
    // leaf 1 ECX bit 27, OSXSAVE: the OS uses XSAVE, so xgetbv may be executed
    if (cpuid(1, 0, r) && (r[2] >> 27) & 1u) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        m.xcr0 = (uint64_t(hi) << 32) | lo;
        if ((m.xcr0 & 0x6) == 0x6) m.features |= bit(OS_YMM);            // XMM | YMM
        if ((m.xcr0 & 0xe6) == 0xe6) m.features |= bit(OS_ZMM);          // + opmask, ZMM
    }
    unsigned brand[12] = {};
    bool ok = true;
    for (unsigned i = 0; i < 3 && ok; ++i) ok = cpuid(0x80000002u + i, 0, &brand[4 * i]);
    if (ok) {
        m.cpu.assign(reinterpret_cast<const char*>(brand), sizeof(brand));
        m.cpu = m.cpu.c_str();  // up to the first NUL
        const auto b = m.cpu.find_first_not_of(' '), e = m.cpu.find_last_not_of(' ');
        m.cpu = b == std::string::npos ? "" : m.cpu.substr(b, e - b + 1);
    }
#endif
    return m;
}

std::vector<std::string> names_of(uint64_t mask) {
    std::vector<std::string> out;
    for (int i = 0; i < kNumFeatures; ++i)
        if ((mask >> i) & 1u) out.emplace_back(kNames[i]);
    return out;
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
}

/// Why `level` cannot run here, or "" if it can.
std::string missing(const Level& level, const Machine& m) {
    const uint64_t need = level.required(), lack = need & ~m.features;
    if (!lack) return "";
    const uint64_t os = bit(OS_YMM) | bit(OS_ZMM);
    std::string why;
    if (lack & ~os) why = "the CPU lacks " + join(names_of(lack & ~os));
    if (lack & bit(OS_ZMM) || lack & bit(OS_YMM)) {
        char x[32];
        std::snprintf(x, sizeof x, "0x%llx", static_cast<unsigned long long>(m.xcr0));
        why += std::string(why.empty() ? "" : "; ") + "the OS has not enabled the " +
               (lack & bit(OS_YMM) ? "AVX (YMM)" : "AVX-512 (opmask/ZMM)") +
               " register state (XCR0 = " + x + ")";
    }
    return why;
}

/// TINYFW_ISA_HIDE=avx512f,os_zmm_state: pretend the machine lacks these features, so
/// that a machine can test the automatic fallback and the errors of a missing feature.
uint64_t hidden_features() {
    const char* env = std::getenv("TINYFW_ISA_HIDE");
    uint64_t mask = 0;
    std::string s = env ? env : "";
    size_t b = 0;
    while (b < s.size()) {
        size_t e = s.find(',', b);
        if (e == std::string::npos) e = s.size();
        const std::string name = s.substr(b, e - b);
        bool found = name.empty();
        for (int i = 0; i < kNumFeatures; ++i)
            if (name == kNames[i]) mask |= uint64_t(1) << i, found = true;
        if (!found) throw std::runtime_error("TINYFW_ISA_HIDE: unknown feature '" + name + "'");
        b = e + 1;
    }
    return mask;
}

struct Chosen {
    const Level* level = nullptr;
    std::string forced;  // TINYFW_ISA as given ("" when unset)
    Machine machine;
    std::vector<std::string> built, usable;
    std::vector<Level> levels;
};
Chosen g_chosen;

}  // namespace

uint64_t machine_features() { return g_chosen.machine.features; }

namespace {
// XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA): the OS saves the AMX tile state; Linux
// (5.16+) still allocates the 8 KiB of tile data per thread only for a process that asked
// for it with arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); without that the first
// tile instruction raises SIGILL.
constexpr uint64_t kXcr0Tile = (uint64_t(1) << 17) | (uint64_t(1) << 18);
constexpr int kArchReqXcompPerm = 0x1023, kArchGetXcompPerm = 0x1022, kXfeatureXtiledata = 18;

// The tile state itself: TINYFW_AMX, XCR0 and Linux's permission (one request serves the
// bf16 and int8 tile instructions alike).
std::string request_tile_state() {
    const char* env = std::getenv("TINYFW_AMX");
    if (env && std::string(env) == "0") return "disabled by TINYFW_AMX=0";
    if ((g_chosen.machine.xcr0 & kXcr0Tile) != kXcr0Tile) {
        char x[32];
        std::snprintf(x, sizeof x, "0x%llx", static_cast<unsigned long long>(g_chosen.machine.xcr0));
        return std::string("the OS has not enabled the AMX tile state (XCR0 = ") + x + ")";
    }
#ifdef TF_LINUX_X86_64
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0)
        return std::string("Linux refused arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA): ") + std::strerror(errno);
    unsigned long long perm = 0;
    if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &perm) != 0 || !((perm >> kXfeatureXtiledata) & 1u))
        return "arch_prctl(ARCH_GET_XCOMP_PERM) does not list XTILEDATA after the request";
    return "";
#else
    return "tinyfw requests the AMX tile state only on x86-64 Linux";
#endif
}

const std::string& tile_state_refusal() {
    static const std::string why = request_tile_state();  // once per process (thread-safe init)
    return why;
}

// "" when the CPU has amx_tile and `unit` (AMX_BF16 or AMX_INT8) and the tile state is granted
std::string request_amx(Feature unit) {
    const uint64_t f = g_chosen.machine.features;
    if (!(f & bit(AMX_TILE)) || !(f & bit(unit))) {
        std::string lack = !(f & bit(AMX_TILE)) ? "amx_tile" : "";
        if (!(f & bit(unit))) lack += std::string(lack.empty() ? "" : ", ") + kNames[unit];
        return "the CPU lacks " + lack;
    }
    return tile_state_refusal();
}

// TINYFW_INT8_GEMM's or _set_int8_gemm_path's choice ("": the fastest path)
std::string g_int8_forced;
constexpr const char* kInt8Paths[] = {"amx-int8", "avx512-vnni", "avx-vnni", "avx2", "scalar"};
}  // namespace

const char* amx_refusal() {
    static const std::string why = request_amx(AMX_BF16);
    return why.c_str();
}

const char* amx_int8_refusal() {
    static const std::string why = request_amx(AMX_INT8);
    return why.c_str();
}

std::string int8_gemm_refusal(const std::string& path, uint64_t compiled) {
    const bool avx512 = compiled & bit(AVX512F), avx2 = compiled & bit(AVX2);
    const uint64_t f = machine_features();
    if (path == "scalar") return "";
    if (path == "avx2") return avx2 ? "" : "needs the avx2 ISA level";
    if (path == "avx-vnni") {
        if (!avx2) return "needs the avx2 ISA level";
        return f & bit(AVXVNNI) ? "" : "the CPU lacks avx_vnni";
    }
    if (path == "avx512-vnni") {
        if (!avx512) return "needs the avx512 ISA level";
        return f & bit(AVX512VNNI) ? "" : "the CPU lacks avx512_vnni";
    }
    if (path == "amx-int8") {
        if (!avx512) return "needs the avx512 ISA level";
        return amx_int8_refusal();
    }
    return "unknown int8 GEMM path '" + path + "' (amx-int8, avx512-vnni, avx-vnni, avx2, scalar)";
}

const char* int8_gemm_path(uint64_t compiled) {
    if (!g_int8_forced.empty() && int8_gemm_refusal(g_int8_forced, compiled).empty())
        for (const char* p : kInt8Paths)
            if (g_int8_forced == p) return p;
    for (const char* p : kInt8Paths)  // fastest first
        if (int8_gemm_refusal(p, compiled).empty()) return p;
    return "scalar";
}

namespace {
// A checked choice of the chosen level's int8 path: TINYFW_INT8_GEMM at import, and the
// private _C._set_int8_gemm_path(name or None) that lets tests run every path in one process.
void force_int8_path(const std::string& name) {
    if (!name.empty()) {
        const std::string why = int8_gemm_refusal(name, g_chosen.level->required());
        if (!why.empty())
            throw std::runtime_error("int8 GEMM path '" + name + "' cannot run at the " + g_chosen.level->name +
                                     " level here: " + why);
    }
    g_int8_forced = name;
}
}  // namespace

const char* half_gemm_path(bool bf16, bool avx512_level) {
    // float16 has no dot-product instruction with a float32 accumulator on these CPUs
    // (AVX512-FP16 accumulates in float16, AMX-FP16 is a later generation): it converts
    // while packing, as every dtype does below the AVX-512 level
    if (!bf16 || !avx512_level) return "f32-pack";
    if (!*amx_refusal()) return "amx-bf16";
    if (machine_features() & bit(AVX512BF16)) return "avx512-bf16";
    return "f32-pack";
}

void install(py::module_& m, const Level* levels, int n) {
    Chosen& c = g_chosen;
    c = Chosen{};  // a failed import may be retried in the same process
    c.machine = detect();
    c.machine.features &= ~hidden_features();
    c.levels.assign(levels, levels + n);
    const char* env = std::getenv("TINYFW_ISA");
    c.forced = env ? env : "";
    for (int i = 0; i < n; ++i) {
        c.built.emplace_back(levels[i].name);
        if (missing(levels[i], c.machine).empty()) c.usable.emplace_back(levels[i].name);
    }
    if (!c.forced.empty()) {
        for (int i = 0; i < n; ++i)
            if (c.forced == levels[i].name) c.level = &levels[i];
        if (!c.level)
            throw std::runtime_error("TINYFW_ISA=" + c.forced + ": this build has the ISA levels " +
                                     join(c.built) + " (unset TINYFW_ISA to pick the best one)");
        const std::string why = missing(*c.level, c.machine);
        if (!why.empty())
            throw std::runtime_error("TINYFW_ISA=" + c.forced + " cannot run on this machine: " + why +
                                     " (it can run " + join(c.usable) + ")");
    } else {
        for (int i = 0; i < n; ++i)  // levels ascend: the last usable one is the best
            if (missing(levels[i], c.machine).empty()) c.level = &levels[i];
        if (!c.level)  // a native build moved to an older machine
            throw std::runtime_error("tinyfw._C was built for another CPU: " + missing(levels[0], c.machine) +
                                     " (rebuild without TINYFW_NATIVE=1)");
    }
    const char* int8 = std::getenv("TINYFW_INT8_GEMM");
    g_int8_forced.clear();
    if (int8 && *int8) {
        try {
            force_int8_path(int8);
        } catch (const std::runtime_error& e) {
            throw std::runtime_error(std::string("TINYFW_INT8_GEMM=") + int8 + ": " + e.what());
        }
    }
    c.level->reg(m);
    // the AVX2/AVX-512 levels send integer and bool inputs to the scalar level's kernels
    // (core.h, level_has): those are registered here, out of the way of the primitives
    if (c.level != &levels[0] && std::string(levels[0].name) == "scalar") {
        py::module_ sub = m.def_submodule("_scalar_level", "the scalar ISA level's kernels (integer and bool inputs)");
        levels[0].reg(sub);
    }
    m.def("_set_int8_gemm_path", [](py::object name) {
        const std::string prev = g_int8_forced;
        force_int8_path(name.is_none() ? std::string() : name.cast<std::string>());
        return prev.empty() ? py::object(py::none()) : py::object(py::str(prev));
    }, py::arg("name"), "Force an int8 GEMM path of this level (None: the fastest); returns the previous choice.");
    m.def("isa", [] { return std::string(g_chosen.level->name); },
          "The ISA level whose kernels this process runs (scalar, avx2, avx512 or native).");
    m.def("isa_info", [] {
        const Chosen& c = g_chosen;
        py::dict d;
        d["isa"] = c.level->name;
        d["forced"] = c.forced.empty() ? py::object(py::none()) : py::object(py::str(c.forced));
        d["built"] = c.built;
        d["usable"] = c.usable;
        d["cpu"] = c.machine.cpu;
        d["features"] = names_of(c.machine.features);
        d["required"] = names_of(c.level->required());
        d["xcr0"] = c.machine.xcr0;
        const bool avx512 = (c.level->required() & bit(AVX512F)) != 0;
        py::dict half;
        half["bfloat16"] = half_gemm_path(true, avx512);
        half["float16"] = half_gemm_path(false, avx512);
        d["half_gemm"] = half;
        d["int8_gemm"] = int8_gemm_path(c.level->required());
        const std::string no_amx = std::string("the ") + c.level->name + " level has no AMX code (only avx512 has)";
        const std::string amx = avx512 ? amx_refusal() : no_amx, amx8 = avx512 ? amx_int8_refusal() : no_amx;
        d["amx"] = amx.empty() ? py::object(py::none()) : py::object(py::str(amx));
        d["amx_int8"] = amx8.empty() ? py::object(py::none()) : py::object(py::str(amx8));
        py::dict req;
        for (const Level& lv : c.levels) req[lv.name] = names_of(lv.required());
        d["levels"] = req;
        return d;
    }, "What the ISA choice was made from (see tinyfw.backend.cpu.isa_info).");
}

}  // namespace isa
}  // namespace tf
