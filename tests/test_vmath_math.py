"""Accuracy of the float32 vector kernels of issue 16 (csrc/vmath_math.h: exp2, log2,
sinh, cosh) on the instruction set the loaded module runs, with test_vmath.py's sweep
(every 997th float32 bit pattern plus its special values) and its ulp count at the exact
value; NaN/inf positions and the sign of zero results must match exactly.

The references are numpy's float64 functions (within a few float64 ulps: a millionth of
a float32 ulp).  Measured max on every 97th pattern (44M inputs), Sapphire Rapids, the
same on avx512 and avx2 (``python tests/test_vmath_math.py 97``): exp2 1.01, log2 0.95,
sinh 2.09, cosh 1.43 ulp; the scalar level (float64 libm, rounded once) <= 0.5.  The
bounds are those rounded up by about half an ulp, never above the conformance suite's 4.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from tinyfw.backend import cpu

pytestmark = pytest.mark.skipif(not cpu.KERNELS, reason="tinyfw._C is not built (python setup.py build_ext --inplace)")

from test_vmath import ISA, max_ulp, sweep  # noqa: E402  (the sweep and the ulp count)

FUNCS = {"exp2": np.exp2, "log2": np.log2, "sinh": np.sinh, "cosh": np.cosh}
BOUND = {"exp2": 1.5, "log2": 1.3, "sinh": 2.5, "cosh": 1.8}
# where the kernels change regime: clamps, overflow and underflow thresholds, branches
EDGES = np.array([127.99999, 128.0, 128.5, 129.0, -126.0, -149.0, -149.5, -150.0, -151.0,
                  -152.0, 88.72283, 89.41598, 89.416, 90.0, -89.416, 8.999999, 9.0, 9.000001,
                  -9.0, 1e-38, -1e-38, 1e-45, 0.70710677, 1.4142135, 1.4142137], np.float32)


def measure(name: str, step: int = 997) -> tuple[float, float]:
    x = np.concatenate([sweep(step), EDGES])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        got = getattr(cpu, name)(x)
        want = FUNCS[name](x.astype(np.float64))
        assert got.dtype == np.float32
        return max_ulp(x, got, want)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_ulp_sweep(name):
    err, at = measure(name)
    assert err <= BOUND[name], f"{name} on {ISA}: {err:.2f} ulp at x = {at!r} (bound {BOUND[name]})"


def test_the_kernels_are_compiled_for_float32_only():
    """float64 and the half types run the reference primitive (their references are
    numpy's, which a libm kernel could differ from by more than the conformance bound)."""
    for name in FUNCS:
        assert name in cpu.KERNELS
        x = np.linspace(0.5, 3.0, 7)
        assert np.array_equal(getattr(cpu, name)(x), getattr(cpu._ref, name)(x))


if __name__ == "__main__":
    step = int(sys.argv[1]) if len(sys.argv) > 1 else 997
    for n in sorted(FUNCS):
        print(f"{n:5s} {ISA}: {measure(n, step)[0]:.2f} ulp")
