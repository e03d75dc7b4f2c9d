"""Issue-16 elementwise math: the float32 vector kernels (exp2, log2, sinh, cosh:
csrc/vmath_math.h) against the reference primitive they replace (numpy in float64,
rounded once) and against PyTorch, forward on 2**20 float32 elements, medians of
interleaved batches, time ratios.

    python benchmarks/bench_elementwise_math.py [--threads N]   (default 2)
"""
from __future__ import annotations

import os
import sys

N = 1 << 20
NAMES = ("exp2", "log2", "sinh", "cosh")


def main(threads: int) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    from benchmarks.common import compare, print_table
    from tinyfw.backend import ref

    tinyfw.set_num_threads(threads)
    torch.set_num_threads(threads)
    x = np.random.default_rng(0).uniform(0.1, 8.0, N).astype(np.float32)
    t, tt = tinyfw.tensor(x), torch.from_numpy(x)
    for name in NAMES:
        rows = compare({
            "tinyfw": lambda n=name: getattr(tinyfw, n)(t),
            "ref (numpy f64)": lambda n=name: getattr(ref, n)(x),
            "torch": lambda n=name: getattr(torch, n)(tt),
        })
        print_table(f"{name}, {N} float32, {threads} thread(s)", rows, baseline="torch")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[args.index("--threads") + 1]) if "--threads" in args else 2)
