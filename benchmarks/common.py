"""Timing helpers shared by the benchmark scripts: medians of repeated runs, and ratios.

Each measurement calls ``fn`` in batches of ``number`` calls (so that the clock's
resolution does not matter), repeats the batch ``repeat`` times and keeps the median of
the per-call times: the median ignores the odd slow batch (a GC pass, another process)
that would drag a mean.  ``compare`` runs several implementations of the same workload
interleaved, batch by batch, so that a machine that slows down in the middle of a run
slows all of them alike and the ratios stay honest.

    from benchmarks.common import compare, print_table
    rows = compare({"tinyfw": lambda: a + b, "torch": lambda: ta + tb})
    print_table("tiny add", rows, baseline="torch")
"""
from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Timing:
    """Per-call times (seconds) of one implementation: all batches, median, spread."""

    name: str
    samples: list = field(default_factory=list)

    @property
    def median(self) -> float:
        """The median per-call time in seconds."""
        return statistics.median(self.samples)

    @property
    def iqr(self) -> float:
        """The inter-quartile range of the per-call times (seconds): the noise."""
        if len(self.samples) < 4:
            return 0.0
        q = statistics.quantiles(self.samples, n=4)
        return q[2] - q[0]


def _calibrate(fn: Callable[[], object], target_s: float) -> int:
    """How many calls make one batch last about `target_s` seconds (at least 1)."""
    fn()  # warm-up: first-call costs (imports, caches, allocator) are not what we measure
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= target_s / 4 or n >= 1 << 20:
            return max(1, int(n * target_s / max(dt, 1e-9)))
        n *= 4


def measure(fn: Callable[[], object], repeat: int = 15, number: int | None = None,
            target_s: float = 0.02, name: str = "") -> Timing:
    """Time one callable: `repeat` batches of `number` calls (calibrated when None)."""
    return compare({name or getattr(fn, "__name__", "fn"): fn}, repeat, number, target_s)[0]


def compare(fns: dict[str, Callable[[], object]], repeat: int = 15, number: int | None = None,
            target_s: float = 0.02) -> list[Timing]:
    """Time several callables, interleaving their batches; returns one Timing each.

    The garbage collector is paused during a batch (and run between batches) so that a
    collection triggered by one implementation's garbage is not billed to another.
    """
    if repeat < 1:
        raise ValueError(f"compare: repeat must be >= 1, got {repeat}")
    numbers = {k: (number or _calibrate(f, target_s)) for k, f in fns.items()}
    timings = {k: Timing(k) for k in fns}
    enabled = gc.isenabled()
    try:
        for _ in range(repeat):
            for k, f in fns.items():
                n = numbers[k]
                gc.collect()
                gc.disable()
                t0 = time.perf_counter()
                for _ in range(n):
                    f()
                dt = time.perf_counter() - t0
                if enabled:
                    gc.enable()
                timings[k].samples.append(dt / n)
    finally:
        if enabled:
            gc.enable()
    return list(timings.values())


def fmt_time(seconds: float) -> str:
    """A time with a readable unit (ns, µs, ms, s)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def ratios(rows: list[Timing], baseline: str) -> dict[str, float]:
    """Each implementation's median divided by the baseline's median."""
    base = next((r for r in rows if r.name == baseline), None)
    if base is None:
        raise KeyError(f"ratios: baseline {baseline!r} is not among {[r.name for r in rows]}")
    return {r.name: r.median / base.median for r in rows}


def check(metric: str, value: float, target: float, higher_is_better: bool,
          unit: str = "x", echo: bool = True) -> bool:
    """Print how `value` of `metric` compares with the issue's `target`, and record it.

    When ``$TINYFW_BENCH_RESULTS`` names a file (benchmarks/run.py sets it), the result is
    appended to it as one JSON line, so run.py can print every target in one table.
    """
    import json
    import os

    ok = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    if echo:  # scripts with a ratio column already show the figure
        print(f"  -> {metric}: {value:.3g}{unit} (target {sign} {target:g}{unit}) "
              f"{'met' if ok else 'MISSED'}")
    path = os.environ.get("TINYFW_BENCH_RESULTS")
    if path:
        try:
            import tinyfw
            threads = tinyfw.get_num_threads()
        except ImportError:
            threads = int(os.environ.get("OMP_NUM_THREADS", "0"))
        with open(path, "a") as f:
            f.write(json.dumps({"metric": metric, "threads": threads, "value": value,
                                "target": target, "higher_is_better": higher_is_better,
                                "unit": unit}) + "\n")
    return ok


def print_table(title: str, rows: list[Timing], baseline: str | None = None,
                target: float | None = None, subject: str = "tinyfw") -> None:
    """Print medians (± half the IQR) and, with a baseline, the ratio to it.

    With a `target`, `subject`'s time ratio to the baseline is checked against it (at most
    `target` times the baseline's time) and recorded for benchmarks/run.py.
    """
    rel = ratios(rows, baseline) if baseline else {}
    print(f"{title}")
    for r in rows:
        line = f"  {r.name:<14} {fmt_time(r.median):>10}  ±{fmt_time(r.iqr / 2):>9}"
        if baseline:
            line += f"   {rel[r.name]:5.2f}x {baseline}"
        print(line)
    if target is not None and baseline and subject in rel:
        check(f"{title}: {subject}/{baseline} time", rel[subject], target, higher_is_better=False)


def main_per_thread_count(script: str, run: Callable[[int], None], description: str,
                          thread_counts: tuple = (1, 2)) -> None:
    """Command-line driver: with ``--threads N`` run ``run(N)`` in this process; without it,
    re-run `script` once per thread count in a fresh subprocess whose OpenMP/OpenBLAS/MKL
    thread variables say N (the only reliable way to set every library's pool size)."""
    import argparse
    import os
    import subprocess
    import sys

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--threads", type=int, default=None, help="run one thread setting in-process")
    args = ap.parse_args()
    if args.threads is not None:
        run(args.threads)
        return
    for t in thread_counts:
        env = dict(os.environ, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t),
                   MKL_NUM_THREADS=str(t))
        subprocess.run([sys.executable, os.path.abspath(script), "--threads", str(t)], env=env,
                       check=True)
