"""einsum contractions, forward: tinyfw vs PyTorch vs numpy.

    python benchmarks/bench_einsum.py               # 1 thread, then 2 threads
    python benchmarks/bench_einsum.py --threads 2   # one setting (what each subprocess runs)

tinyfw lowers each operand pair to one batched matmul (the C++ GEMM) after permutes and
reshapes (tinyfw/ops/einsum.py); PyTorch does the same through its BLAS; numpy's einsum
runs with optimize=True (its BLAS path via tensordot where it can).  float32, interleaved
medians (benchmarks/common.py); the figure is each library's time over PyTorch's.
"""
from __future__ import annotations

import os
import sys

# (equation, operand shapes): a GEMM, attention scores, a batched bilinear form, a
# transposing contraction, a three-operand chain and a trace-like diagonal reduction
WORKLOADS = [
    ("ij,jk->ik", [(512, 512), (512, 512)]),
    ("bhqd,bhkd->bhqk", [(8, 8, 128, 64), (8, 8, 128, 64)]),
    ("bn,anm,bm->ba", [(64, 128), (32, 128, 128), (64, 128)]),
    ("ijk,jkl->li", [(64, 96, 32), (96, 32, 80)]),
    ("ij,jk,kl->il", [(256, 64), (64, 256), (256, 32)]),
    ("bii->b", [(256, 64, 64)]),
]


def run(threads: int) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    from benchmarks.common import compare, print_table

    torch.set_num_threads(threads)
    tinyfw.set_num_threads(threads)
    print(f"\n== einsum, {threads} thread(s), backend "
          f"{tinyfw.get_backend().__name__.rsplit('.', 1)[-1]}")
    rng = np.random.default_rng(0)
    for eq, shapes in WORKLOADS:
        xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        tf = [tinyfw.tensor(x) for x in xs]
        th = [torch.tensor(x) for x in xs]
        fns = {"tinyfw": lambda: tinyfw.einsum(eq, *tf),
               "torch": lambda: torch.einsum(eq, *th),
               "numpy": lambda: np.einsum(eq, *xs, optimize=True)}
        print_table(f"einsum {eq} {shapes}", compare(fns, repeat=9), baseline="torch")


def main() -> None:
    """Run each thread setting in its own subprocess (see common.main_per_thread_count)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.common import main_per_thread_count

    main_per_thread_count(__file__, run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
