"""Inter-op parallelism: a traced graph's independent branches in order vs at once.

    python benchmarks/bench_interop.py                # 1 thread, then 2 threads
    python benchmarks/bench_interop.py --threads 2    # in-process (what each subprocess runs)

Each workload is traced twice, with the default passes ("parallel": the interop pass
runs) and without the interop pass ("in order"), and both run at the same thread count,
interleaved batch by batch (benchmarks/common.py); PyTorch eager runs the same workload
beside them where it has it.  At 1 thread the regions run their branches in order, so
the two are the same code path and the ratio shows the region's own cost.

Workloads (float32):
- block (matmul): y = relu(relu(x @ A1) @ A2) @ A3 + tanh(tanh(x @ B1) @ B2) @ B3,
  x (64, 512), all weights (512, 512): two product chains joined by an add, ~1 ms each;
- block (conv, batch 1): two chains of three 3x3 convolutions (32 channels, 28x28, ReLU
  between) on one image, joined by an add: the conv kernel splits its work over the
  batch, so at batch 1 each conv runs on one thread whatever the setting;
- heads: 8 per-head projections x (256, 512) @ W_h (512, 64), concatenated;
- backward: a 3-layer MLP (512-512-512-512, ReLU, batch 128), forward + backward: each
  layer's weight gradient beside the input gradient and what follows it.
Target (issue 18): the two-branch block at 2 threads >= 1.2x over its branches in order.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tinyfw  # noqa: E402
from tinyfw import jit  # noqa: E402
from tinyfw.jit.compiler import DEFAULT_PASSES  # noqa: E402
from tinyfw.nn import functional as F  # noqa: E402
from benchmarks.common import check, compare, main_per_thread_count, print_table  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

IN_ORDER = tuple(p for p in DEFAULT_PASSES if p != "interop")


def _arr(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def mm_block(x, a1, a2, a3, b1, b2, b3):
    """Two product chains joined by an add."""
    a = ((x @ a1).relu() @ a2).relu() @ a3
    b = ((x @ b1).tanh() @ b2).tanh() @ b3
    return a + b


def conv_block(x, a1, a2, a3, b1, b2, b3):
    """Two convolution chains joined by an add (works for tinyfw and torch alike)."""
    conv = F.conv2d if isinstance(x, tinyfw.Tensor) else torch.nn.functional.conv2d
    a = conv(conv(conv(x, a1, padding=1).relu(), a2, padding=1).relu(), a3, padding=1)
    b = conv(conv(conv(x, b1, padding=1).relu(), b2, padding=1).relu(), b3, padding=1)
    return a + b


def heads(x, *ws):
    """Per-head projections, concatenated along the features."""
    cat = tinyfw.cat if isinstance(x, tinyfw.Tensor) else torch.cat
    return cat([x @ w for w in ws], 1)


def mlp_step(x, w1, w2, w3):
    """Forward and backward of a 3-layer ReLU MLP (the loss: sum of squares)."""
    h = ((x @ w1).relu() @ w2).relu() @ w3
    return (h * h).sum()


def _workloads(rng) -> dict:
    s = 1 / np.sqrt(512)
    c = 1 / np.sqrt(32 * 9)
    return {
        "block (matmul)": (mm_block, [_arr(rng, 64, 512)] + [_arr(rng, 512, 512, scale=s)
                                                             for _ in range(6)], False),
        "block (conv, batch 1)": (conv_block, [_arr(rng, 1, 32, 28, 28)]
                                  + [_arr(rng, 32, 32, 3, 3, scale=c) for _ in range(6)], False),
        "heads": (heads, [_arr(rng, 256, 512)] + [_arr(rng, 512, 64, scale=s)
                                                  for _ in range(8)], False),
        "backward (mlp)": (mlp_step, [_arr(rng, 128, 512)] + [_arr(rng, 512, 512, scale=s)
                                                             for _ in range(3)], True),
    }


def _regions(tf, args) -> str:
    """The regions of `tf`'s graphs as explain() lists them (without the prediction)."""
    c = tf.get_compiled(tuple(args))
    lines = [d.rsplit("]: ", 1)[0] + "]" for s in c.stats if s["pass"] == "interop"
             for d in s["decisions"] if d.startswith("parallel")]
    return "; ".join(lines) if lines else "none"


def run(threads: int, repeat: int = 15) -> None:
    tinyfw.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    cpu = tinyfw.backend.cpu.isa_info().get("cpu", "?")
    print(f"bench_interop: {threads} thread(s), {cpu} (shared machine: medians of {repeat})")
    rng = np.random.default_rng(0)
    for name, (fn, arrays, grad) in _workloads(rng).items():
        args = [tinyfw.tensor(a, requires_grad=grad and i > 0) for i, a in enumerate(arrays)]
        par = jit.compile(fn)
        seq = jit.compile(fn, passes=IN_ORDER)
        # every region the pass can form, whatever its cost model predicts
        forced = jit.compile(fn)
        old = os.environ.get("TINYFW_INTEROP")
        os.environ["TINYFW_INTEROP"] = "force"
        try:
            forced.get_compiled(tuple(args))
        finally:
            os.environ.pop("TINYFW_INTEROP") if old is None else \
                os.environ.__setitem__("TINYFW_INTEROP", old)
        if grad:
            def step(tf):
                for a in args[1:]:
                    a.grad = None
                tf(*args).backward()
        else:
            def step(tf):
                with tinyfw.no_grad():
                    tf(*args)
        fns = {"in order": lambda: step(seq), "parallel": lambda: step(par)}
        if _regions(forced, args) != _regions(par, args):
            fns["forced"] = lambda: step(forced)
        if threads > 1:  # does the second thread help the in-order graph at all here?
            def one_thread():
                tinyfw.set_num_threads(1)
                try:
                    step(seq)
                finally:
                    tinyfw.set_num_threads(threads)
            fns["in order, 1 thr"] = one_thread
        if torch is not None:
            targs = [torch.tensor(a, requires_grad=grad and i > 0) for i, a in enumerate(arrays)]

            def tstep():
                if grad:
                    for a in targs[1:]:
                        a.grad = None
                    fn(*targs).backward()
                else:
                    with torch.no_grad():
                        fn(*targs)
            fns["torch eager"] = tstep
        step(par)
        step(seq)
        # the outputs agree bit for bit (the kernels do not depend on the thread count)
        with tinyfw.no_grad():
            same = np.array_equal(par(*args).numpy(), seq(*args).numpy())
        rows = compare(fns, repeat=repeat)
        print_table(f"{name} [{'bit-identical' if same else 'RESULTS DIFFER'}]", rows,
                    baseline="in order")
        print(f"  regions: {_regions(par, args)}")
        if "forced" in fns:
            print(f"  forced:  {_regions(forced, args)}")
        if grad:
            bwd = par.get_compiled(tuple(args)).bwd_graph
            n = sum(1 for nd in bwd.nodes if nd.op.startswith("Parallel"))
            print(f"  (backward graph: {n} region(s))")
        med = {r.name: r.median for r in rows}
        speedup = med["in order"] / med["parallel"]
        if threads >= 2 and name == "block (matmul)":
            check(f"interop two-branch block (matmul) at {threads} threads: in order / parallel",
                  speedup, 1.2, higher_is_better=True)
        elif threads >= 2:
            print(f"  -> {name}: {speedup:.2f}x over in order")


if __name__ == "__main__":
    main_per_thread_count(__file__, run, "traced graph branches in order vs in parallel")
