"""One worker of the distributed tests: run it N times with the launcher
(``python -m tinyfw.distributed.run --nproc N tests/dist_worker.py CASE...``) or with
``mpiexec -n N python tests/dist_worker.py CASE...``.  Each case checks its results on
every rank against numpy or a single-process run it computes itself (every rank can derive
every rank's inputs from the seeds) and raises on a mismatch, so the job's exit status is
the verdict.  Prints "<case> ok" per case on rank 0.
"""
from __future__ import annotations

import os
import sys

os.environ.pop("TINYFW_DEVICE", None)  # collectives run on CPU tensors

import numpy as np  # noqa: E402

import tinyfw as tf  # noqa: E402
import tinyfw.distributed as dist  # noqa: E402
import tinyfw.nn as nn  # noqa: E402
from tinyfw.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

DTYPES = ["float32", "float64", "bfloat16", "float16"]
ULP = {"float32": 2.0**-23, "float64": 2.0**-52, "bfloat16": 2.0**-7, "float16": 2.0**-10}


def _inputs(size: int, k: int, n: int) -> list:
    """Every rank's input: small integers, so sums are exact in every float dtype."""
    return [(np.arange(size, dtype=np.int64) * (3 + 2 * r) + k) % 11 - 5 for r in range(n)]


def _same_everywhere(t) -> None:
    """Every rank holds the same bits (all_gather them and compare)."""
    n = dist.get_world_size()
    got = [tf.zeros_like(t) for _ in range(n)]
    dist.all_gather(got, t)
    for g in got:
        a, b = g.numpy(), t.numpy()
        assert a.tobytes() == b.tobytes(), "ranks disagree"


def case_collectives() -> None:
    r, n = dist.get_rank(), dist.get_world_size()
    sizes = [0, 1, 3, 1000, 5003]  # with 4 KiB slots: many blocks, uneven segments
    for size in sizes:
        for dt in DTYPES:
            xs = _inputs(size, 1, n)
            for op, ref in [(dist.ReduceOp.SUM, sum(xs)), (dist.ReduceOp.MAX, np.max(xs, 0)),
                            (dist.ReduceOp.MIN, np.min(xs, 0))]:
                t = tf.tensor(xs[r].astype(np.float64)).to(getattr(tf, dt))
                dist.all_reduce(t, op=op)
                assert np.array_equal(t.to(tf.float64).numpy(), np.asarray(ref, np.float64)), \
                    (size, dt, op)
            t = tf.tensor(xs[r].astype(np.float64)).to(getattr(tf, dt))
            dist.all_reduce(t, op=dist.ReduceOp.AVG)
            exact = sum(xs) / n  # the sum is exact; the division rounds once (half: twice)
            err = np.abs(t.to(tf.float64).numpy() - exact)
            assert np.all(err <= ULP[dt] * np.abs(exact) * 1.01), (size, dt, "avg")
            _same_everywhere(t)
    # random float32: the ring's sum against float64 with n roundings of bound
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal(7777).astype(np.float32) for _ in range(n)]
    t = tf.tensor(xs[r].copy())
    dist.all_reduce(t)
    bound = n * 2.0**-24 * np.sum(np.abs(xs), 0, dtype=np.float64)
    assert np.all(np.abs(t.numpy() - np.sum(xs, 0, dtype=np.float64)) <= bound)
    _same_everywhere(t)
    # integers, a non-contiguous view, async handles
    t = tf.tensor(np.arange(10, dtype=np.int64) + r)
    dist.all_reduce(t)
    assert np.array_equal(t.numpy(), n * np.arange(10) + sum(range(n)))
    base = tf.tensor(np.arange(12.0).reshape(3, 4) * (r + 1), dtype=tf.float32)
    v = base.t()
    dist.all_reduce(v)
    assert np.array_equal(base.numpy(), np.arange(12.0).reshape(3, 4) * n * (n + 1) / 2)
    a, b = tf.full((5000,), float(r)), tf.full((3,), 1.0)
    wa, wb = dist.all_reduce(a, async_op=True), dist.all_reduce(b, async_op=True)
    assert wb.wait() and wa.wait() and wa.is_completed()
    assert (a.numpy() == sum(range(n))).all() and (b.numpy() == n).all()
    # broadcast from every source, several dtypes
    for src in range(n):
        for dt in ["float32", "bfloat16", "int64", "bool"]:
            vals = _inputs(3001, src, n)[src]
            t = tf.tensor(vals if r == src else np.zeros_like(vals)).to(getattr(tf, dt))
            dist.broadcast(t, src=src)
            want = tf.tensor(vals).to(getattr(tf, dt))
            assert t.numpy().tobytes() == want.numpy().tobytes(), (src, dt)
    # all_gather and reduce_scatter
    for dt in ["float32", "float16", "int32"]:
        xs = _inputs(2049, 7, n)
        out = [tf.zeros(2049, dtype=getattr(tf, dt)) for _ in range(n)]
        dist.all_gather(out, tf.tensor(xs[r]).to(getattr(tf, dt)))
        for i in range(n):
            assert np.array_equal(out[i].to(tf.float64).numpy(), xs[i].astype(np.float64))
    for op in (dist.ReduceOp.SUM, dist.ReduceOp.MAX, dist.ReduceOp.AVG):
        parts = [[_inputs(1500, 10 * i + j, n)[j] for i in range(n)] for j in range(n)]
        out = tf.zeros(1500, dtype=tf.float64)
        dist.reduce_scatter(out, [tf.tensor(p.astype(np.float64)) for p in parts[r]], op=op)
        mine = [parts[j][r] for j in range(n)]
        want = {"sum": sum(mine), "max": np.max(mine, 0), "avg": sum(mine) / n}[op.value]
        assert np.array_equal(out.numpy(), want), op
    # point to point round the ring (async send, blocking recv)
    if n > 1:
        msg = tf.tensor(np.arange(6000.0) + r)
        w = dist.send(msg, (r + 1) % n, tag=3, async_op=True)
        got = tf.zeros(6000, dtype=tf.float64)
        dist.recv(got, (r - 1) % n, tag=3)
        w.wait()
        assert np.array_equal(got.numpy(), np.arange(6000.0) + (r - 1) % n)
    dist.barrier()


def _mlp(seed: int, bn: bool = False, extra: bool = False, tied: bool = False) -> nn.Module:
    tf.manual_seed(seed)
    layers = [nn.Linear(6, 16), nn.Tanh()]
    if bn:
        layers.append(nn.BatchNorm1d(16))
    hidden = nn.Linear(16, 16)
    layers += [hidden, nn.ReLU()]
    if tied:  # the same weights twice: two gradients reach them in one backward
        layers += [hidden, nn.Tanh()]
    layers.append(nn.Linear(16, 3))
    m = nn.Sequential(*layers)
    return _WithUnused(m) if extra else m


class _WithUnused(nn.Module):
    """A model with a layer its forward never calls."""

    def __init__(self, body):
        super().__init__()
        self.body, self.unused = body, nn.Linear(4, 4)

    def forward(self, x):
        return self.body(x)


def _data(steps: int, per_rank: int, n: int):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((steps, n * per_rank, 6)).astype(np.float32)
    y = rng.integers(0, 3, (steps, n * per_rank))
    return x, y


def _train(model, x, y, steps, sl, micro=1):
    opt = tf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    lossf = nn.CrossEntropyLoss()
    for s in range(steps):
        opt.zero_grad()
        xb, yb = x[s][sl], y[s][sl]
        chunks = np.array_split(np.arange(len(xb)), micro)
        for c, idx in enumerate(chunks):
            def step():
                out = model(tf.tensor(xb[idx]))
                (lossf(out, tf.tensor(yb[idx])) * (len(idx) / len(xb))).backward()
            if c < micro - 1 and hasattr(model, "no_sync"):
                with model.no_sync():
                    step()
            else:
                step()
        opt.step()
    return model


def _close(ddp_model, ref_model, rtol=2e-5, atol=2e-6) -> None:
    for (name, p), q in zip(ddp_model.module.named_parameters(), ref_model.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=name)
        _same_everywhere(p.detach())


def case_ddp() -> None:
    r, n = dist.get_rank(), dist.get_world_size()
    steps, per = 3, 8
    x, y = _data(steps, per, n)
    mine = slice(r * per, (r + 1) * per)
    ref = _train(_mlp(0), x, y, steps, slice(None))  # one process, the global batch
    # rank-dependent init: DDP must broadcast rank 0's (seed 0) parameters
    for kw in [{}, {"bucket_cap_mb": 0.0005}, {"gradient_as_bucket_view": True}]:
        model = DDP(_mlp(r), **kw)
        _close(_train(model, x, y, steps, mine), ref)
    # shm: the buckets are shared memory averaged in place (the ring with
    # TINYFW_DDP_SHARED=0, and for mpi); both sum in rank order when n = 2 (a + b either
    # way), so they agree bit for bit there, and closely for more ranks
    shared = DDP(_mlp(r), bucket_cap_mb=0.0005)
    uses = getattr(shared._reducer, "shared", None) is not None  # no reducer for one rank
    assert uses == (dist.get_backend() == "shm" and n > 1 and
                    os.environ.get("TINYFW_DDP_SHARED") != "0")
    os.environ["TINYFW_DDP_SHARED"], old = "0", os.environ.get("TINYFW_DDP_SHARED")
    ring = DDP(_mlp(r), bucket_cap_mb=0.0005)
    os.environ.pop("TINYFW_DDP_SHARED") if old is None else os.environ.update(
        TINYFW_DDP_SHARED=old)
    assert getattr(ring._reducer, "shared", None) is None
    _train(shared, x, y, steps, mine)
    _train(ring, x, y, steps, mine)
    for (name, p), q in zip(shared.module.named_parameters(), ring.module.parameters()):
        if n == 2:
            assert np.array_equal(p.detach().numpy(), q.detach().numpy()), name
        else:
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6,
                                       atol=1e-7, err_msg=name)
    # a layer applied twice: its bucket waits for both gradients
    tied_ref = _train(_mlp(0, tied=True), x, y, steps, slice(None))
    _close(_train(DDP(_mlp(r, tied=True), bucket_cap_mb=0.0005), x, y, steps, mine), tied_ref)
    # no_sync: three micro-batches per step, two of them accumulated locally
    model = DDP(_mlp(r), bucket_cap_mb=0.0005)
    _close(_train(model, x, y, steps, mine, micro=3), ref)
    # bf16 gradients: close to the float32 result at bfloat16's precision
    model = DDP(_mlp(r), compression="bf16")
    _close(_train(model, x, y, steps, mine), ref, rtol=0.03, atol=3e-3)
    # unused parameters: an error naming them (one process has nothing to reduce), or
    # find_unused_parameters
    model = DDP(_mlp(r, extra=True))
    try:
        model(tf.tensor(x[0][mine]))
        assert n == 1, "an unused parameter was accepted"
    except RuntimeError as e:
        assert "unused.weight" in str(e) and "find_unused_parameters" in str(e)
    model = DDP(_mlp(r, extra=True), find_unused_parameters=True)
    _train(model, x, y, steps, mine)
    assert model.module.unused.weight.grad is None
    _close(model, ref)
    # BatchNorm: rank 0's statistics reach every rank before each forward
    model = DDP(_mlp(r, bn=True))
    _train(model, x, y, steps, mine)
    model.eval()
    model(tf.tensor(x[0][mine]))  # eval: buffers broadcast, not updated
    # (each rank updated its statistics from its own batch in training: only the
    # broadcast makes them agree)
    for b in model.module.buffers():
        _same_everywhere(b)


if __name__ == "__main__":
    dist.init_process_group(timeout=float(os.environ.get("DIST_TEST_TIMEOUT", 60)))
    for name in sys.argv[1:]:
        globals()[f"case_{name}"]()
        if dist.get_rank() == 0:
            print(f"{name} ok ({dist.get_backend()}, {dist.get_world_size()})", flush=True)
    dist.destroy_process_group()
