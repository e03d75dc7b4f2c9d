"""Conformance of the C++ GEMM and nn kernels (tinyfw._C) with the numpy reference backend.

Every kernel registered by csrc/gemm.cpp and csrc/nn.cpp is run on hypothesis-generated
shapes, options, strides and dtypes and compared with `tinyfw.backend.ref`, the
specification.  Tolerances: float64 to ~1e-12 relative, float32 to a few ulps scaled by the
length of the sums involved, half types to one rounding of the half format.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
from tinyfw.backend import ref

C = pytest.importorskip("tinyfw._C", reason="the C++ extension is not built")

FLOATS = [np.float32, np.float64, np.float16, ml_dtypes.bfloat16]
# (rtol, atol per unit of sqrt(sum length)) for one output element
TOL = {np.dtype(np.float64): (1e-12, 1e-13), np.dtype(np.float32): (2e-5, 2e-6),
       np.dtype(np.float16): (2e-3, 2e-3), np.dtype(ml_dtypes.bfloat16): (1.6e-2, 1.6e-2)}


def close(actual, expected, dtype, terms: int = 1, msg: str = ""):
    """Compare in float64 with the dtype's tolerance for sums of `terms` products."""
    assert actual.dtype == expected.dtype, f"{msg}: dtype {actual.dtype} vs {expected.dtype}"
    assert actual.shape == expected.shape, f"{msg}: shape {actual.shape} vs {expected.shape}"
    r, a = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                               rtol=r, atol=a * max(1.0, np.sqrt(terms)), equal_nan=True,
                               err_msg=msg)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"], autouse=True)
def threads(request):
    """Run every test with 1 and 2 OpenMP threads (the parallel splits differ)."""
    old = tinyfw.get_num_threads()
    tinyfw.set_num_threads(request.param)
    yield request.param
    tinyfw.set_num_threads(old)


def layout(a: np.ndarray, kind: str) -> np.ndarray:
    """The same values in another memory layout: C order, Fortran order, or a strided
    slice of a larger array."""
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "slice":
        big = np.zeros(tuple(2 * s + 1 for s in a.shape), a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    return a


# -- matmul ---------------------------------------------------------------------------------
dims = st.sampled_from([0, 1, 2, 5, 6, 7, 16, 17, 33, 70])


@given(m=dims, n=dims, k=dims, batch_a=st.sampled_from([(), (1,), (3,), (2, 1)]),
       batch_b=st.sampled_from([(), (1,), (3,), (4, 3)]),
       dtype=st.sampled_from(FLOATS + [np.int8, np.int32, np.int64]),
       la=st.sampled_from(["C", "F", "slice"]), lb=st.sampled_from(["C", "F", "slice"]),
       seed=st.integers(0, 2**31))
def test_matmul(m, n, k, batch_a, batch_b, dtype, la, lb, seed):
    if len(batch_a) == 2 and len(batch_b) == 2 and batch_a[0] != batch_b[0]:
        batch_a = (batch_b[0], 1)
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "i":
        a = rng.integers(-100, 100, batch_a + (m, k)).astype(dtype)
        b = rng.integers(-100, 100, batch_b + (k, n)).astype(dtype)
    else:
        a, b = randn(rng, batch_a + (m, k), dtype), randn(rng, batch_b + (k, n), dtype)
    a, b = layout(a, la), layout(b, lb)
    got, want = C.matmul(a, b), ref.matmul(a, b)
    if np.dtype(dtype).kind == "i":  # exact, wrapping on overflow as numpy
        assert got.dtype == want.dtype and np.array_equal(got, want)
    else:
        close(got, want, dtype, terms=k, msg=f"{a.shape} @ {b.shape}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,k", [(131, 263, 517), (7, 4100, 3), (300, 5, 300), (1, 513, 1)])
def test_matmul_blocking_edges(m, n, k, dtype):
    """Sizes that cross the MC / KC / NC block edges and leave partial register tiles."""
    rng = np.random.default_rng(0)
    a, b = randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)
    close(C.matmul(a, b), ref.matmul(a, b), dtype, terms=k)
    # transposed operands, read in place by the packing
    at, bt = np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T
    close(C.matmul(at, bt), ref.matmul(a, b), dtype, terms=k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("la", ["C", "F", "slice"])
@pytest.mark.parametrize("lb", ["C", "F"])
def test_matmul_thin(dtype, la, lb):
    """Thin products (few columns; the MLP's last layer and its weight gradient): every
    row and column remainder of the dot-product tiles, k with and without a SIMD tail, and
    column-major A (computed as the transposed product)."""
    rng = np.random.default_rng(1)
    for n in range(1, 14):
        for m, k in [(9, 37), (n, 64), (130, 517)]:
            a, b = randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)
            want = ref.matmul(a, b)
            close(C.matmul(layout(a, la), layout(b, lb)), want, dtype, terms=k,
                  msg=f"{a.shape} @ {b.shape} {la}{lb}")


def test_matmul_errors():
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="matmul"):
        C.matmul(a, np.zeros((5, 2), np.float32))
    with pytest.raises(ValueError, match="matmul"):
        C.matmul(np.zeros((2, 3, 4), np.float32), np.zeros((3, 4, 2), np.float32))
    with pytest.raises(TypeError, match="matmul"):
        C.matmul(a, np.zeros((4, 2), np.float64))
    with pytest.raises(TypeError, match="matmul"):
        C.matmul(a, [[1.0]])


# -- conv2d -------------------------------------------------------------------------------------
@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 9))
    w = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 9))
    n = draw(st.integers(0, 3))
    return dict(x=(n, cg * groups, h, w), w=(og * groups, cg, kh, kw), stride=stride,
                padding=padding, dilation=dilation, groups=groups)


@given(case=conv_cases(), dtype=st.sampled_from(FLOATS), lx=st.sampled_from(["C", "F", "slice"]),
       seed=st.integers(0, 2**31))
def test_conv2d(case, dtype, lx, seed):
    rng = np.random.default_rng(seed)
    x = layout(randn(rng, case["x"], dtype), lx)
    w = randn(rng, case["w"], dtype)
    opts = (case["stride"], case["padding"], case["dilation"], case["groups"])
    terms = int(np.prod(case["w"][1:]))
    y = C.conv2d(x, w, *opts)
    close(y, ref.conv2d(x, w, *opts), dtype, terms, "conv2d")
    g = layout(randn(rng, y.shape, dtype), lx)
    close(C.conv2d_backward_input(g, w, x.shape, *opts),
          ref.conv2d_backward_input(g, w, x.shape, *opts), dtype, terms * 4, "backward_input")
    close(C.conv2d_backward_weight(g, x, w.shape, *opts),
          ref.conv2d_backward_weight(g, x, w.shape, *opts), dtype,
          y.shape[0] * y.shape[2] * y.shape[3], "backward_weight")


@pytest.mark.parametrize("shape,out,k,pad", [((64, 1, 28, 28), 32, 3, 0), ((16, 32, 13, 13), 64, 3, 1),
                                             ((4, 8, 10, 10), 16, 1, 0)])
def test_conv2d_benchmark_shapes(shape, out, k, pad):
    """The benchmark's shapes (batch-parallel path) and the 1x1 path without im2col."""
    rng = np.random.default_rng(1)
    x, w = randn(rng, shape, np.float32), randn(rng, (out, shape[1], k, k), np.float32)
    opts = ((1, 1), (pad, pad), (1, 1), 1)
    y = C.conv2d(x, w, *opts)
    terms = shape[1] * k * k
    close(y, ref.conv2d(x, w, *opts), np.float32, terms)
    g = randn(rng, y.shape, np.float32)
    close(C.conv2d_backward_input(g, w, x.shape, *opts), ref.conv2d_backward_input(g, w, x.shape, *opts),
          np.float32, out * k * k)
    close(C.conv2d_backward_weight(g, x, w.shape, *opts), ref.conv2d_backward_weight(g, x, w.shape, *opts),
          np.float32, shape[0] * y.shape[2] * y.shape[3])


@pytest.mark.parametrize("xs,ws,padding,dilation", [((1, 1, 1, 1), (1, 1, 1, 3), (0, 2), (1, 2)),
                                                     ((2, 2, 3, 1), (3, 2, 2, 3), (1, 2), (1, 2))])
def test_conv2d_padding_wider_than_the_output(xs, ws, padding, dilation):
    """A kernel tap whose whole output row lies in the padding: im2col wrote zeros past the
    row's end (memory corruption, a segfault in the thorough hypothesis profile)."""
    x, w = np.ones(xs, np.float32), np.ones(ws, np.float32)
    for _ in range(20):
        y = C.conv2d(x, w, (1, 1), padding, dilation, 1)
    close(y, ref.conv2d(x, w, (1, 1), padding, dilation, 1), np.float32, 3, "conv2d")
    g = np.ones(y.shape, np.float32)
    close(C.conv2d_backward_input(g, w, x.shape, (1, 1), padding, dilation, 1),
          ref.conv2d_backward_input(g, w, x.shape, (1, 1), padding, dilation, 1), np.float32, 3, "gx")
    close(C.conv2d_backward_weight(g, x, w.shape, (1, 1), padding, dilation, 1),
          ref.conv2d_backward_weight(g, x, w.shape, (1, 1), padding, dilation, 1), np.float32, 3, "gw")


def test_conv2d_errors():
    x, w = np.zeros((1, 4, 5, 5), np.float32), np.zeros((2, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="conv2d"):
        C.conv2d(x, w, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="conv2d"):
        C.conv2d(x, np.zeros((2, 4, 7, 7), np.float32), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="conv2d_backward_input"):
        C.conv2d_backward_input(np.zeros((1, 2, 9, 9), np.float32), np.zeros((2, 4, 3, 3), np.float32),
                                (1, 4, 5, 5), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(TypeError, match="conv2d"):
        C.conv2d(x.astype(np.int32), w, (1, 1), (0, 0), (1, 1), 1)


# -- pooling -----------------------------------------------------------------------------------
@st.composite
def pool_cases(draw, dilated: bool):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilated else (1, 1)
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    h = draw(st.integers(max(1, d[0] * (k[0] - 1) + 1 - 2 * p[0]), 8))
    w = draw(st.integers(max(1, d[1] * (k[1] - 1) + 1 - 2 * p[1]), 8))
    # ref.max_pool2d cannot reshape an empty batch, so N = 0 is left to avg pooling
    shape = (draw(st.integers(0 if not dilated else 1, 2)), draw(st.integers(1, 3)), h, w)
    return shape, k, s, p, d, draw(st.booleans())


@given(case=pool_cases(True), dtype=st.sampled_from(FLOATS), lx=st.sampled_from(["C", "slice"]),
       ties=st.booleans(), seed=st.integers(0, 2**31))
def test_max_pool2d(case, dtype, lx, ties, seed):
    shape, k, s, p, d, ceil_mode = case
    rng = np.random.default_rng(seed)
    # small integers make ties, where the first maximum must win
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(dtype)
    x = layout(x, lx)
    y, idx = C.max_pool2d(x, k, s, p, d, ceil_mode)
    y_ref, idx_ref = ref.max_pool2d(x, k, s, p, d, ceil_mode)
    assert y.dtype == y_ref.dtype and np.array_equal(y.astype(np.float64), y_ref.astype(np.float64))
    assert idx.dtype == np.int64 and np.array_equal(idx, idx_ref)
    g = randn(rng, y.shape, dtype)
    close(C.max_pool2d_backward(g, idx, x.shape), ref.max_pool2d_backward(g, idx_ref, x.shape), dtype,
          k[0] * k[1])


def test_max_pool2d_nan_and_bad_index():
    x = np.array([[[[1.0, np.nan, 3.0, np.nan]]]], np.float32)
    y, idx = C.max_pool2d(x, (1, 2), (1, 2), (0, 0), (1, 1), False)
    y_ref, idx_ref = ref.max_pool2d(x, (1, 2), (1, 2), (0, 0), (1, 1), False)
    assert np.array_equal(idx, idx_ref) and np.isnan(y).all()
    with pytest.raises(IndexError, match="max_pool2d_backward"):
        C.max_pool2d_backward(np.ones((1, 1, 1, 2), np.float32), np.array([[[[0, 9]]]]), (1, 1, 1, 4))


@given(case=pool_cases(False), dtype=st.sampled_from(FLOATS), include_pad=st.booleans(),
       override=st.sampled_from([None, 1, 3]), seed=st.integers(0, 2**31))
def test_avg_pool2d(case, dtype, include_pad, override, seed):
    shape, k, s, p, _, ceil_mode = case
    rng = np.random.default_rng(seed)
    x = layout(randn(rng, shape, dtype), "slice")
    opts = (k, s, p, ceil_mode, include_pad, override)
    y = C.avg_pool2d(x, *opts)
    close(y, ref.avg_pool2d(x, *opts), dtype, k[0] * k[1])
    g = randn(rng, y.shape, dtype)
    close(C.avg_pool2d_backward(g, x.shape, *opts), ref.avg_pool2d_backward(g, x.shape, *opts), dtype,
          k[0] * k[1])


# -- softmax family ------------------------------------------------------------------------------
@given(shape=st.lists(st.integers(0, 40), min_size=1, max_size=3).map(tuple), dim=st.integers(0, 2),
       dtype=st.sampled_from(FLOATS), lx=st.sampled_from(["C", "F"]), special=st.booleans(),
       seed=st.integers(0, 2**31))
def test_softmax_family(shape, dim, dtype, lx, special, seed):
    dim = dim % len(shape)
    rng = np.random.default_rng(seed)
    x = 5 * rng.standard_normal(shape)
    if special and x.size:  # -inf entries, a NaN, a row of -inf
        x.flat[rng.integers(0, x.size, 3)] = -np.inf
        x.flat[rng.integers(0, x.size)] = np.nan
    x = layout(x.astype(dtype), lx)
    g = randn(rng, shape, dtype)
    if shape[dim] == 0:  # the reference's np.max has no identity; PyTorch returns empty
        assert C.softmax(x, dim).shape == shape and C.log_softmax_backward(x, g, dim).shape == shape
        return
    with np.errstate(all="ignore"):
        for fwd, bwd in [("softmax", "softmax_backward"), ("log_softmax", "log_softmax_backward")]:
            y = getattr(C, fwd)(x, dim)
            close(y, getattr(ref, fwd)(x, dim), dtype, 1, fwd)
            close(getattr(C, bwd)(y, g, dim), getattr(ref, bwd)(y, g, dim), dtype, shape[dim], bwd)


# -- cross-entropy --------------------------------------------------------------------------------
@given(n=st.integers(0, 20), c=st.sampled_from([1, 2, 7, 10, 33, 100]), dtype=st.sampled_from(FLOATS),
       weighted=st.booleans(), ignore=st.booleans(), smoothing=st.sampled_from([0.0, 0.1, 0.5]),
       seed=st.integers(0, 2**31))
def test_cross_entropy(n, c, dtype, weighted, ignore, smoothing, seed):
    rng = np.random.default_rng(seed)
    logits = layout((3 * rng.standard_normal((n, c))).astype(dtype), "slice")
    target = rng.integers(0, c, n).astype(np.int64)
    ignore_index = -100
    if ignore and n:
        ignore_index = int(target[0])
    weight = rng.uniform(0.1, 2, c).astype(dtype) if weighted else None
    args = (logits, target, weight, ignore_index, smoothing)
    loss, lse = C.cross_entropy_forward(*args)
    loss_ref, lse_ref = ref.cross_entropy_forward(*args)
    close(loss, loss_ref, dtype, c, "loss")
    close(lse, lse_ref, lse_ref.dtype, c, "lse")
    g = rng.uniform(-1, 1, n).astype(dtype)
    close(C.cross_entropy_backward(*args, lse, g), ref.cross_entropy_backward(*args, lse_ref, g), dtype, c, "grad")


@pytest.mark.parametrize("c", [3, 10, 15, 16])
def test_cross_entropy_blocks_and_special_rows(c):
    """Several row blocks (the small-C path exps whole blocks at once) with rows holding
    NaN, +-inf and huge logits, which must take the reference formula."""
    rng = np.random.default_rng(c)
    logits = (3 * rng.standard_normal((600, c))).astype(np.float32)
    logits[5, 0], logits[300, -1], logits[301, 1 % c] = np.nan, np.inf, -np.inf
    logits[302, :] = -np.inf
    logits[400, 0] = 1e30
    target = rng.integers(0, c, 600)
    args = (logits, target, None, -100, 0.0)
    with np.errstate(all="ignore"):
        loss, lse = C.cross_entropy_forward(*args)
        loss_ref, lse_ref = ref.cross_entropy_forward(*args)
        close(loss, loss_ref, np.float32, c, "loss")
        close(lse, lse_ref, np.float32, c, "lse")
        g = rng.uniform(-1, 1, 600).astype(np.float32)
        close(C.cross_entropy_backward(*args, lse, g), ref.cross_entropy_backward(*args, lse_ref, g),
              np.float32, c, "grad")


def test_cross_entropy_bad_target():
    logits = np.zeros((2, 3), np.float32)
    for bad in (3, -1):
        t = np.array([0, bad])
        with pytest.raises(IndexError, match="cross_entropy_forward"):
            C.cross_entropy_forward(logits, t, None, -100, 0.0)
        with pytest.raises(IndexError, match="cross_entropy_backward"):
            C.cross_entropy_backward(logits, t, None, -100, 0.0, np.zeros(2, np.float32), np.ones(2, np.float32))
    with pytest.raises(ValueError, match="cross_entropy_forward"):
        C.cross_entropy_forward(logits, np.array([0, 1, 2]), None, -100, 0.0)


# -- normalisation ---------------------------------------------------------------------------------
@given(m=st.integers(0, 9), n=st.integers(1, 70), dtype=st.sampled_from(FLOATS), affine=st.booleans(),
       seed=st.integers(0, 2**31))
def test_layer_norm(m, n, dtype, affine, seed):
    rng = np.random.default_rng(seed)
    x = layout((2 + 3 * rng.standard_normal((m, n))).astype(dtype), "F")
    w = randn(rng, n, dtype) if affine else None
    b = randn(rng, n, dtype) if affine else None
    y, mean, rstd = C.layer_norm(x, w, b, 1e-5)
    y_ref, mean_ref, rstd_ref = ref.layer_norm(x, w, b, 1e-5)
    close(y, y_ref, dtype, n, "y")
    close(mean, mean_ref, mean_ref.dtype, n, "mean")
    close(rstd, rstd_ref, rstd_ref.dtype, n, "rstd")
    g = randn(rng, (m, n), dtype)
    got = C.layer_norm_backward(g, x, w, mean_ref, rstd_ref)
    want = ref.layer_norm_backward(g, x, w, mean_ref, rstd_ref)
    for a, e, what in zip(got, want, ("gx", "gw", "gb")):
        if e is None:
            assert a is None
        else:
            close(a, e, dtype, max(m, n), what)


@given(m=st.integers(0, 9), n=st.integers(1, 70), dtype=st.sampled_from(FLOATS), affine=st.booleans(),
       seed=st.integers(0, 2**31))
def test_rms_norm(m, n, dtype, affine, seed):
    rng = np.random.default_rng(seed)
    x = layout((1 + 3 * rng.standard_normal((m, n))).astype(dtype), "F")
    w = randn(rng, n, dtype) if affine else None
    y, rstd = C.rms_norm(x, w, 1e-5)
    y_ref, rstd_ref = ref.rms_norm(x, w, 1e-5)
    close(y, y_ref, dtype, n, "y")
    close(rstd, rstd_ref, rstd_ref.dtype, n, "rstd")
    g = randn(rng, (m, n), dtype)
    got = C.rms_norm_backward(g, x, w, rstd_ref)
    want = ref.rms_norm_backward(g, x, w, rstd_ref)
    for a, e, what in zip(got, want, ("gx", "gw")):
        if e is None:
            assert a is None
        else:
            close(a, e, dtype, max(m, n), what)


@given(shape=st.tuples(st.integers(1, 6), st.integers(0, 5), st.integers(1, 12)),
       dtype=st.sampled_from(FLOATS), affine=st.booleans(), seed=st.integers(0, 2**31))
def test_batch_norm(shape, dtype, affine, seed):
    rng = np.random.default_rng(seed)
    x = layout((1 + 2 * rng.standard_normal(shape)).astype(dtype), "slice")
    c = shape[1]
    w = randn(rng, c, dtype) if affine else None
    b = randn(rng, c, dtype) if affine else None
    y, mean, inv = C.batch_norm_forward(x, w, b, 1e-5)
    y_ref, mean_ref, inv_ref = ref.batch_norm_forward(x, w, b, 1e-5)
    count = shape[0] * shape[2]
    close(y, y_ref, dtype, count, "y")
    close(mean, mean_ref, mean_ref.dtype, count, "mean")
    close(inv, inv_ref, inv_ref.dtype, count, "invstd")
    g = randn(rng, shape, dtype)
    got = C.batch_norm_backward(g, x, w, mean_ref, inv_ref)
    want = ref.batch_norm_backward(g, x, w, mean_ref, inv_ref)
    for a, e, what in zip(got, want, ("gx", "gw", "gb")):
        if e is None:
            assert a is None
        else:
            close(a, e, dtype, count, what)


# -- dropout: bit-exact with numpy's PCG64 stream --------------------------------------------------
@given(shape=st.lists(st.integers(0, 30), min_size=0, max_size=3).map(tuple),
       p=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), dtype=st.sampled_from(FLOATS),
       seed=st.integers(0, 2**63 - 1))
def test_dropout_bit_exact(shape, p, dtype, seed):
    x = layout(np.random.default_rng(1).standard_normal(shape).astype(dtype), "F")
    y, mask = C.dropout(x, p, seed)
    if p == 1.0:
        u = np.random.Generator(np.random.PCG64(seed)).random(x.shape)
        assert not mask.any() and np.array_equal(mask, u >= p) and not y.astype(np.float64).any()
        return
    y_ref, mask_ref = ref.dropout(x, p, seed)
    assert mask.dtype == np.bool_ and np.array_equal(mask, mask_ref)
    assert y.dtype == y_ref.dtype and np.array_equal(y.astype(np.float64), y_ref.astype(np.float64))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n,p", [(16384 * 2 + 5, 0.1), (100003, 1 / 3), (16384 * 4 - 1, 0.5)])
def test_dropout_split_over_threads_keeps_the_stream(n, p, threads):
    """Each thread jumps the LCG to its first element and runs interleaved chains: every
    draw is still numpy's, whatever the split (sizes past the one-thread grain, odd tails)."""
    import tinyfw

    x = np.random.default_rng(2).standard_normal(n).astype(np.float32)
    before = tinyfw.get_num_threads()
    tinyfw.set_num_threads(threads)
    try:
        y, mask = C.dropout(x, p, 2**62 + 12345)
    finally:
        tinyfw.set_num_threads(before)
    y_ref, mask_ref = ref.dropout(x, p, 2**62 + 12345)
    assert np.array_equal(mask, mask_ref) and np.array_equal(y, y_ref)
