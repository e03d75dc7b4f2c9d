"""Conformance: every compiled primitive (`tinyfw.backend.cpu.KERNELS`) against the numpy
reference backend (`tinyfw.backend.ref`), on hypothesis-generated shapes, broadcasts,
strides (transposed, stepped, reversed, expanded 0-stride), size-0/1 dims and dtypes.

The table `CASES` maps a primitive to an input generator; adding a primitive is one line.
Primitives that are compiled but have no entry here are listed by
`test_every_kernel_has_a_case` (part B's nn kernels are checked in their own file and
listed in `ELSEWHERE`).  Comparison: bit-exact where ref and the kernel compute the same
correctly rounded operations, a few ulps for transcendental functions and reordered sums.
"""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinyfw.backend import CONTRACT, cpu, ref

import index_cases
from cuda_util import CUDA_REASON, CudaUnderTest
from helpers import in_layout

BF16 = np.dtype(ml_dtypes.bfloat16)
FLOATS = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), BF16]
INTS = [np.dtype(np.int8), np.dtype(np.int32), np.dtype(np.int64)]
BOOL = [np.dtype(np.bool_)]
ALL = FLOATS + INTS + BOOL

# the backends checked against ref: the C++ kernels, and the CUDA kernels when a GPU is here
# (tests/cuda_util.py uploads each argument in its own layout and downloads the results)
BACKENDS = [
    pytest.param("cpu", id="cpu", marks=pytest.mark.skipif(
        not cpu.KERNELS, reason="tinyfw._C is not built (python setup.py build_ext --inplace)")),
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(bool(CUDA_REASON), reason=CUDA_REASON or "-")),
]
_UNDER_TEST: dict = {}
requires_C = pytest.mark.skipif(not cpu.KERNELS, reason="tinyfw._C is not built (python setup.py build_ext --inplace)")


def _backend(name: str):
    """The module (or CUDA wrapper) called `name`; skips the case when the primitive has no
    kernel there."""
    if name == "cpu":
        return cpu
    if name not in _UNDER_TEST:
        _UNDER_TEST[name] = CudaUnderTest()
    return _UNDER_TEST[name]


def _need(K, name: str):
    if name not in K.KERNELS:
        pytest.skip(f"{name} has no kernel on {getattr(K, 'name', 'cpu')}")


# ------------------------------------------------------------------------------ arrays
def _values(rng: np.random.Generator, shape: tuple, dtype: np.dtype, kind: str) -> np.ndarray:
    return np.asarray(_raw_values(rng, shape, dtype, kind))


def _raw_values(rng, shape, dtype, kind):
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind == "i":
        lo, hi = {"small": (-5, 6), "pos": (0, 4), "nonzero": (1, 9)}.get(kind, (-100, 101))
        v = rng.integers(lo, hi, shape)
        if kind == "nonzero":
            v = v * np.where(rng.random(shape) < 0.5, -1, 1)
        return v.astype(dtype)
    if kind == "pos":
        v = rng.uniform(0.05, 4.0, shape)
    elif kind == "unit":
        v = rng.uniform(-0.95, 0.95, shape)
    elif kind == "near1":
        v = rng.uniform(0.8, 1.25, shape)
    else:
        v = rng.standard_normal(shape) * 3
        flat = v.reshape(-1)
        if flat.size >= 4 and kind == "special":  # ties, zeros, NaN and inf
            flat[: 4] = [2.5, -0.0, np.nan, np.inf][: flat.size]
    return v.astype(dtype)


shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
layouts = st.sampled_from(["contiguous", "transposed", "stepped", "reversed", "expanded"])


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast: some dims dropped or set to 1 in either."""
    shape = draw(shapes)
    a, b = list(shape), list(shape)
    for s in (a, b):
        for i in range(len(s)):
            if draw(st.booleans()) and draw(st.booleans()):
                s[i] = 1
    cut = draw(st.integers(0, len(b)))
    return tuple(a), tuple(b[cut:])


# ------------------------------------------------------------------------------ comparison
ULPS = {"exact": 0, "ulp": 4, "sum": None}
# the CUDA Math API's documented maximum errors plus ref's own (1 ulp) where that exceeds
# the 4 ulps above: powf 4, erfc (double) 5, atan2f 3 (gelu and its backward use erfc)
CUDA_ULPS = {"pow": 5, "erfc": 6, "gelu": 6, "gelu_backward": 6, "atan2": 4}


def _eps(dtype) -> float:
    return {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7, "float32": 2.0 ** -23, "float64": 2.0 ** -52}[str(dtype)]


def assert_conform(out, exp, how: str, name: str, scale=None, ulps: int | None = None):
    """Dtype and shape equal; values bit-exact ("exact"), within a few ulps ("ulp"), or for
    reordered sums within n*eps*sum|x| ("sum", scale given)."""
    assert isinstance(out, np.ndarray), f"{name}: returned {type(out).__name__}"
    assert out.dtype == exp.dtype, f"{name}: dtype {out.dtype} vs ref {exp.dtype}"
    assert out.shape == exp.shape, f"{name}: shape {out.shape} vs ref {exp.shape}"
    if exp.dtype.kind in "biu":
        np.testing.assert_array_equal(out, exp, err_msg=name)
        return
    o, e = out.astype(np.float64), exp.astype(np.float64)
    assert np.array_equal(np.isnan(o), np.isnan(e)), f"{name}: NaN positions differ"
    m = ~np.isnan(e)
    o, e = o[m], e[m]
    if how == "exact":
        np.testing.assert_array_equal(o, e, err_msg=name)
        return
    eps = _eps(exp.dtype)
    if how == "sum":
        tol = scale[m] * eps * 64 + np.abs(e) * eps
    elif how == "ulpx":  # ulps of the result or of the input, whichever is larger
        tol = (np.abs(e) + np.broadcast_to(scale, m.shape)[m]) * eps * (ulps or ULPS["ulp"])
    else:
        tol = np.abs(e) * eps * (ulps or ULPS["ulp"]) + eps * 1e-30
        if str(exp.dtype) in ("float16", "bfloat16"):  # one rounding of a float32 result
            tol = np.maximum(tol, np.abs(e) * eps * 1.01)
    inf = np.isinf(e)
    assert np.array_equal(o[inf], e[inf]), f"{name}: infinities differ"
    bad = np.abs(o - e)[~inf] > tol[~inf]
    assert not bad.any(), f"{name}: {o[~inf][bad][:5]} vs ref {e[~inf][bad][:5]}"


# ------------------------------------------------------------------------------ the table
# name -> (kind of values, dtypes, comparison, extra positional args)
UNARY = {
    "neg": ("special", FLOATS + INTS, "exact"), "abs": ("special", FLOATS + INTS, "exact"),
    "exp": ("normal", FLOATS, "ulp"), "log": ("pos", FLOATS, "ulp"), "log1p": ("pos", FLOATS, "ulp"),
    "expm1": ("normal", FLOATS, "ulp"), "sqrt": ("pos", FLOATS, "exact"),
    "rsqrt": ("pos", FLOATS, "exact"), "reciprocal": ("special", FLOATS, "exact"),
    "sin": ("normal", FLOATS, "ulp"), "cos": ("normal", FLOATS, "ulp"),
    "tanh": ("normal", FLOATS, "ulp"), "sigmoid": ("normal", FLOATS, "ulp"),
    "relu": ("special", FLOATS + INTS, "exact"), "silu": ("normal", FLOATS, "ulp"),
    "erf": ("normal", FLOATS, "ulp"), "erfc": ("normal", FLOATS, "ulp"),
    "sign": ("special", FLOATS + INTS, "exact"),
    "floor": ("special", FLOATS, "exact"), "ceil": ("special", FLOATS, "exact"),
    "round": ("special", FLOATS, "exact"), "logical_not": ("special", ALL, "exact"),
    "isnan": ("special", FLOATS, "exact"), "isinf": ("special", FLOATS, "exact"),
    # issue 16 (float32 kernels; float64 and half types run ref)
    "exp2": ("normal", FLOATS, "ulp"), "log2": ("pos", FLOATS, "ulp"),
    "sinh": ("normal", FLOATS, "ulp"), "cosh": ("normal", FLOATS, "ulp"),
}
UNARY_ATTR = {  # name -> (kind, dtypes, comparison, args)
    "gelu": ("normal", FLOATS, "ulp", ("none",)),
    "gelu/tanh": ("normal", FLOATS, "ulp", ("tanh",)),
    "leaky_relu": ("special", FLOATS, "exact", (0.1,)),
    "softplus": ("normal", FLOATS, "ulp", (1.5, 4.0)),
    "clamp": ("special", FLOATS + INTS, "exact", (-1, 2)),
    "clamp/lo": ("special", FLOATS, "exact", (-0.5, None)),
    "clamp/hi": ("special", FLOATS + INTS, "exact", (None, 3)),
}
BINARY = {
    "add": ("normal", FLOATS + INTS, "exact"), "sub": ("normal", FLOATS + INTS, "exact"),
    "mul": ("normal", FLOATS + INTS, "exact"), "div": ("special", FLOATS, "exact"),
    "pow": ("pos", FLOATS, "ulp"), "pow/int": ("small|pos", INTS, "exact"),
    "maximum": ("special", FLOATS + INTS, "exact"), "minimum": ("special", FLOATS + INTS, "exact"),
    "floor_divide": ("special|nonzero", FLOATS + INTS, "exact"),
    "remainder": ("special|nonzero", FLOATS + INTS, "exact"),
    "eq": ("small", ALL, "exact"), "ne": ("small", ALL, "exact"), "lt": ("small", ALL, "exact"),
    "le": ("small", ALL, "exact"), "gt": ("small", ALL, "exact"), "ge": ("small", ALL, "exact"),
    "logical_and": ("small", ALL, "exact"), "logical_or": ("small", ALL, "exact"),
    "logical_xor": ("small", ALL, "exact"),
    "atan2": ("special", FLOATS, "ulp"),
    # the composed backward formulas in one pass: the same float operations as ref
    "tanh_backward": ("normal", FLOATS, "exact"), "sigmoid_backward": ("normal", FLOATS, "exact"),
}
# binary primitives with attributes: name -> (kinds of a|b, dtypes, comparison, args).  The
# derivatives of GELU and SiLU have roots (x = -0.75, -1.28): there kernel and ref, which
# round the two cancelling terms differently (exp from libm vs numpy, the vector sigmoid),
# agree to ulps of g ("ulpx" with g's scale), not of the tiny result (the float32 accuracy
# of gelu_backward against exact values: test_vmath.py)
BINARY_ATTR = {
    "gelu_backward": ("normal", FLOATS, "ulpx", ("none",)),
    "gelu_backward/tanh": ("normal", FLOATS, "ulpx", ("tanh",)),
    "silu_backward": ("normal", FLOATS, "ulpx", ()),
}
REDUCE = {  # name -> (kind, dtypes, comparison)
    "sum": ("normal", ALL, "sum"), "prod": ("near1", FLOATS + INTS[:1], "ulp"),
    "amax": ("special", ALL, "exact"), "amin": ("special", ALL, "exact"),
    "any": ("special", ALL, "exact"), "all": ("special", ALL, "exact"),
}
# name -> generator of the argument tuple (tests/index_cases.py); bit-exact against ref
INDEX = {
    "cast": index_cases.cast_args, "gather": index_cases.gather_args,
    "scatter_add": index_cases.scatter_args, "scatter": index_cases.scatter_assign_args,
    "index": index_cases.index_args, "index_put": index_cases.index_put_args,
}
ELSEWHERE: set = set()  # compiled primitives tested by another file (part B's nn kernels)
# the shape kernels (cat, pad, flip, ...) are checked in test_conformance_shape_kernels.py
ELSEWHERE |= {"cat", "pad", "flip", "tile", "masked_fill", "fill_", "triu", "tril", "sort"}
# the int8 kernels are checked bit for bit, on every int8 GEMM path, in test_quant_kernels.py
ELSEWHERE |= {"qlinear", "qconv2d", "qadd", "qmax_pool2d", "qavg_pool2d", "quantize_per_tensor",
              "quantize_per_channel", "dequantize_per_tensor", "dequantize_per_channel"}
# the scan kernels (csrc/scan.cpp) are checked in test_conformance_scan.py
ELSEWHERE |= {"cumprod", "cummax", "cummin", "logcumsumexp"}
# scatter_reduce and index_reduce (issue 16): bit for bit in test_conformance_index_reduce.py
ELSEWHERE |= {"scatter_reduce", "index_reduce"}
# interpolate's resampling kernels: test_conformance_resample.py
ELSEWHERE |= {"resample_axis", "resample_axis_backward"}
WHERE = {"where"}
COPIES = {"contiguous", "copy_", "argmax", "argmin", "cumsum"}


def _prim(key: str) -> str:
    return key.split("/")[0]


def _cases(table):
    return [pytest.param(k, id=k) for k in table]


def _ulps(K, name: str):
    return CUDA_ULPS.get(name) if getattr(K, "name", "") == "cuda" else None


def test_every_kernel_has_a_case():
    covered = {_prim(k) for t in (UNARY, UNARY_ATTR, BINARY, BINARY_ATTR, REDUCE, INDEX) for k in t}
    covered |= WHERE | COPIES | ELSEWHERE
    nn_file_tested = {n for n in cpu.KERNELS if n not in covered and not hasattr(ref, n)}
    missing = sorted(set(cpu.KERNELS) - covered - nn_file_tested - set(CONTRACT))  # contract: own tests
    known_elsewhere = {"matmul", "conv2d", "conv2d_backward_input", "conv2d_backward_weight"}
    missing = [m for m in missing if m not in known_elsewhere and not m.startswith(
        ("softmax", "log_softmax", "cross_entropy", "layer_norm", "gelu_add_layer_norm", "rms_norm", "batch_norm",
         "max_pool", "avg_pool",
         "dropout", "conv", "sdpa", "sgd", "adam", "rmsprop", "adagrad", "nll", "mse", "bce"))]
    assert not missing, f"compiled primitives with no conformance case: {missing}"


@pytest.mark.parametrize("kb", BACKENDS)
@pytest.mark.parametrize("key", _cases(UNARY))
@given(shape=shapes, layout=layouts, seed=st.integers(0, 2 ** 16), di=st.integers(0, 7))
def test_unary(kb, key, shape, layout, seed, di):
    K = _backend(kb)
    _need(K, _prim(key))
    kind, dtypes, how = UNARY[key]
    dtype = dtypes[di % len(dtypes)]
    rng = np.random.default_rng(seed)
    x = in_layout(_values(rng, shape, dtype, kind), layout)
    name = _prim(key)
    assert_conform(getattr(K, name)(x), getattr(ref, name)(x), how, f"{name}[{dtype}, {layout}]",
                   ulps=_ulps(K, name))


@pytest.mark.parametrize("kb", BACKENDS)
@pytest.mark.parametrize("key", _cases(UNARY_ATTR))
@given(shape=shapes, layout=layouts, seed=st.integers(0, 2 ** 16), di=st.integers(0, 7))
def test_unary_attrs(kb, key, shape, layout, seed, di):
    K = _backend(kb)
    _need(K, _prim(key))
    kind, dtypes, how, args = UNARY_ATTR[key]
    dtype = dtypes[di % len(dtypes)]
    rng = np.random.default_rng(seed)
    x = in_layout(_values(rng, shape, dtype, kind), layout)
    name = _prim(key)
    scale = np.abs(x.astype(np.float64))
    assert_conform(getattr(K, name)(x, *args), getattr(ref, name)(x, *args), how, f"{key}[{dtype}, {layout}]", scale,
                   ulps=_ulps(K, name))


@pytest.mark.parametrize("kb", BACKENDS)
@pytest.mark.parametrize("key", _cases(BINARY))
@given(shapes2=broadcast_pair(), la=layouts, lb=layouts, seed=st.integers(0, 2 ** 16), di=st.integers(0, 7))
def test_binary(kb, key, shapes2, la, lb, seed, di):
    K = _backend(kb)
    _need(K, _prim(key))
    kind, dtypes, how = BINARY[key]
    ka, kb = (kind.split("|") + [kind])[:2]
    dtype = dtypes[di % len(dtypes)]
    rng = np.random.default_rng(seed)
    a = in_layout(_values(rng, shapes2[0], dtype, ka), la)
    b = in_layout(_values(rng, shapes2[1], dtype, kb), lb)
    name = _prim(key)
    with np.errstate(all="ignore"):
        exp = getattr(ref, name)(a, b)
    assert_conform(getattr(K, name)(a, b), exp, how, f"{name}[{dtype}, {la}/{lb}, {a.shape}/{b.shape}]",
                   ulps=_ulps(K, name))


@pytest.mark.parametrize("kb", BACKENDS)
@pytest.mark.parametrize("key", _cases(BINARY_ATTR))
@given(shapes2=broadcast_pair(), la=layouts, lb=layouts, seed=st.integers(0, 2 ** 16), di=st.integers(0, 7))
def test_binary_attrs(kb, key, shapes2, la, lb, seed, di):
    K = _backend(kb)
    _need(K, _prim(key))
    kind, dtypes, how, args = BINARY_ATTR[key]
    dtype = dtypes[di % len(dtypes)]
    rng = np.random.default_rng(seed)
    a = in_layout(_values(rng, shapes2[0], dtype, kind), la)
    b = in_layout(_values(rng, shapes2[1], dtype, kind), lb)
    name = _prim(key)
    exp = getattr(ref, name)(a, b, *args)
    scale = np.abs(np.broadcast_to(a, exp.shape).astype(np.float64))
    assert_conform(getattr(K, name)(a, b, *args), exp, how, f"{key}[{dtype}, {la}/{lb}, {a.shape}/{b.shape}]",
                   scale, ulps=_ulps(K, name))


@pytest.mark.parametrize("kb", BACKENDS)
@given(shapes2=broadcast_pair(), lc=layouts, seed=st.integers(0, 2 ** 16), di=st.integers(0, 7))
def test_where(kb, shapes2, lc, seed, di):
    K = _backend(kb)
    _need(K, "where")
    dtype = ALL[di % len(ALL)]
    rng = np.random.default_rng(seed)
    c = in_layout(np.asarray(rng.random(shapes2[0]) < 0.5), lc)
    a = _values(rng, shapes2[1], dtype, "normal")
    b = _values(rng, shapes2[0][1:], dtype, "normal")
    assert_conform(K.where(c, a, b), ref.where(c, a, b), "exact", f"where[{dtype}]")


@pytest.mark.parametrize("kb", BACKENDS)
@pytest.mark.parametrize("key", _cases(REDUCE))
@given(shape=shapes, layout=layouts, seed=st.integers(0, 2 ** 16), di=st.integers(0, 7),
       mask=st.integers(0, 15), keepdim=st.booleans())
def test_reduce(kb, key, shape, layout, seed, di, mask, keepdim):
    K = _backend(kb)
    _need(K, _prim(key))
    kind, dtypes, how = REDUCE[key]
    dtype = dtypes[di % len(dtypes)]
    rng = np.random.default_rng(seed)
    x = in_layout(_values(rng, shape, dtype, kind), layout)
    dims = tuple(d for d in range(x.ndim) if mask >> d & 1)
    name = _prim(key)
    if name in ("amax", "amin") and any(x.shape[d] == 0 for d in dims):
        with pytest.raises(ValueError):
            getattr(K, name)(x, dims, keepdim)
        return
    exp = getattr(ref, name)(x, dims, keepdim)
    scale = None
    if how == "sum" and exp.dtype.kind in "fV":
        scale = np.sum(np.abs(x.astype(np.float64)), axis=dims, keepdims=keepdim)
    assert_conform(getattr(K, name)(x, dims, keepdim), exp, how, f"{name}[{dtype}, {layout}, dims={dims}]", scale)


@pytest.mark.parametrize("kb", BACKENDS)
@given(shape=shapes, layout=layouts, seed=st.integers(0, 2 ** 16), di=st.integers(0, 7))
def test_contiguous(kb, shape, layout, seed, di):
    K = _backend(kb)
    _need(K, "contiguous")
    dtype = ALL[di % len(ALL)]
    rng = np.random.default_rng(seed)
    x = in_layout(_values(rng, shape, dtype, "special"), layout)
    out = K.contiguous(x)
    assert out.flags.c_contiguous
    assert_conform(out, ref.contiguous(x), "exact", f"contiguous[{dtype}, {layout}]")


@pytest.mark.parametrize("kb", BACKENDS)
@given(shapes2=broadcast_pair(), ld=st.sampled_from(["contiguous", "transposed", "stepped", "reversed"]),
       ls=layouts, seed=st.integers(0, 2 ** 16), di=st.integers(0, 7), cast=st.booleans())
def test_copy_(kb, shapes2, ld, ls, seed, di, cast):
    K = _backend(kb)
    _need(K, "copy_")
    dtype = ALL[di % len(ALL)]
    rng = np.random.default_rng(seed)
    dshape = np.broadcast_shapes(*shapes2)
    d1 = in_layout(_values(rng, dshape, dtype, "normal"), ld)
    d2 = in_layout(d1.copy(), ld)
    sdtype = ALL[(di + 1) % len(ALL)] if cast else dtype
    src = in_layout(_values(rng, shapes2[1], sdtype, "normal"), ls)
    with np.errstate(all="ignore"):
        assert K.copy_(d1, src) is None
        ref.copy_(d2, src)
    assert_conform(d1, d2, "exact", f"copy_[{sdtype}->{dtype}, {ls}->{ld}]")


@requires_C
def test_copy_overlapping_and_transposed():
    x = np.arange(10.0)
    cpu.copy_(x[1:], x[:-1])  # overlapping: as numpy, through a temporary
    np.testing.assert_array_equal(x, [0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    a = np.random.default_rng(3).standard_normal((70, 3, 130)).astype(np.float32)
    for v in (a.transpose(2, 1, 0), a.transpose(0, 2, 1), a[:, 1].T):
        np.testing.assert_array_equal(cpu.contiguous(v), np.ascontiguousarray(v))
    d = np.zeros((130, 70), np.float32)
    cpu.copy_(d, a[:, 0].T)
    np.testing.assert_array_equal(d, a[:, 0].T)
    # 4-byte transposes move whole 16 x 16 tiles through SSE registers: every bit pattern
    # (NaN payloads, negative zero, integers) must come through, edge tiles included
    rng = np.random.default_rng(4)
    for shape in [(16, 16), (64, 48), (37, 53), (3, 40, 33), (17, 130)]:
        bits = rng.integers(0, 2**32, shape, dtype=np.uint64).astype(np.uint32)
        for dt in (np.float32, np.int32):
            x = bits.view(dt)
            v = np.swapaxes(x, -1, -2)
            got = np.zeros(v.shape, dt)
            cpu.copy_(got, v)
            assert got.tobytes() == np.ascontiguousarray(v).tobytes(), (shape, dt)
            assert cpu.contiguous(v).tobytes() == np.ascontiguousarray(v).tobytes()


@pytest.mark.parametrize("kb", BACKENDS)
@pytest.mark.parametrize("name", ["argmax", "argmin", "cumsum"])
@given(shape=shapes, layout=layouts, seed=st.integers(0, 2 ** 16), di=st.integers(0, 7),
       dim=st.integers(0, 3), keepdim=st.booleans())
def test_along_dim(kb, name, shape, layout, seed, di, dim, keepdim):
    """argmax/argmin (first extremum, NaN wins) and cumsum (numpy's sequential order)."""
    K = _backend(kb)
    _need(K, name)
    dtype = ALL[di % len(ALL)]
    rng = np.random.default_rng(seed)
    x = in_layout(_values(rng, shape, dtype, "special" if name != "cumsum" else "normal"), layout)
    if x.ndim == 0:
        dim = 0
    dim = dim % max(x.ndim, 1)
    args = (dim,) if name == "cumsum" else (dim, keepdim)
    if name != "cumsum" and x.ndim and x.shape[dim] == 0:
        with pytest.raises(ValueError, match=name):
            getattr(K, name)(x, *args)
        return
    assert_conform(getattr(K, name)(x, *args), getattr(ref, name)(x, *args), "exact",
                   f"{name}[{dtype}, {layout}, dim={dim}]")


@pytest.mark.parametrize("kb", BACKENDS)
@pytest.mark.parametrize("key", _cases(INDEX))
@given(data=st.data(), seed=st.integers(0, 2 ** 16))
def test_index_family(kb, key, data, seed):
    """cast and the index kernels on generated shapes, dims, layouts, dtypes, slices,
    negative and duplicate indices (duplicates accumulate in ref's order: bit-exact on the
    CPU; on CUDA atomics add duplicates in no fixed order and one of several writes to an
    element wins, as in PyTorch, so those elements are checked against their bounds)."""
    K = _backend(kb)
    _need(K, _prim(key))
    rng = np.random.default_rng(seed)

    def mk(shape, dtype, kind, layout):
        base = shape if isinstance(shape, np.ndarray) else _values(rng, shape, dtype, kind)
        return in_layout(base, layout)

    args = INDEX[key](data.draw, mk)
    name = _prim(key)
    with np.errstate(all="ignore"):
        exp = getattr(ref, name)(*args)
    label = f"{name}{[getattr(a, 'shape', a) for a in args]}"
    if getattr(K, "name", "") == "cuda":
        try:
            got = getattr(K, name)(*args)
        except NotImplementedError as e:  # index forms the CUDA kernels do not cover yet
            assert "index" in name and "not implemented" in str(e) or "only integer index" in str(e)
            return
        _assert_unordered_writes(name, args, got, np.asarray(exp), label)
        return
    assert_conform(getattr(K, name)(*args), np.asarray(exp), "exact", label)


def _assert_unordered_writes(name, args, got, exp, label):
    """CUDA scatter/index_put: bit-exact where at most one write landed; where several
    did, an assignment holds one of the written values and a float sum is within the
    bound of a reordered sum."""
    if name not in ("scatter", "scatter_add", "index_put"):
        assert_conform(got, exp, "exact", label)
        return
    count = np.zeros(exp.shape, np.int64)
    ones_like = lambda a: np.ones(np.shape(a), np.int64)  # noqa: E731
    if name == "index_put":
        x, idx, values, acc = args
        count = ref.index_put(count, idx, ones_like(np.broadcast_to(values, x[idx].shape)), True)
    else:
        x, dim, index, src = args
        count = ref.scatter_add(count, dim, index, ones_like(src))
    multi = count > 1
    single = ~multi
    assert got.dtype == exp.dtype and got.shape == exp.shape, label
    assert_conform(got[single], exp[single], "exact", label)
    if not multi.any():
        return
    accumulate = name == "scatter_add" or (name == "index_put" and args[3])
    if accumulate and exp.dtype.kind in "fV":
        e, o = exp[multi].astype(np.float64), got[multi].astype(np.float64)
        bound = (np.abs(e) + 1) * count[multi] * 8 * _eps(exp.dtype)
        assert np.all(np.abs(o - e) <= bound), f"{label}: reordered sums {o} vs {e}"
    elif accumulate:
        assert_conform(got[multi], exp[multi], "exact", label)
    else:
        src = args[3] if name == "scatter" else args[2]
        written = set(np.asarray(src, dtype=exp.dtype).astype(np.float64).ravel().tolist())
        assert all(v in written for v in got[multi].astype(np.float64).ravel().tolist()), label


# ------------------------------------------------------------------------------ larger inputs
@requires_C
@pytest.mark.parametrize("shape,dims", [((4096 + 7,), (0,)), ((300, 517), (1,)), ((300, 517), (0,)),
                                        ((3, 70000), (1,)), ((70000, 3), (0,)), ((2, 3, 40000), (0, 2))])
def test_sum_large_threaded_and_deterministic(shape, dims):
    """Sizes that take the threaded, chunked paths; result independent of thread count."""
    import tinyfw

    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    n0 = tinyfw.get_num_threads()
    try:
        tinyfw.set_num_threads(1)
        one = cpu.sum(x, dims, False)
        tinyfw.set_num_threads(2)
        two = cpu.sum(x, dims, False)
    finally:
        tinyfw.set_num_threads(n0)
    assert np.array_equal(one, two), "sum depends on the thread count"
    scale = np.sum(np.abs(x.astype(np.float64)), axis=dims)
    assert_conform(two, ref.sum(x, dims, False), "sum", "sum", scale)


@pytest.mark.parametrize("kb", BACKENDS)
@pytest.mark.parametrize("name", ["argmax", "argmin", "cumsum"])
@pytest.mark.parametrize("dim", [0, 1])
def test_along_dim_large(kb, name, dim):
    """Sizes that take the threaded paths (several blocks per row on CUDA)."""
    K = _backend(kb)
    _need(K, name)
    x = np.random.default_rng(4).standard_normal((700, 900)).astype(np.float32)
    x[5, 7] = np.nan
    args = (dim,) if name == "cumsum" else (dim, False)
    for v in (x, x.T):
        assert_conform(getattr(K, name)(v, *args), getattr(ref, name)(v, *args), "exact", name)


@pytest.mark.parametrize("kb", BACKENDS)
@pytest.mark.parametrize("name", ["add", "mul", "maximum"])
def test_binary_large_layouts(kb, name):
    K = _backend(kb)
    rng = np.random.default_rng(2)
    a = rng.standard_normal((513, 1031)).astype(np.float32)
    b = rng.standard_normal((1031, 513)).astype(np.float32).T
    for x, y in [(a, a), (a, b), (b, b), (a, a[:1]), (a[:, :1], b), (a[::3, ::2], b[::3, ::2])]:
        out = getattr(K, name)(x, y)
        assert_conform(out, getattr(ref, name)(x, y), "exact", name)


# ------------------------------------------------------------------------------ error paths
@pytest.mark.skipif("add" not in cpu.KERNELS, reason="add is not compiled")
def test_errors_name_the_kernel():
    a = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) \(4,\) cannot be broadcast"):
        cpu.add(a, np.ones(4, np.float32))
    with pytest.raises(ValueError, match="exp: unsupported dtype complex64"):
        cpu.exp(np.ones(3, np.complex64))
    with pytest.raises(ValueError, match="sum: unsupported dtype"):
        cpu.sum(np.ones(3, np.uint16), (0,), False)
    with pytest.raises(ValueError, match="sum: dim 2 out of range"):
        cpu.sum(a, (2,), False)
    with pytest.raises(ZeroDivisionError, match="floor_divide: integer division by zero"):
        cpu.floor_divide(np.ones(3, np.int32), np.array([1, 0, 2], np.int32))
    with pytest.raises(ZeroDivisionError, match="remainder: integer division by zero"):
        cpu.remainder(np.ones(3, np.int8), np.zeros((), np.int8))
    with pytest.raises(ValueError, match="pow: integers to negative integer powers"):
        cpu.pow(np.ones(3, np.int64), np.array([-1], np.int64))
    with pytest.raises(ValueError, match="copy_: the destination array is read-only"):
        cpu.copy_(np.broadcast_to(a, (2, 2, 3)), a)
    with pytest.raises(ValueError, match=r"copy_: source of shape \(4,\) does not broadcast to \(2, 3\)"):
        cpu.copy_(a.copy(), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="amax"):
        cpu.amax(np.ones((0, 3), np.float32), (0,), False)


def test_set_num_threads():
    import tinyfw

    n0 = tinyfw.get_num_threads()
    try:
        tinyfw.set_num_threads(1)
        assert tinyfw.get_num_threads() == 1
        with pytest.raises(ValueError, match="set_num_threads"):
            tinyfw.set_num_threads(0)
    finally:
        tinyfw.set_num_threads(n0)
    assert tinyfw.get_num_threads() == n0


@requires_C
@pytest.mark.parametrize("dtype", [np.bool_, np.int8, ml_dtypes.bfloat16, np.float32, np.float64])
@pytest.mark.parametrize("scalar_side", [1, 2])
def test_where_against_a_broadcast_scalar(dtype, scalar_side):
    """The select with a 0-d operand on either side (relu's backward) takes its own fast
    loop; it must agree with ref bit for bit, odd lengths and strided conditions included."""
    rng = np.random.default_rng(scalar_side)
    cond = rng.random((7, 33)) > 0.5
    full = rng.standard_normal((7, 33)).astype(dtype)
    scalar = np.array(3, dtype)
    for c in (cond, cond[:, ::2]):
        f = full[:, : c.shape[1]]
        args = (c, scalar, f) if scalar_side == 1 else (c, f, scalar)
        np.testing.assert_array_equal(cpu.where(*args), ref.where(*args))


@requires_C
@pytest.mark.parametrize("dtype", [np.bool_, ml_dtypes.bfloat16, np.float32, np.float64])
@pytest.mark.parametrize("other", ["full", "scalar", "strided"])
def test_where_with_one_condition_per_row(dtype, other):
    """A condition broadcast along the rows ((..., 1): attention's all-masked-row guard)
    copies or fills whole rows; bit for bit what ref gives, either side chosen."""
    rng = np.random.default_rng(5)
    cond = rng.random((3, 4, 5, 1)) > 0.5
    x = rng.standard_normal((3, 4, 5, 17)).astype(dtype)
    y = {"full": rng.standard_normal((3, 4, 5, 17)).astype(dtype), "scalar": np.array(-2, dtype),
         "strided": rng.standard_normal((3, 4, 5, 34)).astype(dtype)[..., ::2]}[other]
    for args in ((cond, x, y), (cond, y, x)):
        np.testing.assert_array_equal(cpu.where(*args), ref.where(*args))
