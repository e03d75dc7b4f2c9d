"""Build tinyfw: the Python package plus the C++ CPU kernels (`tinyfw._C`).

Environment switches:
  TINYFW_PORTABLE=1  compile without -march=native (binaries that run on any x86-64)
  TINYFW_SANITIZE=1  build with AddressSanitizer + UBSan (run with libasan and libubsan
                     in LD_PRELOAD: see docs/sanitizers.md)
  TINYFW_DEBUG=1     -O0 -g
"""
import glob
import os

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import find_packages, setup


# -fno-math-errno: sqrt without the errno branch vectorises (results are the same IEEE
# sqrt; no kernel reads errno), e.g. the fused Adam update.  -g0 drops the debug info
# Python's own CFLAGS ask for: a quarter of the compile time, and nobody steps through an
# optimised build (TINYFW_DEBUG=1 is for that).
flags = ["-O3", "-g0", "-fopenmp", "-ffp-contract=fast", "-fno-math-errno"]
link = ["-fopenmp"]
if os.environ.get("TINYFW_DEBUG") == "1":
    flags = ["-O0", "-g", "-fopenmp"]
if os.environ.get("TINYFW_PORTABLE") != "1":
    flags.append("-march=native")
if os.environ.get("TINYFW_SANITIZE") == "1":
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    flags += san + ["-g"]
    link += san

def _stale(obj: str, src: str) -> bool:
    """Recompile an object only when its source, a shared header or the flags changed.

    Headers are not tracked per file, so a change to any csrc/*.h or *.inc rebuilds every
    object: a stale object compiled against an old header layout would be far worse than
    a slower build.  The flags an object was built with sit next to it, so a sanitizer or
    debug build never links objects from a normal one.  A stale object is deleted before
    it is rebuilt, so a failed compile cannot leave an old object under new flags.
    """
    stamp = obj + ".flags"
    key = " ".join(flags + link)
    deps = [src] + glob.glob("csrc/*.h") + glob.glob("csrc/*.inc")
    if (os.path.exists(obj) and os.path.exists(stamp) and open(stamp).read() == key
            and all(os.path.getmtime(d) <= os.path.getmtime(obj) for d in deps)):
        return False
    if os.path.exists(obj):
        os.remove(obj)
    os.makedirs(os.path.dirname(obj) or ".", exist_ok=True)
    with open(stamp, "w") as f:
        f.write(key)
    return True


# compile the csrc/*.cpp files in parallel (one job per core unless TINYFW_BUILD_JOBS says)
ParallelCompile("TINYFW_BUILD_JOBS", default=0, needs_recompile=_stale).install()

ext_modules = [
    Pybind11Extension(
        "tinyfw._C",
        sorted(glob.glob("csrc/*.cpp")),
        include_dirs=["csrc"],
        cxx_std=17,
        extra_compile_args=flags,
        extra_link_args=link,
    ),
]

setup(
    name="tinyfw",
    version="0.1.0",
    description="A minimal deep-learning framework: tensors, autograd, C++ kernels",
    packages=find_packages(include=["tinyfw", "tinyfw.*"]),
    package_data={"tinyfw": ["py.typed"]},
    python_requires=">=3.10",
    install_requires=["numpy>=1.24", "ml_dtypes>=0.3", "scipy>=1.10", "safetensors>=0.4",
                      "tqdm>=4.60", "scikit-learn>=1.2", "matplotlib>=3.6", "cffi>=1.15"],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6.80", "torch==2.13.0", "onnx", "onnxruntime"],
    },
    ext_modules=ext_modules,
    cmdclass={"build_ext": build_ext},
    zip_safe=False,
)
