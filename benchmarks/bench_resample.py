"""interpolate (nearest, bilinear, bicubic, trilinear) forward and forward+backward: tinyfw
(the C++ resample_axis kernels, csrc/interpolate.cpp) vs PyTorch.

    python benchmarks/bench_resample.py               # 1 thread, then 2 threads
    python benchmarks/bench_resample.py --threads 2   # one setting

float32, NCHW / NCDHW.  "fwd" runs on a tensor that does not require a gradient; "fwd+bwd"
is the op and backward from a fixed upstream gradient.  Both libraries run interleaved in
one process (benchmarks/common.py); the figure is tinyfw's median time over PyTorch's.
"""
from __future__ import annotations

import os
import sys

CASES = [
    ("nearest x2", (8, 32, 64, 64), {"scale_factor": 2.0, "mode": "nearest"}),
    ("bilinear x2", (8, 32, 64, 64), {"scale_factor": 2.0, "mode": "bilinear",
                                      "align_corners": False}),
    ("bilinear /2", (8, 32, 128, 128), {"scale_factor": 0.5, "mode": "bilinear",
                                        "align_corners": False}),
    ("bicubic x2", (4, 16, 64, 64), {"scale_factor": 2.0, "mode": "bicubic",
                                     "align_corners": True}),
    ("trilinear x2", (2, 8, 16, 32, 32), {"scale_factor": 2.0, "mode": "trilinear",
                                          "align_corners": False}),
]


def _workloads(shape: tuple, kw: dict, rng):
    import numpy as np
    import torch

    import tinyfw
    import tinyfw.nn.functional as F

    x = rng.standard_normal(shape).astype(np.float32)
    out_shape = tuple(torch.nn.functional.interpolate(torch.tensor(x), **kw).shape)
    g = rng.standard_normal(out_shape).astype(np.float32)
    tx, tg, txg = tinyfw.tensor(x), tinyfw.tensor(g), tinyfw.tensor(x, requires_grad=True)
    px, pg, pxg = torch.tensor(x), torch.tensor(g), torch.tensor(x, requires_grad=True)

    def tf_fwd():
        with tinyfw.no_grad():
            F.interpolate(tx, **kw)

    def th_fwd():
        with torch.no_grad():
            torch.nn.functional.interpolate(px, **kw)

    def tf_step():
        txg.grad = None
        F.interpolate(txg, **kw).backward(tg)

    def th_step():
        pxg.grad = None
        torch.nn.functional.interpolate(pxg, **kw).backward(pg)

    return {"tinyfw": tf_fwd, "torch": th_fwd}, {"tinyfw": tf_step, "torch": th_step}


def run(threads: int) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    from benchmarks.common import compare, print_table

    torch.set_num_threads(threads)
    tinyfw.set_num_threads(threads)
    print(f"\n== interpolate, {threads} thread(s), backend "
          f"{tinyfw.get_backend().__name__.rsplit('.', 1)[-1]}")
    rng = np.random.default_rng(0)
    for name, shape, kw in CASES:
        fwd, step = _workloads(shape, kw, rng)
        for kind, fns in (("fwd", fwd), ("fwd+bwd", step)):
            print_table(f"{name} {shape} {kind}", compare(fns, repeat=7), baseline="torch")


def main() -> None:
    """Run each thread setting in its own subprocess (see common.main_per_thread_count)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.common import main_per_thread_count

    main_per_thread_count(__file__, run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
