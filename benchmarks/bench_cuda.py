"""CUDA kernels against PyTorch's on the same GPU (issue 13's targets), one run:

- add and mul of 64M float32, contiguous and broadcast (a row vector over 8192 x 8192):
  achieved bandwidth as a fraction of the HBM peak, and tinyfw / torch (target >= 0.85);
- sum over the last and over the first dim of 8192 x 8192 float32 (target >= 0.8 of
  torch's bandwidth);
- a 4-element add's host-side time per op, queued back to back (target <= 2x torch).

Device times come from CUDA events around a batch of calls, medians of interleaved
rounds (tinyfw, torch, tinyfw, ...), so a clock change hits both.  Bytes counted: each
input read once, the output written once.  Prints a table; with --json writes the figures.

    python benchmarks/bench_cuda.py [--json out.json] [--quick]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


def _peak_bw() -> float:
    """HBM peak bytes/s from the device's memory clock and bus width (double data rate)."""
    import tinyfw

    p = tinyfw.cuda.get_device_properties()
    return p["memory_clock_khz"] * 1e3 * 2 * p["memory_bus_width"] / 8


def _time_events(fn, sync, events, n: int) -> float:
    start, end = events
    start.record()
    for _ in range(n):
        fn()
    end.record()
    end.synchronize()
    sync()
    return start.elapsed_time(end) / 1e3 / n


def _interleaved(fns: dict, mk_events: dict, syncs: dict, rounds: int, n: int) -> dict:
    for name, f in fns.items():  # warm-up: allocator, module load, first launches
        f()
        syncs[name]()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            times[name].append(_time_events(f, syncs[name], mk_events[name](), n))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = ap.parse_args()

    import tinyfw
    import torch

    if not tinyfw.cuda.is_available():
        print(f"bench_cuda: no GPU: {tinyfw.cuda.unavailable_reason()}")
        return 2
    rounds, n = (3, 3) if args.quick else (9, 10)
    peak = _peak_bw()
    name = tinyfw.cuda.get_device_name()
    tev = lambda: (tinyfw.cuda.Event(enable_timing=True), tinyfw.cuda.Event(enable_timing=True))  # noqa: E731
    pev = lambda: (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))  # noqa: E731
    events = {"tinyfw": tev, "torch": pev}
    syncs = {"tinyfw": tinyfw.cuda.synchronize, "torch": torch.cuda.synchronize}
    rng = np.random.default_rng(0)
    N = 8192
    host_a = rng.standard_normal((N, N), dtype=np.float32)
    host_b = rng.standard_normal((N, N), dtype=np.float32)
    host_r = rng.standard_normal((1, N), dtype=np.float32)
    ta, tb, tr = (tinyfw.from_numpy(h).cuda() for h in (host_a, host_b, host_r))
    pa, pb, pr = (torch.from_numpy(h).cuda() for h in (host_a, host_b, host_r))
    rows, failures = [], []

    # correctness first: the benchmarked ops must give torch's values
    with tinyfw.no_grad():
        for label, mine, theirs in [("add", (ta + tb), (pa + pb)), ("mul bcast", (ta * tr), (pa * pr))]:
            if not np.array_equal(mine.cpu().numpy(), theirs.cpu().numpy()):
                failures.append(f"{label}: values differ from torch")
        s_mine, s_theirs = ta.sum(dim=1).cpu().numpy(), pa.sum(dim=1).cpu().numpy()
        if not np.allclose(s_mine, s_theirs, rtol=1e-4, atol=1e-2):
            failures.append("sum(dim=1): values differ from torch beyond float32 reordering")

    def bw_row(label, tf_fn, pt_fn, nbytes, target):
        with tinyfw.no_grad():
            t = _interleaved({"tinyfw": tf_fn, "torch": pt_fn}, events, syncs, rounds, n)
        bw_t, bw_p = nbytes / t["tinyfw"], nbytes / t["torch"]
        rows.append({"case": label, "tinyfw_ms": t["tinyfw"] * 1e3, "torch_ms": t["torch"] * 1e3,
                     "tinyfw_of_peak": bw_t / peak, "torch_of_peak": bw_p / peak,
                     "ratio": bw_t / bw_p, "target": target, "met": bw_t / bw_p >= target})

    e4 = N * N * 4
    bw_row("add 64M f32 contiguous", lambda: ta + tb, lambda: pa + pb, 3 * e4, 0.85)
    bw_row("mul 64M f32 contiguous", lambda: ta * tb, lambda: pa * pb, 3 * e4, 0.85)
    bw_row("add 64M f32 + row bcast", lambda: ta + tr, lambda: pa + pr, 2 * e4 + N * 4, 0.85)
    bw_row("mul 64M f32 * row bcast", lambda: ta * tr, lambda: pa * pr, 2 * e4 + N * 4, 0.85)
    bw_row("sum 8192x8192 dim=-1", lambda: ta.sum(dim=1), lambda: pa.sum(dim=1), e4 + N * 4, 0.8)
    bw_row("sum 8192x8192 dim=0", lambda: ta.sum(dim=0), lambda: pa.sum(dim=0), e4 + N * 4, 0.8)

    # tiny-op host overhead: per-op wall time of back-to-back 4-element adds, interleaved
    x4, y4 = tinyfw.ones(4, device="cuda"), tinyfw.ones(4, device="cuda")
    p4, q4 = torch.ones(4, device="cuda"), torch.ones(4, device="cuda")
    per = {"tinyfw": [], "torch": []}
    with tinyfw.no_grad():
        for _ in range(rounds * 2):
            for k, f, sync in (("tinyfw", lambda: x4 + y4, tinyfw.cuda.synchronize),
                               ("torch", lambda: p4 + q4, torch.cuda.synchronize)):
                sync()
                t0 = time.perf_counter()
                for _ in range(2000):
                    f()
                per[k].append((time.perf_counter() - t0) / 2000)
                sync()
    tiny = {k: statistics.median(v) for k, v in per.items()}
    tiny_ratio = tiny["tinyfw"] / tiny["torch"]
    rows.append({"case": "add 4 elements (host us/op)", "tinyfw_ms": tiny["tinyfw"] * 1e3,
                 "torch_ms": tiny["torch"] * 1e3, "tinyfw_of_peak": None, "torch_of_peak": None,
                 "ratio": tiny_ratio, "target": 2.0, "met": tiny_ratio <= 2.0})

    print(f"\nbench_cuda on {name}: HBM peak {peak / 1e12:.2f} TB/s (memory clock x bus width); "
          f"torch {torch.__version__}; medians of {rounds} interleaved rounds of {n} calls")
    print(f"{'case':32s} {'tinyfw':>11s} {'torch':>11s} {'tf %peak':>9s} {'pt %peak':>9s} {'ratio':>7s}  target")
    for r in rows:
        unit = 1e3 if "host" in r["case"] else 1.0
        fmt = (lambda v: f"{v * unit:8.2f} us") if "host" in r["case"] else (lambda v: f"{v:8.3f} ms")
        pk = lambda v: "" if v is None else f"{100 * v:8.1f}%"  # noqa: E731
        sense = "<=" if "host" in r["case"] else ">="
        print(f"{r['case']:32s} {fmt(r['tinyfw_ms']):>11s} {fmt(r['torch_ms']):>11s} {pk(r['tinyfw_of_peak']):>9s} "
              f"{pk(r['torch_of_peak']):>9s} {r['ratio']:7.2f}  {sense} {r['target']} {'met' if r['met'] else 'MISSED'}")
    for f in failures:
        print("FAIL:", f)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": name, "peak_bytes_s": peak, "rows": rows, "failures": failures}, fh, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
