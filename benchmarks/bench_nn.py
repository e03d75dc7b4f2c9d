"""conv2d and cross-entropy forward+backward: tinyfw vs PyTorch, medians and ratios.

    python benchmarks/bench_nn.py               # 1 thread, then 2 threads
    python benchmarks/bench_nn.py --threads 2   # one setting (what each subprocess runs)

Each workload is the autograd round trip a training step does: the forward op, then
backward from a fixed upstream gradient (conv: grads of input and weight; cross-entropy:
grad of the logits).  Targets (issue 3): conv <= 1.5x PyTorch, cross-entropy <= 1.2x.
"""
from __future__ import annotations

import os
import sys

CONVS = [("conv (64,1,28,28)->32 3x3", (64, 1, 28, 28), 32), ("conv (64,32,13,13)->64 3x3", (64, 32, 13, 13), 64)]
CES = [("cross-entropy (128, 10)", 128, 10), ("cross-entropy (4096, 1000)", 4096, 1000)]


def run(threads: int) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    import tinyfw.nn.functional as F
    from benchmarks.common import compare, print_table

    torch.set_num_threads(threads)
    tinyfw.set_num_threads(threads)
    print(f"\n== nn kernels, {threads} thread(s), backend "
          f"{tinyfw.get_backend().__name__.rsplit('.', 1)[-1]}")
    rng = np.random.default_rng(0)
    for name, shape, out in CONVS:
        x = rng.standard_normal(shape).astype(np.float32)
        w = (0.1 * rng.standard_normal((out, shape[1], 3, 3))).astype(np.float32)
        tx, tw = tinyfw.tensor(x, requires_grad=True), tinyfw.tensor(w, requires_grad=True)
        px, pw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        g = np.ones((shape[0], out, shape[2] - 2, shape[3] - 2), np.float32)
        tg, pg = tinyfw.tensor(g), torch.tensor(g)

        def tf_step():
            tx.grad = tw.grad = None
            F.conv2d(tx, tw).backward(tg)

        def torch_step():
            px.grad = pw.grad = None
            torch.nn.functional.conv2d(px, pw).backward(pg)

        print_table(f"{name} fwd+bwd", compare({"tinyfw": tf_step, "torch": torch_step}, repeat=9),
                    baseline="torch", target=1.5)
    for name, n, c in CES:
        z = (3 * rng.standard_normal((n, c))).astype(np.float32)
        t = rng.integers(0, c, n)
        tz, tt = tinyfw.tensor(z, requires_grad=True), tinyfw.tensor(t)
        pz, pt = torch.tensor(z, requires_grad=True), torch.tensor(t)

        def tf_ce():
            tz.grad = None
            F.cross_entropy(tz, tt).backward()

        def torch_ce():
            pz.grad = None
            torch.nn.functional.cross_entropy(pz, pt).backward()

        print_table(f"{name} fwd+bwd", compare({"tinyfw": tf_ce, "torch": torch_ce}, repeat=9),
                    baseline="torch", target=1.2)


def main() -> None:
    """Run each thread setting in its own subprocess (see common.main_per_thread_count)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.common import main_per_thread_count

    main_per_thread_count(__file__, run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
