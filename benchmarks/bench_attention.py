"""An attention block: the eager composition softmax(q @ kᵀ * s + mask) @ v against the
fused F.scaled_dot_product_attention, forward and forward+backward, with PyTorch's SDPA
and PyTorch's eager composition for reference.

    python benchmarks/bench_attention.py               # 1 thread (the issue's figure)
    python benchmarks/bench_attention.py --threads 2   # one setting

Batch 4, 8 heads, sequence 256, head dim 64, float32, with an additive float mask (L, S)
(the pattern the graph rewrite turns into the fused op; the fused op gets the same
tensor), two of them: "causal" (0 on and below the diagonal, -inf above: the fused kernel
finds from the mask that each query panel's later keys are dead and skips their products,
roughly half of them) and "dense" (random finite values: nothing to skip, the fused
kernel does all the eager products, and the backward one more).  "fwd" runs without
gradients; "fwd+bwd" is the autograd round trip from a fixed upstream gradient to the
grads of q, k and v.  All four run interleaved in one process (benchmarks/common.py); the
figures are medians and the check is the fused op's time over the eager composition's.
Target (issue 18): the fused op at least 2x faster than eager, forward and
forward+backward.
"""
from __future__ import annotations

import math
import os
import sys

B, H, L, D = 4, 8, 256, 64


def _workloads(rng, dense: bool):
    """{'fwd': {name: fn}, 'fwd+bwd': {name: fn}} for the four implementations."""
    import numpy as np
    import torch

    import tinyfw
    import tinyfw.nn.functional as F

    q, k, v, g = (rng.standard_normal((B, H, L, D)).astype(np.float32) for _ in range(4))
    mask = (rng.standard_normal((L, L)) if dense else np.where(np.tri(L, dtype=bool), 0.0, -np.inf))
    mask = mask.astype(np.float32)
    s = 1.0 / math.sqrt(D)
    tq, tk, tv = (tinyfw.tensor(a, requires_grad=True) for a in (q, k, v))
    tm, tg = tinyfw.tensor(mask), tinyfw.tensor(g)
    pq, pk, pv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    pm, pg = torch.tensor(mask), torch.tensor(g)

    impls = {
        "tinyfw eager": lambda: F.softmax(tq @ tk.transpose(-2, -1) * s + tm, -1) @ tv,
        "tinyfw fused": lambda: F.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm),
        "torch eager": lambda: torch.softmax(pq @ pk.transpose(-2, -1) * s + pm, -1) @ pv,
        "torch sdpa": lambda: torch.nn.functional.scaled_dot_product_attention(pq, pk, pv, attn_mask=pm),
    }

    def fwd(name, f):
        ctx = torch.no_grad if name.startswith("torch") else tinyfw.no_grad

        def run():
            with ctx():
                f()
        return run

    def step(name, f):
        leaves, grad = ((pq, pk, pv), pg) if name.startswith("torch") else ((tq, tk, tv), tg)

        def run():
            for t in leaves:
                t.grad = None
            f().backward(grad)
        return run

    return {"fwd": {n: fwd(n, f) for n, f in impls.items()},
            "fwd+bwd": {n: step(n, f) for n, f in impls.items()}}


def _agree() -> None:
    """The two tinyfw implementations compute the same thing (else the timing is moot)."""
    import numpy as np

    import tinyfw

    q = tinyfw.randn(2, 2, 16, 8)
    mask = tinyfw.tensor(np.where(np.tri(16, dtype=bool), 0.0, -np.inf).astype(np.float32))
    eager = tinyfw.nn.functional.softmax(q @ q.transpose(-2, -1) / math.sqrt(8) + mask, -1) @ q
    fused = tinyfw.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    np.testing.assert_allclose(fused.numpy(), eager.numpy(), rtol=1e-5, atol=1e-6)


def run(threads: int) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tinyfw
    from benchmarks.common import check, compare, print_table, ratios

    torch.set_num_threads(threads)
    tinyfw.set_num_threads(threads)
    from tinyfw.backend import cpu

    print(f"\n== attention block (batch {B}, {H} heads, seq {L}, d {D}, float32, float mask), "
          f"{threads} thread(s), {cpu.isa_info().get('cpu', '?')}, isa {cpu.isa()}")
    rng = np.random.default_rng(0)
    _agree()
    for mask in ("causal", "dense"):
        for kind, fns in _workloads(rng, mask == "dense").items():
            rows = compare(fns, repeat=9)
            print_table(f"attention, {mask} mask, {kind}", rows, baseline="tinyfw eager")
            speedup = 1.0 / ratios(rows, "tinyfw eager")["tinyfw fused"]
            check(f"attention {mask} mask {kind}: fused speed-up over eager", speedup, 2.0,
                  higher_is_better=True)


def main() -> None:
    """Run each thread setting in its own subprocess (see common.main_per_thread_count)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.common import main_per_thread_count

    main_per_thread_count(__file__, run, __doc__.splitlines()[0], thread_counts=(1,))


if __name__ == "__main__":
    main()
