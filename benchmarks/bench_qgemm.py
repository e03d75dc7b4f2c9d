"""int8 kernels against tinyfw's float32 ones, interleaved in one process (issue 15):

- Linear, batch 64, 1024 -> 1024: nn.Linear (float32) next to the int8 primitive
  `qlinear` (uint8 codes in and out, requantisation fused) and a dynamically quantized
  Linear (float in and out: the input quantized per call);
- the two convolutions of the digits CNN (examples/train_digits.py, batch 64 of 8x8
  images): nn.Conv2d (float32, with bias, then ReLU) next to `qconv2d` (uint8, ReLU fused).

    python benchmarks/bench_qgemm.py                    # 1 thread, then 2 threads
    OMP_NUM_THREADS=1 python benchmarks/bench_qgemm.py  # that setting only
    TINYFW_ISA=avx2 python benchmarks/bench_qgemm.py    # the AVX2 level (AVX-VNNI where the CPU has it)
    TINYFW_ISA=avx2 TINYFW_INT8_GEMM=avx2 python benchmarks/bench_qgemm.py  # plain AVX2 (VPMADDWD)

Targets (issue 15): int8 Linear >= 2.5x float32 on VNNI/AMX paths, >= 1.3x on AVX2;
int8 conv of the digits CNN >= 1.5x its float32 conv.  On an AVX-512 CPU the avx2 level
is an approximation of an AVX2-only machine (the avx2 level's code on a faster core).
"""
from __future__ import annotations

import os
import sys


def run(threads: int) -> None:
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    from benchmarks.common import check, compare, fmt_time
    from tinyfw import nn
    from tinyfw.backend import cpu
    from tinyfw.quantization import quantize_dynamic

    tinyfw.set_num_threads(threads)
    info = cpu.isa_info()
    path = info["int8_gemm"]
    print(f"\n== int8 kernels, {threads} thread(s); {info['cpu']}; level {info['isa']}; int8 GEMM path {path}")
    rng = np.random.default_rng(0)

    # ---- Linear 64 x 1024 -> 1024
    lin = nn.Linear(1024, 1024)
    x = tinyfw.from_numpy(rng.standard_normal((64, 1024)).astype(np.float32))
    xq = rng.integers(0, 256, (64, 1024)).astype(np.uint8)
    wq = rng.integers(-128, 128, (1024, 1024)).astype(np.int8)
    ws = rng.uniform(1e-3, 1e-2, 1024).astype(np.float32)
    b = rng.standard_normal(1024).astype(np.float32)
    dyn = quantize_dynamic(nn.Sequential(lin))

    def f32():
        with tinyfw.no_grad():
            return lin(x)

    def dynamic():
        with tinyfw.no_grad():
            return dyn(x)

    rows = compare({"f32 Linear": f32, "int8 qlinear": lambda: cpu.qlinear(xq, 0.02, 128, wq, ws, b, 0.05, 3, True),
                    "int8 dynamic Linear": dynamic}, repeat=9, target_s=0.05)
    t = {r.name: r.median for r in rows}
    print("  Linear 64x1024 -> 1024: " + ", ".join(f"{k} {fmt_time(v)}" for k, v in t.items()))
    target = 1.3 if path in ("avx2", "scalar") else 2.5
    check(f"int8 Linear 64x1024x1024 ({path}): float32 Linear time / qlinear time",
          t["f32 Linear"] / t["int8 qlinear"], target, higher_is_better=True)
    print(f"    dynamic int8 Linear (float in/out): {t['f32 Linear'] / t['int8 dynamic Linear']:.2f}x float32")

    # ---- digits CNN convolutions, batch 64 of 8x8
    c1, c2 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
    relu = nn.ReLU()
    x1 = tinyfw.from_numpy(rng.standard_normal((64, 1, 8, 8)).astype(np.float32))
    x2 = tinyfw.from_numpy(rng.standard_normal((64, 16, 8, 8)).astype(np.float32))
    q1 = rng.integers(0, 256, (64, 1, 8, 8)).astype(np.uint8)
    q2 = rng.integers(0, 256, (64, 16, 8, 8)).astype(np.uint8)
    w1 = rng.integers(-128, 128, (16, 1, 3, 3)).astype(np.int8)
    w2 = rng.integers(-128, 128, (32, 16, 3, 3)).astype(np.int8)
    s1, s2 = rng.uniform(1e-3, 1e-2, 16).astype(np.float32), rng.uniform(1e-3, 1e-2, 32).astype(np.float32)
    b1, b2 = rng.standard_normal(16).astype(np.float32), rng.standard_normal(32).astype(np.float32)

    def fconv():
        with tinyfw.no_grad():
            return relu(c1(x1)), relu(c2(x2))

    def qconv():
        return (cpu.qconv2d(q1, 0.02, 0, w1, s1, b1, (1, 1), (1, 1), (1, 1), 1, 0.05, 0, True),
                cpu.qconv2d(q2, 0.02, 0, w2, s2, b2, (1, 1), (1, 1), (1, 1), 1, 0.05, 0, True))

    rows = compare({"f32 conv+relu": fconv, "int8 qconv2d": qconv}, repeat=9, target_s=0.05)
    t = {r.name: r.median for r in rows}
    print("  digits CNN convs, batch 64: " + ", ".join(f"{k} {fmt_time(v)}" for k, v in t.items()))
    check(f"int8 conv of the digits CNN ({path}): float32 conv time / qconv2d time",
          t["f32 conv+relu"] / t["int8 qconv2d"], 1.5, higher_is_better=True)


if __name__ == "__main__":
    if "OMP_NUM_THREADS" in os.environ:
        run(int(os.environ["OMP_NUM_THREADS"]))
    else:
        for n in (1, 2):
            run(n)
