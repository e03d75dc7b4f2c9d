"""Before/after: the same benchmark scripts on another checkout and on this one, in one run.

    python benchmarks/ab.py /path/to/old/checkout --only bench_overhead bench_train bench_jit
    python benchmarks/ab.py ../baseline --runs 5 --threads 1 2

Each round runs every chosen script once with the old checkout's tinyfw (its own script
file, ``PYTHONPATH`` on its root) and once with this one's, alternating which goes first,
so slow phases of a shared machine hit both alike.  The targets each script records
(``benchmarks.common.check``, mostly ratios to PyTorch or numpy measured in the same
process) are compared per metric and thread count: median of the rounds, old -> new, and
the change in the metric's good direction (+ is better).  An issue's "no regression"
figure is this table.
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
NEW_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run import SCRIPTS  # noqa: E402  (the scripts and their per-thread arguments)


def run_once(root: str, name: str, threads: int, results: str) -> int:
    """Run `root`'s copy of script `name` against `root`'s tinyfw; checks go to `results`."""
    script = os.path.join(root, "benchmarks", name + ".py")
    if not os.path.exists(script):
        print(f"  ({root} has no {name}.py: skipped)")
        return 0
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), TINYFW_BENCH_RESULTS=results, PYTHONPATH=root)
    args = [a.format(t=threads) for a in SCRIPTS.get(name, [])]
    return subprocess.run([sys.executable, script, *args], env=env, cwd=root,
                          stdout=subprocess.DEVNULL).returncode


def _read(path: str) -> dict:
    by: dict = defaultdict(list)
    meta: dict = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                by[(r["metric"], r["threads"])].append(r["value"])
                meta[r["metric"]] = r["higher_is_better"]
    return {k: statistics.median(v) for k, v in by.items()}, meta


def main() -> None:
    """Parse the command line, alternate the two checkouts, print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", help="root of the other checkout (with its _C built in place)")
    ap.add_argument("--runs", type=int, default=3, help="rounds (each runs both checkouts)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--only", nargs="+", choices=sorted(SCRIPTS), default=sorted(SCRIPTS))
    args = ap.parse_args()
    old = os.path.abspath(args.old)
    files = {}
    for side in ("old", "new"):
        fd, files[side] = tempfile.mkstemp(prefix=f"tinyfw-ab-{side}-", suffix=".jsonl")
        os.close(fd)
    roots = {"old": old, "new": NEW_ROOT}
    failed = []
    try:
        for k in range(args.runs):
            for t in args.threads:
                for name in args.only:
                    order = ("old", "new") if k % 2 == 0 else ("new", "old")
                    for side in order:
                        print(f"round {k + 1}: {name}, {t} thread(s), {side}", flush=True)
                        if run_once(roots[side], name, t, files[side]) != 0:
                            failed.append(f"{name} ({side}, {t} thread(s))")
        (o, hib), (n, hib_new) = _read(files["old"]), _read(files["new"])
    finally:
        for p in files.values():
            os.unlink(p)
    hib.update(hib_new)
    keys = sorted(set(o) & set(n))
    width = max((len(m) for m, _ in keys), default=10)
    print(f"\n======== {old} -> {NEW_ROOT} (medians of {args.runs} round(s))")
    print(f"{'metric':<{width}} thr {'old':>9} {'new':>9}  change (+ is better)")
    for m, t in keys:
        change = (n[m, t] / o[m, t] - 1) * (1 if hib[m] else -1) if o[m, t] else float("nan")
        print(f"{m:<{width}} {t:>3} {o[m, t]:>9.4g} {n[m, t]:>9.4g}  {change:+.1%}")
    only = sorted({m for m, _ in set(o) ^ set(n)})
    if only:
        print("metrics in one checkout only: " + ", ".join(only))
    if failed:
        print("runs that failed: " + ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
