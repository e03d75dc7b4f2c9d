"""The half-precision GEMM (csrc/gemm_half.h) behind matmul on bfloat16/float16 inputs.

Every result is checked against the exact product (float64) with the bound derived in
half_gemm_util.py: float32 accumulation in any order, one rounding to the half dtype.
Each path the machine can run is exercised: the default one in this process, the others
in subprocesses that force them (TINYFW_AMX=0, TINYFW_ISA_HIDE, TINYFW_ISA); a path the
machine cannot run is skipped with the reason.  PyTorch's bf16/f16 matmul is a second
oracle where installed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinyfw
from half_gemm_util import BF16, F16, battery, exact_and_bound, operands, violations
from tinyfw.backend import cpu

_C = cpu._C
pytestmark = pytest.mark.skipif(_C is None, reason="tinyfw._C is not built (python setup.py build_ext --inplace)")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFO = cpu.isa_info() if _C is not None else {}


def test_isa_info_names_the_paths():
    paths = {"amx-bf16", "avx512-bf16", "f32-pack"}
    assert INFO["half_gemm"]["bfloat16"] in paths and INFO["half_gemm"]["float16"] == "f32-pack"
    assert INFO["amx"] is None or isinstance(INFO["amx"], str)
    if INFO["half_gemm"]["bfloat16"] == "amx-bf16":
        assert INFO["amx"] is None and {"amx_tile", "amx_bf16"} <= set(INFO["features"])
    if INFO["isa"] in ("scalar", "avx2"):
        assert INFO["half_gemm"]["bfloat16"] == "f32-pack" and "no AMX code" in INFO["amx"]


def test_battery_on_the_default_path():
    assert battery() == []


# (expected bf16 path, environment, what the machine needs: level, features)
PATHS = {
    "amx-bf16": ({}, "avx512", ["amx_tile", "amx_bf16"]),
    "avx512-bf16": ({"TINYFW_AMX": "0"}, "avx512", ["avx512_bf16"]),
    "f32-pack-avx512": ({"TINYFW_ISA_HIDE": "amx_bf16,avx512_bf16"}, "avx512", []),
    "f32-pack-avx2": ({"TINYFW_ISA": "avx2"}, "avx2", []),
    "f32-pack-scalar": ({"TINYFW_ISA": "scalar"}, "scalar", []),
}


@pytest.mark.parametrize("name", list(PATHS))
def test_battery_on_every_path_the_machine_runs(name):
    env_over, level, needs = PATHS[name]
    if level not in INFO["usable"]:
        pytest.skip(f"this machine cannot run the {level} level (it runs {INFO['usable']})")
    missing = [f for f in needs if f not in INFO["features"]]
    if missing:
        pytest.skip(f"the CPU lacks {', '.join(missing)}")
    env = {k: v for k, v in os.environ.items() if k not in ("TINYFW_ISA", "TINYFW_ISA_HIDE", "TINYFW_AMX")}
    env.update(env_over, PYTHONPATH=_ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, os.path.join(_ROOT, "tests", "half_gemm_util.py")], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    want = name if not name.startswith("f32-pack") else "f32-pack"
    if name == "amx-bf16" and out["amx"] is not None:
        pytest.skip(f"AMX refused: {out['amx']}")
    assert out["half_gemm"]["bfloat16"] == want and out["isa"] == level, out
    assert out["failures"] == []


@given(m=st.integers(0, 80), n=st.integers(0, 80), k=st.integers(0, 600),
       layout=st.sampled_from(["", "Ta", "Tb", "TaTb", "Sa", "Sb"]), dtype=st.sampled_from([BF16, F16]),
       batch=st.sampled_from([(), (3,), (2, 1)]), seed=st.integers(0, 2**16))
def test_random_shapes_within_the_bound(m, n, k, layout, dtype, batch, seed):
    a, b = operands(batch + (m, k), (k, n) if batch != (2, 1) else (3, k, n), dtype, seed, layout)
    assert violations(_C.matmul(a, b), a, b) == ""


def _threads(n, fn):
    before = tinyfw.get_num_threads()
    tinyfw.set_num_threads(n)
    try:
        return fn()
    finally:
        tinyfw.set_num_threads(before)


@pytest.mark.parametrize("dtype", [BF16, F16])
@pytest.mark.parametrize("m,n,k,layout", [(300, 200, 700, ""), (128, 512, 784, "Tb"), (512, 784, 128, "Ta"),
                                           (128, 10, 512, "Tb"), (512, 10, 128, "Ta")])
def test_same_bits_at_1_and_2_threads(m, n, k, layout, dtype):
    """Threads split C, never k: every element is summed in the same order."""
    a, b = operands((m, k), (k, n), dtype, m + n + k, layout)
    one = _threads(1, lambda: _C.matmul(a, b))
    two = _threads(2, lambda: _C.matmul(a, b))
    np.testing.assert_array_equal(one.view(np.uint16), two.view(np.uint16))
    assert violations(one, a, b) == ""


@pytest.mark.parametrize("dtype", [BF16, F16])
def test_nan_and_inf_propagate_as_in_float32(dtype):
    a, b = operands((40, 70), (70, 36), dtype, 7)
    a[3, 5] = np.nan
    a[10, 0] = np.inf
    b[2, 30] = -np.inf
    c = _C.matmul(a, b).astype(np.float64)
    r = np.matmul(a.astype(np.float32), b.astype(np.float32))  # IEEE float32: which are inf / NaN
    np.testing.assert_array_equal(np.isnan(c), np.isnan(r))
    np.testing.assert_array_equal(np.isposinf(c), np.isposinf(r))
    np.testing.assert_array_equal(np.isneginf(c), np.isneginf(r))
    finite = np.isfinite(r)
    e, bound = exact_and_bound(np.where(np.isfinite(a), a, 0).astype(dtype), np.where(np.isfinite(b), b, 0).astype(dtype))
    assert np.all(np.abs(c - e)[finite] <= bound[finite])


def test_mixed_half_dtypes_are_an_error_naming_them():
    a, b = operands((4, 5), (5, 3), BF16, 0)
    with pytest.raises(TypeError, match="bfloat16 and float16"):
        _C.matmul(a, b.astype(np.float32).astype(F16))


@pytest.mark.parametrize("dtype", [BF16, F16])
def test_backward_gives_half_grads_within_the_bound(dtype):
    """d(sum(g * (a @ b))) = g @ b^T and a^T @ g, products of the same GEMM in half."""
    a, b = operands((37, 70), (70, 45), dtype, 11)
    g = operands((37, 45), (1, 1), dtype, 12)[0]
    ta = tinyfw.from_numpy(a).requires_grad_(True)
    tb = tinyfw.from_numpy(b).requires_grad_(True)
    out = tinyfw.matmul(ta, tb)
    assert out.dtype == (tinyfw.bfloat16 if dtype == BF16 else tinyfw.float16)
    out.backward(tinyfw.from_numpy(g))
    ga, gb = ta.grad.numpy(), tb.grad.numpy()
    assert ga.dtype == dtype and gb.dtype == dtype
    assert violations(ga, g, np.ascontiguousarray(b.T)) == ""
    assert violations(gb, np.ascontiguousarray(a.T), g) == ""


@pytest.mark.parametrize("dtype", [BF16, F16])
def test_against_torch(dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is the second oracle")
    a, b = operands((96, 300), (300, 80), dtype, 5, "Tb")
    c = _C.matmul(a, b).astype(np.float64)
    tdt = torch.bfloat16 if dtype == BF16 else torch.float16
    t = (torch.from_numpy(a.astype(np.float32)).to(tdt) @ torch.from_numpy(b.astype(np.float32)).to(tdt))
    t = t.float().numpy().astype(np.float64)
    _, bound = exact_and_bound(a, b)
    # both are within the bound of the exact product, so within twice it of each other
    assert np.all(np.abs(c - t) <= 2 * bound)
    assert violations(t.astype(np.float32).astype(dtype), a, b) == "", "the bound must hold for PyTorch too"


@pytest.mark.parametrize("m,n", [(48, 32), (97, 70), (5, 1000)])
def test_bf16_output_rounded_once_to_nearest_even(m, n):
    """k = 1: each product of two bf16 is exact in float32 (8 x 8 significand bits), so C
    must be exactly that product rounded to nearest even (ties included) -- the epilogue's
    rounding, bit for bit, against ml_dtypes' conversion, with overflow to inf and NaN."""
    rng = np.random.default_rng(m * n)
    # products between 2^-100 and 2^100: normal in float32 (the AMX and VDPBF16PS sums
    # flush subnormals, see half_gemm_util)
    a = (rng.uniform(1, 2, (m, 1)) * rng.choice([-1, 1], (m, 1)) * 2.0 ** rng.integers(-50, 50, (m, 1))).astype(BF16)
    b = (rng.uniform(1, 2, (1, n)) * rng.choice([-1, 1], (1, n)) * 2.0 ** rng.integers(-50, 50, (1, n))).astype(BF16)
    a[0, 0], b[0, :3] = 3e38, [2.0, -2.0, np.nan]
    with np.errstate(over="ignore", invalid="ignore"):  # 3e38 * 2 overflows: inf in both
        exact = a.astype(np.float32) @ b.astype(np.float32)  # one product per element: exact
    got = _C.matmul(a, b)
    want = exact.astype(BF16)
    nan = np.isnan(exact)
    assert np.isnan(got.astype(np.float32)[nan]).all()
    np.testing.assert_array_equal(got.view(np.uint16)[~nan], want.view(np.uint16)[~nan])
    ties = (exact.view(np.uint32) & 0xFFFF) == 0x8000
    assert ties.sum() > 0  # the case that tells nearest-even from nearest-away
