"""The int8 kernels of tinyfw._C (csrc/qgemm*.{h,cpp}, quant*.cpp) equal the reference
primitives of tinyfw/backend/ref_quant.py bit for bit: qlinear and qconv2d on every int8
GEMM path this machine runs (AMX-INT8, AVX512-VNNI, AVX-VNNI, AVX2 VPMADDWD, scalar; the
others are skipped with the reason), quantize/dequantize, qadd and the pools."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tinyfw
from tinyfw.backend import cpu, ref

from quant_kernel_cases import battery, layout, qconv_case, qlinear_case, same

QUANT = ("qlinear", "qconv2d", "qadd", "qmax_pool2d", "qavg_pool2d", "quantize_per_tensor",
         "quantize_per_channel", "dequantize_per_tensor", "dequantize_per_channel")
pytestmark = pytest.mark.skipif(any(n not in cpu.KERNELS for n in QUANT),
                                reason="tinyfw._C without the int8 kernels (python setup.py build_ext --inplace)")
PATHS = ("amx-int8", "avx512-vnni", "avx-vnni", "avx2", "scalar")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(params=PATHS)
def path(request):
    """Run the test on one int8 GEMM path of this process's ISA level (skip if it cannot)."""
    from tinyfw import _C

    try:
        _C._set_int8_gemm_path(request.param)
    except RuntimeError as e:
        pytest.skip(str(e))
    yield request.param
    _C._set_int8_gemm_path(None)


def test_the_cpu_backend_runs_the_compiled_kernels():
    from tinyfw import _C

    for name in QUANT:
        assert getattr(cpu, name) is getattr(_C, name)
    info = cpu.isa_info()
    assert info["int8_gemm"] in PATHS and info["int8_gemm"] == _C._int8_gemm_path()
    if info["isa"] == "avx512" and "amx_int8" in info["features"] and info["amx_int8"] is None:
        assert info["int8_gemm"] == "amx-int8"


qparams = st.tuples(st.floats(1 / 1024, 0.5, width=32), st.integers(0, 255))


# the `path` fixture holds for every example of a test (one path per test)
ONE_PATH = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings(max_examples=40, **ONE_PATH)
@given(m=st.integers(1, 70), k=st.integers(1, 300), n=st.integers(1, 70), x_zp=st.integers(0, 255),
       out=st.one_of(st.none(), qparams), relu=st.booleans(), has_bias=st.booleans(),
       xl=st.sampled_from("ctsr"), wl=st.sampled_from("ctsr"), seed=st.integers(0, 2 ** 16))
def test_qlinear_equals_ref(path, m, k, n, x_zp, out, relu, has_bias, xl, wl, seed):
    args = qlinear_case(np.random.default_rng(seed), m, k, n, x_zp, out, relu, has_bias, xl, wl)
    same(cpu.qlinear(*args), ref.qlinear(*args))


def test_qlinear_at_the_accumulator_bound_and_saturation(path):
    k = (2 ** 31 - 1) // (255 * 128)  # the deepest sum ref_quant accepts
    x = np.full((3, k), 255, np.uint8)
    x[1] = 0
    w = np.full((2, k), -128, np.int8)
    w[1] = 127
    for zp in (0, 255, 77):  # |sum| reaches 2**31 - 1 - ...: the wrapped zero-point term must cancel
        for out in ((None, 0), (1e-3, 0), (1e6, 255)):
            args = (x, 0.01, zp, w, np.float32([0.02, 0.03]), None, out[0], out[1], False)
            same(cpu.qlinear(*args), ref.qlinear(*args))
    with pytest.raises(ValueError, match="int32"):
        cpu.qlinear(np.zeros((1, k + 1), np.uint8), 1.0, 0, np.zeros((1, k + 1), np.int8),
                    np.ones(1, np.float32), None, 1.0, 0, False)


def test_qlinear_batch64_1024_on_every_path(path):
    args = qlinear_case(np.random.default_rng(1), 64, 1024, 1024, 131, (0.3, 120), True, True)
    same(cpu.qlinear(*args), ref.qlinear(*args))


def test_qlinear_rejects_mismatched_operands_with_a_message():
    x, w = np.zeros((2, 5), np.uint8), np.zeros((3, 4), np.int8)
    with pytest.raises(ValueError, match="disagree on k"):
        cpu.qlinear(x, 0.1, 0, w, np.ones(3, np.float32), None, 0.1, 0, False)
    with pytest.raises(ValueError, match="w_scale"):
        cpu.qlinear(x, 0.1, 0, np.zeros((3, 5), np.int8), np.ones(2, np.float32), None, 0.1, 0, False)
    with pytest.raises(TypeError, match="numpy array"):
        cpu.qlinear([[1, 2]], 0.1, 0, w, np.ones(3, np.float32), None, 0.1, 0, False)


@settings(max_examples=30, **ONE_PATH)
@given(n=st.integers(1, 3), cg=st.integers(1, 5), groups=st.sampled_from([1, 2, 3]), h=st.integers(1, 9),
       w=st.integers(1, 9), kh=st.integers(1, 3), kw=st.integers(1, 3), stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pad=st.tuples(st.integers(0, 2), st.integers(0, 2)), dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       x_zp=st.integers(0, 255), out=st.one_of(st.none(), qparams), relu=st.booleans(), has_bias=st.booleans(),
       og=st.integers(1, 20), seed=st.integers(0, 2 ** 16))
def test_qconv2d_equals_ref(path, n, cg, groups, h, w, kh, kw, stride, pad, dil, x_zp, out, relu, has_bias, og,
                            seed):
    if h + 2 * pad[0] < dil[0] * (kh - 1) + 1 or w + 2 * pad[1] < dil[1] * (kw - 1) + 1:
        return  # no output position: both raise (checked below)
    args = qconv_case(np.random.default_rng(seed), n, cg * groups, groups, h, w, kh, kw, stride, pad, dil, x_zp,
                      out, relu, has_bias, og)
    same(cpu.qconv2d(*args), ref.qconv2d(*args))


def test_qconv2d_strided_input_and_the_pointwise_shortcut(path):
    rng = np.random.default_rng(3)
    for geo in [(2, 6, 1, 5, 7, 1, 1, (1, 1), (0, 0), (1, 1)), (4, 8, 2, 6, 6, 3, 3, (1, 1), (1, 1), (1, 1))]:
        args = list(qconv_case(rng, *geo, x_zp=200, out=(0.05, 9), relu=False, has_bias=True))
        args[0] = layout(rng, args[0], "s")  # every other column of a wider image
        same(cpu.qconv2d(*args), ref.qconv2d(*args))
        args[0] = np.ascontiguousarray(args[0].transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels last
        same(cpu.qconv2d(*args), ref.qconv2d(*args))


def test_qconv2d_digits_cnn_layers_with_threads(path):
    rng = np.random.default_rng(5)
    for geo in [(64, 1, 1, 8, 8, 3, 3, (1, 1), (1, 1), (1, 1)), (64, 16, 1, 4, 4, 3, 3, (1, 1), (1, 1), (1, 1))]:
        args = qconv_case(rng, *geo, x_zp=0, out=(0.1, 0), relu=True, has_bias=True, o_per_group=32)
        same(cpu.qconv2d(*args), ref.qconv2d(*args))


def test_qconv2d_images_in_chunks_and_thread_shares_cut_mid_image(path):
    # 5 x 7 = 35 output positions per image (not a multiple of any path's row tile), 500
    # images: two GEMM chunks (16384 // 35 = 468 images), each image's rows written in
    # place into its NCHW block, with the threads' row shares starting inside an image
    rng = np.random.default_rng(7)
    args = qconv_case(rng, 500, 3, 1, 7, 9, 3, 3, (1, 1), (0, 0), (1, 1), x_zp=17, out=(0.2, 3), relu=False,
                      has_bias=True, o_per_group=20)
    before = tinyfw.get_num_threads()
    try:
        for threads in (1, 2):
            tinyfw.set_num_threads(threads)
            same(cpu.qconv2d(*args), ref.qconv2d(*args))
            f32 = list(args)
            f32[-3:-1] = [None, 0]  # float output
            same(cpu.qconv2d(*f32), ref.qconv2d(*f32))
    finally:
        tinyfw.set_num_threads(before)


def test_qconv2d_rejects_bad_geometry():
    x, w = np.zeros((1, 4, 5, 5), np.uint8), np.zeros((3, 3, 3, 3), np.int8)
    with pytest.raises(ValueError, match="groups"):
        cpu.qconv2d(x, 0.1, 0, w, np.ones(3, np.float32), None, (1, 1), (0, 0), (1, 1), 1, 0.1, 0, False)
    with pytest.raises(ValueError, match="larger than"):
        cpu.qconv2d(x, 0.1, 0, np.zeros((3, 4, 7, 7), np.int8), np.ones(3, np.float32), None, (1, 1), (0, 0),
                    (1, 1), 1, 0.1, 0, False)


@pytest.mark.parametrize("level", ["avx2", "scalar"])
def test_battery_at_lower_isa_levels(level):
    """Each lower level's own compiled copy of the kernels (its paths, its compiler flags)."""
    info = cpu.isa_info()
    if level not in info["usable"]:
        pytest.skip(f"this machine cannot run the {level} level")
    env = dict(os.environ, TINYFW_ISA=level, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, os.path.join(_ROOT, "tests", "quant_kernel_cases.py")], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["isa"] == level
    ran = [p for p, v in report["paths"].items() if isinstance(v, int)]
    assert "scalar" in ran and (level == "scalar" or "avx2" in ran), report
    assert all(report["paths"][p] >= 30 for p in ran)


def test_forcing_a_path_the_level_lacks_names_why():
    env = dict(os.environ, TINYFW_ISA="scalar", TINYFW_INT8_GEMM="avx2",
               PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", "import tinyfw._C"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and "TINYFW_INT8_GEMM=avx2" in r.stderr and "avx2 ISA level" in r.stderr


def test_the_default_path_battery():
    assert battery(seed=7) >= 50


# ---- quantize / dequantize ------------------------------------------------------------------
def _values(rng, shape, scale, zp, lo, hi):
    """Values halfway between codes, beyond the range (saturation), and random ones."""
    v = (rng.integers(lo - zp - 4, hi - zp + 4, shape) + 0.5) * np.float32(scale)
    mask = rng.random(shape) < 0.4
    v[mask] = rng.standard_normal(mask.sum()) * scale * 300
    return v.astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3), scale=st.floats(1 / 1024, 10.0, width=32),
       zp=st.integers(0, 255), qdtype=st.sampled_from(["uint8", "int8"]), seed=st.integers(0, 2 ** 16),
       transposed=st.booleans())
def test_quantize_per_tensor_and_dequantize_equal_ref(shape, scale, zp, qdtype, seed, transposed):
    lo, hi = (0, 255) if qdtype == "uint8" else (-128, 127)
    zp = zp if qdtype == "uint8" else zp - 128
    x = _values(np.random.default_rng(seed), tuple(shape), scale, zp, lo, hi)
    if transposed:
        x = x.T
    q = cpu.quantize_per_tensor(x, scale, zp, qdtype)
    same(q, ref.quantize_per_tensor(x, scale, zp, qdtype))
    same(cpu.dequantize_per_tensor(q, scale, zp), ref.dequantize_per_tensor(q, scale, zp))


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=3), data=st.data(),
       qdtype=st.sampled_from(["uint8", "int8"]), seed=st.integers(0, 2 ** 16))
def test_quantize_per_channel_and_dequantize_equal_ref(shape, data, qdtype, seed):
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    c = shape[axis]
    lo, hi = (0, 255) if qdtype == "uint8" else (-128, 127)
    s = rng.uniform(1e-3, 1.0, c).astype(np.float32)
    z = rng.integers(lo, hi + 1, c).astype(np.int64)
    x = (rng.standard_normal(tuple(shape)) * 100).astype(np.float32)
    x.reshape(-1)[::3] = (np.round(x.reshape(-1)[::3]) + 0.5)  # some halfway values
    q = cpu.quantize_per_channel(x, s, z, axis, qdtype)
    same(q, ref.quantize_per_channel(x, s, z, axis, qdtype))
    same(cpu.dequantize_per_channel(q, s, z, axis), ref.dequantize_per_channel(q, s, z, axis))


def test_quantize_refuses_nan_and_bad_dtypes_like_ref():
    with pytest.raises(ValueError, match="NaN"):
        cpu.quantize_per_tensor(np.float32([1, np.nan]), 0.1, 0, "uint8")
    with pytest.raises(ValueError, match="NaN"):
        cpu.quantize_per_channel(np.float32([[np.nan]]), np.float32([1]), np.int32([0]), 0, "int8")
    with pytest.raises(ValueError, match="qdtype"):
        cpu.quantize_per_tensor(np.float32([1]), 0.1, 0, "uint16")
    with pytest.raises(ValueError, match="per channel"):
        cpu.quantize_per_channel(np.zeros((2, 3), np.float32), np.float32([1]), np.int32([0]), 0, "int8")


def test_quantize_of_float64_input_rounds_to_float32_first_as_ref():
    x = np.array([0.15000000000000002, 1e300, -1e300, 2.5000001], np.float64)
    same(cpu.quantize_per_tensor(x, 0.1, 3, "int8"), ref.quantize_per_tensor(x, 0.1, 3, "int8"))


# ---- qadd and pools ---------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 8), min_size=1, max_size=4), sa=st.floats(1 / 1024, 1, width=32),
       sb=st.floats(1 / 1024, 1, width=32), so=st.floats(1 / 1024, 2, width=32), za=st.integers(0, 255),
       zb=st.integers(0, 255), zo=st.integers(0, 255), relu=st.booleans(), seed=st.integers(0, 2 ** 16),
       broadcast=st.booleans())
def test_qadd_equals_ref(shape, sa, sb, so, za, zb, zo, relu, seed, broadcast):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, tuple(shape)).astype(np.uint8)
    b = rng.integers(0, 256, (1,) * (len(shape) - 1) + (shape[-1],) if broadcast else tuple(shape)).astype(np.uint8)
    same(cpu.qadd(a, sa, za, b, sb, zb, so, zo, relu), ref.qadd(a, sa, za, b, sb, zb, so, zo, relu))


pool_geo = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), k=pool_geo,
       ceil=st.booleans(), cip=st.booleans(), dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       signed=st.booleans(), zp=st.integers(0, 255), seed=st.integers(0, 2 ** 16))
def test_quantized_pools_equal_ref(n, c, h, w, k, ceil, cip, dil, signed, zp, seed):
    kh, kw, sh, sw = k
    ph, pw = kh // 2, kw // 2
    if h + 2 * ph < dil[0] * (kh - 1) + 1 or w + 2 * pw < dil[1] * (kw - 1) + 1:
        return
    rng = np.random.default_rng(seed)
    dt = np.int8 if signed else np.uint8
    info = np.iinfo(dt)
    x = rng.integers(info.min, info.max + 1, (n, c, h, w)).astype(dt)
    x = layout(rng, x, "s")
    args = (x, (kh, kw), (sh, sw), (ph, pw), dil, ceil)
    same(cpu.qmax_pool2d(*args), ref.qmax_pool2d(*args))
    if h + 2 * ph >= kh and w + 2 * pw >= kw:
        zp = zp - 128 if signed else zp
        args = (x, zp, (kh, kw), (sh, sw), (ph, pw), ceil, cip)
        same(cpu.qavg_pool2d(*args), ref.qavg_pool2d(*args))


def test_qmax_pool_refuses_padding_beyond_half_the_kernel():
    with pytest.raises(ValueError, match="half the kernel"):
        cpu.qmax_pool2d(np.zeros((1, 1, 4, 4), np.uint8), (2, 2), (1, 1), (2, 0), (1, 1), False)


@pytest.mark.parametrize("m, k, n", [(0, 3, 2), (2, 0, 3), (2, 3, 0)])
def test_empty_operands_equal_ref(path, m, k, n):
    x, w = np.full((m, k), 7, np.uint8), np.ones((n, k), np.int8)
    ws, b = np.ones(n, np.float32), np.arange(n, dtype=np.float32)
    for out in (None, 0.1):
        same(cpu.qlinear(x, 0.1, 3, w, ws, b, out, 2, False), ref.qlinear(x, 0.1, 3, w, ws, b, out, 2, False))
    x4, w4 = np.zeros((0, 2, 4, 4), np.uint8), np.ones((3, 2, 3, 3), np.int8)
    args = (x4, 0.1, 3, w4, np.ones(3, np.float32), None, (1, 1), (1, 1), (1, 1), 1, 0.1, 0, False)
    same(cpu.qconv2d(*args), ref.qconv2d(*args))
