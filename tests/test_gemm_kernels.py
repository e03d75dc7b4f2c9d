"""The C++ GEMM (csrc/gemm.cpp) itself: results that do not depend on the thread count
(the thin products and the packed path split work across threads, never along k), values
against a float64 numpy product, and the micro-kernels of the module's AVX2 and AVX-512
levels (read from the built module, so they are checked on any CPU).

The kernel is called as ``tinyfw._C.matmul`` so these tests exercise it under either
``TINYFW_BACKEND``; they skip when the extension is not built.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

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
                                   (257, 12, 64), (64, 13, 100), (9, 200, 3), (600, 600, 600),
                                   (520, 2100, 1100)])
def test_edge_shapes_same_bits_at_1_and_2_threads(m, n, k, dtype):
    # partial row blocks of the thin path, tails of k, edge tiles and a multi-slice k; the
    # last: a C above 4 MiB (deeper k slices, judged on the whole product although each of
    # 2 threads holds less than that) with two column blocks
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [64, 255, 256, 511, 512, 513])
def test_row_major_a_read_in_place_same_bits(n, dtype):
    # a row-major A met by few B panels is read where it lies, not packed (its last, partial
    # panel is): A a column slice (row stride > k), 12 x 13 + 5 rows, k over two slices,
    # and column counts on both sides of the 16-panel limit of either level (NR 16 or 32)
    rng = np.random.default_rng(n)
    a = rng.standard_normal((161, 700)).astype(dtype)[:, 5:605]
    for b in (rng.standard_normal((600, n)).astype(dtype),
              rng.standard_normal((n, 600)).astype(dtype).T):
        _check(a, b)


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


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump is needed to read the built kernels")
def test_micro_kernels_of_the_built_levels():
    """The module's AVX-512 level runs the 12 x 2-vector tile on 512-bit FMAs, its AVX2
    level on 256-bit FMAs (whatever this CPU runs: the code is read, not executed)."""
    built = cpu.isa_info().get("built", [])
    if "avx512" not in built or "avx2" not in built:
        pytest.skip(f"this build has the ISA levels {built}, not avx2 and avx512")
    dis = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", _C.__file__],
                         capture_output=True, text=True, check=True).stdout
    funcs = _functions(dis)
    for level, reg, other in (("isa_avx512", "zmm", "ymm"), ("isa_avx2", "ymm", "zmm")):
        for t, suffix in (("float", "ps"), ("double", "pd")):
            serial = [body for name, body in funcs.items()
                      if f"{level}::" in name and f"gemm_serial<{t}>" in name and ".cold]" not in name]
            assert serial, f"{level} gemm_serial<{t}> not found in the module"
            # the function, its constant-propagated clones and the tile lambda that holds the
            # inlined micro-kernels (not their cold parts)
            fma = re.findall(rf"vfmadd\w*{suffix}\s+.*%{reg}", "\n".join(serial))
            # the 12 x 2-vector tile (AVX2: 6 x 2): 24 (12) accumulators per k step, unrolled
            assert len(fma) >= (24 if reg == "zmm" else 12), f"{level} gemm_serial<{t}>: {len(fma)} {reg} FMAs"
            for body in serial:
                assert not re.search(rf"vfmadd\w*{suffix}\s+.*%{other}", body), f"{level} gemm_serial<{t}> uses {other}"
