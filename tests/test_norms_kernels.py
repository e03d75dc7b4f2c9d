"""The C++ row kernels of softmax / log_softmax / cross-entropy / layer and batch norm
beyond the conformance table (tests/test_conformance_nn.py): the vector exp's accuracy,
the code paths that small hypothesis shapes do not reach (rows longer than a summation
block, column chunks, vector tails, rows of special values on every path), results that
do not depend on the thread count, and PyTorch as an oracle on the benchmark shapes.

The vector exp (csrc/vexp.h) is read back exactly through log_softmax_backward: with
g = (1, 0, ..., 0) on a row, gx[j] = 0 - exp(y[j]) * 1 for j >= 1.  Its reference is the
float64 exp rounded once to float32 (the correctly rounded value but for double-rounding
ties); the bound is 1 ulp of the float32 grid at that value (subnormal spacing below
2^-126).  The test sweeps every 997th bit pattern in [-110, 90]; every 61st pattern
(37M inputs) also stays within 1 ulp in the AVX-512, AVX2+FMA and SSE2 (no FMA) builds.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
import tinyfw.nn.functional as F
from helpers import in_layout, requires_torch, torch
from nn_check import compare
from tinyfw.backend import cpu, ref

pytestmark = pytest.mark.skipif(not cpu.KERNELS, reason="tinyfw._C is not built (python setup.py build_ext --inplace)")
C = cpu

FLOATS = [np.float32, np.float64, np.float16, ml_dtypes.bfloat16]
# the conformance suite's tolerances: (rtol, atol per unit of sqrt(sum length))
TOL = {np.dtype(np.float64): (1e-12, 1e-13), np.dtype(np.float32): (2e-5, 2e-6),
       np.dtype(np.float16): (2e-3, 2e-3), np.dtype(ml_dtypes.bfloat16): (1.6e-2, 1.6e-2)}


def close(actual, expected, dtype, terms: int = 1, msg: str = "") -> None:
    """As test_conformance_nn.close: same dtype and shape, values within the tolerance."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, msg
    r, a = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64), rtol=r,
                               atol=a * max(1.0, np.sqrt(terms)), equal_nan=True, err_msg=msg)


@pytest.fixture
def threads():
    """Restore the thread count after a test that changes it."""
    old = tinyfw.get_num_threads()
    yield
    tinyfw.set_num_threads(old)


# -- the vector exp ------------------------------------------------------------------------
def _exp_via_backward(v: np.ndarray) -> np.ndarray:
    """exp(v) as computed by log_softmax_backward's vector exp (rows of 63 values + g's 1)."""
    L = 64
    n = (v.size + L - 2) // (L - 1)
    y = np.zeros((n, L), np.float32)
    y[:, 1:] = np.pad(v, (0, n * (L - 1) - v.size)).reshape(n, L - 1)
    g = np.zeros((n, L), np.float32)
    g[:, 0] = 1
    return -C.log_softmax_backward(y, g, 1)[:, 1:].reshape(-1)[:v.size]


def test_vector_exp_within_one_ulp():
    bits = np.concatenate([np.arange(0x80000000, 0xC2DC0000, 997, dtype=np.uint64),  # -0 .. -110
                           np.arange(0, 0x42B40000, 997, dtype=np.uint64)])  # 0 .. 90
    v = bits.astype(np.uint32).view(np.float32)
    got = _exp_via_backward(v).astype(np.float64)
    with np.errstate(over="ignore"):
        want = np.exp(v.astype(np.float64)).astype(np.float32)
    fin = np.isfinite(want)
    assert np.array_equal(np.isinf(got), ~fin), "overflow to inf at the wrong place"
    w = want[fin].astype(np.float64)
    spacing = np.spacing(np.maximum(np.abs(want[fin]), np.finfo(np.float32).smallest_subnormal))
    ulps = np.abs(got[fin] - w) / spacing.astype(np.float64)
    assert ulps.max() <= 1.0, f"{ulps.max()} ulp at exp({v[fin][np.argmax(ulps)]!r})"


def test_vector_exp_special_values():
    v = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.72283, 88.7229, 89.0, 1e30, -103.97208,
                  -104.0, -1e30, -87.33654, 1e-45], np.float32)
    got = _exp_via_backward(v)
    assert np.isnan(got[0]) and got[1] == np.inf and got[2] == 0 and got[3] == 1 and got[4] == 1
    assert np.isfinite(got[5]) and got[6] == np.inf and got[7] == np.inf and got[8] == np.inf
    assert got[9] > 0 and got[10] == 0 and got[11] == 0  # last subnormal, then 0
    assert got[12] == np.float32(np.exp(np.float64(v[12]))) and got[13] == 1


def test_vector_log_of_row_sums_within_one_ulp():
    """log_softmax of a row of L zeros is -log(L) (the sum of L ones is exact), and the
    cross-entropy's lse of it log(L): the vector log of the softmax sums (vexp.h), rows in
    groups and alone, flat (C < 16) and by rows."""
    for L in list(range(1, 40)) + [63, 64, 65, 100, 1000, 1023, 1024, 4097, 20000]:
        x = np.zeros((3, L), np.float32)
        want = np.float32(np.log(np.float64(L)))
        spacing = np.spacing(want) if L > 1 else np.float32(0)
        got = -C.log_softmax(x, 1)
        assert np.all(np.abs(got.astype(np.float64) - want) <= spacing), (L, got[0], want)
        lse = C.cross_entropy_forward(x, np.zeros(3, np.int64), None, -100, 0.0)[1]
        assert np.all(np.abs(lse.astype(np.float64) - want) <= spacing), (L, lse, want)


# -- paths small shapes miss ---------------------------------------------------------------------
def _softmax_case(shape, dim, dtype, seed, lay="contiguous", special=False):
    rng = np.random.default_rng(seed)
    x = 4 * rng.standard_normal(shape)
    if special and x.size:
        x.flat[rng.integers(0, x.size, 4)] = [np.nan, np.inf, -np.inf, 3e4]  # 3e4: a float16
    x = in_layout(x.astype(dtype), lay)
    g = in_layout(rng.standard_normal(shape).astype(dtype), lay)
    with np.errstate(all="ignore"):
        for fwd, bwd in [("softmax", "softmax_backward"), ("log_softmax", "log_softmax_backward")]:
            y = getattr(C, fwd)(x, dim)
            close(y, getattr(ref, fwd)(x, dim), dtype, 1, f"{fwd} {shape} dim {dim}")
            close(getattr(C, bwd)(y, g, dim), getattr(ref, bwd)(y, g, dim), dtype, shape[dim],
                  f"{bwd} {shape} dim {dim}")


# rows longer than a summation block (64 vectors) with tails; the columns path with more
# than one chunk (8 vectors of columns), a chunk tail, and more rows than a sum block (64)
@pytest.mark.parametrize("shape,dim", [((3, 2500), 1), ((2, 1031), -1), ((5, 17), 1), ((1, 1), 0),
                                       ((4, 100, 300), 1), ((130, 37), 0), ((2, 3, 5, 7), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_long_rows_and_column_chunks(shape, dim, dtype):
    _softmax_case(shape, dim, dtype, seed=len(shape) + shape[-1])


@pytest.mark.parametrize("shape,dim", [((3, 0), 1), ((0, 4), 1), ((0, 4), 0), ((2, 0, 3), 1), ((2, 3, 0), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, ml_dtypes.bfloat16])
def test_softmax_empty_dims(shape, dim, dtype):
    """Empty rows, no rows, and empty column blocks: the reference's results (empty)."""
    _softmax_case(shape, dim, dtype, seed=0)


@pytest.mark.parametrize("shape,dim", [((6, 40), 1), ((40, 6), 0), ((3, 20, 150), 1), ((7, 300), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_of_special_values(shape, dim, dtype):
    """NaN, +-inf and a huge value: those rows / chunks take the reference formula."""
    _softmax_case(shape, dim, dtype, seed=3, special=True)


@given(rows=st.integers(0, 5), length=st.integers(1, 1200), dims=st.sampled_from(["last", "first"]),
       dtype=st.sampled_from(FLOATS), lay=st.sampled_from(["contiguous", "transposed", "stepped", "reversed"]),
       special=st.booleans(), seed=st.integers(0, 2**31))
def test_softmax_any_length(rows, length, dims, dtype, lay, special, seed):
    shape, dim = ((rows, length), 1) if dims == "last" else ((length, rows), 0)
    _softmax_case(shape, dim, dtype, seed, lay, special)


@given(m=st.integers(0, 70), n=st.sampled_from([1, 15, 16, 17, 64, 100, 1024, 1500]),
       dtype=st.sampled_from(FLOATS), affine=st.booleans(), seed=st.integers(0, 2**31))
def test_layer_norm_widths_and_blocks(m, n, dtype, affine, seed):
    """Vector tails, rows past a summation block, and gw / gb over several 32-row blocks."""
    rng = np.random.default_rng(seed)
    x = (1 + 3 * rng.standard_normal((m, n))).astype(dtype)
    w = rng.standard_normal(n).astype(dtype) if affine else None
    b = rng.standard_normal(n).astype(dtype) if affine else None
    got, want = C.layer_norm(x, w, b, 1e-5), ref.layer_norm(x, w, b, 1e-5)
    for a, e, what in zip(got, want, ("y", "mean", "rstd")):
        close(a, e, e.dtype, n, what)
    g = rng.standard_normal((m, n)).astype(dtype)
    got = C.layer_norm_backward(g, x, w, want[1], want[2])
    exp = ref.layer_norm_backward(g, x, w, want[1], want[2])
    for a, e, what in zip(got, exp, ("gx", "gw", "gb")):
        assert (a is None) == (e is None)
        if e is not None:
            close(a, e, dtype, max(m, n), what)


@pytest.mark.parametrize("shape", [(4, 3, 1), (64, 5, 1), (2, 3, 40), (3, 2, 1500)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_short_and_long_segments(shape, dtype):
    """L shorter than a vector (BatchNorm1d: L = 1) runs scalar loops; long L full blocks."""
    rng = np.random.default_rng(shape[2])
    x = (1 + 2 * rng.standard_normal(shape)).astype(dtype)
    w, b = rng.standard_normal(shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    got, want = C.batch_norm_forward(x, w, b, 1e-5), ref.batch_norm_forward(x, w, b, 1e-5)
    count = shape[0] * shape[2]
    for a, e, what in zip(got, want, ("y", "mean", "invstd")):
        close(a, e, e.dtype, count, what)
    g = rng.standard_normal(shape).astype(dtype)
    for a, e, what in zip(C.batch_norm_backward(g, x, w, want[1], want[2]),
                          ref.batch_norm_backward(g, x, w, want[1], want[2]), ("gx", "gw", "gb")):
        close(a, e, dtype, count, what)


@pytest.mark.parametrize("c", [5, 16, 33, 1000])
@pytest.mark.parametrize("options", [(None, -100, 0.0), ("w", 2, 0.1)])
def test_cross_entropy_special_rows_every_path(c, options):
    """Flat (C < 16) and row paths, plain and weighted/smoothed gradients, with NaN / inf /
    all -inf rows and an ignored target."""
    rng = np.random.default_rng(c)
    n = 300
    z = (3 * rng.standard_normal((n, c))).astype(np.float32)
    z[3, 1], z[10, -1], z[11, 0] = np.nan, np.inf, -np.inf
    z[12, :] = -np.inf
    z[13, 2] = 1e30
    t = rng.integers(0, c, n)
    weight = rng.uniform(0.5, 2, c).astype(np.float32) if options[0] else None
    args = (z, t, weight, options[1], options[2])
    with np.errstate(all="ignore"):
        got, want = C.cross_entropy_forward(*args), ref.cross_entropy_forward(*args)
        close(got[0], want[0], np.float32, c, "loss")
        close(got[1], want[1], np.float32, c, "lse")
        g = rng.uniform(-1, 1, n).astype(np.float32)
        close(C.cross_entropy_backward(*args, want[1], g), ref.cross_entropy_backward(*args, want[1], g),
              np.float32, c, "grad")


# -- determinism -----------------------------------------------------------------------------
def _all_kernels(rng):
    """Every row kernel on inputs large enough to run threaded: {name: arrays}."""
    x = rng.standard_normal((1000, 300)).astype(np.float32)
    g = rng.standard_normal((1000, 300)).astype(np.float32)
    x3 = rng.standard_normal((8, 300, 125)).astype(np.float32)
    w, b = rng.standard_normal(300).astype(np.float32), rng.standard_normal(300).astype(np.float32)
    t = rng.integers(0, 300, 1000)
    _, mu, rs = ref.layer_norm(x, w, b, 1e-5)
    xb = x.reshape(40, 25, 300)
    _, bm, bi = ref.batch_norm_forward(xb, w[:25], b[:25], 1e-5)
    lse = ref.cross_entropy_forward(x, t, None, -100, 0.0)[1]
    x1 = x.reshape(1000, 300, 1)  # BatchNorm1d's layout: the column-sum path
    _, m1, i1 = ref.batch_norm_forward(x1, w, b, 1e-5)
    return {
        "batch_norm wide": C.batch_norm_forward(x1, w, b, 1e-5),
        "batch_norm_backward wide": C.batch_norm_backward(g.reshape(x1.shape), x1, w, m1, i1),
        "softmax": C.softmax(x, 1), "log_softmax cols": C.log_softmax(x3, 1),
        "softmax_backward": C.softmax_backward(x, g, 1), "log_softmax_backward cols": C.log_softmax_backward(x3, x3, 1),
        "layer_norm": C.layer_norm(x, w, b, 1e-5), "layer_norm_backward": C.layer_norm_backward(g, x, w, mu, rs),
        "batch_norm": C.batch_norm_forward(xb, w[:25], b[:25], 1e-5),
        "batch_norm_backward": C.batch_norm_backward(g.reshape(xb.shape), xb, w[:25], bm, bi),
        "ce": C.cross_entropy_forward(x, t, w, -100, 0.1),
        "ce_backward": C.cross_entropy_backward(x, t, w, -100, 0.1, lse, g[:, 0]),
    }


def test_results_do_not_depend_on_the_thread_count(threads):
    runs = []
    for n in (1, 2, 3):
        tinyfw.set_num_threads(n)
        runs.append(_all_kernels(np.random.default_rng(0)))
    for name in runs[0]:
        first = runs[0][name] if isinstance(runs[0][name], tuple) else (runs[0][name],)
        for other in runs[1:]:
            again = other[name] if isinstance(other[name], tuple) else (other[name],)
            for a, b in zip(first, again):
                assert np.array_equal(a, b, equal_nan=True), f"{name} differs between thread counts"


# -- the ops against PyTorch on the benchmark shapes ------------------------------------------------
@requires_torch
@pytest.mark.parametrize("shape", [(4096, 64), (256, 1024)])
@pytest.mark.parametrize("fn", ["softmax", "log_softmax", "layer_norm"])
def test_ops_match_torch_on_benchmark_shapes(shape, fn):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    n = shape[1]
    if fn == "layer_norm":
        w = (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)
        b = (0.1 * rng.standard_normal(n)).astype(np.float32)
        compare(lambda x, w, b: F.layer_norm(x, (n,), w, b), lambda x, w, b: torch.nn.functional.layer_norm(x, (n,), w, b),
                [x, w, b], "float32", terms=n, grad_terms=shape[0], grad_scale=2.0)
    else:
        compare(lambda x: getattr(F, fn)(x, 1), lambda x: getattr(torch.nn.functional, fn)(x, 1), [x], "float32",
                terms=n)


@pytest.mark.parametrize("shape,dim", [((3, 20), 1), ((20, 3), 0), ((2, 19, 3), 1)])
def test_gradgradcheck_through_vector_tails(shape, dim):
    """float64 rows / columns with tails (W = 8 doubles under AVX-512) and column chunks."""
    rng = np.random.default_rng(4)
    x = tinyfw.tensor(rng.standard_normal(shape), dtype=tinyfw.float64, requires_grad=True)
    for fn in (F.softmax, F.log_softmax):
        assert tinyfw.gradcheck(lambda t: fn(t, dim), [x])
        assert tinyfw.gradgradcheck(lambda t: fn(t, dim), [x])
    n = shape[-1]
    w = tinyfw.tensor(rng.standard_normal(n), dtype=tinyfw.float64, requires_grad=True)
    assert tinyfw.gradgradcheck(lambda t, w: F.layer_norm(t, (n,), w, None), [x, w])
