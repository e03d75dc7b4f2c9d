"""The CPU caching allocator on and off, on the same workloads in one run.

    python benchmarks/bench_pool.py [--repeat 15]

Workloads: the MLP and CNN Adam training steps of bench_train, and a 16M-element float32
add (a fresh 64 MiB output per call: the case a pool is for).  The pool is switched
between batches (`_C.pool_configure`), so both settings see the same machine state;
figures are medians of interleaved batches, the ratio is pool-on time / pool-off time
(below 1: the pool wins).  Also prints the pool's hit rate during the on batches.
"""
from __future__ import annotations

import argparse
import os
import sys


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tinyfw  # noqa: E402
from tinyfw import _C  # noqa: E402
from benchmarks.bench_train import tiny_step_fn, workload  # noqa: E402
from benchmarks.common import compare, print_table  # noqa: E402


def _switched(fn, enabled: bool):
    def run():
        _C.pool_configure(enabled=enabled)
        fn()
    return run


def main() -> None:
    """Time each workload with the pool on and off, interleaved."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    a = tinyfw.randn(4096, 4096)
    b = tinyfw.randn(4096, 4096)
    loads = {"16M add": lambda: a + b}
    for kind in ("mlp", "cnn"):
        loads[f"{kind} Adam step"] = tiny_step_fn(*workload(kind))
    for title, fn in loads.items():
        rows = compare({"pool on": _switched(fn, True), "pool off": _switched(fn, False)},
                       repeat=args.repeat)
        print_table(f"{title} (threads: {tinyfw.get_num_threads()})", rows,
                    baseline="pool off", subject="pool on")
    _C.pool_configure(enabled=True)
    s = _C.pool_stats()
    print(f"pool: hits {s['hits']}, misses {s['misses']}, peak {s['max_allocated'] / 2**20:.1f} MiB")



if __name__ == "__main__":
    main()
