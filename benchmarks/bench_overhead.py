"""Per-op eager overhead and a small MLP, tinyfw next to PyTorch (and numpy) in one run.

    python benchmarks/bench_overhead.py [--repeat 15] [--backend cpu|ref]

Workloads:
- tiny add: ``a + b`` on two 4-element float32 tensors (pure dispatch overhead);
- tiny op + backward: ``(a * b).sum().backward()`` on 4-element tensors requiring grad;
- MLP 784-512-512-10 (ReLU) forward + backward at batch 128, float32.

Every figure is the median of `repeat` interleaved batches; ratios are to PyTorch.
Target (issue 2): the tiny op + backward at most 2x PyTorch.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tinyfw  # noqa: E402
from benchmarks.common import compare, print_table  # noqa: E402

try:
    import torch
except ImportError:  # the comparison column is skipped, the tinyfw figures still print
    torch = None


def tiny_add(repeat: int) -> None:
    """a + b on 4 elements: the cost of one trip through the dispatcher."""
    a, b = tinyfw.ones(4), tinyfw.ones(4)
    na, nb = np.ones(4, np.float32), np.ones(4, np.float32)
    fns = {"tinyfw": lambda: a + b, "numpy": lambda: na + nb}
    if torch is not None:
        ta, tb = torch.ones(4), torch.ones(4)
        fns["torch"] = lambda: ta + tb
    print_table("tiny add (4 elements)", compare(fns, repeat),
                baseline="torch" if torch is not None else None)


def tiny_backward(repeat: int) -> None:
    """(a * b).sum().backward(): two recorded ops and a backward pass."""
    a = tinyfw.ones(4, requires_grad=True)
    b = tinyfw.ones(4, requires_grad=True)

    def tf():
        (a * b).sum().backward()
        a.grad = b.grad = None

    fns = {"tinyfw": tf}
    if torch is not None:
        ta = torch.ones(4, requires_grad=True)
        tb = torch.ones(4, requires_grad=True)

        def tt():
            (ta * tb).sum().backward()
            ta.grad = tb.grad = None

        fns["torch"] = tt
    print_table("tiny (a*b).sum().backward()", compare(fns, repeat),
                baseline="torch" if torch is not None else None, target=2.0)


def mlp(repeat: int, batch: int = 128) -> None:
    """784-512-512-10 MLP, ReLU, mean of the outputs as the loss: forward + backward."""
    g = np.random.default_rng(0)
    sizes = [784, 512, 512, 10]
    ws = [(g.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32)
          for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(o, np.float32) for o in sizes[1:]]
    x = g.standard_normal((batch, 784)).astype(np.float32)

    tw = [tinyfw.tensor(w, requires_grad=True) for w in ws]
    tbias = [tinyfw.tensor(b, requires_grad=True) for b in bs]
    tx = tinyfw.tensor(x)

    def tf():
        h = tx
        for i, (w, b) in enumerate(zip(tw, tbias)):
            h = tinyfw.linear(h, w, b)
            if i < len(tw) - 1:
                h = h.relu()
        h.mean().backward()
        for p in tw + tbias:
            p.grad = None

    fns = {"tinyfw": tf}
    if torch is not None:
        pw = [torch.tensor(w, requires_grad=True) for w in ws]
        pb = [torch.tensor(b, requires_grad=True) for b in bs]
        px = torch.tensor(x)

        def tt():
            h = px
            for i, (w, b) in enumerate(zip(pw, pb)):
                h = torch.nn.functional.linear(h, w, b)
                if i < len(pw) - 1:
                    h = h.relu()
            h.mean().backward()
            for p in pw + pb:
                p.grad = None

        fns["torch"] = tt
    print_table(f"MLP 784-512-512-10 fwd+bwd, batch {batch}", compare(fns, repeat, target_s=0.1),
                baseline="torch" if torch is not None else None, target=1.2)


def main() -> None:
    """Run the three workloads and print medians and ratios."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=15, help="batches per workload (median)")
    p.add_argument("--backend", default=None, help="tinyfw backend: cpu or ref")
    args = p.parse_args()
    if args.backend:
        tinyfw.set_backend(args.backend)
    if torch is not None:
        torch.set_num_threads(tinyfw.get_num_threads())  # the same pool size for both
    print(f"tinyfw {tinyfw.__version__} backend={tinyfw.get_backend().__name__.rsplit('.', 1)[-1]}"
          f" numpy {np.__version__}" + (f" torch {torch.__version__}" if torch else " (no torch)"))
    tiny_add(args.repeat)
    tiny_backward(args.repeat)
    mlp(args.repeat)


if __name__ == "__main__":
    main()
