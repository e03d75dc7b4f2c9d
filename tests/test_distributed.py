"""tinyfw.distributed end to end: real worker processes (N = 1, 2, 3) over shm (through
the launcher) and mpi (mpiexec), running tests/dist_worker.py: every collective and dtype
against numpy, results bit-identical on every rank, DDP parameters after k steps equal to
one process on the global batch (also with tiny buckets, gradient_as_bucket_view, no_sync
accumulation, find_unused_parameters, bf16 compression at bf16's precision), BatchNorm
buffers synchronised.  Plus the API's errors in this process (a group of one)."""
import pytest

import tinyfw as tf
import tinyfw.distributed as dist
from dist_util import WORKER, launch, mpiexec, run_mpi

CASES = ("collectives", "ddp")
# 4 KiB slots: the small tensors of the worker cross many ring blocks and pipe wraps
SMALL_SLOTS = {"TINYFW_SHM_SLOT_BYTES": 4096, "TINYFW_SHM_SLOTS": 2, "DIST_TEST_TIMEOUT": 30}


def _check(proc, backend: str, n: int) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for case in CASES:
        assert f"{case} ok ({backend}, {n})" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("n", [pytest.param(1, marks=pytest.mark.slow), 2, 3])
def test_shm(n):
    _check(launch(n, WORKER, *CASES, **SMALL_SLOTS), "shm", n)


@pytest.mark.parametrize("n", [2, 3])
def test_shm_with_one_slot_per_pipe(n):
    """One message slot per pipe: the all-gather ring deadlocked at 3 ranks (each rank held
    its neighbour's message while waiting for a free slot to pass it on), until the
    all-reduce's wait timed out; the reduce-scatter's sum written straight into the slot
    would have at 2."""
    _check(launch(n, WORKER, *CASES, **dict(SMALL_SLOTS, TINYFW_SHM_SLOTS=1)), "shm", n)


@pytest.mark.parametrize("n", [pytest.param(1, marks=pytest.mark.slow), 2, 3])
def test_mpi(n):
    if mpiexec() is None:
        pytest.skip("mpi4py/mpiexec not installed (pip install mpi4py mpich)")
    _check(run_mpi(n, WORKER, *CASES, DIST_TEST_TIMEOUT=30), "mpi", n)


@pytest.fixture
def group_of_one(monkeypatch, on_the_cpu):
    # collectives run on CPU tensors, whatever device the suite runs on
    for k in ("RANK", "WORLD_SIZE", "TINYFW_DIST_RDZV", "PMI_RANK", "PMI_SIZE"):
        monkeypatch.delenv(k, raising=False)
    dist.init_process_group(backend="shm", timeout=5)
    yield
    dist.destroy_process_group()


def test_group_of_one(group_of_one):
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    t = tf.tensor([1.0, 2.0])
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    assert t.tolist() == [1.0, 2.0]
    out = [tf.zeros(2)]
    dist.all_gather(out, t)
    assert out[0].tolist() == [1.0, 2.0]
    assert dist.all_reduce(t, async_op=True).wait()
    dist.barrier()
    with pytest.raises(RuntimeError, match="already initialized"):
        dist.init_process_group()


def test_errors_name_the_problem(group_of_one):
    with pytest.raises(TypeError, match="expected a tinyfw Tensor"):
        dist.all_reduce([1.0])
    with pytest.raises(TypeError, match="AVG needs a floating"):
        dist.all_reduce(tf.tensor([1, 2]), op=dist.ReduceOp.AVG)
    with pytest.raises(ValueError, match="unknown reduce op"):
        dist.all_reduce(tf.zeros(2), op="sum")
    with pytest.raises(ValueError, match="src=1 is not a rank"):
        dist.broadcast(tf.zeros(2), src=1)
    with pytest.raises(ValueError, match="list of world_size"):
        dist.all_gather([tf.zeros(2), tf.zeros(2)], tf.zeros(2))
    with pytest.raises(ValueError, match="shape"):
        dist.all_gather([tf.zeros(3)], tf.zeros(2))
    with pytest.raises(ValueError, match="on 'meta'"):
        dist.all_reduce(tf.zeros(2, device="meta"))
    with pytest.raises(ValueError, match="dst is this rank"):
        dist.send(tf.zeros(2), 0)


def test_not_initialized_and_bad_arguments(monkeypatch, on_the_cpu):
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="not initialized"):
        dist.get_rank()
    with pytest.raises(ValueError, match="unknown backend"):
        dist.init_process_group(backend="gloo")
    with pytest.raises(ValueError, match="timeout"):
        dist.init_process_group(timeout=-1)
    monkeypatch.delenv("TINYFW_DIST_RDZV", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(RuntimeError, match="no rendezvous"):
        dist.init_process_group(backend="shm", rank=0, world_size=2)
    with pytest.raises(ValueError, match="rank 3 is not in"):
        dist.init_process_group(backend="shm", rank=3, world_size=2)
    with pytest.raises(RuntimeError, match="init_process_group"):
        tf.nn.parallel.DistributedDataParallel(tf.nn.Linear(2, 2))
