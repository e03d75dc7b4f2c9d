"""Build tinyfw: the Python package plus the C++ CPU kernels (`tinyfw._C`).

One build runs on every x86-64 CPU: the hot kernel files (those whose code sits in the
per-ISA namespace, TINYFW_ISA_BEGIN, see csrc/isa.h) are compiled once per ISA level
(scalar, avx2, avx512; flags in tinyfw/backend/_isa.py) and tinyfw._C registers the best
level the machine can run when it is imported (TINYFW_ISA=... forces one).  Everything
else is compiled once, at the scalar level.

Environment switches:
  TINYFW_NATIVE=1    compile everything once with -march=native instead: the fastest code
                     for the build machine, which runs only on CPUs with all its features
  TINYFW_ISA_LEVELS=scalar,avx2  build only these levels (scalar always): a quicker build
                     while editing kernels
  TINYFW_SANITIZE=1  build with AddressSanitizer + UBSan (run with libasan and libubsan
                     in LD_PRELOAD: see docs/sanitizers.md)
  TINYFW_DEBUG=1     -O0 -g
  TINYFW_UNITY=0     compile each csrc/*.cpp on its own (the default groups them into one
                     translation unit per build job: faster from scratch, coarser rebuilds)
  TINYFW_CUDA=1|0    build the CUDA kernels (tinyfw._cuda, from cuda/) always / never; unset:
                     when nvcc is found and a CUDA driver is installed
  TINYFW_CUDA_ARCH   the GPU architectures to compile for, default "80;90" (sm_80, sm_90,
                     and PTX of the last for newer GPUs)
"""
import glob
import os
import platform
import runpy

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import find_packages, setup


# -fno-math-errno: sqrt without the errno branch vectorises (results are the same IEEE
# sqrt; no kernel reads errno), e.g. the fused Adam update.  -g0 drops the debug info
# Python's own CFLAGS ask for: a quarter of the compile time, and nobody steps through an
# optimised build (TINYFW_DEBUG=1 is for that).
#
# -ffunction-sections -fdata-sections with --gc-sections: the linker drops the code nothing
# reaches (the higher levels' copies of pybind11's internal helpers, whose callers the
# lowest level's copies replaced), so the module holds only code that can run.
flags = ["-O3", "-g0", "-fopenmp", "-ffp-contract=fast", "-fno-math-errno", "-ffunction-sections",
         "-fdata-sections"]
link = ["-fopenmp", "-Wl,--gc-sections"]
if os.environ.get("TINYFW_DEBUG") == "1":
    flags = ["-O0", "-g", "-fopenmp"]
if os.environ.get("TINYFW_SANITIZE") == "1":
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    flags += san + ["-g"]
    link += san


# ---- ISA levels
_ISA = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tinyfw", "backend", "_isa.py"))
_X86 = platform.machine().lower() in ("x86_64", "amd64")
if os.environ.get("TINYFW_NATIVE") == "1":
    _LEVELS = ["native"]
elif _X86:
    _want = set(os.environ.get("TINYFW_ISA_LEVELS", "scalar,avx2,avx512").replace(" ", "").split(","))
    unknown = _want - {"scalar", "avx2", "avx512"}
    if unknown:
        raise SystemExit(f"TINYFW_ISA_LEVELS: unknown level(s) {sorted(unknown)}; use scalar, avx2, avx512")
    _LEVELS = [lv for lv in ("scalar", "avx2", "avx512") if lv == "scalar" or lv in _want]
else:  # no cpuid levels off x86: one portable build
    _LEVELS = ["scalar"]
_BUILD_LEVELS = sum(1 << _ISA["LEVELS"].index(lv) for lv in _LEVELS)


def _level_of(path: str) -> str:
    """The ISA level a source or object is compiled for: generated per-level units live in
    build/unity/isa_<level>/ (see _level_sources); everything else is the base level."""
    parts = os.path.normpath(path).split(os.sep)
    for lv in _LEVELS[1:]:
        if f"isa_{lv}" in parts:
            return lv
    return _LEVELS[0]


def _level_flags(path: str) -> list[str]:
    lv = _level_of(path)
    return _ISA["flags"](lv, _X86) + [f"-DTINYFW_ISA_LEVEL={_ISA['LEVELS'].index(lv)}",
                                     f"-DTINYFW_BUILD_LEVELS={_BUILD_LEVELS}"]


def _stale(obj: str, src: str) -> bool:
    """Recompile an object only when its source, a shared header or the flags changed.

    Headers are not tracked per file, so a change to any csrc/*.h or *.inc rebuilds every
    object: a stale object compiled against an old header layout would be far worse than
    a slower build.  The flags an object was built with sit next to it, so a sanitizer or
    debug build never links objects from a normal one.  A stale object is deleted before
    it is rebuilt, so a failed compile cannot leave an old object under new flags.
    """
    stamp = obj + ".flags"
    key = " ".join(flags + _level_flags(src) + link)
    deps = [src] + _UNITY_MEMBERS.get(src, []) + glob.glob("csrc/*.h") + glob.glob("csrc/*.inc")
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

def _weight(path: str) -> int:
    """A source's size plus its .inc files: stands for its compile time."""
    import re

    text = open(path).read()
    incs = re.findall(r'#include "([^"]+\.inc)"', text)
    return len(text) + sum(os.path.getsize(os.path.join("csrc", i)) for i in incs)


def _write_unit(unit: str, members: list[str]) -> str:
    """A generated translation unit #including `members`; rewritten only when its text
    changes, so an unchanged unit is not recompiled."""
    os.makedirs(os.path.dirname(unit), exist_ok=True)
    text = "// generated by setup.py: csrc files compiled as one unit (see _unity_sources)\n" + \
        "".join(f'#include "{os.path.abspath(m)}"\n' for m in sorted(members))
    if not os.path.exists(unit) or open(unit).read() != text:
        with open(unit, "w") as f:
            f.write(text)
    _UNITY_MEMBERS[unit] = sorted(members)
    _WEIGHT[unit] = sum(_weight(m) for m in members)
    return unit


def _unity_sources(sources: list[str], groups: int, folder: str) -> list[str]:
    """Group `sources` into about `groups` translation units (in `folder`) that #include them.

    Every csrc file parses pybind11 and core.h (~4.5 s of the compiler's time each), most of
    a clean build's CPU time once the kernels were split into files of one idea; one unit
    per build job parses them once per job.  Files that switch optimisation options with
    ``#pragma GCC optimize`` (fp-contract=off, for bit-exact agreement with ref) get units
    of their own with the same pragmas, since a pragma holds to the end of its unit.  Files
    are dealt out largest-first to the lightest unit.
    """
    import re

    by_pragmas: dict[tuple, list[str]] = {}
    for path in sources:
        key = tuple(re.findall(r"^#pragma GCC optimize.*$", open(path).read(), re.M))
        by_pragmas.setdefault(key, []).append(path)
    bins: list[list[str]] = []
    for key, files in sorted(by_pragmas.items()):
        n = max(1, min(groups if not key else 1, len(files)))
        mine: list[list[str]] = [[] for _ in range(n)]
        loads = [0] * n
        for path in sorted(files, key=_weight, reverse=True):
            i = loads.index(min(loads))
            mine[i].append(path)
            loads[i] += _weight(path)
        bins += mine
    return [_write_unit(os.path.join(folder, f"tinyfw_unit{i}.cpp"), members) for i, members in enumerate(bins)]


def _level_sources(unity: bool, jobs: int) -> list[str]:
    """Every translation unit of the build, heaviest first (the parallel compile then
    finishes together; the link puts them back in level order, see _BuildExt).

    All csrc files are compiled at the base level; the files with per-ISA code again for
    each higher level, through generated units in build/unity/isa_<level>/ (the folder
    name sets the flags, _level_flags).  Unity builds give each higher level one unit
    per pragma group: a level's files are ~60 s of compile time, and fewer units parse
    pybind11 fewer times.
    """
    base = sorted(glob.glob("csrc/*.cpp"))
    per_isa = [p for p in base if "TINYFW_ISA_BEGIN" in open(p).read()]
    if unity:
        units = _unity_sources(base, jobs, os.path.join("build", "unity"))
        for lv in _LEVELS[1:]:
            units += _unity_sources(per_isa, 1, os.path.join("build", "unity", f"isa_{lv}"))
    else:
        units = list(base)
        for p in base:
            _WEIGHT[p] = _weight(p)
        for lv in _LEVELS[1:]:
            units += [_write_unit(os.path.join("build", "unity", f"isa_{lv}", os.path.basename(p)), [p])
                      for p in per_isa]
    return sorted(units, key=lambda u: -_WEIGHT[u])


_UNITY_MEMBERS: dict[str, list[str]] = {}
_WEIGHT: dict[str, int] = {}
_sources = _level_sources(os.environ.get("TINYFW_UNITY", "1") != "0",
                          int(os.environ.get("TINYFW_BUILD_JOBS", "0") or 0) or os.cpu_count() or 1)

class _BuildExt(build_ext):
    """build_ext that always reaches the per-object check (`_stale`) and relinks.

    distutils skips the whole extension when the .so is newer than its listed sources; with
    unity units (rewritten only when their member list changes) and edits saved while a
    build runs, that skipped real changes.  The objects decide instead; a relink is ~1 s.
    """

    def finalize_options(self) -> None:
        super().finalize_options()
        self.force = True

    def build_extensions(self) -> None:
        """Per-source ISA flags, and the link in ascending level order.

        The order is what makes shared inline code safe: of the copies of an inline
        function of the standard library or pybind11 (which cannot be put in the per-ISA
        namespace) the linker keeps the first, so every such function comes from the
        lowest level that uses it (tests/test_isa_build.py checks the result).
        """
        compile_one, link = self.compiler._compile, self.compiler.link

        def _compile(obj, src, ext, cc_args, extra_postargs, pp_opts):
            return compile_one(obj, src, ext, cc_args, list(extra_postargs) + _level_flags(src), pp_opts)

        def _link(target_desc, objects, *args, **kwargs):
            objects = sorted(objects, key=lambda o: _LEVELS.index(_level_of(o)))
            return link(target_desc, objects, *args, **kwargs)

        self.compiler._compile = _compile
        self.compiler.link = _link
        super().build_extensions()


ext_modules = [
    Pybind11Extension(
        "tinyfw._C",
        _sources,
        include_dirs=["csrc"],
        cxx_std=17,
        extra_compile_args=flags,
        extra_link_args=link,
    ),
]

# ==== CUDA: tinyfw._cuda from cuda/ (docs/cuda.md) =====================================
_CUDA = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools", "cuda_build.py"))
_cuda_build = _CUDA["CudaBuild"].from_environment()
if _cuda_build is not None:
    ext_modules.append(_cuda_build.extension(Pybind11Extension, flags=["-O2", "-g0"]))
    _BuildExt = _cuda_build.build_ext_class(_BuildExt)
# ==== end CUDA ==========================================================================

setup(
    name="tinyfw",
    version="0.1.0",
    description="A minimal deep-learning framework: tensors, autograd, C++ kernels",
    packages=find_packages(include=["tinyfw", "tinyfw.*"]),
    # the CUDA lab's headers: the student's .cu includes them (on the GPU and the emulator)
    package_data={"tinyfw": ["py.typed", "labs/cuda/*.h"]},
    entry_points={"console_scripts": ["tinyfw-lab = tinyfw.labs.__main__:main"]},
    python_requires=">=3.10",
    install_requires=["numpy>=1.24", "ml_dtypes>=0.3", "scipy>=1.10", "safetensors>=0.4",
                      "tqdm>=4.60", "scikit-learn>=1.2", "matplotlib>=3.6", "cffi>=1.15"],
    extras_require={
        # mpi4py + the MPICH wheel: the mpi backend of tinyfw.distributed and its tests;
        # pybind11 at run time: lab 4 of the course kit builds the student's C++ with it
        "test": ["pytest>=7", "hypothesis>=6.80", "torch==2.13.0", "onnx", "onnxruntime",
                 "mpi4py>=4", "mpich", "pybind11>=2.10"],
        "mpi": ["mpi4py>=4", "mpich"],
        "labs": ["pytest>=7", "pybind11>=2.10"],
    },
    ext_modules=ext_modules,
    cmdclass={"build_ext": _BuildExt},
    zip_safe=False,
)
