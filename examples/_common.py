"""Shared by the examples: the digits split, evaluation and a few small utilities.  Data,
metrics, plots and progress bars come from the library itself (tinyfw.data,
tinyfw.metrics, tinyfw.plot, tinyfw.utils.progress), so the examples show that API."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import tinyfw
import tinyfw.nn as nn
from tinyfw.data import DataLoader
from tinyfw.data.datasets import load_digits


def digits_loaders(seed: int = 0, batch_size: int = 32, shuffle_seed: int | None = None):
    """(train loader, x_train, y_train, x_test, y_test) for scikit-learn's 8x8 digits:
    a stratified 80/20 split fixed by `seed`; the loader shuffles with its own
    tinyfw.Generator (seeded by shuffle_seed, default seed + 1), so a run is
    reproducible."""
    train, test = load_digits("train", seed=seed), load_digits("test", seed=seed)
    gen = tinyfw.Generator(seed + 1 if shuffle_seed is None else shuffle_seed)
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=gen)
    return (loader, *train.tensors, *test.tensors)


def device_arg(ap) -> None:
    """Add --device (default: tinyfw's default device, e.g. TINYFW_DEVICE) to a parser."""
    ap.add_argument("--device", default=str(tinyfw.get_default_device()),
                    help="where the model trains: cpu, cuda[:N], check (default: %(default)s)")


def amp_arg(ap) -> None:
    """Add --amp bf16|fp16 (mixed precision; default float32) to a parser."""
    ap.add_argument("--amp", choices=["bf16", "fp16"], default=None,
                    help="mixed precision: bf16 autocast, or fp16 autocast with a GradScaler")


def amp_tools(amp: str | None, device) -> tuple:
    """(autocast region, GradScaler) for --amp: a disabled region and scaler without it;
    fp16 scales the loss (its gradients would underflow), bf16 has float32's range."""
    kind = "cuda" if tinyfw.device(device).type == "cuda" else "cpu"
    dtype = tinyfw.float16 if amp == "fp16" else tinyfw.bfloat16
    return (tinyfw.autocast(kind, dtype=dtype, enabled=amp is not None),
            tinyfw.amp.GradScaler(enabled=amp == "fp16"))


def nproc_arg(ap) -> None:
    """Add --nproc N (data-parallel worker processes on this machine) to a parser."""
    ap.add_argument("--nproc", type=int, default=1,
                    help="train data-parallel in N processes (tinyfw.distributed, shared "
                         "memory); under mpiexec the MPI world is used instead")


def in_distributed_run() -> bool:
    """Whether this process is a worker of a distributed run (the launcher's or mpiexec's)."""
    return any(k in os.environ for k in ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK"))


def require_cpu_for_parallel(device) -> None:
    """Data-parallel runs exchange gradients with collectives on CPU tensors: refuse other
    devices with a clear message (``--device cpu`` under TINYFW_DEVICE=check)."""
    if tinyfw.device(device).type != "cpu":
        raise SystemExit(f"--nproc: data-parallel training runs on the CPU (the collectives "
                         f"take CPU tensors); got --device {device}")


def relaunch(nproc: int, script: str, argv: list[str] | None) -> None:
    """With nproc > 1 outside a distributed run, run `script` with `argv` (default: this
    command line's) again as `nproc` workers through ``python -m tinyfw.distributed.run``
    and exit with its status; else return."""
    if nproc < 1:
        raise SystemExit(f"--nproc must be >= 1, got {nproc}")
    if nproc == 1 or in_distributed_run():
        return
    args = sys.argv[1:] if argv is None else list(argv)
    cmd = [sys.executable, "-m", "tinyfw.distributed.run", "--nproc", str(nproc), script, *args]
    raise SystemExit(subprocess.call(cmd))


def model_device(model: nn.Module) -> tinyfw.device:
    """The device of the model's parameters."""
    return next(model.parameters()).device


@tinyfw.no_grad()
def predict(model: nn.Module, x: tinyfw.Tensor, batch_size: int = 512) -> tinyfw.Tensor:
    """Class predictions of `model` (in eval mode) for every row of x, on the model's
    device (x's rows are moved there)."""
    was = model.training
    model.eval()
    dev = model_device(model)
    out = [model(x[i:i + batch_size].to(dev)).argmax(dim=1)
           for i in range(0, x.shape[0], batch_size)]
    model.train(was)
    return tinyfw.cat(out)


def num_parameters(model: nn.Module) -> int:
    """The number of scalar parameters."""
    return sum(p.numel() for p in model.parameters())


def ensure_dir(path: str) -> str:
    """Create the directory (and parents) if needed; returns it."""
    os.makedirs(path, exist_ok=True)
    return path


class Timer:
    """Wall-clock seconds since creation."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0
