"""How setup.py builds tinyfw._cuda: nvcc on each cuda/*.cu, g++ on the binding.

Kept out of setup.py (which loads this file with runpy) so the CPU build's logic stays
readable.  Rules (issue 13):

- built when TINYFW_CUDA=1 (an error if nvcc is missing), never when TINYFW_CUDA=0, and
  otherwise when nvcc is found AND a CUDA driver (libcuda.so.1) is installed, so a
  CPU-only ``pip install -e .`` does not wait for nvcc;
- the CUDA runtime is linked statically (cudart_static from the toolkit's lib64): the
  module imports on machines without a driver and reports that no device is there;
- each .cu is compiled on its own, in parallel, into build/cuda/; an object is rebuilt only
  when the hash of its source, the cuda/ headers, nvcc's version and the flags changed;
- TINYFW_CUDA_ARCH lists the architectures ("80;90" by default): SASS for each, plus
  PTX of the last so that newer GPUs can run the module through the driver's JIT.
"""
from __future__ import annotations

import concurrent.futures
import ctypes
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

SRC = "cuda"
OUT = os.path.join("build", "cuda")


def _driver_present() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


class CudaBuild:
    """The nvcc half of the build: compiles cuda/*.cu and links them into tinyfw._cuda."""

    def __init__(self, nvcc: str, archs: list[str], jobs: int):
        self.nvcc = nvcc
        self.archs = archs
        self.jobs = jobs
        self.top = self._toolkit_top()
        self.flags = ["-O3", "-std=c++17", "-Xcompiler", "-fPIC,-O2,-g0", "--expt-relaxed-constexpr",
                      "--extended-lambda",
                      # no a*b+c contraction: the results then match ref.py's numpy
                      # arithmetic bit for bit where ref is exact (tanh_backward, ...)
                      "-fmad=false", f"-I{SRC}"]
        for a in archs:
            self.flags.append(f"-gencode=arch=compute_{a},code=sm_{a}")
        self.flags.append(f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}")
        if os.environ.get("TINYFW_CUDA_SYNC_CHECK") == "1":  # wait after each launch
            self.flags.append("-DTINYFW_CUDA_SYNC_CHECK")

    @classmethod
    def from_environment(cls) -> "CudaBuild | None":
        """The build TINYFW_CUDA and the machine ask for, or None (no CUDA module)."""
        want = os.environ.get("TINYFW_CUDA", "")
        if want == "0":
            return None
        home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or ""
        nvcc = shutil.which("nvcc") or (os.path.join(home, "bin", "nvcc") if home else None)
        if nvcc and not os.path.exists(nvcc):
            nvcc = None
        if want == "1":
            if nvcc is None:
                raise SystemExit("TINYFW_CUDA=1 but nvcc was not found (put it on the PATH or set CUDA_HOME)")
        elif want:
            raise SystemExit(f"TINYFW_CUDA must be 1, 0 or unset, got {want!r}")
        elif nvcc is None or not _driver_present():
            return None
        archs = [a.strip().replace("sm_", "") for a in os.environ.get("TINYFW_CUDA_ARCH", "80;90").replace(",", ";").split(";") if a.strip()]
        for a in archs:
            if not re.fullmatch(r"\d+a?", a):
                raise SystemExit(f"TINYFW_CUDA_ARCH: {a!r} is not an architecture like 80 or 90")
        jobs = int(os.environ.get("TINYFW_BUILD_JOBS", "0") or 0) or os.cpu_count() or 1
        return cls(nvcc, archs, jobs)

    def _toolkit_top(self) -> str:
        # `nvcc --dryrun` prints the toolkit's root as "#$ TOP=..."; its lib64 has cudart_static
        r = subprocess.run([self.nvcc, "--dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
                           capture_output=True, text=True)
        m = re.search(r"^#\$ TOP=(.*)$", r.stdout + r.stderr, re.M)
        if not m:
            raise SystemExit(f"could not find the CUDA toolkit's folder from `{self.nvcc} --dryrun`")
        return os.path.normpath(m.group(1).strip())

    def extension(self, extension_class, flags: list[str]):
        """The pybind11 extension of the binding (g++ only: it includes no CUDA header)."""
        lib = os.path.join(self.top, "lib64")
        if not os.path.exists(os.path.join(lib, "libcudart_static.a")):
            lib = os.path.join(self.top, "targets", "x86_64-linux", "lib")
        return extension_class(
            "tinyfw._cuda", sorted(glob.glob(os.path.join(SRC, "*.cpp"))), include_dirs=[SRC],
            cxx_std=17, extra_compile_args=flags,
            extra_link_args=[f"-L{lib}", "-lcudart_static", "-lrt", "-lpthread", "-ldl"])

    def _key(self, src: str) -> str:
        h = hashlib.sha256()
        h.update(" ".join([self.nvcc] + self.flags).encode())
        h.update(self._nvcc_version().encode())
        for path in [src] + sorted(glob.glob(os.path.join(SRC, "*.h")) + glob.glob(os.path.join(SRC, "*.cuh"))):
            with open(path, "rb") as f:
                h.update(path.encode() + b"\0" + f.read())
        return h.hexdigest()

    _version = None

    def _nvcc_version(self) -> str:
        if CudaBuild._version is None:
            CudaBuild._version = subprocess.run([self.nvcc, "--version"], capture_output=True, text=True).stdout
        return CudaBuild._version

    def _compile_one(self, src: str) -> tuple[str, float, bool]:
        obj = os.path.join(OUT, os.path.basename(src)[:-3] + ".o")
        stamp = obj + ".key"
        key = self._key(src)
        if os.path.exists(obj) and os.path.exists(stamp) and open(stamp).read() == key:
            return obj, 0.0, False
        if os.path.exists(obj):
            os.remove(obj)  # a failed compile must not leave an old object under a new key
        t = time.perf_counter()
        cmd = [self.nvcc] + self.flags + ["-c", src, "-o", obj]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"nvcc failed on {src}:\n{' '.join(cmd)}\n{r.stdout}{r.stderr}")
        with open(stamp, "w") as f:
            f.write(key)
        return obj, time.perf_counter() - t, True

    def compile_all(self) -> list[str]:
        """Compile the stale .cu files in parallel; the objects of all of them."""
        os.makedirs(OUT, exist_ok=True)
        sources = sorted(glob.glob(os.path.join(SRC, "*.cu")), key=os.path.getsize, reverse=True)
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max(1, self.jobs)) as pool:
            results = list(pool.map(self._compile_one, sources))
        built = [(o, s) for o, s, b in results if b]
        if built:
            print(f"nvcc: {len(built)} of {len(sources)} CUDA files compiled in "
                  f"{time.perf_counter() - t:.1f} s ({', '.join(f'{os.path.basename(o)} {s:.0f}s' for o, s in built)})",
                  file=sys.stderr)
        return sorted(o for o, _, _ in results)

    def build_ext_class(self, base):
        """`base` (setup.py's build_ext) extended to compile the .cu objects first and to
        rebuild the binding when a cuda/ header changed."""
        cuda = self

        class BuildExtCuda(base):
            def build_extension(self, ext):
                if ext.name == "tinyfw._cuda":
                    ext.extra_objects = cuda.compile_all()
                    headers = glob.glob(os.path.join(SRC, "*.h"))
                    newest = max((os.path.getmtime(h) for h in headers), default=0)
                    for o in glob.glob(os.path.join(self.build_temp, SRC, "*.o")):
                        if os.path.getmtime(o) < newest:
                            os.remove(o)
                super().build_extension(ext)

        return BuildExtCuda
