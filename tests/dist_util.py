"""Helpers of the distributed tests: start real worker processes (through the launcher,
mpiexec, or by hand with the launcher's environment) and collect what they print."""
from __future__ import annotations

import importlib.util
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKER = str(ROOT / "tests" / "dist_worker.py")


def env(**extra) -> dict:
    """The environment of a worker: this checkout's tinyfw first on the path."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in
                                                     e.get("PYTHONPATH", "").split(os.pathsep) if p])
    e.pop("TINYFW_DEVICE", None)
    e.update({k: str(v) for k, v in extra.items()})
    return e


def mpiexec() -> str | None:
    """The mpiexec next to this interpreter (the PyPI mpich wheel) or on PATH, when mpi4py
    is importable; else None."""
    if importlib.util.find_spec("mpi4py") is None:
        return None
    here = pathlib.Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def launch(nproc: int, script: str, *args: str, timeout: float = 60, **extra):
    """python -m tinyfw.distributed.run --nproc N script args; the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "tinyfw.distributed.run", "--nproc",
                           str(nproc), script, *args], env=env(**extra), capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def run_mpi(nproc: int, script: str, *args: str, timeout: float = 60, **extra):
    """mpiexec -n N python script args; the CompletedProcess."""
    return subprocess.run([mpiexec(), "-n", str(nproc), sys.executable, script, *args],
                          env=env(**extra), capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def write_script(tmp_path, body: str) -> str:
    """A worker script: tinyfw.distributed imported as dist, the group initialised with
    the timeout DIST_TIMEOUT (seconds), then `body`."""
    path = tmp_path / f"w{secrets.token_hex(3)}.py"
    path.write_text("import os, sys, time, signal\nimport tinyfw as tf\n"
                    "import tinyfw.distributed as dist\n"
                    "dist.init_process_group(timeout=float(os.environ['DIST_TIMEOUT']))\n"
                    "r, n = dist.get_rank(), dist.get_world_size()\n" + textwrap.dedent(body))
    return str(path)


def start_by_hand(nproc: int, script: str, **extra) -> list:
    """The workers as the launcher would start them, without its supervision (so a test
    sees what the survivors of a failure do by themselves): a list of Popen."""
    rdzv = f"tinyfw-test-{os.getpid()}-{secrets.token_hex(4)}"
    return [subprocess.Popen([sys.executable, script],
                             env=env(RANK=r, WORLD_SIZE=nproc, TINYFW_DIST_RDZV=rdzv,
                                     OMP_NUM_THREADS=1, **extra),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
            for r in range(nproc)]
