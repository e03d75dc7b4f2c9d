"""softmax, log_softmax and layer_norm, forward and forward+backward: tinyfw vs PyTorch.

    python benchmarks/bench_norms.py               # 1 thread, then 2 threads
    python benchmarks/bench_norms.py --threads 2   # one setting (what each subprocess runs)

Shapes (4096, 64) and (2048, 1024), float32, normalised / softmaxed over the last dim;
layer_norm has a weight and a bias (the Transformer's).  "fwd" runs the op on a tensor
that does not require a gradient; "fwd+bwd" is the autograd round trip of a training
step: the op, then backward from a fixed upstream gradient (layer_norm: grads of input,
weight and bias).  Both libraries run interleaved in one process (benchmarks/common.py)
and the figure is tinyfw's median time over PyTorch's.  Target (issue 10): <= 1.5x.
"""
from __future__ import annotations

import os
import sys

SHAPES = [(4096, 64), (2048, 1024)]
OPS = ["softmax", "log_softmax", "layer_norm"]


def _workloads(op: str, shape: tuple, rng):
    """(forward fns, forward+backward fns), each {'tinyfw': fn, 'torch': fn}."""
    import numpy as np
    import torch

    import tinyfw
    import tinyfw.nn.functional as F

    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    n = shape[1]
    w = (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)
    b = (0.1 * rng.standard_normal(n)).astype(np.float32)
    tx, tg = tinyfw.tensor(x), tinyfw.tensor(g)
    txg = tinyfw.tensor(x, requires_grad=True)
    tw, tb = tinyfw.tensor(w, requires_grad=True), tinyfw.tensor(b, requires_grad=True)
    px, pg = torch.tensor(x), torch.tensor(g)
    pxg = torch.tensor(x, requires_grad=True)
    pw, pb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    if op == "layer_norm":
        tf_op = lambda t: F.layer_norm(t, (n,), tw, tb)  # noqa: E731
        th_op = lambda t: torch.nn.functional.layer_norm(t, (n,), pw, pb)  # noqa: E731
    else:
        tf_op = lambda t: getattr(F, op)(t, -1)  # noqa: E731
        th_op = lambda t: getattr(torch.nn.functional, op)(t, -1)  # noqa: E731

    def tf_fwd():
        with tinyfw.no_grad():
            tf_op(tx)

    def th_fwd():
        with torch.no_grad():
            th_op(px)

    def tf_step():
        txg.grad = tw.grad = tb.grad = None
        tf_op(txg).backward(tg)

    def th_step():
        pxg.grad = pw.grad = pb.grad = None
        th_op(pxg).backward(pg)

    return {"tinyfw": tf_fwd, "torch": th_fwd}, {"tinyfw": tf_step, "torch": th_step}


def run(threads: int) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    from benchmarks.common import compare, print_table

    torch.set_num_threads(threads)
    tinyfw.set_num_threads(threads)
    print(f"\n== norms and softmax, {threads} thread(s), backend "
          f"{tinyfw.get_backend().__name__.rsplit('.', 1)[-1]}")
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        for op in OPS:
            fwd, step = _workloads(op, shape, rng)
            for kind, fns in (("fwd", fwd), ("fwd+bwd", step)):
                print_table(f"{op} {shape} {kind}", compare(fns, repeat=9), baseline="torch",
                            target=1.5)


def main() -> None:
    """Run each thread setting in its own subprocess (see common.main_per_thread_count)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.common import main_per_thread_count

    main_per_thread_count(__file__, run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
