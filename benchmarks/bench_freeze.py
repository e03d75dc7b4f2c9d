"""Digits CNN inference: tinyfw eager vs traced vs frozen (jit.freeze) vs PyTorch eager.

    python benchmarks/bench_freeze.py [--threads N] [--batch 256] [--repeat 15]

The model is examples/train_digits.py's CNN (conv-BN-ReLU x2, max-pool, linear-ReLU,
linear; dropout is inactive in eval mode), in eval mode, float32, batch `--batch` of
1x8x8 images, forward only under no_grad.  "traced" is jit.trace of the live model
(parameters read at each call; the batch norms run as eval-mode elementwise ops, fused);
"frozen" is jit.freeze: the parameters are constants, each batch norm is folded into its
convolution at freeze time (rewrites_fold.py), the linear weights are stored transposed.
PyTorch runs the same weights.  All four are timed interleaved in one process (medians).

Targets (issue 18): frozen at least 1.5x tinyfw eager, and at most 1.0x PyTorch eager's
time.  Run without --threads it runs 1 thread then 2, each in a fresh process.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

import tinyfw  # noqa: E402
from tinyfw import jit  # noqa: E402
from benchmarks.common import check, compare, print_table  # noqa: E402

try:
    import torch
except ImportError:
    torch = None


def _model():
    from train_digits import make_model

    tinyfw.manual_seed(0)
    m = make_model("cnn")
    rs = np.random.RandomState(0)
    with tinyfw.no_grad():  # trained-looking statistics, so the fold has work to do
        for mod in m.modules():
            if isinstance(mod, tinyfw.nn.BatchNorm2d):
                c = mod.running_mean.shape[0]
                mod.running_mean.copy_(tinyfw.tensor(rs.normal(0, 0.5, c), dtype=tinyfw.float32))
                mod.running_var.copy_(tinyfw.tensor(rs.uniform(0.5, 2, c), dtype=tinyfw.float32))
    return m.eval()


def _torch_model(m):
    tm = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Dropout(0.3),
        torch.nn.Linear(32 * 4 * 4, 64), torch.nn.ReLU(), torch.nn.Dropout(0.3),
        torch.nn.Linear(64, 10))
    sd = {k: torch.from_numpy(np.array(v.numpy())) for k, v in m.state_dict().items()}
    tm.load_state_dict(sd, strict=False)
    return tm.eval()


def run(threads: int, batch: int, repeat: int) -> None:
    tinyfw.set_num_threads(threads)
    m = _model()
    x = tinyfw.tensor(np.random.RandomState(1).normal(0, 1, (batch, 1, 8, 8)),
                      dtype=tinyfw.float32)
    with tinyfw.no_grad():
        traced = jit.trace(m, (x,))
        frozen = jit.freeze(traced, (x,))
        ref = m(x).numpy()
        for name, f in (("traced", traced), ("frozen", frozen)):
            err = float(np.abs(f(x).numpy() - ref).max())
            assert err < 1e-4, f"{name} differs from eager by {err}"
    fns = {"tinyfw eager": lambda: m(x), "traced": lambda: traced(x),
           "frozen": lambda: frozen(x)}

    def no_grad(f):
        def g():
            with tinyfw.no_grad():
                return f()
        return g

    fns = {k: no_grad(f) for k, f in fns.items()}
    if torch is not None:
        torch.set_num_threads(threads)
        tm = _torch_model(m)
        tx = torch.from_numpy(x.numpy().copy())
        with torch.no_grad():
            err = float(np.abs(tm(tx).numpy() - ref).max())
            assert err < 1e-4, f"PyTorch differs from tinyfw eager by {err}"

        def torch_step():
            with torch.no_grad():
                return tm(tx)
        fns["torch eager"] = torch_step
    rows = compare(fns, repeat=repeat)
    title = f"digits CNN inference, batch {batch}, {threads} thread(s)"
    print_table(title, rows, baseline="tinyfw eager")
    med = {r.name: r.median for r in rows}
    check(f"{title}: frozen speed-up over tinyfw eager", med["tinyfw eager"] / med["frozen"],
          1.5, higher_is_better=True)
    check(f"{title}: traced speed-up over tinyfw eager", med["tinyfw eager"] / med["traced"],
          1.5, higher_is_better=True)
    if "torch eager" in med:
        check(f"{title}: frozen/PyTorch eager time", med["frozen"] / med["torch eager"], 1.0,
              higher_is_better=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    if args.threads is not None:
        run(args.threads, args.batch, args.repeat)
        return
    import subprocess

    for t in (1, 2):
        env = dict(os.environ, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t),
                   MKL_NUM_THREADS=str(t))
        subprocess.run([sys.executable, os.path.abspath(__file__), "--threads", str(t),
                        "--batch", str(args.batch), "--repeat", str(args.repeat)], env=env,
                       check=True)


if __name__ == "__main__":
    main()
