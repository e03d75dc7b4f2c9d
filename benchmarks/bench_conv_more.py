"""conv1d, conv3d and conv_transpose2d (issue 16), tinyfw next to PyTorch, forward and
forward + backward, float32, at 1 and 2 threads.

    python benchmarks/bench_conv_more.py [--threads N]

Without --threads each thread count (1, 2) runs in its own process (main_per_thread_count).

conv1d runs conv2d's im2col + GEMM kernel on a (N, C, 1, L) view, conv3d the 3-d kernel of
csrc/conv3d.cpp, conv_transpose2d conv2d's input-gradient kernel.  Both libraries time the
same workload in interleaved batches (benchmarks/common.py); the ratio column is tinyfw's
median over PyTorch's (below 1: tinyfw is faster).
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tinyfw  # noqa: E402
import tinyfw.nn.functional as F  # noqa: E402
from benchmarks.common import compare, main_per_thread_count, print_table  # noqa: E402

# name -> (functional name, input shape, weight shape, keyword arguments)
WORKLOADS = {
    "conv1d 32x64x512 k5 -> 64": ("conv1d", (32, 64, 512), (64, 64, 5), {"padding": 2}),
    "conv1d 8x128x1024 k3 s2 -> 128": ("conv1d", (8, 128, 1024), (128, 128, 3),
                                       {"stride": 2, "padding": 1}),
    "conv3d 4x16x16x32x32 k3 -> 32": ("conv3d", (4, 16, 16, 32, 32), (32, 16, 3, 3, 3),
                                      {"padding": 1}),
    "conv3d 2x32x8x28x28 k3 s2 -> 64": ("conv3d", (2, 32, 8, 28, 28), (64, 32, 3, 3, 3),
                                        {"stride": 2, "padding": 1}),
    "conv_transpose2d 16x64x16x16 k4 s2 -> 32": ("conv_transpose2d", (16, 64, 16, 16),
                                                 (64, 32, 4, 4), {"stride": 2, "padding": 1}),
}


def _pair(name: str, xs: tuple, ws: tuple, kw: dict, backward: bool):
    import torch

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    xf, wf = tinyfw.tensor(x, requires_grad=backward), tinyfw.tensor(w, requires_grad=backward)
    xt, wt = torch.tensor(x, requires_grad=backward), torch.tensor(w, requires_grad=backward)
    ff, ft = getattr(F, name), getattr(torch.nn.functional, name)
    if not backward:
        return (lambda: ff(xf, wf, **kw)), (lambda: ft(xt, wt, **kw))

    def run_f():
        xf.grad = wf.grad = None
        ff(xf, wf, **kw).sum().backward()

    def run_t():
        xt.grad = wt.grad = None
        ft(xt, wt, **kw).sum().backward()
    return run_f, run_t


def run(threads: int, repeat: int = 9) -> None:
    """Time every workload, forward and forward + backward, at `threads` threads."""
    import torch

    torch.set_num_threads(threads)
    tinyfw.set_num_threads(threads)
    print(f"CPU: {tinyfw.backend.cpu.isa_info().get('cpu', '?')}, ISA level "
          f"{tinyfw.backend.cpu.isa()}, load average {os.getloadavg()[0]:.1f}")
    for title, (name, xs, ws, kw) in WORKLOADS.items():
        for backward in (False, True):
            f, t = _pair(name, xs, ws, kw, backward)
            rows = compare({"tinyfw": f, "torch": t}, repeat=repeat, target_s=0.1)
            print_table(f"{title} {'fwd+bwd' if backward else 'fwd'} (threads {threads})",
                        rows, baseline="torch", subject="tinyfw")


if __name__ == "__main__":
    main_per_thread_count(__file__, run, __doc__.splitlines()[0])
