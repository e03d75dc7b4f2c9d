"""Activations (gelu exact and tanh, tanh, sigmoid, silu): tinyfw eager vs PyTorch, forward
and forward+backward, float32, medians of interleaved batches, time ratios.

    python benchmarks/bench_activations.py               # 1 thread, then 2 threads
    python benchmarks/bench_activations.py --threads 2   # one setting (what each subprocess runs)

Forward: the op on a tensor that does not require grad.  Forward+backward: the op on a
leaf that requires grad, then backward from a fixed upstream gradient (the leaf's grad is
reset each call, so both sides allocate it).  Target (issue 10): at most 1.5x PyTorch's time
for each function, mode and shape, at 1 and 2 threads.
"""
from __future__ import annotations

import os
import sys

SHAPES = [(4096, 64), (2048, 1024)]
TARGET = 1.5


def _functions(tf, F, torch):
    """name -> (tinyfw function, torch function)."""
    tF = torch.nn.functional
    return {
        "gelu": (lambda x: F.gelu(x), lambda x: tF.gelu(x)),
        "gelu(tanh)": (lambda x: F.gelu(x, approximate="tanh"), lambda x: tF.gelu(x, approximate="tanh")),
        "tanh": (lambda x: x.tanh(), lambda x: x.tanh()),
        "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid()),
        "silu": (lambda x: F.silu(x), lambda x: tF.silu(x)),
    }


def run(threads: int) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    import tinyfw.nn.functional as F
    from benchmarks.common import compare, print_table

    torch.set_num_threads(threads)
    tinyfw.set_num_threads(threads)
    from tinyfw.backend import cpu
    isa = cpu._C._vmath_isa() if getattr(cpu, "_C", None) is not None and hasattr(cpu._C, "_vmath_isa") else "-"
    print(f"\n== activations, float32, {threads} thread(s), backend "
          f"{tinyfw.get_backend().__name__.rsplit('.', 1)[-1]}, vector math {isa}")
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        x = (2 * rng.standard_normal(shape)).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        tx, px = tinyfw.tensor(x), torch.tensor(x)
        tl, pl = tinyfw.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        tg, pg = tinyfw.tensor(g), torch.tensor(g)
        for name, (tf_fn, th_fn) in _functions(tinyfw, F, torch).items():
            def tf_fwd(f=tf_fn):
                return f(tx)

            def th_fwd(f=th_fn):
                return f(px)

            def tf_step(f=tf_fn):
                tl.grad = None
                f(tl).backward(tg)

            def th_step(f=th_fn):
                pl.grad = None
                f(pl).backward(pg)

            rows = compare({"tinyfw": tf_fwd, "torch": th_fwd}, repeat=9)
            print_table(f"{name} {shape} fwd", rows, baseline="torch", target=TARGET)
            rows = compare({"tinyfw": tf_step, "torch": th_step}, repeat=9)
            print_table(f"{name} {shape} fwd+bwd", rows, baseline="torch", target=TARGET)


def main() -> None:
    """Run each thread setting in its own subprocess (see common.main_per_thread_count)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.common import main_per_thread_count

    main_per_thread_count(__file__, run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
