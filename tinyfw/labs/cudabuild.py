"""Build a lab's CUDA source and run it: on a GPU when one is here (nvcc), otherwise on the
CUDA emulator (the host C++ compiler and ``tinyfw/labs/cuda/cuda_emu.h``).

The same ``.cu`` file serves both: it includes ``cuda_lab.h`` (in `INCLUDE`) and launches
with ``LAUNCH(kernel, grid, block, args...)``.  Calls into the built library go through a
`Worker` process, so that a kernel that crashes or never ends fails one test with a
message instead of taking the grader down.
"""
from __future__ import annotations

import functools
import hashlib
import os
import pathlib
import pickle
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

INCLUDE = pathlib.Path(__file__).resolve().parent / "cuda"
BACKEND_ENV = "TINYFW_LAB_CUDA"  # "emu" or "gpu": force a back end
ARCH_ENV = "TINYFW_CUDA_ARCH"  # e.g. "90": build for sm_90 instead of nvcc's -arch=native
_WORKER = pathlib.Path(__file__).resolve().parent / "cuda_worker.py"


class BuildError(RuntimeError):
    """The source does not compile (the message holds the compiler's first errors)."""


class KernelError(RuntimeError):
    """The library reported an error: a bad launch, a divergent barrier, a CUDA error."""


class KernelCrash(RuntimeError):
    """The worker process died (a signal) or did not answer in time."""


@dataclass(frozen=True)
class Backend:
    """Where kernels run: "gpu" (nvcc, a CUDA device) or "emu"; `why` says how it was chosen."""
    name: str
    why: str


@functools.lru_cache(maxsize=None)
def gpu_name() -> str | None:
    """The first GPU nvidia-smi lists, or None when there is none (or no nvidia-smi)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return names[0] if out.returncode == 0 and names else None


def nvcc() -> str | None:
    """nvcc's path when it is on PATH."""
    return shutil.which("nvcc")


def cxx() -> str | None:
    """The host C++ compiler ($CXX, else c++ or g++) when there is one."""
    for name in (os.environ.get("CXX"), "c++", "g++"):
        if name and (path := shutil.which(name)):
            return path
    return None


def backend() -> Backend:
    """The GPU when nvidia-smi finds one and nvcc is on PATH, else the emulator;
    ``TINYFW_LAB_CUDA=emu|gpu`` forces one (gpu without a GPU is a BuildError)."""
    forced = os.environ.get(BACKEND_ENV, "").strip().lower()
    if forced not in ("", "emu", "gpu"):
        raise BuildError(f"{BACKEND_ENV}={forced!r}: expected 'emu' or 'gpu'")
    if forced == "emu":
        return Backend("emu", f"{BACKEND_ENV}=emu")
    gpu, nv = gpu_name(), nvcc()
    if gpu and nv:
        return Backend("gpu", gpu)
    if forced == "gpu":
        raise BuildError(f"{BACKEND_ENV}=gpu but " + ("nvcc is not on PATH" if gpu
                                                       else "nvidia-smi finds no GPU"))
    return Backend("emu", f"a GPU ({gpu}) but no nvcc on PATH" if gpu else "no GPU found")


def _errors(text: str, folders=(), limit: int = 2500) -> str:
    """The compiler's error lines first (the grade table shows the start of a message),
    with the source files' `folders` left out of their paths."""
    for folder in folders:
        text = text.replace(f"{folder}{os.sep}", "")
    lines = text.splitlines()
    first = [ln.strip() for ln in lines if "error" in ln.lower()]
    return "; ".join(first[:6])[:limit] + ("\n" + text[-limit:] if text else "")


def nvcc_check(src: pathlib.Path) -> None:
    """Compile `src` with ``nvcc -c`` (no GPU needed): code that the emulator accepts but
    nvcc rejects raises BuildError "does not compile with nvcc: ..."."""
    src = pathlib.Path(src)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [nvcc(), "-c", "-std=c++17", "-arch=sm_80", "-x", "cu", f"-I{INCLUDE}",
               str(src), "-o", str(pathlib.Path(tmp) / "check.o")]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise BuildError(f"{src.name} does not compile with nvcc: "
                         f"{_errors(done.stderr, [src.resolve().parent])}")


def _command(be: Backend, sources: list, target: pathlib.Path) -> list:
    if be.name == "gpu":
        arch = os.environ.get(ARCH_ENV)
        return [nvcc(), "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC",
                f"-arch=sm_{arch}" if arch else "-arch=native", "-Xlinker", "-z,defs",
                f"-I{INCLUDE}", "-x", "cu", *map(str, sources), "-o", str(target)]
    compiler = cxx()
    if compiler is None:
        raise BuildError("no C++ compiler (c++, g++ or $CXX) to build the CUDA emulator with")
    # -z defs: a missing function is an error now, naming it, not at load time
    return [compiler, "-O2", "-std=c++17", "-shared", "-fPIC", "-Wl,-z,defs", f"-I{INCLUDE}",
            "-x", "c++", *map(str, sources), "-o", str(target)]


def build(sources: list, out_dir: pathlib.Path, name: str, be: Backend | None = None
          ) -> pathlib.Path:
    """Compile and link `sources` (.cu files) into a shared library in `out_dir` for the
    back end `be` (default: `backend()`); reused while the sources, headers and command
    are unchanged.  BuildError with the compiler's errors when it fails."""
    be = be or backend()
    sources = [pathlib.Path(s).resolve() for s in sources]
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256()
    for f in [*sources, *sorted(INCLUDE.glob("*.h"))]:
        key.update(f.read_bytes())
    key.update(repr(_command(be, sources, pathlib.Path("x"))).encode())
    target = out_dir / f"{name}-{be.name}-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run(_command(be, sources, tmp), capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        what = "nvcc" if be.name == "gpu" else "the host compiler (CUDA emulator)"
        names = ", ".join(s.name for s in sources)
        folders = sorted({s.parent for s in sources}, key=lambda p: -len(str(p)))
        raise BuildError(f"{names} does not build with {what}: {_errors(done.stderr, folders)}")
    os.replace(tmp, target)
    for old in out_dir.glob(f"{name}-{be.name}-*.so"):  # earlier versions of the sources
        if old != target:
            old.unlink(missing_ok=True)
    return target


class Worker:
    """A process that loads the library `lib` and runs calls into it (see
    tinyfw/labs/cuda_worker.py).  A crash or a timeout raises KernelCrash and the next
    call starts a fresh process."""

    def __init__(self, lib: pathlib.Path, timeout: float = 120.0):
        self.lib, self.timeout = pathlib.Path(lib), timeout
        # the worker's stderr (a kernel's printf, a crash's last words); one per process, as
        # two gradings may share a build folder
        self.log = self.lib.with_name(f"{self.lib.stem}.{os.getpid()}.log")
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, str(_WORKER), str(self.lib)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log)
        rc, msg, _ = self._receive(60.0, "loading the library")
        if rc != 0:
            self.close()
            raise KernelError(msg)

    def _read_exact(self, n: int, deadline: float, what: str) -> bytes:
        fd, out = self.proc.stdout.fileno(), b""
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self._die(f"did not finish in {self.timeout:.0f} s while {what} "
                          "(an endless loop, or a wait that never ends?)", kill=True)
            chunk = os.read(fd, n - len(out))
            if not chunk:
                self._die(f"crashed while {what}")
            out += chunk
        return out

    def _receive(self, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        (size,) = struct.unpack("<Q", self._read_exact(8, deadline, what))
        return pickle.loads(self._read_exact(size, deadline, what))

    def _die(self, what: str, kill: bool = False):
        proc, self.proc = self.proc, None
        if kill:
            proc.kill()
        rc = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        how = f" ({signal.Signals(-rc).name})" if rc < 0 and -rc in signal.valid_signals() else ""
        hint = ""
        if rc == -signal.SIGSEGV or rc == -signal.SIGBUS:
            hint = ": an access outside the buffers (a missing bounds check?) or a stack overflow"
        tail = self.log.read_text(errors="replace")[-600:].strip() if self.log.exists() else ""
        raise KernelCrash(f"the kernels' process {what}{how}{hint}"
                          + (f"; its output ends: {tail}" if tail else ""))

    def call(self, symbol: str, *args, timeout: float | None = None) -> list:
        """Call `symbol`(args..., err, errlen) in the worker; returns the array arguments as
        they are after the call.  KernelError with the library's message when it returns
        non-zero."""
        if self.proc is None:
            self._start()
        data = pickle.dumps((symbol, list(args)), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.proc.stdin.write(struct.pack("<Q", len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._die(f"had died before {symbol}")
        rc, msg, arrays = self._receive(timeout or self.timeout, f"running {symbol}")
        if rc != 0:
            raise KernelError(msg or f"{symbol} failed (code {rc})")
        return arrays

    def close(self) -> None:
        """Stop the worker process (and remove its log)."""
        if self.proc is not None:
            proc, self.proc = self.proc, None
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        self.log.unlink(missing_ok=True)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
