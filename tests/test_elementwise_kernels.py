"""The C++ elementwise kernels beyond the conformance table: the vectorised float32
transcendentals against ref over a sweep of the float32 range and in every layout (their
accuracy against float64 is tests/test_vmath.py), the atan2 kernel, and what the split of
the elementwise files could break (half staging, bool outputs, broadcast-scalar rows, error
paths).
"""
from __future__ import annotations

import warnings

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import tinyfw
from helpers import assert_close, requires_torch, to_torch, torch
from tinyfw.backend import cpu, ref

pytestmark = pytest.mark.skipif(not cpu.KERNELS, reason="tinyfw._C is not built (python setup.py build_ext --inplace)")

BF16 = np.dtype(ml_dtypes.bfloat16)


def _sweep(step: int) -> np.ndarray:
    bits = np.arange(0, 1 << 32, step, dtype=np.uint64).astype(np.uint32)
    return np.concatenate([bits.view(np.float32), np.array([0.0, -0.0, np.inf, -np.inf, np.nan], np.float32)])


REF_CHECKED = {
    **{k: (getattr(cpu, k), getattr(ref, k)) for k in ("exp", "log", "log1p", "expm1", "tanh", "sigmoid",
                                                        "silu", "erf", "erfc")},
    "gelu_tanh": (lambda x: cpu.gelu(x, "tanh"), lambda x: ref.gelu(x, "tanh")),
    "gelu": (cpu.gelu, ref.gelu),
    "softplus": (lambda x: cpu.softplus(x, 1.5, 4.0), lambda x: ref.softplus(x, 1.5, 4.0)),
    # GELU's backward with g = 1 (ref rounds g * gelu'(x) once from float64)
    "gelu_backward": (lambda x: cpu.gelu_backward(np.ones_like(x), x), lambda x: ref.gelu_backward(np.ones_like(x), x)),
    "gelu_backward_tanh": (lambda x: cpu.gelu_backward(np.ones_like(x), x, "tanh"),
                           lambda x: ref.gelu_backward(np.ones_like(x), x, "tanh")),
}


@pytest.mark.parametrize("name", sorted(REF_CHECKED))
def test_agrees_with_ref_on_sweep(name):
    """Inside the float32 tolerance of helpers.assert_close everywhere in the range."""
    kernel, spec = REF_CHECKED[name]
    x = _sweep(9973)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        assert_close(kernel(x), spec(x), "float32", msg=name)


@pytest.mark.parametrize("name", sorted(REF_CHECKED))
def test_values_do_not_depend_on_layout_or_length(name):
    """Strided rows, short tails and unaligned starts give the contiguous results bit for bit."""
    kernel = REF_CHECKED[name][0]
    x = np.random.default_rng(1).standard_normal(301).astype(np.float32) * 4
    full = kernel(x)
    assert np.array_equal(kernel(x[::-1].copy())[::-1], full, equal_nan=True)
    assert np.array_equal(kernel(np.stack([x, x], 1)[:, 0]), full, equal_nan=True)  # stride 2
    for n in (1, 7, 9, 17):
        assert np.array_equal(kernel(x[3:3 + n]), full[3:3 + n], equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float16, BF16])
@pytest.mark.parametrize("name", ["exp", "log1p", "tanh", "sigmoid", "silu", "erf", "erfc", "gelu"])
def test_half_types_round_the_float32_result(name, dtype):
    x = (np.random.default_rng(2).standard_normal((5, 33)) * 3).astype(dtype)
    if name == "log1p":
        x = np.abs(x)
    out, want = getattr(cpu, name)(x), getattr(ref, name)(x)
    assert out.dtype == want.dtype
    assert_close(tinyfw.tensor(out.astype(np.float32)), want.astype(np.float32), str(np.dtype(dtype)))


# ------------------------------------------------------------------------------ atan2
FLOATS = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), BF16]


def _operand(rng, shape, dtype, layout):
    vals = np.asarray(rng.standard_normal(shape) * 2)
    vals[np.asarray(rng.random(shape) < 0.1)] = 0.0
    a = vals.astype(dtype)
    if layout == "T" and a.ndim >= 2:
        return np.ascontiguousarray(a.swapaxes(0, 1)).swapaxes(0, 1)
    if layout == "stepped":
        return np.repeat(a, 2, axis=-1)[..., ::2] if a.ndim else a
    return a


@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=4),
       dtype=st.sampled_from(FLOATS), layouts=st.tuples(*[st.sampled_from(["contig", "T", "stepped"])] * 2),
       seed=st.integers(0, 2 ** 16))
def test_atan2_kernel_matches_ref(shapes, dtype, layouts, seed):
    rng = np.random.default_rng(seed)
    a = _operand(rng, shapes.input_shapes[0], dtype, layouts[0])
    b = _operand(rng, shapes.input_shapes[1], dtype, layouts[1])
    out, want = cpu.atan2(a, b), ref.atan2(a, b)
    assert out.dtype == want.dtype and out.shape == want.shape == shapes.result_shape
    a_, b_ = np.broadcast_arrays(a, b)
    # float64 results are compared with float64 atan2 itself, which is within 1 ulp too
    bound = 2 * ATAN2_ULP if out.dtype == np.float64 else ATAN2_ULP
    assert _ulps(out, _atan2_exact(a_, b_)).max(initial=0) <= bound


def test_atan2_ulp_sweep():
    """float32 atan2 over a grid of magnitudes and every quadrant: within ATAN2_ULP."""
    rng = np.random.default_rng(5)
    a = (rng.standard_normal(20000) * 2.0 ** rng.integers(-30, 30, 20000)).astype(np.float32)
    b = (rng.standard_normal(20000) * 2.0 ** rng.integers(-30, 30, 20000)).astype(np.float32)
    assert _ulps(cpu.atan2(a, b), _atan2_exact(a, b)).max() <= ATAN2_ULP


# atan2 runs libm's atan2f/atan2 per element (float16/bfloat16: atan2f, rounded once):
# within 1 ulp of the exact value (glibc documents 1 ulp for atan2f; its results here are
# correctly rounded).  The reference is float64 atan2 of the same inputs: its error is far
# below a float32 ulp, so the bound does not depend on which float32 atan2 numpy runs
# (its AVX-512 loop gives 0.7853981 for atan2(1, 1); the correctly rounded value is
# 0.7853982, which tinyfw returns).
ATAN2_ULP = 1.0
_FMT = {"float16": (11, -14), "bfloat16": (8, -126), "float32": (24, -126), "float64": (53, -1022)}


def _ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in ulps of got's dtype at the exact value (float64 `exact`; NaNs and
    infinities must match exactly)."""
    p, emin = _FMT[str(got.dtype)]
    g = got.astype(np.float64)
    assert np.array_equal(np.isnan(g), np.isnan(exact)), "NaN positions differ"
    assert np.array_equal(g[np.isinf(exact)], exact[np.isinf(exact)]), "infinities differ"
    fin = np.isfinite(exact)
    e = np.maximum(np.floor(np.log2(np.maximum(np.abs(exact[fin]), 2.0 ** (emin - p)))), emin)
    out = np.zeros(exact.shape)
    out[fin] = np.abs(g[fin] - exact[fin]) / 2.0 ** (e - p + 1)
    return out


def _atan2_exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """atan2 in float64 of the (exactly widened) inputs: an error of about 2^-53 relative."""
    return np.arctan2(a.astype(np.float64), b.astype(np.float64))


def test_atan2_special_values_and_quadrants():
    v = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-45, -3.5, 2.0 ** 100], np.float32)
    a, b = v[:, None], v[None, :]
    out, exact = cpu.atan2(a, b), _atan2_exact(a, b)
    assert _ulps(out, exact).max() <= ATAN2_ULP
    assert np.array_equal(np.signbit(out), np.signbit(exact))  # the quadrant and signed zeros
    # the exactly known points: 0, +-pi/2, +-pi, +-pi/4, +-3pi/4 rounded to float32
    assert cpu.atan2(np.float32([1.0]), np.float32([1.0]))[0] == np.float32(np.pi / 4)


def test_atan2_mixed_and_integer_dtypes_follow_ref():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    b = np.linspace(-1, 1, 3)
    for x, y in [(a, b), (b.astype(np.float32), b), (a, a)]:
        out, want = cpu.atan2(x, y), ref.atan2(x, y)
        assert out.dtype == want.dtype
        np.testing.assert_array_equal(out, want)


def test_atan2_broadcast_error_names_the_kernel():
    with pytest.raises(ValueError, match="atan2"):
        cpu.atan2(np.zeros((2, 3), np.float32), np.zeros(4, np.float32))


@requires_torch
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=4),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2 ** 16))
def test_atan2_forward_backward_vs_torch(shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    a = tinyfw.tensor(rng.standard_normal(shapes.input_shapes[0]).astype(dtype), requires_grad=True)
    b = tinyfw.tensor(rng.standard_normal(shapes.input_shapes[1]).astype(dtype) + 0.5, requires_grad=True)
    out = tinyfw.atan2(a, b)
    ta, tb = to_torch(a), to_torch(b)
    tout = torch.atan2(ta, tb)
    assert_close(out, tout, dtype)
    out.sum().backward()
    tout.sum().backward()
    assert_close(a.grad, ta.grad, dtype)
    assert_close(b.grad, tb.grad, dtype)


def test_atan2_gradcheck():
    rng = np.random.default_rng(3)
    a = tinyfw.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = tinyfw.tensor(rng.standard_normal((4,)) + 2.0, requires_grad=True)
    assert tinyfw.gradcheck(lambda x, y: tinyfw.atan2(x, y), (a, b))


# ------------------------------------------------------------------------------ the split
@pytest.mark.parametrize("dtype", [np.float16, BF16])
def test_half_binary_ops_and_bool_results(dtype):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((6, 7)).astype(dtype)
    b = rng.standard_normal((7,)).astype(dtype)
    for name in ["add", "mul", "maximum", "eq", "lt", "logical_and", "floor_divide"]:
        out, want = getattr(cpu, name)(a, b), getattr(ref, name)(a, b)
        assert out.dtype == want.dtype, name
        np.testing.assert_array_equal(out.astype(np.float64), want.astype(np.float64), err_msg=name)
    for name in ["isnan", "isinf", "logical_not", "neg", "abs"]:
        out, want = getattr(cpu, name)(a), getattr(ref, name)(a)
        assert out.dtype == want.dtype, name
        np.testing.assert_array_equal(out.astype(np.float64), want.astype(np.float64), err_msg=name)


def test_broadcast_scalar_rows_and_integer_paths():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 33)).astype(np.float32)
    s = np.array(1.5, np.float32)
    for name in ["add", "sub", "mul", "div", "maximum"]:
        for a, b in [(x, s), (s, x), (x.T, s), (x, x[:1])]:
            np.testing.assert_array_equal(getattr(cpu, name)(a, b), getattr(ref, name)(a, b), err_msg=name)
    i = rng.integers(-100, 100, (5, 9)).astype(np.int8)
    j = np.array(3, np.int8)
    for name in ["add", "mul", "floor_divide", "remainder", "eq", "maximum"]:
        np.testing.assert_array_equal(getattr(cpu, name)(i, j), getattr(ref, name)(i, j), err_msg=name)
        np.testing.assert_array_equal(getattr(cpu, name)(j, i.T + 101), getattr(ref, name)(j, i.T + 101),
                                      err_msg=name)


def test_integer_error_paths():
    a = np.arange(4, dtype=np.int32)
    with pytest.raises(ZeroDivisionError, match="floor_divide: integer division by zero"):
        cpu.floor_divide(a, a)
    with pytest.raises(ZeroDivisionError, match="remainder"):
        cpu.remainder(a, np.zeros(1, np.int32))
    with pytest.raises(ValueError, match="pow: integers to negative"):
        cpu.pow(a, -a)


def test_clamp_and_leaky_relu_attributes_in_every_float_dtype():
    for dtype in FLOATS:
        x = (np.random.default_rng(6).standard_normal((4, 9)) * 3).astype(dtype)
        for args in [(-1.3, 0.7), (None, 0.2), (-0.1, None)]:
            np.testing.assert_array_equal(cpu.clamp(x, *args).astype(np.float64),
                                          ref.clamp(x, *args).astype(np.float64))
        np.testing.assert_array_equal(cpu.leaky_relu(x, 0.1).astype(np.float64),
                                      ref.leaky_relu(x, 0.1).astype(np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, BF16, np.int32, np.bool_])
def test_reductions_after_the_split(dtype):
    x = (np.random.default_rng(7).standard_normal((5, 6, 7)) * 3).astype(dtype)
    for dims in [(0,), (2,), (0, 2), ()]:
        for name in ["sum", "amax", "amin", "any", "all"]:
            out, want = getattr(cpu, name)(x, dims, False), getattr(ref, name)(x, dims, False)
            assert out.dtype == want.dtype, name
            tol = 0 if name != "sum" or np.dtype(dtype).kind in "biu" else 1e-2
            np.testing.assert_allclose(out.astype(np.float64), want.astype(np.float64), rtol=tol, err_msg=name)
    for name in ["argmax", "argmin"]:
        np.testing.assert_array_equal(getattr(cpu, name)(x, 1, True), getattr(ref, name)(x, 1, True))
    np.testing.assert_allclose(cpu.cumsum(x, 2).astype(np.float64), ref.cumsum(x, 2).astype(np.float64),
                               rtol=1e-2)


# ---- in-place arithmetic (out=a): the traced mode's epilogue adds a bias into a product's
# buffer through it; the bits must be those of the out-of-place kernel and of ref
_INPLACE_DTYPES = [np.float32, np.float64, BF16, np.float16, np.int32, np.int64]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=3, max_side=9),
       dtype=st.sampled_from(_INPLACE_DTYPES), transposed=st.booleans(), seed=st.integers(0, 2**16))
def test_inplace_arithmetic_same_bits_as_out_of_place(op, shapes, dtype, transposed, seed):
    if op == "div" and np.dtype(dtype).kind == "i":
        return  # true division of integers is not an in-place op (the result is float)
    (sa, sb), full = shapes.input_shapes, shapes.result_shape
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(full) * 8).astype(dtype)
    if transposed and a.ndim > 1:
        a = np.ascontiguousarray(a.swapaxes(0, -1)).swapaxes(0, -1)  # a strided (column-major) a
    b = (rng.standard_normal(sb) * 8 + (op == "div") * 30).astype(dtype)
    kernel, spec = getattr(cpu, op), getattr(ref, op)
    with np.errstate(all="ignore"):
        want = kernel(a, b)
        want_ref = spec(a, b)
        got = kernel(a, b, out=a)
    assert got is a and a.shape == want.shape
    bits = lambda v: np.ascontiguousarray(v).view(np.uint8)  # noqa: E731 - signed zeros, NaN payloads
    np.testing.assert_array_equal(bits(a), bits(want))
    if np.dtype(dtype).kind == "f":
        assert_close(a, want_ref)
    else:
        np.testing.assert_array_equal(a, want_ref)


def test_inplace_arithmetic_bias_row_and_mixed_dtypes():
    y = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.array([0.5, -1.0, 2.0, 0.25], np.float32)
    expect = y + b
    assert cpu.add(y, b, out=y) is y
    np.testing.assert_array_equal(y, expect)
    # a float64 bias: ref's promotion computes it, the result is cast into a (numpy's rule)
    y = np.arange(12, dtype=np.float32).reshape(3, 4)
    b64 = np.full(4, 0.1)
    want = cpu.add(y, b64).astype(np.float32)
    cpu.add(y, b64, out=y)
    np.testing.assert_array_equal(y, want)


def test_inplace_arithmetic_rejects_what_it_cannot_do():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="out= must be a itself"):
        cpu.add(a, a.copy(), out=np.empty_like(a))
    row = np.ones((1, 4), np.float32)
    with pytest.raises(ValueError, match="broadcast into a's shape"):
        cpu.mul(row, a, out=row)
    with pytest.raises(ValueError, match="overlaps"):
        cpu.add(a, a[0], out=a)  # row 0 would be overwritten before rows 1, 2 read it
    big = np.arange(8, dtype=np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        cpu.sub(big[:4], big[2:6], out=big[:4])
    ro = np.ones(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        cpu.add(ro, ro, out=ro)
    same = np.arange(4, dtype=np.float32)
    assert cpu.add(same, same, out=same) is same  # b is a itself: each element reads itself
    np.testing.assert_array_equal(same, [0, 2, 4, 6])
    with pytest.raises(ValueError, match="out= must be a itself"):
        ref.add(a, a, out=np.empty_like(a))
