"""Traced vs eager over a sweep of sizes: does traced mode ever lose?

    python benchmarks/bench_jit_sweep.py [--threads N] [--repeat 9] [--quick]
        [--rows 16,64,256,1024,4096,8192] [--dims 64,1024] [--max-elems N]

The issue's block (float32): y = tanh(layer_norm(gelu(linear(x)) * 0.5 + x)) * 2 + 1,
linear and layer norm of width d, x (rows, d).  Per size, two workloads, each timed
traced and eager interleaved in one process (benchmarks/common.compare):
- fwd: the forward under no_grad;
- fwd+bwd: forward and backward (x and the parameters require gradients; the backward
  is seeded with a fixed output gradient, so no extra sum op is timed).
Reported: the median time of each and the ratio eager time / traced time (> 1: traced is
faster).  Sizes above --max-elems elements (rows x d) are skipped: at d = 1024 the
(rows, 1024) x (1024, 1024) products dominate and take seconds per call.

Targets (issue 10, "traced mode never loses"), the minimum over the sweep: for the
issue's block (d = 64) traced/eager speed >= 1.0 forward at every size, >= 1.5 forward up
to 256 rows, and >= 1.2 forward+backward at every size, and its traced training step (forward, backward,
SGD with momentum) within 1.3x of PyTorch eager's time at every size; at any other width (d = 1024,
where the (rows, 1024) x (1024, 1024) product is most of either mode's time and both run
the same GEMM) never slower: >= 1.0 forward and forward+backward.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tinyfw  # noqa: E402
from tinyfw import jit, nn  # noqa: E402
from benchmarks.common import check, compare, fmt_time  # noqa: E402

F = nn.functional
try:
    import torch
except ImportError:  # the PyTorch comparison (training step) is left out
    torch = None
ISSUE_D = 64  # the width of issue 10's block; its 1.5x / 1.2x targets are for this width


def make_block(d: int):
    """The block and its parameters' module list (seeded: same weights every run)."""
    tinyfw.manual_seed(0)
    lin, ln = nn.Linear(d, d), nn.LayerNorm(d)

    def block(x):
        return tinyfw.tanh(ln(F.gelu(lin(x)) * 0.5 + x)) * 2 + 1

    return block, [lin, ln]


def sweep_one(d: int, rows: int, repeat: int) -> dict:
    """Ratios eager/traced (fwd, fwd+bwd) and medians for one (rows, d)."""
    block, mods = make_block(d)
    x = tinyfw.randn(rows, d)
    xg = x.detach().requires_grad_(True)
    g = tinyfw.randn(rows, d)
    traced = jit.compile(block)  # one compiled graph per signature (no_grad, grad)

    def eager_fwd():
        with tinyfw.no_grad():
            block(x)

    def traced_fwd():
        with tinyfw.no_grad():
            traced(x)

    params = [p for m in mods for p in m.parameters()]

    def clear():
        xg.grad = None
        for p in params:
            p.grad = None

    def eager_step():
        clear()
        block(xg).backward(g)

    def traced_step():
        clear()
        traced(xg).backward(g)

    out = {}
    for mode, fns in (("fwd", {"eager": eager_fwd, "traced": traced_fwd}),
                      ("fwd+bwd", {"eager": eager_step, "traced": traced_step})):
        t = {r.name: r.median for r in compare(fns, repeat=repeat)}
        out[mode] = (t["eager"], t["traced"], t["eager"] / t["traced"])
    if torch is not None:
        out["train"] = _training_steps(traced, xg, g, params, mods, repeat)
    return out


def _training_steps(traced, xg, g, params, mods, repeat: int) -> tuple:
    """(PyTorch eager time, traced time, traced / PyTorch): one training step of the block
    (forward, backward from g, SGD with momentum), the same weights in both frameworks."""
    lin, ln = mods
    tl, tn = torch.nn.Linear(*lin.weight.shape[::-1]), torch.nn.LayerNorm(ln.weight.shape[0])
    with torch.no_grad():
        for t, p in ((tl.weight, lin.weight), (tl.bias, lin.bias), (tn.weight, ln.weight),
                     (tn.bias, ln.bias)):
            t.copy_(torch.from_numpy(p.detach().numpy()))
    tx = torch.from_numpy(xg.detach().numpy().copy()).requires_grad_(True)
    tg = torch.from_numpy(g.numpy().copy())
    opt = tinyfw.optim.SGD(params, lr=1e-4, momentum=0.9)
    topt = torch.optim.SGD(list(tl.parameters()) + list(tn.parameters()), lr=1e-4, momentum=0.9)

    def tinyfw_train():
        opt.zero_grad()
        xg.grad = None
        traced(xg).backward(g)
        opt.step()

    def torch_train():
        topt.zero_grad()
        tx.grad = None
        y = torch.tanh(tn(torch.nn.functional.gelu(tl(tx)) * 0.5 + tx)) * 2 + 1
        y.backward(tg)
        topt.step()

    t = {r.name: r.median for r in compare({"torch": torch_train, "traced": tinyfw_train},
                                             repeat=repeat)}
    return t["torch"], t["traced"], t["traced"] / t["torch"]


def run(threads: int, rows_list: list[int], dims: list[int], repeat: int,
        max_elems: int) -> None:
    """Sweep every (d, rows) at `threads` threads, print the table, check the targets."""
    tinyfw.set_num_threads(threads)
    print(f"jit sweep: tanh(layer_norm(gelu(linear(x))*0.5 + x))*2 + 1, float32, "
          f"{threads} thread(s); ratio = eager time / traced time")
    for d in dims:
        print(f"\n  d = {d}")
        print(f"  {'rows':>6} {'fwd eager':>11} {'fwd traced':>11} {'ratio':>7}   "
              f"{'f+b eager':>11} {'f+b traced':>11} {'ratio':>7}")
        fwd, fwd_small, step, train = [], [], [], []
        for rows in rows_list:
            if rows * d > max_elems:
                print(f"  {rows:>6}  (skipped: {rows} x {d} > --max-elems {max_elems})")
                continue
            r = sweep_one(d, rows, repeat)
            (fe, ft, fr), (be, bt, br) = r["fwd"], r["fwd+bwd"]
            print(f"  {rows:>6} {fmt_time(fe):>11} {fmt_time(ft):>11} {fr:>6.2f}x   "
                  f"{fmt_time(be):>11} {fmt_time(bt):>11} {br:>6.2f}x", flush=True)
            fwd.append(fr)
            step.append(br)
            if "train" in r:
                te, tt, tr = r["train"]
                train.append(tr)
                print(f"  {'':>6} training step (+ SGD): torch eager {fmt_time(te)}, traced "
                      f"{fmt_time(tt)}, traced/torch time {tr:.2f}x", flush=True)
            if rows <= 256:
                fwd_small.append(fr)
        if not fwd:
            continue
        lo, hi = min(r for r in rows_list if r * d <= max_elems), \
            max(r for r in rows_list if r * d <= max_elems)
        print()
        check(f"jit sweep d={d}: traced/eager speed, fwd, min over {lo}-{hi} rows",
              min(fwd), 1.0, higher_is_better=True)
        if fwd_small and d == ISSUE_D:
            check(f"jit sweep d={d}: traced/eager speed, fwd, min up to 256 rows",
                  min(fwd_small), 1.5, higher_is_better=True)
        check(f"jit sweep d={d}: traced/eager speed, fwd+bwd, min over {lo}-{hi} rows",
              min(step), 1.2 if d == ISSUE_D else 1.0, higher_is_better=True)
        if train and d == ISSUE_D:
            check(f"jit sweep d={d}: traced training step / PyTorch eager time, max over "
                  f"{lo}-{hi} rows", max(train), 1.3, higher_is_better=False)


def main() -> None:
    """Command line: one thread count in-process (default: tinyfw's current setting)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=None,
                    help="threads (default: $OMP_NUM_THREADS, else tinyfw's default)")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="3 repeats (smoke run)")
    ap.add_argument("--rows", default="16,64,256,1024,4096,8192")
    ap.add_argument("--dims", default="64,1024")
    ap.add_argument("--max-elems", type=int, default=4096 * 1024,
                    help="skip sizes with more elements (rows x d) than this")
    a = ap.parse_args()
    threads = a.threads or int(os.environ.get("OMP_NUM_THREADS", "0")) \
        or tinyfw.get_num_threads()
    run(threads, [int(r) for r in a.rows.split(",")], [int(d) for d in a.dims.split(",")],
        3 if a.quick else a.repeat, a.max_elems)


if __name__ == "__main__":
    main()
