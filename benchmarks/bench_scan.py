"""Cumulative scans (cumsum, cumprod, cummax, cummin, logcumsumexp): tinyfw vs PyTorch.

    python benchmarks/bench_scan.py               # 1 thread, then 2 threads
    python benchmarks/bench_scan.py --threads 2   # one setting (what each subprocess runs)
    python benchmarks/bench_scan.py --threads 1 --ref   # also the numpy reference backend

float32 (1024, 1024), scanned along dim 1 (the contiguous one: rows scanned in place)
and dim 0 (columns: each step reads a whole row), forward only: the kernels are what the
issue asks for.  Both libraries run interleaved in one process (benchmarks/common.py);
the figure is tinyfw's median time over PyTorch's.  With --ref, the numpy reference
backend's time is shown too (what every one of these ops cost before csrc/scan.cpp).
"""
from __future__ import annotations

import os
import sys

SHAPE = (1024, 1024)
OPS = ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"]


def run(threads: int, with_ref: bool = False) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    from benchmarks.common import compare, print_table

    torch.set_num_threads(threads)
    tinyfw.set_num_threads(threads)
    print(f"\n== scans {SHAPE} float32, {threads} thread(s)")
    rng = np.random.default_rng(0)
    x = rng.uniform(0.999, 1.001, SHAPE).astype(np.float32)
    tx, px = tinyfw.tensor(x), torch.tensor(x)
    for op in OPS:
        for dim in (1, 0):
            fns = {"tinyfw": lambda op=op, dim=dim: getattr(tinyfw, op)(tx, dim),
                   "torch": lambda op=op, dim=dim: getattr(torch, op)(px, dim)}
            if with_ref:
                from tinyfw.backend import ref

                fns["ref"] = lambda op=op, dim=dim: getattr(ref, op)(x, dim)
            print_table(f"{op} dim={dim}", compare(fns, repeat=7), baseline="torch")


def main() -> None:
    """Run each thread setting in its own subprocess (see common.main_per_thread_count)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if "--ref" in sys.argv:
        sys.argv.remove("--ref")
        i = sys.argv.index("--threads") if "--threads" in sys.argv else -1
        run(int(sys.argv[i + 1]) if i >= 0 else 1, with_ref=True)
        return
    from benchmarks.common import main_per_thread_count

    main_per_thread_count(__file__, run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
