"""Inference of conv nets through the layout pass: eager vs traced vs frozen+traced vs
PyTorch eager (issue 18's targets: frozen+traced >= 1.5x tinyfw eager, <= 1.0x PyTorch's
time).

Workloads: a ResNet-style block (conv-bn-relu, conv-bn, + residual, relu; 64 channels,
56x56, batch 8) and the digits CNN of examples/train_digits.py (batch 256).  Modes:
``traced nchw`` (layout pass forced off), ``traced`` (the pass measures and chooses),
``frozen`` (jit.freeze: bn folded into the filters, filters pre-packed), all under
no_grad.  Timings interleave the modes batch by batch (benchmarks/common.py); the thread
count is OMP_NUM_THREADS (PyTorch gets the same).

    OMP_NUM_THREADS=1 python benchmarks/bench_layout.py
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "examples"))

import tinyfw  # noqa: E402
import tinyfw.nn as nn  # noqa: E402
import tinyfw.nn.functional as F  # noqa: E402
from benchmarks.common import check, compare, print_table  # noqa: E402
from tinyfw.jit.passes import layout  # noqa: E402


class ResBlock(nn.Module):
    """conv3x3-bn-relu, conv3x3-bn, + x, relu (no conv bias, as in ResNet)."""

    def __init__(self, c: int = 64) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(y)) + x)


def _randomise_bn(model) -> None:
    """Running statistics and affine parameters away from the identity, as after training."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.running_mean.shape[0]
            m.running_mean.copy_(tinyfw.randn(c) * 0.1)
            m.running_var.copy_(tinyfw.rand(c) + 0.5)
            m.weight.data.copy_(tinyfw.rand(c) + 0.5)
            m.bias.data.copy_(tinyfw.randn(c) * 0.1)


def torch_twin(torch, model):
    """The same network in PyTorch with the same weights (a Sequential or the ResBlock)."""
    tn = torch.nn

    def conv(m):
        t = tn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                      bias=m.bias is not None)
        t.weight.data = torch.from_numpy(m.weight.detach().numpy().copy())
        if m.bias is not None:
            t.bias.data = torch.from_numpy(m.bias.detach().numpy().copy())
        return t

    def bn(m):
        t = tn.BatchNorm2d(m.running_mean.shape[0], eps=m.eps)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(t, name).data = torch.from_numpy(getattr(m, name).detach().numpy().copy())
        return t

    def one(m):
        if isinstance(m, nn.Conv2d):
            return conv(m)
        if isinstance(m, nn.BatchNorm2d):
            return bn(m)
        if isinstance(m, nn.Linear):
            t = tn.Linear(m.in_features, m.out_features)
            t.weight.data = torch.from_numpy(m.weight.detach().numpy().copy())
            t.bias.data = torch.from_numpy(m.bias.detach().numpy().copy())
            return t
        return {"ReLU": tn.ReLU, "Flatten": tn.Flatten, "Dropout": lambda: tn.Dropout(0.3),
                "MaxPool2d": lambda: tn.MaxPool2d(2)}[type(m).__name__]()

    if isinstance(model, ResBlock):
        c1, b1, c2, b2 = conv(model.c1), bn(model.b1), conv(model.c2), bn(model.b2)

        class T(tn.Module):
            def __init__(self):
                super().__init__()
                self.c1, self.b1, self.c2, self.b2 = c1, b1, c2, b2

            def forward(self, x):
                y = torch.relu(self.b1(self.c1(x)))
                return torch.relu(self.b2(self.c2(y)) + x)

        return T().eval()
    return tn.Sequential(*[one(m) for m in model]).eval()


def bench(name: str, model, x, repeat: int) -> None:
    """Time the modes on one workload, check the outputs agree, print ratios, record targets."""
    try:
        import torch
    except ImportError:
        torch = None
    with tinyfw.no_grad():
        with layout.force("nchw"):
            traced_nchw = tinyfw.jit.trace(model, (x,))
        traced = tinyfw.jit.trace(model, (x,))
        frozen = tinyfw.jit.freeze(tinyfw.jit.trace(model, (x,)), x)
        want = model(x).numpy()
        for f in (traced_nchw, traced, frozen):
            got = f(x).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
        fns = {"eager": lambda: model(x), "traced nchw": lambda: traced_nchw(x),
               "traced": lambda: traced(x), "frozen": lambda: frozen(x)}
        if torch is not None:
            torch.set_num_threads(tinyfw.get_num_threads())
            tm, tx = torch_twin(torch, model), torch.from_numpy(x.numpy().copy())
            with torch.no_grad():
                np.testing.assert_allclose(tm(tx).numpy(), want, rtol=1e-3,
                                           atol=1e-3 * np.abs(want).max())
            fns["torch"] = lambda: tm(tx)
        chosen = [s for s in frozen.get_compiled((x,)).stats if s["pass"] == "layout"]
        for s in chosen:
            for d in s["decisions"]:
                print("   ", d)
        if torch is not None:
            with torch.no_grad():
                rows = compare(fns, repeat=repeat)
        else:
            rows = compare(fns, repeat=repeat)
    print_table(f"{name}, {tinyfw.get_num_threads()} thread(s)", rows, baseline="eager")
    med = {r.name: r.median for r in rows}
    check(f"layout {name}: frozen+traced speed-up over eager", med["eager"] / med["frozen"],
          1.5, True)
    if torch is not None:
        check(f"layout {name}: frozen+traced time / PyTorch eager", med["frozen"] / med["torch"],
              1.0, False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--only", choices=["block", "digits"], default=None)
    args = ap.parse_args()
    from tinyfw.backend import cpu

    print(f"CPU: {cpu.isa_info().get('cpu', '?')}; ISA level {cpu.isa()}; "
          f"threads {tinyfw.get_num_threads()}")
    tinyfw.manual_seed(0)
    if args.only in (None, "block"):
        block = ResBlock(64).eval()
        _randomise_bn(block)
        bench("ResNet block 8x64x56x56", block, tinyfw.randn(8, 64, 56, 56), args.repeat)
    if args.only in (None, "digits"):
        from train_digits import make_model

        cnn = make_model("cnn").eval()
        _randomise_bn(cnn)
        bench("digits CNN batch 256", cnn, tinyfw.randn(256, 1, 8, 8), args.repeat)


if __name__ == "__main__":
    main()
