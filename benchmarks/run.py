"""Run every benchmark at 1 and 2 threads and print one table of the issues' targets.

    python benchmarks/run.py                 # all scripts, 1 then 2 threads, 3 runs each
    python benchmarks/run.py --runs 1 --only bench_nn bench_gemm
    python benchmarks/run.py --threads 1     # one thread count

Each script prints its own medians and ratios as it goes (that output is shown as is);
every figure a script checks against a target is also appended, as a JSON line, to a
results file (``benchmarks.common.check``).  Two-thread figures are noisy on a shared
2-vCPU machine, so each script runs ``--runs`` times and the summary quotes the median of
the runs, per metric and thread count, next to its target.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))

# script -> extra arguments for one thread count (scripts that start their own per-thread
# subprocesses take --threads N; the others read OMP_NUM_THREADS)
SCRIPTS: dict[str, list[str]] = {
    "bench_activations": ["--threads", "{t}"],
    "bench_gemm": ["--threads", "{t}"],
    "bench_kernels": ["--threads", "{t}"],
    "bench_nn": ["--threads", "{t}"],
    "bench_norms": ["--threads", "{t}"],
    "bench_overhead": [],
    "bench_train": [],
    "bench_jit": [],
    "bench_jit_sweep": ["--threads", "{t}"],
    "bench_charlm": [],
    "bench_amp": [],
    "bench_half_gemm": ["--threads", "{t}"],
    "bench_quant": [],
    "bench_qgemm": [],
    "bench_interop": ["--threads", "{t}"],
    "bench_attention": ["--threads", "{t}"],
    "bench_freeze": ["--threads", "{t}"],
    "bench_layout": [],
}


def run_script(name: str, threads: int, results: str) -> int:
    """Run one benchmark script with `threads` threads; its checks go to `results`."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), TINYFW_BENCH_RESULTS=results)
    args = [a.format(t=threads) for a in SCRIPTS[name]]
    print(f"\n######## {name}, {threads} thread(s)", flush=True)
    return subprocess.run([sys.executable, os.path.join(HERE, name + ".py"), *args],
                          env=env).returncode


def summarise(lines: list[dict]) -> list[tuple]:
    """(metric, {threads: median value}, target, higher_is_better, unit, met per thread)."""
    by_metric: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    meta: dict[str, dict] = {}
    for r in lines:
        by_metric[r["metric"]][r["threads"]].append(r["value"])
        meta[r["metric"]] = r
    rows = []
    for metric, per_t in by_metric.items():
        m = meta[metric]
        med = {t: statistics.median(v) for t, v in sorted(per_t.items())}
        met = {t: (v >= m["target"] if m["higher_is_better"] else v <= m["target"])
               for t, v in med.items()}
        rows.append((metric, med, m["target"], m["higher_is_better"], m["unit"], met))
    return rows


def machine() -> str:
    """The CPU and the ISA level of the kernels (every figure depends on both)."""
    sys.path.insert(0, os.path.dirname(HERE))  # this checkout's tinyfw, as the scripts use
    try:
        from tinyfw.backend import cpu
    except ImportError:
        return "unknown (tinyfw is not importable from this script)"
    info = cpu.isa_info()
    if not info:
        return "tinyfw._C not built: the numpy reference kernels"
    forced = ", forced by TINYFW_ISA" if info["forced"] else ""
    return f"{info['cpu'] or 'unknown CPU'}; kernels' ISA level {info['isa']}{forced}"


def print_summary(rows: list[tuple], thread_counts: list[int], runs: int) -> None:
    """The targets table: median over runs per thread count, target, verdict."""
    print(f"\n======== targets (median of {runs} run(s) per thread count)")
    print(f"machine: {machine()}")
    width = max((len(r[0]) for r in rows), default=10)
    head = "".join(f"{f'{t} thr':>12}" for t in thread_counts)
    print(f"{'metric':<{width}}{head}   target")
    for metric, med, target, hib, unit, met in rows:
        cells = "".join(
            f"{(f'{med[t]:.3g}{unit}' + ('' if met[t] else ' !')) if t in med else '-':>12}"
            for t in thread_counts)
        print(f"{metric:<{width}}{cells}   {'>=' if hib else '<='} {target:g}{unit}")
    missed = sum(not ok for r in rows for ok in r[5].values())
    print(f"\n{missed} missed target(s) (marked '!')" if missed else "\nall targets met")


def main() -> None:
    """Parse the command line, run the scripts, print the summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per script and thread count")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--only", nargs="+", choices=sorted(SCRIPTS), default=sorted(SCRIPTS))
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    fd, results = tempfile.mkstemp(prefix="tinyfw-bench-", suffix=".jsonl")
    os.close(fd)
    failed = []
    try:
        for t in args.threads:
            for _ in range(args.runs):
                for name in args.only:
                    if run_script(name, t, results) != 0:
                        failed.append(f"{name} ({t} thread(s))")
        with open(results) as f:
            lines = [json.loads(x) for x in f if x.strip()]
    finally:
        os.unlink(results)
    print_summary(summarise(lines), args.threads, args.runs)
    if failed:
        print("scripts that failed: " + ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
