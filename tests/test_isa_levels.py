"""Every ISA level this machine can run, against the reference backend.

The suite itself runs one level per process (the best one, or TINYFW_ISA's); this test
runs the representative kernels of isa_cases.py once per built level, each in a
subprocess with TINYFW_ISA set, so the scalar, AVX2 and AVX-512 code paths are all
checked wherever the CPU allows.  A level the CPU or OS cannot run is skipped, naming
what it lacks.
"""
from __future__ import annotations

import os
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import isa_cases
from tinyfw.backend import cpu, ref

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
INFO = cpu.isa_info()
LEVELS = INFO.get("built", ["scalar", "avx2", "avx512"])
pytestmark = pytest.mark.skipif(cpu._C is None, reason="tinyfw._C is not built (python setup.py build_ext --inplace)")


@pytest.fixture(scope="module")
def reference() -> dict:
    return isa_cases.run(ref)


def _ulp_error(got: np.ndarray, exact: np.ndarray) -> float:
    """Max |got - exact| in float32 ulps at the exact value; NaN and inf must match."""
    g = got.astype(np.float64)
    assert np.array_equal(np.isnan(g), np.isnan(exact)), "NaN positions differ"
    inf = np.isinf(exact.astype(np.float32)) | np.isinf(g)
    assert np.array_equal(g[inf], exact.astype(np.float32).astype(np.float64)[inf]), "infinities differ"
    fin = ~np.isnan(exact) & ~inf
    e = np.maximum(np.floor(np.log2(np.maximum(np.abs(exact[fin]), 2.0 ** -149))), -126)
    return float((np.abs(g[fin] - exact[fin]) / 2.0 ** (e - 23)).max(initial=0))


@pytest.mark.parametrize("level", LEVELS)
def test_level_matches_ref(level, reference, tmp_path):
    if level not in INFO.get("usable", []):
        missing = sorted(set(INFO["levels"][level]) - set(INFO["features"]))
        pytest.skip(f"this machine cannot run the {level} level: it lacks {', '.join(missing)}")
    out = tmp_path / "out.npz"
    env = {k: v for k, v in os.environ.items() if k not in ("TINYFW_ISA", "TINYFW_ISA_HIDE")}
    env.update(TINYFW_ISA=level, PYTHONPATH=os.pathsep.join([_ROOT, _HERE, env.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, os.path.join(_HERE, "isa_cases.py"), str(out)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = dict(np.load(out))
    assert str(got.pop("isa")) == level
    X = isa_cases.inputs()
    failures = []
    for name, (_, how) in isa_cases.CASES.items():
        exp = reference[name]
        g = got[name].view(exp.dtype) if exp.dtype == ml_dtypes.bfloat16 else got[name]
        try:
            assert g.dtype == exp.dtype and g.shape == exp.shape, f"{g.dtype}{g.shape} vs ref {exp.dtype}{exp.shape}"
            if how[0] == "exact":
                bits = f"u{exp.dtype.itemsize}" if exp.dtype.kind in "fV" else exp.dtype
                np.testing.assert_array_equal(np.ascontiguousarray(g).view(bits), np.ascontiguousarray(exp).view(bits))
            elif how[0] == "close":
                tol = 1e-12 if exp.dtype == np.float64 else 2e-6
                np.testing.assert_allclose(g.astype(np.float64), exp.astype(np.float64), rtol=10 * tol,
                                           atol=tol * max(1.0, np.sqrt(how[1])), equal_nan=True)
            else:
                x = X["wide"].astype(np.float64)
                with np.errstate(all="ignore"):
                    err = _ulp_error(g, how[2](x))
                assert err <= how[1], f"{err:.2f} ulp > {how[1]}"
        except AssertionError as e:
            failures.append(f"{name}: {str(e).strip()[:400]}")
    assert not failures, f"level {level}:\n" + "\n".join(failures)
