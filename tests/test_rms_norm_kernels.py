"""The fused RMS norm (tinyfw/ops/nn_rms.py, csrc/nn_rms.inc).

- the C++ row kernels against the reference backend (the spec) on every dtype, with
  vector tails, rows longer than a summation block, several 32-row gw blocks and rows of
  special values; the other ISA levels run the cases of isa_cases.py (test_isa_levels.py)
  and this file under TINYFW_ISA=avx2;
- results that do not depend on the thread count;
- the reference itself against float64 arithmetic written out here (so the spec does not
  rest on one numpy's float32 sums): float32 within a few ulp of the float64 value;
- F.rms_norm against PyTorch on the benchmark shapes, and second derivatives through
  vector tails; bad input raises an error naming the problem.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
import tinyfw.nn.functional as F
from helpers import npy, requires_torch, torch
from nn_check import compare
from test_norms_kernels import FLOATS, close
from tinyfw.backend import cpu, ref

pytestmark = pytest.mark.skipif(not cpu.KERNELS, reason="tinyfw._C is not built (python setup.py build_ext --inplace)")
C = cpu


def _check(x, w, g, eps, dtype, terms_f, terms_b):
    got, want = C.rms_norm(x, w, eps), ref.rms_norm(x, w, eps)
    for a, e, what in zip(got, want, ("y", "rstd")):
        close(a, e, e.dtype, terms_f, what)
    got = C.rms_norm_backward(g, x, w, want[1])
    exp = ref.rms_norm_backward(g, x, w, want[1])
    for a, e, what in zip(got, exp, ("gx", "gw")):
        assert (a is None) == (e is None), what
        if e is not None:
            close(a, e, dtype, terms_b, what)


@given(m=st.integers(0, 70), n=st.sampled_from([1, 3, 15, 16, 17, 64, 100, 1024, 1500]),
       dtype=st.sampled_from(FLOATS), affine=st.booleans(), seed=st.integers(0, 2**31))
def test_rms_norm_matches_ref(m, n, dtype, affine, seed):
    """Vector tails (n not a multiple of 16 floats / 8 doubles), rows past one summation
    block (64 vectors), gw over several 32-row blocks, half types staged in float32."""
    rng = np.random.default_rng(seed)
    x = (0.5 + 3 * rng.standard_normal((m, n))).astype(dtype)
    w = rng.standard_normal(n).astype(dtype) if affine else None
    g = rng.standard_normal((m, n)).astype(dtype)
    _check(x, w, g, 1e-5, dtype, n, max(m, n))


@pytest.mark.parametrize("n", [5, 40, 1100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_rows(n, dtype):
    """NaN, inf, a zero row with eps = 0 (rstd inf, y NaN), a huge value whose square
    overflows float32 (rstd 0): the kernels give the reference's NaN / inf positions."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal((6, n)).astype(dtype)
    x[0, n // 2] = np.nan
    x[1, 0] = np.inf
    x[2] = 0
    x[3, -1] = -np.inf
    x[4, 1] = 1e30 if dtype == np.float32 else 1e300
    w = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal((6, n)).astype(dtype)
    with np.errstate(all="ignore"):  # the oracle's own arithmetic on inf / NaN rows
        _check(x, w, g, 0.0, dtype, n, n)
        got = C.rms_norm(x, w, 0.0)[0]
    assert np.isnan(got[2]).all() and np.isnan(got[0]).all()
    assert np.isfinite(got[5]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ref_against_float64_arithmetic(dtype):
    """The spec's y and gx against the formulas evaluated in float64 (float128 is not
    portable; float64 holds the float32 results' errors 2^29 times finer): within 4 ulp
    of float32 per output (a sum of n squares, a square root, a division and products:
    numpy's pairwise sum errs by at most ~log2(n) ulp of the sum, here scaled to y)."""
    rng = np.random.default_rng(3)
    n = 300
    x = rng.standard_normal((20, n)).astype(dtype)
    w = rng.uniform(0.5, 2, n).astype(dtype)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    r64 = 1 / np.sqrt((x64 * x64).mean(1) + 1e-5)
    y64 = x64 * r64[:, None] * w64
    y, r = ref.rms_norm(x, w, 1e-5)
    eps = np.finfo(dtype).eps
    assert np.all(np.abs(y - y64) <= 4 * eps * (np.abs(x64) * r64[:, None] * np.abs(w64)) + 1e-300)
    g = rng.standard_normal((20, n)).astype(dtype)
    xh = x64 * r64[:, None]
    h = g.astype(np.float64) * w64
    gx64 = r64[:, None] * (h - xh * (h * xh).mean(1, keepdims=True))
    gx = ref.rms_norm_backward(g, x, w, r)[0]
    # gx is a difference: its error scales with the terms' size r |h| + r |xh| mean|h xh|
    scale = r64[:, None] * (np.abs(h) + np.abs(xh) * np.abs(h * xh).mean(1, keepdims=True))
    assert np.all(np.abs(gx - gx64) <= 8 * eps * scale)


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 300)).astype(np.float32)
    g = rng.standard_normal((1000, 300)).astype(np.float32)
    w = rng.standard_normal(300).astype(np.float32)
    old = tinyfw.get_num_threads()
    runs = []
    try:
        for nt in (1, 2, 3):
            tinyfw.set_num_threads(nt)
            y, r = C.rms_norm(x, w, 1e-6)
            runs.append((y, r) + tuple(C.rms_norm_backward(g, x, w, r)))
    finally:
        tinyfw.set_num_threads(old)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert np.array_equal(a, b), "rms_norm differs between thread counts"


def test_bad_input_names_the_problem():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="rms_norm: x must be"):
        C.rms_norm(np.ones((2, 3, 4), np.float32), None, 1e-5)
    with pytest.raises(ValueError, match="weight must have shape"):
        C.rms_norm(x, np.ones(4, np.float32), 1e-5)
    with pytest.raises(TypeError, match="floating-point"):
        C.rms_norm(np.ones((2, 3), np.int64), None, 1e-5)
    with pytest.raises(ValueError, match="rstd must have shape"):
        C.rms_norm_backward(x, x, None, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="equal"):
        C.rms_norm_backward(np.ones((2, 4), np.float32), x, None, np.ones(2, np.float32))
    with pytest.raises(TypeError, match="rms_norm: weight dtype float64"):
        F.rms_norm(tinyfw.ones(2, 3), (3,), tinyfw.ones(3, dtype=tinyfw.float64))


# -- the op ---------------------------------------------------------------------------------
@requires_torch
@pytest.mark.parametrize("shape", [(4096, 64), (512, 768), (64, 4096)])
def test_op_matches_torch_on_benchmark_shapes(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    n = shape[1]
    w = (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)
    compare(lambda x, w: F.rms_norm(x, (n,), w, 1e-6),
            lambda x, w: torch.nn.functional.rms_norm(x, (n,), w, 1e-6),
            [x, w], "float32", terms=n, grad_terms=shape[0], grad_scale=2.0)


@requires_torch
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_inputs_match_torch(dtype):
    """Half inputs: computed in float32 and rounded once, with eps None meaning float32's
    epsilon (PyTorch upcasts likewise; the half type's epsilon would move a bfloat16 result
    by up to 2 ulp: 2^-7 added to a mean square near 1)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 33)).astype(np.float32)
    w = (1 + 0.1 * rng.standard_normal(33)).astype(np.float32)
    got = F.rms_norm(tinyfw.tensor(x).to(getattr(tinyfw, dtype)), (33,),
                     tinyfw.tensor(w).to(getattr(tinyfw, dtype))).to(tinyfw.float32)
    got = npy(got)
    want = torch.nn.functional.rms_norm(torch.from_numpy(x).to(getattr(torch, dtype)), (33,),
                                        torch.from_numpy(w).to(getattr(torch, dtype))).float().numpy()
    # both round the float32 result to the half type once: they agree to 1 half ulp
    ulp = 2.0 ** -10 if dtype == "float16" else 2.0 ** -7
    assert np.all(np.abs(got - want) <= ulp * np.abs(want) + 1e-30)


@pytest.mark.parametrize("shape,ns", [((3, 17), (17,)), ((2, 3, 9), (3, 9)), ((4, 1), (1,))])
@pytest.mark.parametrize("affine", [True, False])
def test_gradgradcheck_through_vector_tails(shape, ns, affine):
    """float64 rows with tails (8 doubles a vector under AVX-512), a row of one element."""
    rng = np.random.default_rng(len(shape))
    x = tinyfw.tensor(rng.standard_normal(shape), requires_grad=True)
    w = tinyfw.tensor(rng.uniform(0.5, 2, ns), requires_grad=True)
    if affine:
        args, fn = (x, w), (lambda a, b: F.rms_norm(a, ns, b, 1e-3))
    else:
        args, fn = (x,), (lambda a: F.rms_norm(a, ns, None, 1e-3))
    assert tinyfw.gradcheck(fn, args)
    assert tinyfw.gradgradcheck(fn, args)


@requires_torch
def test_empty_inputs_match_torch():
    for shape, ns in (((0, 4), (4,)), ((3, 0), (0,))):
        x = tinyfw.zeros(*shape, requires_grad=True)
        y = F.rms_norm(x, ns, tinyfw.ones(*ns))
        assert tuple(y.shape) == tuple(torch.nn.functional.rms_norm(torch.zeros(shape), ns,
                                                                     torch.ones(ns)).shape)
        y.sum().backward()
        assert tuple(x.grad.shape) == shape


@pytest.mark.parametrize("affine", [True, False])
def test_onnx_export_runs_in_onnxruntime(affine, tmp_path):
    """RMSNorm's ONNX translation (Mul, ReduceMean, Add, Sqrt, Div[, Mul]; the fused
    RMSNormalization is opset 23) gives the op's own results in onnxruntime."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 24)).astype(np.float32)
    # on the CPU whatever TINYFW_DEVICE says: export reads parameters as host arrays
    w = tinyfw.tensor(rng.uniform(0.5, 2, 24).astype(np.float32), device="cpu") if affine else None
    fn = lambda t: F.rms_norm(t, (24,), w, 1e-5)  # noqa: E731
    path = str(tmp_path / "rms.onnx")
    tinyfw.onnx.export(fn, (tinyfw.tensor(x, device="cpu"),), path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    close(got, fn(tinyfw.tensor(x, device="cpu")).numpy(), np.float32, 24, "onnx")
