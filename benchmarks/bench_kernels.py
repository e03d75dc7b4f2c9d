"""Elementwise and reduction kernels: tinyfw's C++ backend vs numpy (and PyTorch).

    python benchmarks/bench_kernels.py [--repeat 15] [--threads 1,2]

Cases (issue 3 targets): add/mul on 16M float32 - contiguous, broadcast (a row of 4096
against 4096x4096) and transposed (both operands transposed views) - and sum over the last
and the first dim of a 4096x4096 float32; then casts between float32 and bfloat16/float16
on 16M elements, gather / scatter_add along the last dim of 4096x1024, and an embedding
(32000x512 table, 64x128 lookups) forward `index` and backward `index_put(accumulate=True)`
(the numpy column is the ref backend's primitive, e.g. np.add.at), and the shape kernels:
cat of 4 x (1024, 1024), flip and tril of 4096x4096, sort of 1M float32 (values and
indices, as ref's stable argsort + take_along_axis and torch.sort(stable=True)), and the
float32 transcendentals on 16M elements (exp, log, log1p, expm1, tanh, erf as numpy/scipy;
sigmoid, silu, gelu(tanh), softplus as the ref backend's numpy formulas).
Each library runs the same case side by side in one process; the figure is the median
of `--repeat` timed runs after a warm-up.  GB/s counts the bytes the operation must touch
(inputs read once, output written once).  Ratios are
tinyfw's speed over numpy's (>= 1 means tinyfw is faster); the targets are >= 0.9 for the
elementwise cases (>= 1 for broadcast/transposed) and >= 0.8 for the sums.

numpy is single-threaded; PyTorch and tinyfw get the thread count of the row.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from tinyfw.backend import cpu
import tinyfw

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import check  # noqa: E402

try:
    import torch
except ImportError:  # the PyTorch column is optional
    torch = None

N = 4096


def median_time(fn, repeat: int) -> float:
    """Median wall time of fn() over `repeat` runs, after two warm-up calls."""
    fn()
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def cases():
    """(name, bytes touched, numpy fn, tinyfw fn, torch fn or None)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((N, N), dtype=np.float32)
    b = rng.standard_normal((N, N), dtype=np.float32)
    row = rng.standard_normal((1, N), dtype=np.float32)
    at, bt = a.T, b.T  # transposed views (Fortran order)
    big = 3 * a.nbytes
    out = []
    ta = tb = trow = None
    if torch is not None:
        ta, tb, trow = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(row)
    for op, npf, tff, thf in [("add", np.add, cpu.add, torch.add if torch else None),
                              ("mul", np.multiply, cpu.mul, torch.mul if torch else None)]:
        out.append((f"{op} 16M contiguous", big, lambda f=npf: f(a, b), lambda f=tff: f(a, b),
                    (lambda f=thf: f(ta, tb)) if torch else None))
        out.append((f"{op} 16M broadcast row", 2 * a.nbytes + row.nbytes, lambda f=npf: f(a, row),
                    lambda f=tff: f(a, row), (lambda f=thf: f(ta, trow)) if torch else None))
        out.append((f"{op} 16M transposed", big, lambda f=npf: f(at, bt), lambda f=tff: f(at, bt),
                    (lambda f=thf: f(ta.T, tb.T)) if torch else None))
    for dim in (1, 0):
        out.append((f"sum dim={dim} 4096x4096", a.nbytes, lambda d=dim: np.sum(a, axis=d),
                    lambda d=dim: cpu.sum(a, (d,), False),
                    (lambda d=dim: torch.sum(ta, dim=d)) if torch else None))
    return out


def index_cases():
    """Casts and index kernels: (name, bytes touched, ref/numpy fn, tinyfw fn, torch fn)."""
    import ml_dtypes
    from tinyfw.backend import ref

    bf16 = np.dtype(ml_dtypes.bfloat16)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(N * N, dtype=np.float32)
    out = []
    tx = torch.from_numpy(x) if torch else None
    for name, dt, tdt in [("bfloat16", bf16, "bfloat16"), ("float16", np.dtype(np.float16), "float16")]:
        h = x.astype(dt)
        th = getattr(torch, tdt) if torch else None
        th_h = tx.to(th) if torch else None
        out.append((f"cast f32->{name} 16M", 6 * x.size, lambda d=dt: x.astype(d), lambda d=dt: cpu.cast(x, d),
                    (lambda t=th: tx.to(t)) if torch else None))
        out.append((f"cast {name}->f32 16M", 6 * x.size, lambda h=h: h.astype(np.float32),
                    lambda h=h: cpu.cast(h, np.dtype(np.float32)),
                    (lambda t=th_h: t.to(torch.float32)) if torch else None))
    g = rng.standard_normal((4096, 1024), dtype=np.float32)
    gi = rng.integers(0, 1024, (4096, 256))
    si = rng.integers(0, 1024, (4096, 1024))
    tg, tgi, tsi = (torch.from_numpy(g), torch.from_numpy(gi), torch.from_numpy(si)) if torch else (None,) * 3
    out.append(("gather dim=1 4096x1024->256", gi.size * 12, lambda: ref.gather(g, 1, gi),
                lambda: cpu.gather(g, 1, gi), (lambda: torch.gather(tg, 1, tgi)) if torch else None))
    out.append(("scatter_add dim=1 4096x1024", g.nbytes * 3 + si.nbytes, lambda: ref.scatter_add(g, 1, si, g),
                lambda: cpu.scatter_add(g, 1, si, g), (lambda: tg.scatter_add(1, tsi, tg)) if torch else None))
    w = rng.standard_normal((32000, 512), dtype=np.float32)
    idx = rng.integers(0, 32000, (64, 128))
    gr = rng.standard_normal((64, 128, 512), dtype=np.float32)
    z = np.zeros_like(w)
    tw, tidx, tgr, tz = (torch.from_numpy(v) for v in (w, idx, gr, z)) if torch else (None,) * 4
    out.append(("embedding index 64x128x512", 2 * gr.nbytes, lambda: ref.index(w, (idx,)),
                lambda: cpu.index(w, (idx,)), (lambda: tw[tidx]) if torch else None))
    out.append(("embedding index_put acc", 2 * z.nbytes + 2 * gr.nbytes, lambda: ref.index_put(z, (idx,), gr, True),
                lambda: cpu.index_put(z, (idx,), gr, True),
                (lambda: tz.index_put((tidx,), tgr, accumulate=True)) if torch else None))
    return out


def shape_cases():
    """Shape kernels: (name, bytes touched, ref/numpy fn, tinyfw fn, torch fn).  The sort's
    numpy column is ref's primitive (a stable argsort plus take_along_axis: values and
    indices, as tinyfw and torch.sort(stable=True) return)."""
    from tinyfw.backend import ref

    rng = np.random.default_rng(2)
    parts = [rng.standard_normal((1024, 1024), dtype=np.float32) for _ in range(4)]
    a = rng.standard_normal((N, N), dtype=np.float32)
    s = rng.standard_normal(1 << 20, dtype=np.float32)
    tp = [torch.from_numpy(p) for p in parts] if torch else None
    ta, ts = (torch.from_numpy(a), torch.from_numpy(s)) if torch else (None, None)
    cat_bytes = 2 * sum(p.nbytes for p in parts)
    out = [("cat 4x(1024x1024) dim=0", cat_bytes, lambda: ref.cat(parts, 0), lambda: cpu.cat(parts, 0),
            (lambda: torch.cat(tp, 0)) if torch else None),
           ("cat 4x(1024x1024) dim=1", cat_bytes, lambda: ref.cat(parts, 1), lambda: cpu.cat(parts, 1),
            (lambda: torch.cat(tp, 1)) if torch else None)]
    for dims in ((0,), (1,)):
        out.append((f"flip {dims} 4096x4096", 2 * a.nbytes, lambda d=dims: ref.flip(a, d),
                    lambda d=dims: cpu.flip(a, d), (lambda d=dims: ta.flip(d)) if torch else None))
    out.append(("tril 4096x4096", 2 * a.nbytes, lambda: ref.tril(a, 0), lambda: cpu.tril(a, 0),
                (lambda: torch.tril(ta)) if torch else None))
    out.append(("sort 1M float32", s.nbytes * 4, lambda: ref.sort(s, 0, False), lambda: cpu.sort(s, 0, False),
                (lambda: torch.sort(ts, stable=True)) if torch else None))
    return out


def transcendental_cases():
    """float32 unary functions on 16M elements: numpy (or ref's numpy formula) vs tinyfw."""
    from scipy.special import erf
    from tinyfw.backend import ref
    x = np.random.default_rng(3).standard_normal(N * N, dtype=np.float32)
    xp = np.abs(x) + np.float32(0.1)
    tx, txp = (torch.from_numpy(x), torch.from_numpy(xp)) if torch is not None else (None, None)
    F = torch.nn.functional if torch is not None else None
    out = []
    for name, arg, targ, npf, tff, thf in [
            ("exp", x, tx, np.exp, cpu.exp, torch.exp if torch else None),
            ("log", xp, txp, np.log, cpu.log, torch.log if torch else None),
            ("log1p", xp, txp, np.log1p, cpu.log1p, torch.log1p if torch else None),
            ("expm1", x, tx, np.expm1, cpu.expm1, torch.expm1 if torch else None),
            ("tanh", x, tx, np.tanh, cpu.tanh, torch.tanh if torch else None),
            ("erf", x, tx, erf, cpu.erf, torch.erf if torch else None),
            ("sigmoid", x, tx, ref.sigmoid, cpu.sigmoid, torch.sigmoid if torch else None),
            ("silu", x, tx, ref.silu, cpu.silu, F.silu if torch else None),
            ("gelu tanh", x, tx, lambda v: ref.gelu(v, "tanh"), lambda v: cpu.gelu(v, "tanh"),
             (lambda v: F.gelu(v, approximate="tanh")) if torch else None),
            ("softplus", x, tx, lambda v: ref.softplus(v, 1.0, 20.0), lambda v: cpu.softplus(v, 1.0, 20.0),
             F.softplus if torch else None)]:
        out.append((f"{name} 16M f32", 2 * arg.nbytes, lambda f=npf, v=arg: f(v), lambda f=tff, v=arg: f(v),
                    (lambda f=thf, v=targ: f(v)) if torch else None))
    return out


# issue 3's targets, numpy time / tinyfw time: 0.9x numpy's bandwidth on contiguous
# add/mul, no slower than numpy on broadcast and transposed inputs, 0.8x on sums
TARGETS = [("add 16M contiguous", 0.9), ("mul 16M contiguous", 0.9), ("add 16M", 1.0),
           ("mul 16M", 1.0), ("sum dim", 0.8)]


def main() -> None:
    """Run every case at each thread count and print times, bandwidths and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--only", default="", help="run the cases whose name contains this text")
    args = ap.parse_args()
    if "add" not in cpu.KERNELS:
        raise SystemExit("tinyfw._C is not built: python setup.py build_ext --inplace")
    threads = [int(t) for t in args.threads.split(",")]
    print(f"median of {args.repeat} runs; GB/s = bytes touched / time; ratio = numpy time / tinyfw time")
    hdr = f"{'case':28s} {'thr':>3s} {'numpy ms':>9s} {'tinyfw ms':>9s} {'torch ms':>9s} " \
          f"{'np GB/s':>8s} {'tf GB/s':>8s} {'tf/np':>6s} {'tf/torch':>8s}"
    print(hdr)
    print("-" * len(hdr))
    n0 = tinyfw.get_num_threads()
    try:
        for nt in threads:
            tinyfw.set_num_threads(nt)
            if torch is not None:
                torch.set_num_threads(nt)
            for name, nbytes, npf, tff, thf in cases() + index_cases() + shape_cases() + transcendental_cases():
                if args.only not in name:
                    continue
                t_np = median_time(npf, args.repeat)
                t_tf = median_time(tff, args.repeat)
                t_th = median_time(thf, args.repeat) if thf else float("nan")
                print(f"{name:28s} {nt:3d} {t_np * 1e3:9.2f} {t_tf * 1e3:9.2f} {t_th * 1e3:9.2f} "
                      f"{nbytes / t_np / 1e9:8.2f} {nbytes / t_tf / 1e9:8.2f} {t_np / t_tf:6.2f} "
                      f"{t_th / t_tf:8.2f}", flush=True)
                target = next((t for prefix, t in TARGETS if name.startswith(prefix)), None)
                if target is not None:
                    check(f"{name.strip()}: numpy/tinyfw time", t_np / t_tf, target,
                          higher_is_better=True, echo=False)
    finally:
        tinyfw.set_num_threads(n0)


if __name__ == "__main__":
    main()
