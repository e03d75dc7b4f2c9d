"""float32 GEMM: tinyfw vs numpy (OpenBLAS) vs PyTorch, GFLOP/s and fraction of peak.

    python benchmarks/bench_gemm.py                     # 1 thread, then 2 threads
    OMP_NUM_THREADS=2 python benchmarks/bench_gemm.py   # that setting only
    python benchmarks/bench_gemm.py --threads 1         # in-process (what each subprocess runs)

Thread counts are fixed per process through OMP_NUM_THREADS / OPENBLAS_NUM_THREADS /
MKL_NUM_THREADS before any library starts its pool, so every setting runs in a fresh
subprocess.  The peak is physical cores x flop per cycle per core x clock, with the clock
and the flop per cycle measured by two small calibration loops (see _calibrate);
TINYFW_PEAK_GFLOPS_PER_CORE overrides the per-core figure.
"""
from __future__ import annotations

import math
import os
import sys

SHAPES = [("square 512", 512, 512, 512), ("square 1024", 1024, 1024, 1024),
          ("square 2048", 2048, 2048, 2048), ("MLP 128x784 @ 784x512", 128, 512, 784),
          ("MLP 128x512 @ 512x512", 128, 512, 512), ("MLP 128x512 @ 512x10", 128, 10, 512)]
# The products an MLP 784-512-512-10 training step really runs (linear: x @ W.T), with the
# transposed operands as views: "T" marks an operand that is the transpose of a row-major array.
TRAIN_SHAPES = [("fwd 128x512 @ W(10x512).T", 128, 10, 512, "", "T"),
                ("fwd 128x784 @ W(512x784).T", 128, 512, 784, "", "T"),
                ("dx  128x10 @ 10x512", 128, 512, 10, "", ""),
                ("dW  g(128x10).T @ x(128x512)", 10, 512, 128, "T", ""),
                ("dW  g(128x512).T @ x(128x784)", 512, 784, 128, "T", ""),
                ("x(128x512).T @ g(128x10)", 512, 10, 128, "T", "")]


# Calibration loops, compiled at run time with cffi (x86-64 only; elsewhere, or without a C
# compiler, the peak falls back to /proc/cpuinfo's clock).
_PEAK_C = r"""
#include <immintrin.h>
#include <time.h>

static volatile float tf_sink;

static double tf_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* 8n dependent integer adds, one cycle each on every x86-64 core: cycles per second. */
double tf_clock_hz(long n) {
    long x = 0;
    const double t0 = tf_now();
    for (long i = 0; i < n; ++i)
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    return 8.0 * (double)n / (tf_now() - t0);
}

/* 12 independent FMA chains (more than latency x pipes on current cores) of the given
   vector type: float32 flop/s of the widest FMA this CPU has. */
#define TF_FMA_LOOP(V, SET1, FMA, ADD, LANES)                                         \
    V r0 = SET1(0.f), r1 = SET1(1.f), r2 = SET1(2.f), r3 = SET1(3.f), r4 = SET1(4.f), \
      r5 = SET1(5.f), r6 = SET1(6.f), r7 = SET1(7.f), r8 = SET1(8.f), r9 = SET1(9.f), \
      r10 = SET1(10.f), r11 = SET1(11.f);                                            \
    const V a = SET1(0.999999f), b = SET1(1e-6f);                                     \
    const double t0 = tf_now();                                                       \
    for (long i = 0; i < n; ++i) {                                                    \
        r0 = FMA(r0, a, b); r1 = FMA(r1, a, b); r2 = FMA(r2, a, b);                   \
        r3 = FMA(r3, a, b); r4 = FMA(r4, a, b); r5 = FMA(r5, a, b);                   \
        r6 = FMA(r6, a, b); r7 = FMA(r7, a, b); r8 = FMA(r8, a, b);                   \
        r9 = FMA(r9, a, b); r10 = FMA(r10, a, b); r11 = FMA(r11, a, b);               \
    }                                                                                 \
    const double dt = tf_now() - t0;                                                  \
    V s = ADD(ADD(ADD(r0, r1), ADD(r2, r3)), ADD(ADD(r4, r5), ADD(r6, r7)));          \
    s = ADD(s, ADD(ADD(r8, r9), ADD(r10, r11)));                                      \
    float lanes[LANES];                                                               \
    __builtin_memcpy(lanes, &s, sizeof lanes);                                        \
    tf_sink = lanes[0];                                                               \
    return 2.0 * LANES * 12.0 * (double)n / dt;

__attribute__((target("avx512f"))) static double tf_fma512(long n) {
    TF_FMA_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, 16)
}

__attribute__((target("avx2,fma"))) static double tf_fma256(long n) {
    TF_FMA_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, 8)
}

/* The widest FMA's float32 flop/s in one thread (0 without FMA); *lanes gets its width. */
double tf_fma_flops(long n, int* lanes) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) { *lanes = 16; return tf_fma512(n); }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { *lanes = 8; return tf_fma256(n); }
    *lanes = 0;
    return 0.0;
}
"""


def _physical_cores(threads: int) -> int:
    """How many physical cores `threads` threads can occupy (SMT siblings share one)."""
    cores = set()
    for cpu in sorted(os.sched_getaffinity(0)):
        base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
        try:
            with open(base + "physical_package_id") as f1, open(base + "core_id") as f2:
                cores.add((f1.read().strip(), f2.read().strip()))
        except OSError:
            return threads
    return max(1, min(threads, len(cores)))


def _calibrate(threads: int):
    """(clock GHz, float32 flop/cycle/core, FMA-loop GFLOP/s/core) measured, or None.

    The clock is timed by a chain of dependent integer adds (one cycle each on every x86-64
    core), run on `threads` threads at once so that the clock is the one those many busy
    cores sustain.  The FMA loop gives the flop per cycle of one core (FMA width x FMA
    pipes: 32 on AVX2 cores with two pipes, 64 on Sapphire Rapids, 32 on Zen 4's
    double-pumped AVX-512), rounded up to a power of two.  Both are sampled in ~0.1 ms
    windows and the 90th percentile kept: on a shared machine a window that another process
    interrupted runs slow, never fast, so the upper samples are the machine's own speed.
    """
    import importlib.util
    import statistics
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    try:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef("double tf_clock_hz(long n); double tf_fma_flops(long n, int* lanes);")
        ffi.set_source("_tinyfw_peak", _PEAK_C, extra_compile_args=["-O2"])
        with tempfile.TemporaryDirectory() as tmp:
            path = ffi.compile(tmpdir=tmp, verbose=False)
            spec = importlib.util.spec_from_file_location("_tinyfw_peak", path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
    except Exception:  # no compiler, not x86-64: the caller falls back to /proc/cpuinfo
        return None
    lib, lanes = mod.lib, ffi.new("int*")

    def p90(xs):
        return statistics.quantiles(xs, n=10)[-1]

    def clock(_):
        return p90([lib.tf_clock_hz(25_000) for _ in range(400)])

    with ThreadPoolExecutor(threads) as pool:  # cffi releases the GIL during each call
        ghz = statistics.mean(pool.map(clock, range(threads))) / 1e9
    fma = p90([lib.tf_fma_flops(5_000, lanes) for _ in range(400)]) / 1e9
    if lanes[0] == 0 or fma <= 0:
        return None
    measured = fma / ghz
    per_cycle = 2 ** math.ceil(math.log2(measured / 1.1))  # ~10% below the power of 2 is noise
    return ghz, per_cycle, fma


def peak_gflops(threads: int) -> tuple[float, str]:
    """Theoretical float32 peak of `threads` threads (GFLOP/s) and how it was derived:
    physical cores x flop per cycle x the measured clock (TINYFW_PEAK_GFLOPS_PER_CORE, when
    set, replaces the measured core peak)."""
    cores = _physical_cores(threads)
    env = os.environ.get("TINYFW_PEAK_GFLOPS_PER_CORE")
    if env:
        return float(env) * cores, f"{cores} core(s) x {float(env):.0f} from TINYFW_PEAK_GFLOPS_PER_CORE"
    cal = _calibrate(threads)
    if cal is not None:
        ghz, per_cycle, fma = cal
        return (cores * per_cycle * ghz,
                f"{cores} core(s) x {per_cycle} flop/cycle x {ghz:.2f} GHz measured; "
                f"FMA loop {fma:.0f} GFLOP/s/core")
    flags, mhz = "", 0.0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags") and not flags:
                    flags = line
                elif line.startswith("cpu MHz") and not mhz:
                    mhz = float(line.split(":")[1])
    except OSError:
        pass
    lanes = 16 if " avx512f" in flags else 8 if " avx2" in flags else 4
    ghz = mhz / 1000 or 3.0
    # two FMA pipes, 2 flops per lane per FMA
    return (cores * 2 * lanes * 2 * ghz,
            f"{cores} core(s) x 2 FMA x {lanes} lanes x 2 x {ghz:.2f} GHz from /proc/cpuinfo (not measured)")


def run(threads: int) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    from benchmarks.common import check, compare

    torch.set_num_threads(threads)
    tinyfw.set_num_threads(threads)
    peak, how = peak_gflops(threads)
    print(f"\n== float32 GEMM, {threads} thread(s); peak {peak:.0f} GFLOP/s ({how}); "
          f"backend {tinyfw.get_backend().__name__.rsplit('.', 1)[-1]}")
    print(f"  {'shape':<32}{'tinyfw':>9}{'numpy':>9}{'torch':>9}  GFLOP/s   "
          f"{'tf/np':>6}{'tf/torch':>9}{'tf %peak':>9}")
    rng = np.random.default_rng(0)
    cases = [(name, m, n, k, "", "") for name, m, n, k in SHAPES] + TRAIN_SHAPES
    for name, m, n, k, ta_, tb_ in cases:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        a = np.ascontiguousarray(a.T).T if ta_ else a
        b = np.ascontiguousarray(b.T).T if tb_ else b
        ta, tb = tinyfw.from_numpy(a), tinyfw.from_numpy(b)
        pa, pb = torch.from_numpy(a), torch.from_numpy(b)
        rows = compare({"tinyfw": lambda: ta @ tb, "numpy": lambda: a @ b, "torch": lambda: pa @ pb},
                       repeat=7, target_s=0.05)
        gf = {r.name: 2 * m * n * k / r.median / 1e9 for r in rows}
        print(f"  {name:<32}{gf['tinyfw']:9.1f}{gf['numpy']:9.1f}{gf['torch']:9.1f}            "
              f"{gf['tinyfw'] / gf['numpy']:6.2f}{gf['tinyfw'] / gf['torch']:9.2f}"
              f"{100 * gf['tinyfw'] / peak:8.0f}%")
        check(f"GEMM {name.strip()}: tinyfw/numpy GFLOP/s", gf["tinyfw"] / gf["numpy"], 0.85,
              higher_is_better=True, echo=False)


def main() -> None:
    """Run each thread setting in its own subprocess (see common.main_per_thread_count):
    1 and 2 threads, or only OMP_NUM_THREADS when it is set."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.common import main_per_thread_count

    env = os.environ.get("OMP_NUM_THREADS", "")
    counts = (int(env),) if env.isdigit() and int(env) > 0 else (1, 2)
    main_per_thread_count(__file__, run, __doc__.splitlines()[0], thread_counts=counts)


if __name__ == "__main__":
    main()
