"""The C++ GEMM (csrc/gemm.cpp) itself: results that do not depend on the thread count
(the thin products and the packed path split work across threads, never along k), values
against a float64 numpy product, and the AVX-512 micro-kernel compiled for Sapphire Rapids.

The kernel is called as ``tinyfw._C.matmul`` so these tests exercise it under either
``TINYFW_BACKEND``; they skip when the extension is not built.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinyfw
from tinyfw.backend import cpu

_C = cpu._C
pytestmark = pytest.mark.skipif(_C is None, reason="tinyfw._C is not built (python setup.py build_ext --inplace)")

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The MLP 784-512-512-10 at batch 128: forward (x @ W.T, W stored out x in) and both
# backward products per layer; "T" marks an operand that is a transposed view.
MLP_PRODUCTS = [
    (128, 512, 784, "", "T"), (128, 512, 512, "", "T"), (128, 10, 512, "", "T"),  # x @ W.T
    (128, 512, 784, "", ""), (128, 512, 512, "", ""), (128, 10, 512, "", ""),  # x @ W
    (128, 784, 512, "", ""), (128, 512, 512, "", ""), (128, 512, 10, "", ""),  # g @ W
    (512, 784, 128, "T", ""), (512, 512, 128, "T", ""), (10, 512, 128, "T", ""),  # g.T @ x
    (784, 512, 128, "T", ""), (512, 10, 128, "T", ""),  # x.T @ g
]


def _operands(m: int, n: int, k: int, ta: str, tb: str, dtype=np.float32, seed: int = 0):
    """A (m x k) and B (k x n); a "T" layout is the transpose view of a row-major array."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return (a.T if ta else a), (b.T if tb else b)


def _with_threads(n: int, fn):
    """fn() run with n kernel threads, the previous setting restored after."""
    before = tinyfw.get_num_threads()
    tinyfw.set_num_threads(n)
    try:
        return fn()
    finally:
        tinyfw.set_num_threads(before)


def _check(a: np.ndarray, b: np.ndarray) -> None:
    """1 and 2 threads give the same bits, and both agree with the float64 product."""
    one = _with_threads(1, lambda: _C.matmul(a, b))
    two = _with_threads(2, lambda: _C.matmul(a, b))
    assert one.dtype == a.dtype and one.shape == (a.shape[0], b.shape[1])
    np.testing.assert_array_equal(one, two, err_msg=f"{a.shape} @ {b.shape}: 1 vs 2 threads")
    exact = a.astype(np.float64) @ b.astype(np.float64)
    # each output is a k-term sum: bound its rounding by k ulps of sum(|a||b|)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    eps = np.finfo(a.dtype).eps
    k = a.shape[1]
    assert np.all(np.abs(one - exact) <= 2 * k * eps * scale + 1e-30), f"{a.shape} @ {b.shape}"


@pytest.mark.parametrize("m,n,k,ta,tb", MLP_PRODUCTS)
def test_mlp_products_same_bits_at_1_and_2_threads(m, n, k, ta, tb):
    a, b = _operands(m, n, k, ta, tb)
    _check(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,k", [(1, 10, 4096), (3, 7, 1000), (13, 5, 333), (130, 1, 257),
                                   (257, 12, 64), (64, 13, 100), (9, 200, 3), (600, 600, 600)])
def test_edge_shapes_same_bits_at_1_and_2_threads(m, n, k, dtype):
    # partial row blocks of the thin path, tails of k, edge tiles and a multi-slice k
    for ta in ("", "T"):
        for tb in ("", "T"):
            a, b = _operands(m, n, k, ta, tb, dtype, seed=m + n + k)
            _check(a, b)


@given(m=st.integers(1, 160), n=st.integers(1, 40), k=st.integers(1, 700),
       ta=st.sampled_from(["", "T"]), tb=st.sampled_from(["", "T"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_random_shapes_same_bits_at_1_and_2_threads(m, n, k, ta, tb, dtype, seed):
    a, b = _operands(m, n, k, ta, tb, dtype, seed)
    _check(a, b)


def test_strided_rows_and_batches_same_bits():
    # sliced operands (row stride > k) and a batch, whose products run one per thread
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 96, 700)).astype(np.float32)[:, ::2, 3:515]
    b = rng.standard_normal((512, 24)).astype(np.float32)[:, 2:12]
    one = _with_threads(1, lambda: _C.matmul(a, b))
    two = _with_threads(2, lambda: _C.matmul(a, b))
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(one, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4)


def _compile_flags() -> list[str]:
    pybind11 = pytest.importorskip("pybind11", reason="pybind11's headers are needed to "
                                   "compile gemm.cpp (pip install -e '.[test]' has them)")
    return ["-I" + os.path.join(_ROOT, "csrc"), "-I" + pybind11.get_include(),
            "-I" + sysconfig.get_paths()["include"]]


def _functions(disassembly: str) -> dict[str, str]:
    """objdump -d output split into {symbol: its instructions}."""
    out, name, body = {}, None, []
    for line in disassembly.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if head:
            if name:
                out[name] = "\n".join(body)
            name, body = head.group(1), []
        elif name:
            body.append(line)
    if name:
        out[name] = "\n".join(body)
    return out


@pytest.mark.skipif(shutil.which("g++") is None or shutil.which("objdump") is None,
                    reason="g++ and objdump are needed to compile the AVX-512 kernel")
def test_avx512_micro_kernel_compiles_for_sapphire_rapids(tmp_path):
    # This CPU may lack AVX-512, so the kernel cannot run here: compiling gemm.cpp for
    # Sapphire Rapids proves it builds and that the blocked loop uses 512-bit FMAs.
    obj = tmp_path / "gemm_spr.o"
    cmd = (["g++", "-std=c++17", "-O2", "-march=sapphirerapids", "-fopenmp", "-fPIC", "-c",
            os.path.join(_ROOT, "csrc", "gemm.cpp"), "-o", str(obj)] + _compile_flags())
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    dis = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", str(obj)],
                         capture_output=True, text=True, check=True).stdout
    funcs = _functions(dis)
    for t, suffix in (("float", "ps"), ("double", "pd")):
        serial = [body for name, body in funcs.items() if f"gemm_serial<{t}>" in name]
        assert serial, f"gemm_serial<{t}> not found in the object"
        fma = re.findall(rf"vfmadd\w*{suffix}\s+.*%zmm", serial[0])
        # the 12 x 2-vector tile: 24 accumulators per k step, unrolled
        assert len(fma) >= 24, f"gemm_serial<{t}>: {len(fma)} zmm FMAs"
        assert not re.search(rf"vfmadd\w*{suffix}\s+.*%ymm", serial[0]), f"gemm_serial<{t}> uses ymm FMAs"
