"""The ISA levels of tinyfw._C (csrc/isa.h): how the built module is put together and how
a level is chosen at import.

The machine-code test is the one that catches a One Definition Rule merge: inline code
compiled into several levels is kept once by the linker, and if the copy kept came from
a higher level than one of its callers, that caller (the scalar kernels, say) would run
AVX-512 instructions on a machine without them.  It disassembles the module and checks,
for every function, the instructions against the lowest level that can reach it.
"""
from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest

import isa_util
from tinyfw.backend import cpu

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(cpu._C is None, reason="tinyfw._C is not built (python setup.py build_ext --inplace)")
INFO = cpu.isa_info()
PORTABLE = "native" not in INFO.get("built", ["native"])
needs_objdump = pytest.mark.skipif(not (isa_util.objdump_available() and PORTABLE),
                                   reason="needs objdump/readelf and a build with ISA levels (not TINYFW_NATIVE=1)")


@pytest.fixture(scope="module")
def machine_code():
    path = cpu._C.__file__
    return isa_util.functions(path), isa_util.data_references(path)


@needs_objdump
def test_every_function_fits_the_lowest_level_that_reaches_it(machine_code):
    funcs, data_refs = machine_code
    named = [f for f in funcs.values() if isa_util.level_of_name(f.name) is not None]
    assert {isa_util.level_of_name(f.name) for f in named} == set(range(len(INFO["built"]))), \
        "every built level should have functions in its namespace"
    allowed = isa_util.allowed_levels(funcs, data_refs)
    bad = [f for s, f in funcs.items() if f.level > allowed[s]]
    lines = [f"{n} may run at level {isa_util.LEVEL_NAMES[allowed[f.start]]} but has "
             f"{isa_util.LEVEL_NAMES[f.level]} code: {f.example}"
             for f, n in zip(bad[:10], isa_util.demangle([f.name for f in bad[:10]]))]
    assert not bad, f"{len(bad)} functions:\n" + "\n".join(lines)


@needs_objdump
def test_each_level_has_its_own_instructions(machine_code):
    """The flags reached the compiler: AVX-512 code in the avx512 level, AVX2 (and no
    AVX-512) in the avx2 level, neither in the scalar level."""
    funcs, _ = machine_code
    top = {}
    for f in funcs.values():
        lv = isa_util.level_of_name(f.name)
        if lv is not None:
            top[lv] = max(top.get(lv, 0), f.level)
    assert top == {i: i for i in range(len(INFO["built"]))}


@needs_objdump
def test_vector_arguments_stay_in_level_namespaces(machine_code):
    """A function taking or returning a vector by value has a different calling convention
    at each level (ymm registers or memory): one outside the level namespaces would be
    shared between levels that disagree on it."""
    funcs, _ = machine_code
    names = isa_util.demangle([f.name for f in funcs.values() if isa_util.level_of_name(f.name) is None])
    shared = [n for n in names if re.search(r"__vector\(\d+\)(?![*&\d])", n) or re.search(r"\b__m(128|256|512)[di]?\b(?![*&])", n)]
    assert not shared, shared[:10]


def test_level_requirements():
    req = INFO["levels"]
    if not PORTABLE:
        pytest.skip("a TINYFW_NATIVE=1 build has one level, the build machine's")
    assert not {f for f in req["scalar"] if f.startswith("avx") or f.startswith("os_")}
    if "avx2" in req:
        assert {"avx", "avx2", "fma", "f16c", "bmi2", "os_ymm_state"} <= set(req["avx2"])
        assert not {f for f in req["avx2"] if f.startswith("avx512")} and "os_zmm_state" not in req["avx2"]
    if "avx512" in req:
        assert {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd", "os_zmm_state"} <= set(req["avx512"])
    assert INFO["required"] == req[INFO["isa"]]
    assert cpu.isa() == INFO["isa"] and INFO["isa"] in INFO["usable"]
    if INFO["forced"] is None:  # the best usable level
        assert INFO["isa"] == [lv for lv in INFO["built"] if lv in INFO["usable"]][-1]


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="Linux's /proc/cpuinfo is the second opinion")
def test_detected_features_match_proc_cpuinfo():
    flags = set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    linux_name = {"sse3": "pni", "lzcnt": "abm", "bmi1": "bmi1"}
    hidden = set(filter(None, os.environ.get("TINYFW_ISA_HIDE", "").split(",")))
    for f in INFO["levels"].get("avx512", []) + INFO["levels"].get("avx2", []) + [
            "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx512ifma", "avx512vbmi", "gfni", "vaes"]:
        if f.startswith("os_") or f in hidden:
            continue
        assert (f in INFO["features"]) == (linux_name.get(f, f) in flags), f


def _run(env: dict, code: str = "import tinyfw.backend.cpu as c; print(c.isa())") -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k not in ("TINYFW_ISA", "TINYFW_ISA_HIDE")}
    e.update(env, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=120)


def test_forced_levels_run_and_report_themselves():
    for lv in INFO["usable"]:
        r = _run({"TINYFW_ISA": lv})
        assert r.returncode == 0 and r.stdout.split()[-1] == lv, r.stderr[-2000:]


def test_unknown_level_is_an_error_naming_the_choices():
    r = _run({"TINYFW_ISA": "avx1024"})
    assert r.returncode != 0
    assert "TINYFW_ISA=avx1024" in r.stderr and ", ".join(INFO["built"]) in r.stderr


def test_a_level_the_machine_lacks_is_an_error_naming_the_features():
    """Hiding the features makes every machine test this (never a SIGILL)."""
    if not PORTABLE or "avx2" not in INFO["built"]:
        pytest.skip("needs a build with the avx2 level")
    r = _run({"TINYFW_ISA": "avx2", "TINYFW_ISA_HIDE": "fma,os_ymm_state"})
    assert r.returncode != 0
    assert "cannot run on this machine" in r.stderr and "lacks fma" in r.stderr, r.stderr[-2000:]
    assert "has not enabled the AVX (YMM) register state" in r.stderr
    # without TINYFW_ISA the best remaining level is chosen
    r = _run({"TINYFW_ISA_HIDE": "fma"})
    assert r.returncode == 0 and r.stdout.split()[-1] == "scalar", r.stderr[-2000:]


@needs_objdump
@pytest.mark.parametrize("level", ["scalar", "avx2"])
def test_traced_kernels_follow_the_level(level, tmp_path):
    """The traced mode's generated C is compiled for the kernels' level: a forced lower level
    gets no instruction of a higher one."""
    if level not in INFO["usable"]:
        pytest.skip(f"this machine cannot run the {level} level")
    code = ("import numpy as np, tinyfw; from tinyfw import jit\n"
            # float64: float32 tanh and exp keep eager's vectorised kernels in traced graphs
            "x = tinyfw.tensor(np.linspace(-3, 3, 4096, dtype=np.float64))\n"
            "f = jit.trace(lambda t: (t * 2.0).tanh() * 0.5 + t.exp(), (x,))\n"
            "fwd, _ = f.graph(x)\n"
            "assert fwd.nodes[0].kernel is not None and fwd.nodes[0].kernel.compiled\n"
            "print(float(f(x).numpy().sum()))")
    r = _run({"TINYFW_ISA": level, "TINYFW_JIT_CACHE": str(tmp_path), "TINYFW_DEVICE": "cpu"}, code)
    if r.returncode != 0 and "compiled" in r.stderr:
        pytest.skip("no C compiler for the traced kernels")
    assert r.returncode == 0, r.stderr[-2000:]
    built = glob.glob(os.path.join(str(tmp_path), "*.so"))
    assert built, "no kernel was compiled"
    want = isa_util.LEVEL_NAMES.index(level)
    for so in built:
        worst = max(isa_util.functions(so).values(), key=lambda f: f.level)
        assert worst.level <= want, f"{os.path.basename(so)}: {worst.name} has {worst.example}"
        assert want == 0 or worst.level == want, "the level's instructions were not used at all"


def test_integer_inputs_run_the_scalar_levels_kernels():
    """Above the scalar level only the float kernels are compiled (core.h, level_has): the
    integer and bool ones come from the scalar level, with its results bit for bit."""
    import numpy as np

    if INFO["isa"] not in ("avx2", "avx512"):
        pytest.skip(f"the {INFO['isa']} level compiles every dtype itself")
    scalar = cpu._C._scalar_level
    rng = np.random.default_rng(3)
    a, b = rng.integers(-100, 100, (7, 9)).astype(np.int32), rng.integers(-100, 100, 9).astype(np.int32)
    m = rng.random((7, 9)) > 0.5
    for got, want in [(cpu._C.add(a, b), scalar.add(a, b)), (cpu._C.neg(a), scalar.neg(a)),
                      (cpu._C.sum(m, (1,), False), scalar.sum(m, (1,), False)),
                      (cpu._C.amax(a, (0,), True), scalar.amax(a, (0,), True)),
                      (cpu._C.cast(a, np.dtype(np.int8)), scalar.cast(a, np.dtype(np.int8))),
                      (cpu._C.cast(a, np.dtype(np.float32)), scalar.cast(a, np.dtype(np.float32)))]:
        assert got.dtype == want.dtype and np.array_equal(got, want)
