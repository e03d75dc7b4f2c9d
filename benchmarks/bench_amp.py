"""Training steps under bfloat16 autocast, tinyfw next to PyTorch in one run, and the peak
activation memory of tinyfw's CNN step under autocast against float32.

    python benchmarks/bench_amp.py [--repeat 15] [--dtype bfloat16|float16]

Workloads: the MLP 784-512-512-10 (batch 128) and the CNN (batch 64 of 28x28) of
benchmarks/bench_train.py, cross-entropy, Adam; float32 weights, the forward under
``tinyfw.autocast("cpu", dtype)`` / ``torch.autocast("cpu", dtype)``.  Both frameworks
start from the same weights and see the same batch; "tinyfw-f32" is tinyfw's own float32
step, interleaved with the others.  Targets (issue 11): the autocast step at most 1.2x
PyTorch's autocast step; on machines where the half GEMM runs on AMX, faster than
tinyfw's float32 step; peak activation memory of the CNN step at least 35% below float32.

Peak activation memory is tinyfw.memory's peak of allocated bytes during forward and
backward, less what was allocated before the forward (weights, their gradients and the
optimizer state, which autocast does not change).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tinyfw  # noqa: E402
from tinyfw import nn, optim  # noqa: E402
from benchmarks.bench_train import torch_step_fn, workload  # noqa: E402
from benchmarks.common import check, compare, print_table  # noqa: E402


def tiny_amp_step_fn(model, x, y, dtype):
    """A closure running one tinyfw training step, its forward under autocast to `dtype`
    (None: plain float32)."""
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = tinyfw.from_numpy(x), tinyfw.from_numpy(y)

    def region():
        return (tinyfw.autocast("cpu", dtype=dtype) if dtype is not None
                else contextlib.nullcontext())

    def step():
        opt.zero_grad()
        with region():
            loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
    return step


def torch_amp_step_fn(kind, model, x, y, dtype):
    """The same step in PyTorch under torch.autocast, from the same weights."""
    import torch

    inner = torch_step_fn(kind, model, x, y)
    tdtype = getattr(torch, dtype.name)

    def step():
        with torch.autocast("cpu", dtype=tdtype):
            inner()  # backward and the optimizer step inside autocast are unaffected by it
    return step


def peak_activation_bytes(kind: str, dtype) -> int:
    """Peak bytes allocated by one forward+backward of `kind` beyond what was live before."""
    model, x, y = workload(kind)
    step = tiny_amp_step_fn(model, x, y, dtype)
    step()  # creates gradients and optimizer state, warms the allocator
    import tinyfw.memory as mem
    base = mem.memory_allocated()
    mem.reset_peak_memory_stats()
    step()
    return mem.max_memory_allocated() - base


def main() -> None:
    """Time the steps and measure peak activation memory; print medians and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    args = ap.parse_args()
    dtype = getattr(tinyfw, args.dtype)
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(tinyfw.get_num_threads())
    from tinyfw.backend import cpu as _cpu
    paths = _cpu.isa_info().get("half_gemm", {})  # {dtype name: path}
    path = paths.get(args.dtype, "none")
    print(f"threads: {tinyfw.get_num_threads()}, half GEMM paths: {paths}")
    for kind, title in (("mlp", "MLP 784-512-512-10, batch 128, Adam step"),
                        ("cnn", "CNN (conv32-pool-conv64-pool-fc128-fc10), batch 64, Adam step")):
        model, x, y = workload(kind)
        fns = {"tinyfw": tiny_amp_step_fn(model, x, y, dtype)}
        f32_model, _, _ = workload(kind)
        fns["tinyfw-f32"] = tiny_amp_step_fn(f32_model, x, y, None)
        if torch is not None:
            fns["torch"] = torch_amp_step_fn(kind, model, x, y, dtype)
        rows = compare(fns, repeat=args.repeat)
        print_table(f"{title} under {args.dtype} autocast", rows,
                    baseline="torch" if torch is not None else None, target=1.2)
        med = {r.name: r.median for r in rows}
        own = med["tinyfw"] / med["tinyfw-f32"]
        print(f"  tinyfw autocast / tinyfw float32 step time: {own:.2f}x")
        if path == "amx-bf16" and args.dtype == "bfloat16":
            check(f"{title} under {args.dtype} autocast: tinyfw/tinyfw-f32 time", own, 1.0,
                  higher_is_better=False)
    f32 = peak_activation_bytes("cnn", None)
    low = peak_activation_bytes("cnn", dtype)
    print(f"\nCNN step peak activation memory: float32 {f32 / 2**20:.2f} MiB, "
          f"{args.dtype} autocast {low / 2**20:.2f} MiB ({1 - low / f32:.0%} less)")
    check(f"CNN step peak activation memory under {args.dtype} autocast: saving vs float32",
          1 - low / f32, 0.35, higher_is_better=True, unit="")


if __name__ == "__main__":
    main()
