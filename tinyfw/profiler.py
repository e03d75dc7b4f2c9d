"""A per-op profiler and model size.

    with tinyfw.profiler.profile() as prof:
        loss = loss_fn(model(x), y)
        loss.backward()
    print(prof.table(sort_by="time"))
    tinyfw.profiler.model_size(model)   # {'parameters': ..., 'bytes': ...}
    tinyfw.profiler.compare({"float": model, "int8": qmodel}, (x, y))  # profiler_compare.py

`profile` installs a dispatch interceptor, so every op that reaches a kernel (forward
ops, and the ops backward formulas run) is timed with ``time.perf_counter``.  For each op
class it records calls, total time, estimated FLOPs and bytes moved (input + output
array bytes), hence achieved GFLOP/s and GB/s.  FLOP estimates are each op's ``flops``
rule (see `Function`), from shapes alone: matmul 2*m*n*k (batched), convolution 2 *
output elements * (C_in/groups * kernel area), elementwise one per output element (4 for
transcendental ones), reductions one per input element, views and copies zero.  The
timing includes the dispatch overhead of each call, which is what a user's step pays.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import dispatch
from .tensor import Tensor

__all__ = ["profile", "OpStats", "model_size", "flops_of", "summary", "model_flops",
           "compare", "compare_table", "compare_chart"]


def _outputs(result) -> list[np.ndarray]:
    if isinstance(result, Tensor):
        return [result._data]
    if isinstance(result, (tuple, list)):
        return [r._data for r in result if isinstance(r, Tensor)]
    return []


def flops_of(fn: type, in_shapes: list, out_shapes: list, attrs: dict) -> int:
    """Estimated floating-point operations of one call of the op `fn` (a Function class)
    on inputs and outputs of these shapes: its ``flops`` rule, 0 without outputs or for
    an empty output."""
    if not out_shapes or math.prod(out_shapes[0]) == 0:
        return 0
    return int(fn.flops([tuple(s) for s in in_shapes], [tuple(s) for s in out_shapes], attrs))


@dataclass
class OpStats:
    """Totals for one op class."""

    name: str
    calls: int = 0
    time_s: float = 0.0
    flops: int = 0
    bytes: int = 0

    @property
    def gflops(self) -> float:
        """Achieved GFLOP/s."""
        return self.flops / self.time_s / 1e9 if self.time_s > 0 else 0.0

    @property
    def gbps(self) -> float:
        """Achieved GB/s (input + output bytes over time)."""
        return self.bytes / self.time_s / 1e9 if self.time_s > 0 else 0.0


class profile:
    """Context manager recording every dispatched op (see module doc)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.stats: dict[str, OpStats] = {}
        self.wall_s = 0.0
        self._t0 = 0.0

    def __enter__(self) -> "profile":
        if self.enabled:
            dispatch.push_interceptor(self)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> bool:
        self.wall_s += time.perf_counter() - self._t0
        if self.enabled:
            dispatch.pop_interceptor(self)
        return False

    def intercept(self, fn, inputs, attrs, run):
        """The dispatch hook: time the call and account FLOPs and bytes."""
        t0 = time.perf_counter()
        result = run(inputs)
        dt = time.perf_counter() - t0
        name = fn.__name__
        s = self.stats.get(name)
        if s is None:
            s = self.stats[name] = OpStats(name)
        ins = [t._data for t in inputs]
        outs = _outputs(result)
        s.calls += 1
        s.time_s += dt
        s.flops += flops_of(fn, [a.shape for a in ins], [a.shape for a in outs], attrs)
        if not getattr(fn, "is_view", False):
            s.bytes += int(sum(a.size * a.itemsize for a in ins) + sum(a.size * a.itemsize for a in outs))
        return result

    # -- reports ------------------------------------------------------------------------
    def key_averages(self) -> list[OpStats]:
        """The per-op totals, unsorted."""
        return list(self.stats.values())

    @property
    def total_time_s(self) -> float:
        """Time spent inside ops."""
        return sum(s.time_s for s in self.stats.values())

    @property
    def total_flops(self) -> int:
        """Estimated FLOPs of all recorded ops."""
        return sum(s.flops for s in self.stats.values())

    def table(self, sort_by: str = "time", row_limit: int | None = None) -> str:
        """A text table of the ops sorted by 'time', 'calls', 'flops', 'bytes', 'gflops',
        'gbps' or 'name' (descending, except name)."""
        keys = {"time": lambda s: s.time_s, "calls": lambda s: s.calls,
                "flops": lambda s: s.flops, "bytes": lambda s: s.bytes,
                "gflops": lambda s: s.gflops, "gbps": lambda s: s.gbps,
                "name": lambda s: s.name}
        if sort_by not in keys:
            raise ValueError(f"profile.table: sort_by must be one of {sorted(keys)}, got "
                             f"{sort_by!r}")
        rows = sorted(self.stats.values(), key=keys[sort_by], reverse=sort_by != "name")
        if row_limit is not None:
            rows = rows[:row_limit]
        total = self.total_time_s or 1.0
        head = (f"{'op':<18}{'calls':>7}{'time ms':>10}{'%':>7}{'MFLOP':>11}{'GFLOP/s':>9}"
                f"{'MB':>10}{'GB/s':>8}")
        lines = [head, "-" * len(head)]
        for s in rows:
            lines.append(f"{s.name[:17]:<18}{s.calls:>7}{s.time_s * 1e3:>10.3f}"
                         f"{100 * s.time_s / total:>7.1f}{s.flops / 1e6:>11.2f}"
                         f"{s.gflops:>9.2f}{s.bytes / 1e6:>10.2f}{s.gbps:>8.2f}")
        lines.append("-" * len(head))
        lines.append(f"{'total':<18}{sum(s.calls for s in rows):>7}"
                     f"{sum(s.time_s for s in rows) * 1e3:>10.3f}{'':>7}"
                     f"{sum(s.flops for s in rows) / 1e6:>11.2f}{'':>9}"
                     f"{sum(s.bytes for s in rows) / 1e6:>10.2f}")
        lines.append(f"wall time inside the profile block: {self.wall_s * 1e3:.3f} ms")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def model_size(module: Any) -> dict[str, int]:
    """Parameter count and bytes of a module (or any iterable of tensors): parameters,
    trainable parameters, parameter bytes, and bytes including buffers (e.g. BatchNorm's
    running statistics) where the module has them."""
    params = list(module.parameters()) if hasattr(module, "parameters") else list(module)
    seen, n, trainable, nbytes = set(), 0, 0, 0
    for p in params:
        if id(p) in seen:  # shared (tied) parameters count once
            continue
        seen.add(id(p))
        n += p.numel()
        trainable += p.numel() if p.requires_grad else 0
        nbytes += p.numel() * p.element_size()
    buf_bytes = 0
    if hasattr(module, "buffers"):
        for b in module.buffers():
            if b is not None and id(b) not in seen:
                seen.add(id(b))
                buf_bytes += b.numel() * b.element_size()
    return {"parameters": int(n), "trainable": int(trainable), "bytes": int(nbytes),
            "bytes_with_buffers": int(nbytes + buf_bytes),
            "megabytes": round((nbytes + buf_bytes) / 2 ** 20, 3)}


def __getattr__(name: str):
    # summary and model_flops run a model on the meta device (tinyfw/summary.py), which
    # imports this module: resolved on first use
    if name in ("summary", "model_flops"):
        from .summary import model_flops, summary

        return {"summary": summary, "model_flops": model_flops}[name]
    if name in ("compare", "compare_table", "compare_chart"):  # the compression report
        from . import profiler_compare

        return getattr(profiler_compare, name)
    raise AttributeError(f"module 'tinyfw.profiler' has no attribute {name!r}")
