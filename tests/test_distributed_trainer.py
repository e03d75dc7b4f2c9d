"""distributed.Trainer and distributed.Pipeline: N ranks (through the launcher, shm backend)
give the parameters of one process training on the whole batch, resume exactly on another
world size, and report dataset-wide metrics."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinyfw
import tinyfw.distributed
from tinyfw import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the workload both the single process and the workers build: a digits subset, an MLP
_COMMON = textwrap.dedent("""
    import numpy as np, tinyfw, tinyfw.distributed
    from tinyfw import nn
    from tinyfw.data import TensorDataset
    from tinyfw.data.datasets import load_digits

    def data():
        x, y = load_digits("train", seed=0).tensors
        return TensorDataset(x[:100], y[:100]), TensorDataset(x[100:157], y[100:157])

    def model_and_opt():
        tinyfw.manual_seed(0)
        m = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Tanh(), nn.Dropout(0.0),
                          nn.Linear(32, 10))
        return m, tinyfw.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)

    def train(epochs, ckpt=None, resume=False, amp=None):
        train_set, val_set = data()
        m, opt = model_and_opt()
        t = tinyfw.distributed.Trainer(m, opt, nn.CrossEntropyLoss(), train_set,
                                       val_data=val_set, epochs=epochs, batch_size=24,
                                       checkpoint=ckpt, show_progress=False, log=None,
                                       amp=amp)
        hist = t.fit(resume=resume)
        return m, hist
""")

_WORKER = _COMMON + textwrap.dedent("""
    import sys, json
    import tinyfw.distributed as dist
    dist.init_process_group("shm")
    epochs, ckpt, resume, out = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", sys.argv[4]
    amp = sys.argv[5] if len(sys.argv) > 5 else None
    m, hist = train(epochs, None if ckpt == "-" else ckpt, resume, amp)
    if dist.get_rank() == 0:
        np.savez(out, **{k: v.cpu().numpy() for k, v in m.state_dict().items()})
        with open(out + ".json", "w") as f:
            json.dump(hist, f)
    dist.destroy_process_group()
""")


def _launch(tmp_path, nproc: int, script: str, *args: str) -> None:
    path = tmp_path / f"worker_{abs(hash(script)) % 10**8}.py"
    path.write_text(script)
    # collectives run on CPU tensors, whatever device the suite runs on
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", TINYFW_DEVICE="cpu")
    r = subprocess.run([sys.executable, "-m", "tinyfw.distributed.run", "--nproc", str(nproc),
                        str(path), *args], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"workers failed:\n{r.stdout}\n{r.stderr}"


def _single(epochs: int, ckpt=None, resume=False, amp=None):
    ns: dict = {}
    exec(_COMMON, ns)
    return ns["train"](epochs, ckpt, resume, amp)


def _assert_same_params(model, npz_path) -> None:
    got = np.load(npz_path)
    for k, v in model.state_dict().items():
        np.testing.assert_allclose(got[k], v.cpu().numpy(), rtol=2e-5, atol=2e-6, err_msg=k)


@pytest.mark.parametrize("nproc", [2, 3])
def test_trainer_equals_one_process_on_the_global_batch(on_the_cpu, tmp_path, nproc):
    ref_model, ref_hist = _single(2)
    out = str(tmp_path / "params.npz")
    _launch(tmp_path, nproc, _WORKER, "2", "-", "0", out)
    _assert_same_params(ref_model, out)
    hist = json.load(open(out + ".json"))
    # dataset-wide metrics: sums over ranks, so they equal the single process's
    for k in ("train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "val_precision"):
        np.testing.assert_allclose(hist[k], ref_hist[k], rtol=1e-5, err_msg=k)


def test_trainer_resumes_exactly_on_another_world_size(on_the_cpu, tmp_path):
    ref_model, _ = _single(3)
    ckpt, out = str(tmp_path / "ckpt.tfw"), str(tmp_path / "params.npz")
    _launch(tmp_path, 2, _WORKER, "1", ckpt, "0", out)      # one epoch on 2 ranks
    _launch(tmp_path, 3, _WORKER, "3", ckpt, "1", out)      # two more on 3 ranks
    _assert_same_params(ref_model, out)
    assert len(json.load(open(out + ".json"))["train_loss"]) == 3


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_trainer_mixed_precision_on_two_ranks(on_the_cpu, tmp_path, amp):
    # half-precision products differ from one process's only by rounding; the scaler's
    # state (fp16) travels in the checkpoint
    ref_model, ref_hist = _single(2, amp=amp)
    ckpt, out = str(tmp_path / "ckpt.tfw"), str(tmp_path / "params.npz")
    _launch(tmp_path, 2, _WORKER, "2", ckpt, "0", out, amp)
    got = np.load(out)
    for k, v in ref_model.state_dict().items():
        np.testing.assert_allclose(got[k], v.cpu().numpy(), rtol=5e-2, atol=5e-3, err_msg=k)
    hist = json.load(open(out + ".json"))
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    state = tinyfw.load(ckpt)
    assert (state["scaler"] is not None) == (amp == "fp16")
    if amp == "fp16":
        assert state["scaler"]["scale"] > 0


def test_trainer_checkpoint_of_another_run_is_refused(tmp_path):
    ckpt = str(tmp_path / "ckpt.tfw")
    _single(1, ckpt)
    ns: dict = {}
    exec(_COMMON, ns)
    train_set, _ = ns["data"]()
    m, opt = ns["model_and_opt"]()
    t = tinyfw.distributed.Trainer(m, opt, nn.CrossEntropyLoss(), train_set, epochs=2,
                                   batch_size=16, checkpoint=ckpt, show_progress=False, log=None)
    with pytest.raises(ValueError, match="batch_size 24"):
        t.fit(resume=True)
    tinyfw.save({"something": 1}, ckpt)
    with pytest.raises(ValueError, match="not a Trainer checkpoint"):
        t.fit(resume=True)


def test_trainer_batches_partition_each_epoch():
    from tinyfw.distributed.trainer import _GlobalBatchShard

    for world in (1, 2, 3):
        seen = []
        shards = [_GlobalBatchShard(50, 8, r, world, seed=3, shuffle=True, drop_last=False)
                  for r in range(world)]
        for s in shards:
            s.epoch = 1
        per_rank = [list(s) for s in shards]
        # the last global batch (2 samples) is kept only where every rank gets one
        steps = 7 if world <= 2 else 6
        assert all(len(p) == steps for p in per_rank)
        for step in range(steps):
            batch = sorted(i for r in range(world) for i in per_rank[r][step])
            seen += batch
            assert len(batch) == (8 if step < 6 else 2)
        assert len(seen) == len(set(seen)) == (50 if world <= 2 else 48)  # each sample once
        assert set(seen) <= set(range(50))
    # the global batches are the same whatever the world size
    one = [sorted(b) for b in _GlobalBatchShard(50, 8, 0, 1, 3, True, False)]
    two = [sorted(a + b) for a, b in zip(_GlobalBatchShard(50, 8, 0, 2, 3, True, False),
                                         _GlobalBatchShard(50, 8, 1, 2, 3, True, False))]
    assert one == two


def test_trainer_rejects_bad_arguments():
    m = nn.Linear(2, 2)
    opt = tinyfw.optim.SGD(m.parameters(), lr=0.1)
    data = tinyfw.data.TensorDataset(tinyfw.zeros(4, 2), tinyfw.zeros(4, dtype=tinyfw.int64))
    with pytest.raises(ValueError, match="amp"):
        tinyfw.distributed.Trainer(m, opt, nn.CrossEntropyLoss(), data, amp="fp8")
    with pytest.raises(ValueError, match="epochs"):
        tinyfw.distributed.Trainer(m, opt, nn.CrossEntropyLoss(), data, epochs=0)


_PIPE_WORKER = textwrap.dedent("""
    import sys, numpy as np, tinyfw
    from tinyfw import nn
    import tinyfw.distributed as dist
    dist.init_process_group("shm")
    tinyfw.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.GELU(),
                          nn.Linear(16, 3))
    names = list(model.state_dict())
    pipe = dist.Pipeline(model, chunks=int(sys.argv[1]))
    opt = tinyfw.optim.SGD(pipe.parameters(), lr=0.1)
    rng = np.random.default_rng(1)
    losses = []
    for _ in range(3):
        x = tinyfw.tensor(rng.standard_normal((10, 6)).astype(np.float32))
        y = tinyfw.tensor(rng.integers(0, 3, 10))
        opt.zero_grad()
        losses.append(pipe.train_step(x, y, nn.CrossEntropyLoss()))
        opt.step()
    mine = {k: v.cpu().numpy() for k, v in model.state_dict().items()
            if int(k.split(".")[0]) in pipe.layers}
    np.savez(sys.argv[2] + f".{dist.get_rank()}.npz", losses=np.array(losses), **mine)
    dist.destroy_process_group()
""")


@pytest.mark.parametrize("nproc,chunks", [(2, 3), (3, 2)])
def test_pipeline_equals_one_process(on_the_cpu, tmp_path, nproc, chunks):
    rng = np.random.default_rng(1)
    tinyfw.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.GELU(),
                          nn.Linear(16, 3))
    opt = tinyfw.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(3):
        x = tinyfw.tensor(rng.standard_normal((10, 6)).astype(np.float32))
        y = tinyfw.tensor(rng.integers(0, 3, 10))
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out = str(tmp_path / "pipe")
    _launch(tmp_path, nproc, _PIPE_WORKER, str(chunks), out)
    got: dict = {}
    for r in range(nproc):
        f = np.load(out + f".{r}.npz")
        np.testing.assert_allclose(f["losses"], losses, rtol=1e-5)
        got.update({k: f[k] for k in f.files if k != "losses"})
    ref = model.state_dict()
    assert set(got) == set(ref)
    for k, v in ref.items():
        np.testing.assert_allclose(got[k], v.cpu().numpy(), rtol=2e-5, atol=2e-6, err_msg=k)


def test_pipeline_rejects_bad_splits():
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="nn.Sequential"):
        tinyfw.distributed.Pipeline(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="chunks"):
        tinyfw.distributed.Pipeline(model, chunks=0)
    with pytest.raises(ValueError, match="balance"):
        tinyfw.distributed.Pipeline(model, balance=[2])
    pipe = tinyfw.distributed.Pipeline(model, chunks=4)
    with pytest.raises(ValueError, match="micro-batches"):
        pipe.train_step(tinyfw.zeros(3, 2), tinyfw.zeros(3, dtype=tinyfw.int64),
                        nn.CrossEntropyLoss())
