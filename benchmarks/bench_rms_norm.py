"""rms_norm, forward and forward+backward: the fused tinyfw op vs PyTorch's F.rms_norm and
vs the composition it replaced (x * rsqrt(mean(x * x) + eps) * weight in tinyfw ops).

    python benchmarks/bench_rms_norm.py               # 1 thread (the default setting)
    python benchmarks/bench_rms_norm.py --threads 2   # one setting in-process

Shapes (4096, 64), (512, 768), (64, 4096), float32, normalised over the last dim with a
weight (an LLM block's RMSNorm).  "fwd" runs the op on a tensor that does not require a
gradient; "fwd+bwd" is the op and backward from a fixed upstream gradient (grads of the
input and the weight).  The three run interleaved in one process (benchmarks/common.py);
the figures are medians over PyTorch's.
"""
from __future__ import annotations

import os
import sys

SHAPES = [(4096, 64), (512, 768), (64, 4096)]
EPS = 1e-6


def _composed(x, w, eps: float):
    """The previous tinyfw.nn.functional.rms_norm: five tinyfw ops and a weight product."""
    return x * ((x * x).mean((x.ndim - 1,), keepdim=True) + eps).rsqrt() * w


def _workloads(shape: tuple, rng):
    """(forward fns, forward+backward fns), each {'tinyfw': fn, 'composed': fn, 'torch': fn}."""
    import numpy as np
    import torch

    import tinyfw
    import tinyfw.nn.functional as F

    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    n = shape[1]
    w = (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)
    tx, tg = tinyfw.tensor(x), tinyfw.tensor(g)
    txg, tw = tinyfw.tensor(x, requires_grad=True), tinyfw.tensor(w, requires_grad=True)
    px, pg = torch.tensor(x), torch.tensor(g)
    pxg, pw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ops = {"tinyfw": lambda t: F.rms_norm(t, (n,), tw, EPS),
           "composed": lambda t: _composed(t, tw, EPS),
           "torch": lambda t: torch.nn.functional.rms_norm(t, (n,), pw, EPS)}

    def fwd(name):
        if name == "torch":
            def f():
                with torch.no_grad():
                    ops[name](px)
        else:
            def f():
                with tinyfw.no_grad():
                    ops[name](tx)
        return f

    def step(name):
        if name == "torch":
            def f():
                pxg.grad = pw.grad = None
                ops[name](pxg).backward(pg)
        else:
            def f():
                txg.grad = tw.grad = None
                ops[name](txg).backward(tg)
        return f

    return {k: fwd(k) for k in ops}, {k: step(k) for k in ops}


def run(threads: int) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    from benchmarks.common import compare, print_table

    torch.set_num_threads(threads)
    tinyfw.set_num_threads(threads)
    print(f"\n== rms_norm, {threads} thread(s), backend "
          f"{tinyfw.get_backend().__name__.rsplit('.', 1)[-1]}, isa {tinyfw.backend.cpu.isa()}")
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        fwd, step = _workloads(shape, rng)
        for kind, fns in (("fwd", fwd), ("fwd+bwd", step)):
            rows = compare(fns, repeat=11)
            print_table(f"rms_norm {shape} {kind}", rows, baseline="torch")
            med = {r.name: r.median for r in rows}
            print(f"  fused vs composed: {med['composed'] / med['tinyfw']:.2f}x faster")


def main() -> None:
    """Run each thread setting in its own subprocess (see common.main_per_thread_count)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.common import main_per_thread_count

    main_per_thread_count(__file__, run, __doc__.splitlines()[0], thread_counts=(1,))


if __name__ == "__main__":
    main()
