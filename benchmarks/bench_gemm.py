"""float32 GEMM: tinyfw vs numpy (OpenBLAS) vs PyTorch, GFLOP/s and fraction of peak.

    python benchmarks/bench_gemm.py             # 1 thread, then 2 threads
    python benchmarks/bench_gemm.py --threads 1 # one setting (what each subprocess runs)

Thread counts are fixed per process through OMP_NUM_THREADS / OPENBLAS_NUM_THREADS /
MKL_NUM_THREADS before any library starts its pool, so every setting runs in a fresh
subprocess.  The peak is cores x FMA units x SIMD lanes x 2 x clock; the clock is read
from /proc/cpuinfo (override with TINYFW_PEAK_GFLOPS_PER_CORE when it is wrong).
"""
from __future__ import annotations

import os
import subprocess
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


def peak_gflops_per_core() -> tuple[float, str]:
    """Theoretical float32 peak of one core and how it was derived."""
    env = os.environ.get("TINYFW_PEAK_GFLOPS_PER_CORE")
    if env:
        return float(env), "from TINYFW_PEAK_GFLOPS_PER_CORE"
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
    return 2 * lanes * 2 * ghz, f"2 FMA x {lanes} lanes x 2 x {ghz:.2f} GHz"


def run(threads: int) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    from benchmarks.common import compare

    torch.set_num_threads(threads)
    tinyfw.set_num_threads(threads)
    peak, how = peak_gflops_per_core()
    peak *= threads
    print(f"\n== float32 GEMM, {threads} thread(s); peak {peak:.0f} GFLOP/s ({how} x {threads}); "
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


def main() -> None:
    """Run each thread setting in its own subprocess (see common.main_per_thread_count)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.common import main_per_thread_count

    main_per_thread_count(__file__, run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
