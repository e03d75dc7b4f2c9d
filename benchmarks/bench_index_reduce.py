"""scatter_reduce / index_add / index_reduce on the CPU: tinyfw's C++ kernel
(csrc/index_reduce.cpp, and scatter_add's for index_add) against the numpy reference
backend and PyTorch, interleaved in one process (benchmarks/common.py).

    python benchmarks/bench_index_reduce.py [--threads N]

Workloads (float32): a graph-style scatter of 1M edge values into 65536 nodes along dim
0 (scatter_reduce sum/amax/mean over a (1M, 16)-shaped src would be too slow for the
reference, so 262144 x 16), and index_add / index_reduce(amax) of 4096 rows of 256 into a
(1024, 256) table.  Figures: median time per call, and tinyfw's over PyTorch's.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    import numpy as np
    import torch

    import tinyfw
    from benchmarks.common import compare, print_table

    tinyfw.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    cases = []
    n_nodes, n_edges, feat = 65536, 262144, 16
    x = rng.standard_normal((n_nodes, feat)).astype(np.float32)
    src = rng.standard_normal((n_edges, feat)).astype(np.float32)
    idx = np.broadcast_to(rng.integers(0, n_nodes, (n_edges, 1)), (n_edges, feat)).copy()
    for red in ("sum", "amax", "mean"):
        cases.append((f"scatter_reduce {red} ({n_edges}x{feat} -> {n_nodes})",
                      lambda t, i, s, red=red: t.scatter_reduce(0, i, s, red, include_self=False),
                      x, idx, src))
    table = rng.standard_normal((1024, 256)).astype(np.float32)
    rows = rng.standard_normal((4096, 256)).astype(np.float32)
    ridx = rng.integers(0, 1024, 4096)
    cases.append(("index_add (4096x256 -> 1024x256)", lambda t, i, s: t.index_add(0, i, s),
                  table, ridx, rows))
    cases.append(("index_reduce amax (4096x256 -> 1024x256)",
                  lambda t, i, s: t.index_reduce(0, i, s, "amax"), table, ridx, rows))
    cpu = tinyfw.get_cpu_info() if hasattr(tinyfw, "get_cpu_info") else None
    print(f"threads={args.threads}" + (f", {cpu}" if cpu else ""))
    for title, fn, a, i, s in cases:
        ta, ti, ts = tinyfw.tensor(a), tinyfw.tensor(i), tinyfw.tensor(s)
        pa, pi, ps = torch.from_numpy(a), torch.from_numpy(i), torch.from_numpy(s)
        want = fn(pa, pi, ps).numpy()
        got = fn(ta, ti, ts).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

        def on_ref(fn=fn, ta=ta, ti=ti, ts=ts):
            tinyfw.set_backend("ref")
            try:
                fn(ta, ti, ts)
            finally:
                tinyfw.set_backend("cpu")

        timings = compare({"tinyfw": lambda: fn(ta, ti, ts), "torch": lambda: fn(pa, pi, ps),
                           "tinyfw ref": on_ref}, repeat=args.repeat)
        print_table(title, timings, baseline="torch")


if __name__ == "__main__":
    main()
