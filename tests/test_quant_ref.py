"""The int8 reference primitives (tinyfw/backend/ref_quant.py): quantize/dequantize
against PyTorch's quantize_per_tensor/per_channel, and the integer kernels against an
independent int64 computation with the documented float32 epilogue."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from hypothesis import given, settings, strategies as st

from tinyfw.backend import ref
from tinyfw.backend.ref_quant import QRANGE


@pytest.fixture(autouse=True, scope="module")
def _on_the_cpu():
    """tinyfw.quantization is CPU-only (QTensor holds numpy int8/uint8 codes, see
    docs/quantization.md): its tests run on the CPU whatever the suite's device."""
    with tinyfw.device("cpu"):
        yield

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # torch's deprecation notes

scales = st.floats(1 / 1024, 10.0, width=32)


def _values(rng, n, scale, zp, qdtype):
    """Random values plus values exactly halfway between codes and out-of-range ones
    (saturation), as float32."""
    lo, hi = QRANGE[qdtype]
    half = ((rng.integers(lo - zp - 5, hi - zp + 5, n) + 0.5) * np.float32(scale))
    rand = rng.standard_normal(n) * scale * 200
    return np.concatenate([half, rand]).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), scale=scales, zp=st.integers(0, 255), seed=st.integers(0, 2**16),
       qdtype=st.sampled_from(["uint8", "int8"]))
def test_quantize_per_tensor_equals_torch(n, scale, zp, seed, qdtype):
    if qdtype == "int8":
        zp -= 128
    x = _values(np.random.default_rng(seed), n, scale, zp, qdtype)
    tq = torch.quantize_per_tensor(torch.from_numpy(x), float(scale), zp,
                                   torch.quint8 if qdtype == "uint8" else torch.qint8)
    q = ref.quantize_per_tensor(x, scale, zp, qdtype)
    assert q.dtype == np.dtype(qdtype)
    np.testing.assert_array_equal(q, tq.int_repr().numpy())
    np.testing.assert_array_equal(ref.dequantize_per_tensor(q, scale, zp), tq.dequantize().numpy())


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 8), n=st.integers(1, 40), axis=st.integers(0, 1),
       seed=st.integers(0, 2**16), qdtype=st.sampled_from(["uint8", "int8"]))
def test_quantize_per_channel_equals_torch(c, n, axis, seed, qdtype):
    rng = np.random.default_rng(seed)
    s = rng.uniform(1e-3, 1, c).astype(np.float32)
    lo, hi = QRANGE[qdtype]
    z = rng.integers(lo, hi + 1, c).astype(np.int64)
    x = ((rng.integers(-300, 300, (c, n)) + 0.5) * s[:, None]).astype(np.float32)
    x[:, ::3] = rng.standard_normal((c, len(range(0, n, 3)))) * 50
    if axis == 1:
        x = np.ascontiguousarray(x.T)
    tq = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(s.astype(np.float64)),
                                    torch.from_numpy(z), axis,
                                    torch.quint8 if qdtype == "uint8" else torch.qint8)
    q = ref.quantize_per_channel(x, s, z.astype(np.int32), axis, qdtype)
    np.testing.assert_array_equal(q, tq.int_repr().numpy())
    np.testing.assert_array_equal(ref.dequantize_per_channel(q, s, z, axis), tq.dequantize().numpy())


def test_quantize_refuses_nan_and_bad_dtype():
    with pytest.raises(ValueError, match="NaN"):
        ref.quantize_per_tensor(np.float32([1, np.nan]), 0.1, 0, "uint8")
    with pytest.raises(ValueError, match="qdtype"):
        ref.quantize_per_tensor(np.float32([1]), 0.1, 0, "uint16")


def _epilogue64(acc, x_scale, w_scale, bias, out_scale, out_zp, relu, axis):
    """The module doc's epilogue, written independently: each float32 step rounded."""
    shape = [1] * acc.ndim
    shape[axis] = -1
    m = (np.float32(x_scale) * w_scale.astype(np.float32)).astype(np.float32).reshape(shape)
    y = (acc.astype(np.float32) * m).astype(np.float32)
    if bias is not None:
        y = (y + bias.reshape(shape)).astype(np.float32)
    if relu:
        y = np.where(y > 0, y, np.float32(0))
    if out_scale is None:
        return y
    v = (y * (np.float32(1) / np.float32(out_scale))).astype(np.float32)
    return np.clip(np.rint(v).astype(np.int64) + out_zp, 0, 255).astype(np.uint8)


qparams = st.tuples(st.floats(1 / 1024, 0.125, width=32), st.integers(0, 255))


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(1, 70), n=st.integers(1, 9), xq=qparams,
       out=st.one_of(st.none(), qparams), relu=st.booleans(), has_bias=st.booleans(),
       seed=st.integers(0, 2**16))
def test_qlinear_equals_int64_reference(m, k, n, xq, out, relu, has_bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (m, k)).astype(np.uint8)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    ws = rng.uniform(1e-3, 0.05, n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32) if has_bias else None
    acc = np.zeros((m, n), np.int64)
    for i in range(m):
        for j in range(n):
            acc[i, j] = sum((int(x[i, t]) - xq[1]) * int(w[j, t]) for t in range(k))
    os_, oz = out if out else (None, 0)
    want = _epilogue64(acc, xq[0], ws, b, os_, oz, relu, 1)
    got = ref.qlinear(x, xq[0], xq[1], w, ws, b, os_, oz, relu)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@settings(max_examples=40, deadline=None)
@given(cin=st.sampled_from([1, 2, 4]), groups=st.sampled_from([1, 2]), h=st.integers(3, 7),
       k=st.integers(1, 3), stride=st.integers(1, 2), pad=st.integers(0, 2),
       dil=st.integers(1, 2), xq=qparams, out=st.one_of(st.none(), qparams),
       relu=st.booleans(), seed=st.integers(0, 2**16))
def test_qconv2d_equals_int64_reference(cin, groups, h, k, stride, pad, dil, xq, out, relu,
                                        seed):
    if cin % groups or h + 2 * pad < dil * (k - 1) + 1:
        return
    rng = np.random.default_rng(seed)
    o = 2 * groups
    x = rng.integers(0, 256, (2, cin, h, h + 1)).astype(np.uint8)
    w = rng.integers(-128, 128, (o, cin // groups, k, k)).astype(np.int8)
    ws = rng.uniform(1e-3, 0.05, o).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    xp = np.full((2, cin, h + 2 * pad, h + 1 + 2 * pad), xq[1], np.int64)  # padding = x_zp
    xp[:, :, pad:pad + h, pad:pad + h + 1] = x
    oh = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
    ow = (h + 1 + 2 * pad - dil * (k - 1) - 1) // stride + 1
    acc = np.zeros((2, o, oh, ow), np.int64)
    cg = cin // groups
    for oc in range(o):
        g = oc // (o // groups)
        for i in range(oh):
            for j in range(ow):
                win = xp[:, g * cg:(g + 1) * cg, i * stride:i * stride + dil * (k - 1) + 1:dil,
                         j * stride:j * stride + dil * (k - 1) + 1:dil]
                acc[:, oc, i, j] = ((win - xq[1]) * w[oc].astype(np.int64)).sum(axis=(1, 2, 3))
    os_, oz = out if out else (None, 0)
    want = _epilogue64(acc, xq[0], ws, b, os_, oz, relu, 1)
    got = ref.qconv2d(x, xq[0], xq[1], w, ws, b, (stride, stride), (pad, pad), (dil, dil),
                      groups, os_, oz, relu)
    np.testing.assert_array_equal(got, want)


def test_qlinear_refuses_an_accumulator_that_may_overflow():
    k = 2 ** 31 // (255 * 128) + 1
    with pytest.raises(ValueError, match="int32"):
        ref.qlinear(np.zeros((1, k), np.uint8), 1.0, 0, np.zeros((1, k), np.int8),
                    np.ones(1, np.float32), None, 1.0, 0, False)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), relu=st.booleans())
def test_qadd_is_the_float_sum_requantized(seed, relu):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 256, (3, 5)).astype(np.uint8), rng.integers(0, 256, (3, 5)).astype(np.uint8)
    s = (a.astype(np.float32) - 100) * np.float32(0.1) + (b.astype(np.float32) - 30) * np.float32(0.05)
    if relu:
        s = np.maximum(s, np.float32(0))
    want = np.clip(np.rint((s * (np.float32(1) / np.float32(0.2))).astype(np.float32)) + 7, 0, 255)
    np.testing.assert_array_equal(ref.qadd(a, 0.1, 100, b, 0.05, 30, 0.2, 7, relu), want)


@pytest.mark.parametrize("kernel, stride, pad, ceil", [((2, 2), (2, 2), (0, 0), False),
                                                       ((3, 3), (2, 2), (1, 1), True)])
def test_quantized_pools_against_torch_float_pools(kernel, stride, pad, ceil):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 3, 7, 6)).astype(np.uint8)
    zp, scale = 100, 0.1
    xf = torch.from_numpy((x.astype(np.float32) - zp) * np.float32(scale))
    got = ref.qmax_pool2d(x, kernel, stride, pad, (1, 1), ceil)
    want = torch.nn.functional.max_pool2d(xf, kernel, stride, pad, ceil_mode=ceil)
    np.testing.assert_array_equal((got.astype(np.float32) - zp) * np.float32(scale), want.numpy())
    # the average of codes, rounded once to a code: within half a step of the float average
    for cip in (True, False):
        got = ref.qavg_pool2d(x, zp, kernel, stride, pad, ceil, cip)
        want = torch.nn.functional.avg_pool2d(xf.double(), kernel, stride, pad, ceil, cip).numpy()
        err = np.abs((got.astype(np.float64) - zp) * scale - want)
        assert err.max() <= scale / 2 * (1 + 1e-5)


def test_fake_quantize_equals_quantize_then_dequantize_and_masks_the_clamped():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, 6)) * 3).astype(np.float32)
    y, mask = ref.fake_quantize(x, np.float32([0.02]), np.int32([128]), None, 0, 255)
    q = ref.quantize_per_tensor(x, 0.02, 128, "uint8")
    np.testing.assert_array_equal(y, ref.dequantize_per_tensor(q, 0.02, 128))
    np.testing.assert_array_equal(mask, (x > -2.57) & (x < 2.55))
    s, z = rng.uniform(0.01, 0.1, 4).astype(np.float32), np.zeros(4, np.int32)
    y, mask = ref.fake_quantize(x, s, z, 0, -128, 127)
    q = ref.quantize_per_channel(x, s, z, 0, "int8")
    np.testing.assert_array_equal(y, ref.dequantize_per_channel(q, s, z, 0))
