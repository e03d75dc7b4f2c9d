"""One training step (forward, backward, Adam step), tinyfw next to PyTorch in one run,
plus the peak RSS of a tinyfw-only training process.

    python benchmarks/bench_train.py [--repeat 15] [--steps-rss 20]

Workloads (float32, CPU):
- MLP 784-512-512-10 (ReLU), batch 128, cross-entropy, Adam;
- CNN conv 1->32 3x3, ReLU, maxpool 2, conv 32->64 3x3, ReLU, maxpool 2, linear 1600->128,
  ReLU, linear 128->10, batch 64 of 28x28 images, cross-entropy, Adam.

Both frameworks start from the same weights and see the same batch.  Figures are medians
of interleaved batches (benchmarks/common.py); ratios are to PyTorch.  Targets (issue 4):
MLP <= 1.2x, CNN <= 1.5x PyTorch's step time; peak RSS of the training process <= 150 MiB,
measured in a subprocess that never imports torch (ru_maxrss).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tinyfw  # noqa: E402
from tinyfw import nn, optim  # noqa: E402
from benchmarks.common import check, compare, print_table  # noqa: E402


def tiny_mlp():
    """The MLP in tinyfw."""
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def tiny_cnn():
    """The small CNN in tinyfw."""
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 128),
                         nn.ReLU(), nn.Linear(128, 10))


def workload(kind: str, seed: int = 0):
    """(model, x, y) for 'mlp' or 'cnn' with fixed data."""
    rng = np.random.default_rng(seed)
    tinyfw.manual_seed(seed)
    if kind == "mlp":
        model, x = tiny_mlp(), rng.standard_normal((128, 784)).astype(np.float32)
    else:
        model, x = tiny_cnn(), rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, x.shape[0])
    return model, x, y


def tiny_step_fn(model, x, y):
    """A closure running one tinyfw training step."""
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = tinyfw.from_numpy(x), tinyfw.from_numpy(y)

    def step():
        opt.zero_grad()
        loss_fn(model(xt), yt).backward()
        opt.step()
    return step


def torch_step_fn(kind, model, x, y):
    """The same step in PyTorch, from the same weights."""
    import torch

    if kind == "mlp":
        tm = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                 torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                 torch.nn.Linear(512, 10))
    else:
        tm = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(),
                                 torch.nn.MaxPool2d(2), torch.nn.Conv2d(32, 64, 3),
                                 torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                                 torch.nn.Linear(1600, 128), torch.nn.ReLU(),
                                 torch.nn.Linear(128, 10))
    with torch.no_grad():
        for (name, p), tp in zip(model.state_dict().items(), tm.state_dict().values()):
            tp.copy_(torch.from_numpy(np.array(p.numpy())))
    opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss_fn(tm(xt), yt).backward()
        opt.step()
    return step


_RSS_CHILD = r"""
import json, resource, sys
sys.path.insert(0, {root!r})
from benchmarks.bench_train import workload, tiny_step_fn
for kind in ("mlp", "cnn"):
    step = tiny_step_fn(*workload(kind))
    for _ in range({steps}):
        step()
assert "torch" not in sys.modules, "the RSS child must not import torch"
print(json.dumps({{"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def peak_rss_mib(steps: int) -> float:
    """Peak RSS (MiB) of a fresh process that trains both models for `steps` steps."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD.format(root=root, steps=steps)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["maxrss_kib"] / 1024


def main() -> None:
    """Run the benchmarks and print medians and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--steps-rss", type=int, default=20)
    args = ap.parse_args()
    rss = peak_rss_mib(args.steps_rss)  # before this process imports torch
    try:
        import torch  # noqa: F401
    except ImportError:
        torch = None
    print(f"tinyfw backend: {tinyfw.get_backend().__name__}, kernels: "
          f"{', '.join(getattr(tinyfw.get_backend(), 'KERNELS', ())) or 'none'}")
    if torch is not None:
        torch.set_num_threads(tinyfw.get_num_threads())  # the same pool size for both
    for kind, title, target in (("mlp", "MLP 784-512-512-10, batch 128, Adam step", 1.2),
                                ("cnn", "CNN (conv32-pool-conv64-pool-fc128-fc10), batch 64, "
                                 "Adam step", 1.5)):
        model, x, y = workload(kind)
        fns = {"tinyfw": tiny_step_fn(model, x, y)}
        if torch is not None:
            fns["torch"] = torch_step_fn(kind, model, x, y)
        rows = compare(fns, repeat=args.repeat)
        print_table(title, rows, baseline="torch" if torch is not None else None, target=target)
    print(f"\npeak RSS of a tinyfw-only training process (MLP + CNN, {args.steps_rss} steps "
          f"each): {rss:.1f} MiB")
    check("peak RSS of a tinyfw-only training process", rss, 150, higher_is_better=False,
          unit=" MiB")


if __name__ == "__main__":
    main()
