"""Issue 16's composed activations and losses: tinyfw eager vs PyTorch, forward+backward,
float32, medians of interleaved batches, time ratios (no target: these are compositions
of tinyfw ops, not kernels; the figures say what the composition costs).

    python benchmarks/bench_act_loss.py               # 1 thread, then 2 threads
    python benchmarks/bench_act_loss.py --threads 1   # one setting
"""
from __future__ import annotations

import os
import sys

SHAPE = (1024, 256)


def _cases(tinyfw, F, torch, rng):
    """name -> (tinyfw step, torch step): forward + backward of one call."""
    import numpy as np

    tF = torch.nn.functional
    x = (2 * rng.standard_normal(SHAPE)).astype(np.float32)
    tl, pl = tinyfw.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    g = rng.standard_normal(SHAPE).astype(np.float32)
    tg, pg = tinyfw.tensor(g), torch.tensor(g)

    def act(name, *args):
        def tf():
            tl.grad = None
            getattr(F, name)(tl, *args).backward(tg)

        def th():
            pl.grad = None
            getattr(tF, name)(pl, *args).backward(pg)
        return tf, th

    cases = {n: act(n) for n in ("selu", "celu", "mish", "hardswish", "softsign",
                                 "softshrink")}
    t = rng.standard_normal(SHAPE).astype(np.float32)
    tt, pt = tinyfw.tensor(t), torch.tensor(t)
    y = rng.integers(0, SHAPE[1], SHAPE[0])
    ty, py = tinyfw.tensor(y), torch.tensor(y)

    def loss(fn_f, fn_t):
        def tf():
            tl.grad = None
            fn_f().backward()

        def th():
            pl.grad = None
            fn_t().backward()
        return tf, th

    cases["huber_loss"] = loss(lambda: F.huber_loss(tl, tt), lambda: tF.huber_loss(pl, pt))
    cases["multi_margin_loss"] = loss(lambda: F.multi_margin_loss(tl, ty),
                                      lambda: tF.multi_margin_loss(pl, py))
    cases["triplet_margin_loss"] = loss(lambda: F.triplet_margin_loss(tl, tt, tt * 2),
                                        lambda: tF.triplet_margin_loss(pl, pt, pt * 2))
    # CTC: T=50, N=16, C=20, targets of 5..10 labels
    T, N, C = 50, 16, 20
    z = rng.standard_normal((T, N, C)).astype(np.float32)
    tz, pz = tinyfw.tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    tgt = rng.integers(1, C, (N, 10))
    lens = [int(v) for v in rng.integers(5, 11, N)]

    def ctc_tf():
        tz.grad = None
        F.ctc_loss(tz.log_softmax(2), tinyfw.tensor(tgt), [T] * N, lens).backward()

    def ctc_th():
        pz.grad = None
        tF.ctc_loss(pz.log_softmax(2), torch.tensor(tgt), torch.tensor([T] * N),
                    torch.tensor(lens)).backward()
    cases["ctc_loss T=50 N=16 C=20"] = (ctc_tf, ctc_th)
    return cases


def run(threads: int) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    import tinyfw.nn.functional as F
    from benchmarks.common import compare, print_table

    torch.set_num_threads(threads)
    tinyfw.set_num_threads(threads)
    print(f"\n== issue 16 activations and losses, float32 {SHAPE}, fwd+bwd, {threads} "
          f"thread(s), backend {tinyfw.get_backend().__name__.rsplit('.', 1)[-1]}")
    for name, (tf, th) in _cases(tinyfw, F, torch, np.random.default_rng(0)).items():
        rows = compare({"tinyfw": tf, "torch": th}, repeat=7)
        print_table(name, rows, baseline="torch")


def main() -> None:
    """Run each thread setting in its own subprocess (see common.main_per_thread_count)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.common import main_per_thread_count

    main_per_thread_count(__file__, run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
