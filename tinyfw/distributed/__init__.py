"""tinyfw.distributed: process groups and collectives (PyTorch's ``torch.distributed``
shape), for data-parallel training on one machine (``shm``) or many (``mpi``).

    # python -m tinyfw.distributed.run --nproc 2 train.py     (or: mpiexec -n 2 python train.py)
    import tinyfw.distributed as dist
    dist.init_process_group()              # the backend, rank and world size from the env
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    work = dist.all_reduce(t, async_op=True); ...; work.wait()

Collectives act in place on CPU tensors (contiguous or not) of float32/float64/float16/
bfloat16 (and integer types; avg needs floats).  Every rank must call the same
collectives in the same order with tensors of the same sizes; a mismatch, a dead or hung
peer, or the group's timeout raises a :class:`DistributedError` (never a hang).
"""
from __future__ import annotations

import atexit
import enum
import getpass
import os
from datetime import timedelta

import numpy as np

from ..backend import cpu as _K
from ._segment import DistributedError, shm_dir
from ._work import Executor, Work

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available",
           "get_rank", "get_world_size", "get_backend", "barrier", "all_reduce", "broadcast",
           "all_gather", "reduce_scatter", "send", "recv", "ReduceOp", "Work",
           "DistributedError"]

DEFAULT_TIMEOUT = 300.0  # seconds; TINYFW_DIST_TIMEOUT overrides


class ReduceOp(enum.Enum):
    """How all_reduce / reduce_scatter combine the ranks' values."""
    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"


class _State:
    group = None           # ShmGroup | MpiGroup
    executor: Executor | None = None  # the collectives, in call order
    # point-to-point messages: one queue per (direction, peer), so an isend to one rank
    # never waits behind a recv from another (isend then recv round a ring must not deadlock)
    p2p: dict = {}
    seq = 0                # collectives called so far (tags the messages of the next one)
    pid = 0                # the process that joined


_S = _State()


def is_available() -> bool:
    """Always True: the shm backend needs nothing beyond the standard library."""
    return True


def is_initialized() -> bool:
    """Whether init_process_group has run (and destroy_process_group has not)."""
    return _S.group is not None


def _env_int(*names: str) -> int | None:
    for n in names:
        if os.environ.get(n, "") != "":
            return int(os.environ[n])
    return None


def _under_mpiexec() -> bool:
    return any(k in os.environ for k in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK",
                                         "PMIX_RANK", "MPI_LOCALRANKID"))


def _seconds(timeout) -> float:
    if timeout is None:
        return float(os.environ.get("TINYFW_DIST_TIMEOUT", DEFAULT_TIMEOUT))
    if isinstance(timeout, timedelta):
        return timeout.total_seconds()
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"init_process_group: timeout must be a positive number of seconds "
                         f"or a timedelta, got {timeout!r}")
    return float(timeout)


def _rendezvous_path(world: int) -> str:
    name = os.environ.get("TINYFW_DIST_RDZV")
    if not name:
        port = os.environ.get("MASTER_PORT")
        if port is None and world > 1:
            raise RuntimeError("init_process_group(backend='shm'): no rendezvous: start the "
                               "workers with python -m tinyfw.distributed.run, or set "
                               "MASTER_PORT (or TINYFW_DIST_RDZV) to the same value in every "
                               "worker")
        host = os.environ.get("MASTER_ADDR", "127.0.0.1")
        name = f"tinyfw-{getpass.getuser()}-{host}-{port or os.getpid()}"
    if "/" in name:
        raise ValueError(f"init_process_group: rendezvous name {name!r} contains '/'")
    return os.path.join(shm_dir(), name)


def init_process_group(backend: str | None = None, timeout=None, rank: int | None = None,
                       world_size: int | None = None) -> None:
    """Join the default process group.

    `backend`: ``"shm"`` (processes of one machine, started by ``python -m
    tinyfw.distributed.run``) or ``"mpi"`` (mpi4py; started by ``mpiexec``); None picks
    ``mpi`` under mpiexec (MPICH's PMI_RANK/PMI_SIZE, Open MPI's OMPI_COMM_WORLD_*) and
    ``shm`` otherwise.  `rank`/`world_size` default to the RANK/WORLD_SIZE environment
    variables the launcher sets.  `timeout` (seconds or a timedelta; default 300 s or
    TINYFW_DIST_TIMEOUT) bounds every wait of every collective.
    """
    if _S.group is not None:
        raise RuntimeError("init_process_group: the default process group is already "
                           "initialized (call destroy_process_group first)")
    if backend is None:
        backend = "mpi" if _under_mpiexec() and "TINYFW_DIST_RDZV" not in os.environ else "shm"
    secs = _seconds(timeout)
    if backend == "mpi":
        from ._mpi import MpiGroup

        group = MpiGroup(secs)
        if rank is not None and rank != group.rank or world_size not in (None, group.world):
            raise ValueError(f"init_process_group: rank/world_size {rank}/{world_size} "
                             f"disagree with MPI's {group.rank}/{group.world}")
    elif backend == "shm":
        from ._shm import ShmGroup

        rank = _env_int("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK") if rank is None else rank
        world = (_env_int("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
                 if world_size is None else world_size)
        if world is None:
            rank, world = rank or 0, 1
        if rank is None:
            raise RuntimeError("init_process_group: WORLD_SIZE is set but RANK is not")
        if not (isinstance(world, int) and world >= 1 and isinstance(rank, int)
                and 0 <= rank < world):
            raise ValueError(f"init_process_group: rank {rank} is not in [0, world_size "
                             f"{world})")
        nslots = int(os.environ.get("TINYFW_SHM_SLOTS", 4))
        # 4 MiB: a ring step costs ~0.1 ms of Python and waits whatever its size, so 1 MiB
        # slots made a 64 MiB all_reduce of 2 ranks 19.4 ms against 15.5 (8 MiB: no faster)
        slot_bytes = int(os.environ.get("TINYFW_SHM_SLOT_BYTES", 4 << 20))
        if not 1 <= nslots <= 32 or slot_bytes < 4096 or slot_bytes % 4096:
            raise ValueError("TINYFW_SHM_SLOTS must be in [1, 32] and TINYFW_SHM_SLOT_BYTES a "
                             "multiple of 4096")
        beat = float(os.environ.get("TINYFW_DIST_HEARTBEAT_TIMEOUT", 60.0))
        group = ShmGroup(rank, world, _rendezvous_path(world), secs, nslots, slot_bytes, beat)
    else:
        raise ValueError(f"init_process_group: unknown backend {backend!r}; choose 'shm' or "
                         "'mpi'")
    _S.group, _S.executor, _S.seq, _S.p2p = group, Executor(), 0, {}
    _S.pid = os.getpid()


def destroy_process_group() -> None:
    """Finish queued collectives, leave the group and release its shared memory."""
    group, ex = _S.group, _S.executor
    if group is None:
        return
    _S.group = _S.executor = None
    if _S.pid != os.getpid():
        # a forked child (a DataLoader worker, say) exiting through atexit: the group is
        # its parent's; marking the rank as gone would stop the peers
        _S.p2p = {}
        return
    try:
        for q in _S.p2p.values():
            q.stop()
        ex.stop()
    finally:
        _S.p2p = {}
        group.close()


atexit.register(destroy_process_group)  # peers see this rank leave instead of waiting


def _group():
    if _S.group is None:
        raise RuntimeError("tinyfw.distributed: the default process group is not "
                           "initialized; call init_process_group() first")
    return _S.group


def get_rank() -> int:
    """This process's rank in the default group."""
    return _group().rank


def get_world_size() -> int:
    """The number of processes in the default group."""
    return _group().world


def get_backend() -> str:
    """``"shm"`` or ``"mpi"``."""
    return _group().backend


def barrier() -> None:
    """Return once every rank has called barrier (after this rank's queued collectives)."""
    g = _group()
    _drain_p2p()
    _S.executor.run(g.barrier)


def _drain_p2p() -> None:
    # collectives and point-to-point messages share the pipes: program order between them
    for q in _S.p2p.values():
        q.drain()


# -- tensors in, flat arrays out ------------------------------------------------------
def _array(t, op: str, *, floating: bool = False) -> np.ndarray:
    from ..tensor import Tensor

    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a tinyfw Tensor, got {type(t).__name__}")
    if type(t._data) is not np.ndarray:
        raise ValueError(f"{op}: collectives run on CPU tensors, this one is on "
                         f"'{t.device}'; move it with .cpu() first")
    if floating and t._data.dtype.kind not in "fiu" and t._data.dtype.name != "bfloat16":
        raise TypeError(f"{op}: cannot reduce tensors of dtype {t.dtype.name}")
    return t._data


def _flat(a: np.ndarray):
    """A flat contiguous array with a's values, and a function that writes it back."""
    if a.flags.c_contiguous:
        return a.reshape(-1), (lambda: None)
    tmp = np.empty(a.shape, a.dtype)
    _K.copy_(tmp, a)
    return tmp.reshape(-1), (lambda: _K.copy_(a, tmp))


def _bump(*tensors) -> None:
    for t in tensors:
        t._version[0] += 1  # written in place: saved copies for backward are now stale


def _launch(fn, async_op: bool):
    g = _group()
    _drain_p2p()
    _S.seq += 1
    seq = _S.seq
    if async_op:
        return _S.executor.submit(lambda: fn(g, seq))
    _S.executor.run(lambda: fn(g, seq))
    return None


def _op(op) -> str:
    if isinstance(op, ReduceOp):
        return op.value
    raise ValueError(f"unknown reduce op {op!r}; use tinyfw.distributed.ReduceOp.SUM, AVG, "
                     "MAX or MIN")


def all_reduce(tensor, op: ReduceOp = ReduceOp.SUM, async_op: bool = False):
    """tensor <- op over every rank's tensor, in place on every rank."""
    name = _op(op)
    a = _array(tensor, "all_reduce", floating=True)
    if name == "avg" and a.dtype.kind in "iu":
        raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating tensor, got "
                        f"{tensor.dtype.name}")
    _bump(tensor)

    def run(g, seq):
        flat, back = _flat(a)
        g.all_reduce(flat, name, seq)
        back()
    return _launch(run, async_op)


def broadcast(tensor, src: int = 0, async_op: bool = False):
    """tensor <- rank `src`'s tensor, on every rank."""
    a = _array(tensor, "broadcast")
    _check_rank(src, "broadcast", "src")
    _bump(tensor)

    def run(g, seq):
        flat, back = _flat(a)
        g.broadcast(flat, src, seq)
        back()
    return _launch(run, async_op)


def _check_rank(r, op: str, arg: str) -> None:
    n = get_world_size()
    if not isinstance(r, int) or not 0 <= r < n:
        raise ValueError(f"{op}: {arg}={r!r} is not a rank of this group (world size {n})")


def _same(ts, like, op: str, what: str) -> list:
    n = get_world_size()
    if not isinstance(ts, (list, tuple)) or len(ts) != n:
        raise ValueError(f"{op}: {what} must be a list of world_size ({n}) tensors")
    arrays = [_array(t, op) for t in ts]
    for t in ts:
        if t.shape != like.shape or t.dtype is not like.dtype:
            raise ValueError(f"{op}: every tensor of {what} must have the shape "
                             f"{tuple(like.shape)} and dtype {like.dtype.name}, got "
                             f"{tuple(t.shape)} {t.dtype.name}")
    return arrays


def all_gather(tensor_list: list, tensor, async_op: bool = False):
    """tensor_list[i] <- rank i's tensor, on every rank."""
    a = _array(tensor, "all_gather")
    outs = _same(tensor_list, tensor, "all_gather", "tensor_list")
    _bump(*tensor_list)

    def run(g, seq):
        flat, _ = _flat(a)
        buf = np.empty(len(outs) * a.size, a.dtype)
        g.all_gather(buf, flat, seq)
        for i, o in enumerate(outs):
            _K.copy_(o, buf[i * a.size:(i + 1) * a.size].reshape(a.shape))
    return _launch(run, async_op)


def reduce_scatter(output, input_list: list, op: ReduceOp = ReduceOp.SUM,
                   async_op: bool = False):
    """output <- op over every rank's input_list[rank] (rank r gets the r-th part)."""
    name = _op(op)
    out = _array(output, "reduce_scatter", floating=True)
    ins = _same(input_list, output, "reduce_scatter", "input_list")
    if name == "avg" and out.dtype.kind in "iu":
        raise TypeError("reduce_scatter: ReduceOp.AVG needs a floating tensor")
    _bump(output)

    def run(g, seq):
        inp = np.empty(len(ins) * out.size, out.dtype)
        for i, x in enumerate(ins):
            _K.copy_(inp[i * out.size:(i + 1) * out.size].reshape(out.shape), x)
        flat, back = _flat(out)
        g.reduce_scatter(flat, inp, name, seq)
        back()
    return _launch(run, async_op)


def _check_tag(tag) -> int:
    if not isinstance(tag, int) or not 0 <= tag < 2**31:
        raise ValueError(f"send/recv: tag must be an int in [0, 2**31), got {tag!r}")
    return tag


def send(tensor, dst: int, tag: int = 0, async_op: bool = False):
    """Send tensor to rank dst (it must call recv with src = this rank and the same tag)."""
    a = _array(tensor, "send")
    _check_rank(dst, "send", "dst")
    if dst == get_rank():
        raise ValueError("send: dst is this rank")
    tag = _check_tag(tag)

    def run(g, seq):
        g.send(_flat(a)[0], dst, tag)
    return _p2p(run, ("send", dst), async_op)


def recv(tensor, src: int, tag: int = 0, async_op: bool = False):
    """tensor <- what rank src sends with the same tag."""
    a = _array(tensor, "recv")
    _check_rank(src, "recv", "src")
    if src == get_rank():
        raise ValueError("recv: src is this rank")
    tag = _check_tag(tag)
    _bump(tensor)

    def run(g, seq):
        flat, back = _flat(a)
        g.recv(flat, src, tag)
        back()
    return _p2p(run, ("recv", src), async_op)


def _p2p(fn, key: tuple, async_op: bool):
    # point-to-point messages do not advance the collective count: only two ranks see them
    g = _group()
    _S.executor.drain()
    ex = _S.p2p.get(key)
    if ex is None:
        ex = _S.p2p[key] = Executor()
    if async_op:
        return ex.submit(lambda: fn(g, 0))
    ex.run(lambda: fn(g, 0))
    return None


from .trainer import Trainer  # noqa: E402  (the trainer and pipeline sit on the API above)
from .pipeline import Pipeline  # noqa: E402

__all__ += ["Trainer", "Pipeline"]
