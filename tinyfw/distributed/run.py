"""The launcher: ``python -m tinyfw.distributed.run --nproc N script.py args...``.

As torchrun does, it starts N copies of the script with RANK, LOCAL_RANK, WORLD_SIZE,
LOCAL_WORLD_SIZE, MASTER_ADDR/MASTER_PORT and a fresh shm rendezvous name
(TINYFW_DIST_RDZV) in their environment, and OMP_NUM_THREADS=1 unless it is set (N
processes on the cores already).  Then it watches them:

- when one fails (non-zero exit or a signal), the others are stopped (SIGTERM, then
  SIGKILL after a grace period), its traceback and exit code are shown, and the launcher
  exits with that code (128 + n for signal n);
- Ctrl-C (SIGINT) or SIGTERM to the launcher stops every worker;
- shared-memory segments the run left behind (a worker killed before the group was
  complete) are unlinked at the end.

Under ``mpiexec`` this launcher is not needed: the script's init_process_group() picks
the mpi backend by itself.
"""
from __future__ import annotations

import argparse
import glob
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time

from ._segment import shm_dir

GRACE = 5.0  # seconds a stopped worker gets between SIGTERM and SIGKILL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _stop(procs: list, first_signal: int) -> None:
    """Signal every live worker, then SIGKILL those still alive after GRACE seconds."""
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(first_signal)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + GRACE
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _parse(argv: list) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m tinyfw.distributed.run",
        description="Start N worker processes of a training script on this machine.")
    ap.add_argument("--nproc", "--nproc-per-node", "--nproc_per_node", type=int, default=1,
                    dest="nproc", help="number of worker processes (default 1)")
    ap.add_argument("--master-port", type=int, default=None,
                    help="MASTER_PORT given to the workers (default: a free port)")
    ap.add_argument("script", help="the training script")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    ns = ap.parse_args(argv)
    if ns.nproc < 1:
        ap.error(f"--nproc must be >= 1, got {ns.nproc}")
    if not os.path.isfile(ns.script):
        ap.error(f"no such script: {ns.script}")
    return ns


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        self.signum = signum


def main(argv: list | None = None) -> int:
    """Run the workers; return the launcher's exit status."""
    ns = _parse(sys.argv[1:] if argv is None else argv)
    rdzv = f"tinyfw-{os.getpid()}-{secrets.token_hex(4)}"
    errdir = tempfile.mkdtemp(prefix="tinyfw-run-")
    base = dict(os.environ, WORLD_SIZE=str(ns.nproc), LOCAL_WORLD_SIZE=str(ns.nproc),
                MASTER_ADDR="127.0.0.1", MASTER_PORT=str(ns.master_port or _free_port()),
                TINYFW_DIST_RDZV=rdzv)
    if ns.nproc > 1 and "OMP_NUM_THREADS" not in os.environ:
        base["OMP_NUM_THREADS"] = "1"
    procs: list = []

    def on_term(signum, frame):
        raise _Stop(signum)

    old_term = signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C must stop the run even where SIGINT arrives ignored (a job started in the
    # background with `&` inherits SIG_IGN, and Python then installs no handler)
    old_int = signal.signal(signal.SIGINT, on_term)
    status = 0
    try:
        for r in range(ns.nproc):
            env = dict(base, RANK=str(r), LOCAL_RANK=str(r),
                       TINYFW_DIST_ERROR_FILE=os.path.join(errdir, f"rank{r}.txt"))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tinyfw.distributed._entry", ns.script, *ns.args],
                env=env))
        status = _watch(procs, errdir)
    except (KeyboardInterrupt, _Stop) as e:
        signum = e.signum if isinstance(e, _Stop) else signal.SIGINT
        print(f"tinyfw.distributed.run: {signal.Signals(signum).name} received, stopping "
              f"{len(procs)} workers", file=sys.stderr, flush=True)
        _stop(procs, signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)
        status = 128 + signum
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
        for path in glob.glob(os.path.join(shm_dir(), rdzv + "*")):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        for f in glob.glob(os.path.join(errdir, "*")):
            os.unlink(f)
        os.rmdir(errdir)
    return status


def _cause(failed: list, codes: list, errdir: str) -> int:
    """Which of the failed ranks to report: workers that fail together usually fail
    because of one of them, so a killed worker first, then one whose error is not a
    DistributedError (the peers' reaction to it), then the lowest rank."""
    for r in failed:
        if codes[r] < 0:
            return r
    for r in failed:
        if not _is_reaction(r, errdir):
            return r
    return failed[0]


def _is_reaction(r: int, errdir: str) -> bool:
    """Whether rank r failed with a DistributedError (a peer failed first)."""
    path = os.path.join(errdir, f"rank{r}.txt")
    if not os.path.exists(path):
        return False
    with open(path) as f:
        return "DistributedError" in f.read()


def _watch(procs: list, errdir: str) -> int:
    """Wait for the workers; on the first failure stop the rest and report it."""
    while True:
        codes = [p.poll() for p in procs]
        failed = [r for r, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            r = _cause(failed, codes, errdir)
            if _is_reaction(r, errdir):
                # a peer's reaction to a failure: give the cause a moment to exit too
                end = time.monotonic() + 1.0
                while time.monotonic() < end and any(p.poll() is None for p in procs):
                    time.sleep(0.02)
                codes = [p.poll() for p in procs]
                r = _cause([q for q, c in enumerate(codes) if c not in (None, 0)], codes,
                           errdir)
            code = codes[r]
            _stop(procs, signal.SIGTERM)
            msg = [f"tinyfw.distributed.run: rank {r} (pid {procs[r].pid}) failed: "
                   f"{_describe(code)}; the other workers were stopped"]
            path = os.path.join(errdir, f"rank{r}.txt")
            if os.path.exists(path):
                with open(path) as f:
                    msg.append(f"--- traceback of rank {r} ---\n{f.read().rstrip()}")
            print("\n".join(msg), file=sys.stderr, flush=True)
            return code if code > 0 else 128 - code
        if all(c == 0 for c in codes):
            return 0
        time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main())
