"""The layout pass (tinyfw/jit/passes/layout.py) and its channels-last kernels."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw
import tinyfw.nn as nn
import tinyfw.nn.functional as F
from tinyfw.backend import cpu, ref_layout, ref_nn
from tinyfw.jit.passes import layout, layout_cost
from tests.helpers import npy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from layout_kernel_cases import (battery, check_conv, check_conversions, check_pools,  # noqa: E402
                                 kernels)

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True, scope="module")
def _on_the_cpu():
    """The layout pass and its kernels are CPU code (CPU_ONLY_PASSES): their tests run on the
    CPU whatever the suite's device; test_other_devices_keep_nchw checks the other side."""
    with tinyfw.device("cpu"):
        yield


def test_other_devices_keep_nchw():
    w = tinyfw.randn(8, 3, 3, 3)
    with tinyfw.device("check"), tinyfw.no_grad(), layout.force("nhwc"):
        x, wc = tinyfw.randn(2, 3, 9, 9), w.to("check")
        tr = tinyfw.jit.trace(lambda t: F.relu(F.conv2d(t, wc, padding=1)), (x,))
        ops = [n.op for n in tr.graph(x)[0].nodes]
        assert "Conv2d" in ops and not any("NHWC" in o for o in ops), ops
        np.testing.assert_array_equal(npy(tr(x)), npy(F.relu(F.conv2d(x, wc, padding=1))))
C = kernels()
needs_c = pytest.mark.skipif(C is None, reason="tinyfw._C with the layout kernels is not built")
BACKENDS = [pytest.param(ref_layout, id="ref")] + ([pytest.param(C, id="C")] if C is not None else [])


# ---- kernels -------------------------------------------------------------------------------
@pytest.mark.parametrize("K", BACKENDS)
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 35), o=st.integers(1, 70), h=st.integers(1, 10),
       w=st.integers(1, 17), kh=st.integers(1, 3), kw=st.integers(1, 3), s=st.integers(1, 2),
       p=st.integers(0, 2), d=st.integers(1, 2), f64=st.booleans(), seed=st.integers(0, 2 ** 16),
       xl=st.sampled_from(["nhwc", "nchw"]), yl=st.sampled_from(["nhwc", "nchw"]),
       epi=st.integers(0, 7))
def test_conv2d_nhwc_equals_ref(K, n, c, o, h, w, kh, kw, s, p, d, f64, seed, xl, yl, epi):
    """epi's bits: + bias, + residual, relu (the epilogue the layout pass folds in)."""
    if h + 2 * p < d * (kh - 1) + 1 or w + 2 * (p // 2) < kw:
        return  # no output: the geometry check is tested below
    rng = np.random.default_rng(seed)
    dt = np.float64 if f64 else np.float32
    x = rng.standard_normal((n, c, h, w)).astype(dt)
    wt = rng.standard_normal((o, c, kh, kw)).astype(dt)
    oh, ow = (h + 2 * p - d * (kh - 1) - 1) // s + 1, w + 2 * (p // 2) - kw + 1
    bias = rng.standard_normal(o).astype(dt) if epi & 1 else None
    res = rng.standard_normal((n, o, oh, ow)).astype(dt) if epi & 2 else None
    check_conv(K, x, wt, (s, 1), (p, p // 2), (d, 1), xl, yl, bias, res, bool(epi & 4))


@pytest.mark.parametrize("K", BACKENDS)
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 20), h=st.integers(3, 9), w=st.integers(3, 9),
       k=st.integers(1, 3), s=st.integers(1, 3), ceil=st.booleans(), cip=st.booleans(),
       nan=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_pools_and_conversions_equal_ref(K, n, c, h, w, k, s, ceil, cip, nan, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    if nan:
        x[rng.random(x.shape) < 0.15] = np.nan
    check_pools(K, x, (k, k), (s, s), (k // 2, 0), (1, 1), ceil, cip)
    check_conversions(K, x)


@needs_c
def test_packed_filter_equals_ref_packing_and_keeps_zero_padding():
    w = np.random.default_rng(1).standard_normal((37, 5, 3, 2)).astype(np.float32)
    for block in (8, 16, 64):
        got = C.conv2d_nhwc_pack(w, block)
        assert np.array_equal(got, ref_layout.conv2d_nhwc_pack(w, block))
        assert got.shape == (-(-37 // block), 3, 2, 5, block)
        flat = got.transpose(0, 4, 3, 1, 2).reshape(-1, 5, 3, 2)
        assert np.array_equal(flat[:37], w) and not flat[37:].any()


@needs_c
@pytest.mark.parametrize("level", ["avx2", "scalar"])
def test_kernel_battery_at_lower_isa_levels(level):
    """Each lower level's own compiled copy (AVX2's 8-float vectors, the scalar tiles)."""
    if level not in cpu.isa_info()["usable"]:
        pytest.skip(f"this machine cannot run the {level} level")
    env = dict(os.environ, TINYFW_ISA=level,
               PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, os.path.join(_ROOT, "tests", "layout_kernel_cases.py"), "5"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["isa"] == level and report["cases"] == 40
    assert report["block64"] == {"avx2": 16, "scalar": 8}[level]


@needs_c
def test_kernel_battery_at_this_level():
    assert battery(C, seed=11) == 40


@needs_c
def test_layout_kernels_reject_bad_input_with_a_message():
    x = np.zeros((1, 4, 4, 3), np.float32)
    w = np.zeros((8, 3, 3, 3), np.float32)
    wp = C.conv2d_nhwc_pack(w, int(C.conv2d_nhwc_block(8, np.float32)))
    with pytest.raises(ValueError, match="block 3"):
        C.conv2d_nhwc(x, C.conv2d_nhwc_pack(w, 3), 8, (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="channels"):
        C.conv2d_nhwc(np.zeros((1, 4, 4, 5), np.float32), wp, 8, (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="does not hold"):
        C.conv2d_nhwc(x, wp, 80, (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="larger than the padded input"):
        C.conv2d_nhwc(np.zeros((1, 2, 2, 3), np.float32), wp, 8, (1, 1), (0, 0), (1, 1))
    with pytest.raises(TypeError, match="different dtypes"):
        C.conv2d_nhwc(x.astype(np.float64), wp, 8, (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="x_layout must be 'nhwc' or 'nchw'"):
        C.conv2d_nhwc(x, wp, 8, (1, 1), (0, 0), (1, 1), "nc")
    with pytest.raises(ValueError, match="bias must hold 8 values"):
        C.conv2d_nhwc(x, wp, 8, (1, 1), (1, 1), (1, 1), bias=np.zeros(7, np.float32))
    with pytest.raises(ValueError, match="bias must hold 8 values"):
        C.conv2d_nhwc(x, wp, 8, (1, 1), (1, 1), (1, 1), bias=np.zeros(8, np.float64))
    with pytest.raises(ValueError, match="residual must have the output's shape"):
        C.conv2d_nhwc(x, wp, 8, (1, 1), (1, 1), (1, 1), residual=np.zeros((1, 8, 4, 4), np.float32))
    with pytest.raises(ValueError, match="residual must have the output's shape"):
        C.conv2d_nhwc(x, wp, 8, (1, 1), (1, 1), (1, 1), y_layout="nchw",
                      residual=np.zeros((1, 4, 4, 8), np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        C.max_pool2d_nhwc(x.astype(np.int32), (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="4-d"):
        C.nchw_to_nhwc(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="window"):
        C.avg_pool2d_nhwc(x, (2, 2), (2, 2), (2, 0), False, True, None)


# ---- the pass ----------------------------------------------------------------------------------
class Block(nn.Module):
    """conv-bn-relu x 2 + residual, then a pool: one chain with an entry and exits."""

    def __init__(self, c: int = 12, bias: bool = False) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=bias), nn.BatchNorm2d(c)
        self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=bias), nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.max_pool2d(F.relu(y + x), 2), F.avg_pool2d(y, 3, 1, 1)


def _block(c=12, bias=False, seed=0):
    tinyfw.manual_seed(seed)
    m = Block(c, bias).eval()
    for b in (m.b1, m.b2):  # statistics away from the identity
        b.running_mean.copy_(tinyfw.randn(c))
        b.running_var.copy_(tinyfw.rand(c) + 0.5)
        b.weight.data.copy_(tinyfw.randn(c))
    return m


def _close(a, e, tol=2e-5):
    for p, q in zip(a, e):
        p, q = npy(p), npy(q)
        assert p.shape == q.shape
        np.testing.assert_allclose(p, q, rtol=tol, atol=tol * max(1.0, float(np.abs(q).max())))


@pytest.mark.parametrize("mode", ["nhwc", "auto", "nchw"])
@pytest.mark.parametrize("c,bias", [(12, False), (17, True)])
def test_traced_with_layout_equals_eager(mode, c, bias):
    m = _block(c, bias)
    x = tinyfw.randn(2, c, 7, 9)
    with tinyfw.no_grad(), layout.force(mode):
        tr = tinyfw.jit.trace(m, (x,))
        _close(tr(x), m(x))
        x2 = tinyfw.randn(2, c, 7, 9)
        _close(tr(x2), m(x2))  # the same compiled graph on other data
        nodes = [n.op for n in tr.graph(x)[0].nodes]
    if mode != "auto":  # auto picks by measurement: equal results either way
        assert any("Conv2dNHWC" in op for op in nodes) == (mode == "nhwc")


def _two_branches(x, a1, a2, b1, b2):
    a = F.conv2d(F.conv2d(x, a1, padding=1).relu(), a2, padding=1)
    b = F.conv2d(F.conv2d(x, b1, padding=1).relu(), b2, padding=1)
    return a + b


@pytest.mark.parametrize("interop", ["force", "0"])
def test_two_conv_branches_summed_fold_the_sum_into_one_conv(interop, monkeypatch):
    # both branches' last convs had the sum as their sole reader: each folded it as its
    # residual and the graph lost a conv (a KeyError at compile, interop's "scheduling bug")
    monkeypatch.setenv("TINYFW_INTEROP", interop)
    args = [tinyfw.randn(1, 6, 9, 8)] + [tinyfw.randn(6, 6, 3, 3) * 0.3 for _ in range(4)]
    with tinyfw.no_grad(), layout.force("nhwc"):
        tr = tinyfw.jit.compile(_two_branches)
        _close(tr(*args), _two_branches(*args))
        text = tinyfw.jit.explain(tr, *args)
    assert text.count("residual") == 1, text


def test_explain_shows_the_chosen_layouts_and_the_conversions():
    m = _block()
    x = tinyfw.randn(2, 12, 7, 9)
    with tinyfw.no_grad(), layout.force("nhwc"):
        text = tinyfw.jit.explain(tinyfw.jit.trace(m, (x,)), x, file=open(os.devnull, "w"))
    assert "layout" in text and "chain 0: nhwc: Conv2d[2, 12, 7, 9], Conv2d[2, 12, 7, 9]" in text
    assert "MaxPool2d[2, 12, 7, 9], AvgPool2d[2, 12, 7, 9]" in text
    # one entry (x, read by the first conv and the residual add), exits: both pools' outputs
    assert text.count("nchw -> nhwc (chain entry)") == 1
    assert text.count("nhwc -> nchw (chain exit)") == 2
    assert "fused: Conv2dNHWC -> " in text  # the batch-norm / relu epilogue still fuses
    with tinyfw.no_grad(), layout.force("auto"):
        text = tinyfw.jit.explain(tinyfw.jit.trace(m, (x,)), x, file=open(os.devnull, "w"))
    assert "measured nchw" in text and "nhwc" in text


def test_digits_cnn_in_nhwc_equals_eager():
    tinyfw.manual_seed(3)
    m = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                      nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3), nn.Linear(32 * 16, 64),
                      nn.ReLU(), nn.Linear(64, 10)).eval()
    x = tinyfw.randn(33, 1, 8, 8)
    with tinyfw.no_grad(), layout.force("nhwc"):
        tr = tinyfw.jit.trace(m, (x,))
        _close([tr(x)], [m(x)])
        ops = [n.op for n in tr.graph(x)[0].nodes]
    assert "MaxPool2dNHWC" in ops and ops.count("ToNCHW") == 1  # back to NCHW for Flatten
    # the input is read by the first conv only: in place, as NCHW, no conversion
    assert "ToNHWC" not in ops


def test_a_graph_with_a_backward_keeps_nchw_and_bit_exact_gradients():
    m = _block()
    x = tinyfw.randn(2, 12, 7, 9, requires_grad=True)
    with layout.force("nhwc"):
        tr = tinyfw.jit.trace(m, (x,))
        ops = [n.op for n in tr.graph(x)[0].nodes]
        assert not any("NHWC" in op for op in ops)
        assert all(s["pass"] != "layout" for s in tr.get_compiled((x,)).stats)


def test_a_constant_filter_is_packed_once_at_compile_time():
    w = tinyfw.randn(8, 3, 3, 3)  # closed over, needs no grad: a graph constant

    def f(x):
        return F.relu(F.conv2d(x, w, padding=1))

    x = tinyfw.randn(2, 3, 6, 6)
    with tinyfw.no_grad(), layout.force("nhwc"):
        tr = tinyfw.jit.trace(f, (x,))
        ops = [n.op for n in tr.graph(x)[0].nodes]
        _close([tr(x)], [f(x)])
    assert "PackConvFilter" not in ops and any("Conv2dNHWC" in op for op in ops)


def test_grouped_convs_and_used_pool_indices_stay_nchw():
    w = tinyfw.randn(8, 2, 3, 3)

    def f(x):
        y, idx = F.max_pool2d(F.conv2d(x, w, groups=2), 2, return_indices=True)
        return y, idx

    x = tinyfw.randn(1, 4, 8, 8)
    with tinyfw.no_grad(), layout.force("nhwc"):
        tr = tinyfw.jit.trace(f, (x,))
        ops = [n.op for n in tr.graph(x)[0].nodes]
        y, idx = tr(x)
    assert not any("NHWC" in op for op in ops)
    assert np.array_equal(npy(idx), npy(f(x)[1]))


def test_the_mode_override_is_validated():
    with pytest.raises(ValueError, match="mode must be one of"):
        with layout.force("nchw16c"):
            pass
    env = dict(os.environ, TINYFW_JIT_LAYOUT="blocked",
               PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", "from tinyfw.jit.passes import layout; layout.mode()"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "TINYFW_JIT_LAYOUT" in r.stderr


def test_the_reference_backend_runs_the_pass_with_the_numpy_kernels():
    m = _block(5)
    x = tinyfw.randn(1, 5, 6, 6)
    from tinyfw import dispatch

    prev = dispatch.get_backend().__name__.rsplit(".", 1)[-1]
    dispatch.set_backend("ref")
    try:
        with tinyfw.no_grad(), layout.force("nhwc"):
            tr = tinyfw.jit.trace(m, (x,))
            assert any("Conv2dNHWC" in n.op for n in tr.graph(x)[0].nodes)
            _close(tr(x), m(x))
    finally:
        dispatch.set_backend(prev)


def test_ref_layout_is_the_nchw_reference_transposed():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
    got = ref_layout.conv2d_nhwc(ref_layout.nchw_to_nhwc(x), ref_layout.conv2d_nhwc_pack(w, 3), 4,
                                 (1, 2), (1, 0), (2, 1))
    want = ref_nn.conv2d(x, w, (1, 2), (1, 0), (2, 1), 1)
    assert np.array_equal(ref_layout.nhwc_to_nchw(got), want)


def test_frozen_block_runs_nhwc_on_prepacked_folded_filters():
    m = _block(16)
    x = tinyfw.randn(2, 16, 7, 9)
    with tinyfw.no_grad(), layout.force("nhwc"):
        fr = tinyfw.jit.freeze(tinyfw.jit.trace(m, (x,)), x)
        _close(fr(x), m(x))
        ops = [n.op for n in fr.graph(x)[0].nodes]
        text = tinyfw.jit.explain(fr, x, file=open(os.devnull, "w"))
    assert "PackConvFilter" not in ops and sum("Conv2dNHWC" in op for op in ops) == 2
    assert text.count("prepacked: constant filter [16, 16, 3, 3]") == 2


@pytest.mark.parametrize("nchw_read_cheaper", [True, False])
def test_auto_mode_reads_a_conv_only_entry_in_place_only_when_that_measures_cheaper(
        monkeypatch, nchw_read_cheaper):
    w1, w2 = tinyfw.randn(8, 4, 3, 3), tinyfw.randn(8, 8, 3, 3)

    def f(x):
        return F.conv2d(F.relu(F.conv2d(x, w1, padding=1)), w2, padding=1)

    def fake(key, fn):  # NHWC convs much cheaper than NCHW; the NCHW read as the test says
        if key[0] == "conv_nhwc" and key[2] == "nchw":
            return 0.1 if nchw_read_cheaper else 5.0
        return {"conv": 10.0, "conv_nhwc": 1.0}.get(key[0], 0.5)

    monkeypatch.setattr(layout_cost, "timed", fake)
    x = tinyfw.randn(2, 4, 6, 7)
    with tinyfw.no_grad(), layout.force("auto"):
        tr = tinyfw.jit.trace(f, (x,))
        ops = [n.op for n in tr.graph(x)[0].nodes]
        _close([tr(x)], [f(x)])
    assert sum("Conv2dNHWC" in op for op in ops) == 2
    assert ("ToNHWC" in ops) == (not nchw_read_cheaper)


# ---- the epilogue folded into the conv (passes/layout_epilogue.py) ---------------------------
def _conv_nodes(tr, x):
    return [n for n in tr.graph(x)[0].nodes if n.fn is not None and n.fn.__name__ == "Conv2dNHWC"]


@needs_c
@pytest.mark.parametrize("freeze", [False, True])
def test_frozen_resnet_block_folds_bias_residual_relu_into_the_convs(freeze):
    """After freeze, bn is a bias: conv1 takes + bias, relu; conv2 + bias, + x, relu; no
    elementwise node is left and the results equal eager.  Traced without freeze, bn is
    (x - mean) * rstd * w + b: nothing folds (the Sub), the fused epilogue runs instead."""

    class Res(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

        def forward(self, x):
            return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + x)

    tinyfw.manual_seed(4)
    m = Res(16).eval()
    for b in (m.b1, m.b2):
        b.running_mean.copy_(tinyfw.randn(16))
        b.running_var.copy_(tinyfw.rand(16) + 0.5)
        b.weight.data.copy_(tinyfw.randn(16))
        b.bias.data.copy_(tinyfw.randn(16))
    x = tinyfw.randn(2, 16, 7, 9)
    with tinyfw.no_grad(), layout.force("nhwc"):
        tr = tinyfw.jit.trace(m, (x,))
        if freeze:
            tr = tinyfw.jit.freeze(tr, x)
        _close([tr(x)], [m(x)])
        x2 = tinyfw.randn(2, 16, 7, 9)
        _close([tr(x2)], [m(x2)])
        convs = _conv_nodes(tr, x)
        ops = [n.op for n in tr.graph(x)[0].nodes]
        text = tinyfw.jit.explain(tr, x, file=open(os.devnull, "w"))
    flags = [tuple(k for k in ("bias", "residual", "relu") if n.attrs.get(k)) for n in convs]
    if freeze:
        assert flags == [("bias", "relu"), ("bias", "residual", "relu")]
        # the last conv writes the block's NCHW output, reading x (NCHW) as its residual
        assert [n.attrs.get("y_layout", "nhwc") for n in convs] == ["nhwc", "nchw"]
        assert tuple(convs[1].inputs[-1].shape) == (2, 16, 7, 9)  # x itself, not its NHWC copy
        assert "ToNCHW" not in ops and "writes nchw" in text
        # x is then read by conv1 alone: in place as NCHW (forced mode), no conversion at all
        assert "ToNHWC" not in ops and convs[0].attrs.get("x_layout") == "nchw"
        assert "entry conversion dropped" in text
        assert "epilogue: Conv2dNHWC -> bias + relu" in text
        assert "epilogue: Conv2dNHWC -> bias + residual + relu" in text
        assert "fused: Conv2dNHWC -> " not in text  # nothing left to fuse after the convs
    else:
        # both convs are inside fused epilogue nodes, no Conv2dNHWC node took an epilogue
        assert flags == [] and text.count("fused: Conv2dNHWC -> ") == 2
        assert "epilogue: Conv2dNHWC" not in text


@needs_c
def test_epilogue_folds_only_what_the_conv_alone_feeds():
    """A conv output that another node also reads keeps its adds; a bias made after the
    conv (its operand computed late) still folds, the conv moving to the add's place."""
    w1, w2 = tinyfw.randn(8, 4, 3, 3), tinyfw.randn(8, 4, 3, 3)
    b = tinyfw.randn(1, 8, 1, 1)

    def f(x):
        y = F.conv2d(x, w1, padding=1)
        z = F.conv2d(x, w2, padding=1)
        late = z.mean(dim=(0, 2, 3), keepdim=True)  # a bias computed after y's conv
        return F.relu(y + late), (z + b) * z  # z is read three times: nothing folds

    x = tinyfw.randn(2, 4, 6, 7)
    with tinyfw.no_grad(), layout.force("nhwc"):
        tr = tinyfw.jit.trace(f, (x,))
        _close(tr(x), f(x))
        convs = _conv_nodes(tr, x)
    flags = sorted(tuple(k for k in ("bias", "residual", "relu") if n.attrs.get(k)) for n in convs)
    assert flags == [(), ("bias", "relu")]


def test_the_reference_backend_folds_the_epilogue_too():
    tinyfw.manual_seed(6)
    w = tinyfw.randn(6, 3, 3, 3)
    b = tinyfw.randn(1, 6, 1, 1)
    r = tinyfw.randn(2, 6, 5, 5)

    def f(x):
        return F.relu(F.conv2d(x, w, padding=1) + b + r)

    x = tinyfw.randn(2, 3, 5, 5)
    from tinyfw import dispatch

    prev = dispatch.get_backend().__name__.rsplit(".", 1)[-1]
    dispatch.set_backend("ref")
    try:
        with tinyfw.no_grad(), layout.force("nhwc"):
            tr = tinyfw.jit.trace(f, (x,))
            _close([tr(x)], [f(x)])
            convs = _conv_nodes(tr, x)
    finally:
        dispatch.set_backend(prev)
    assert [n.attrs.get(k) for n in convs for k in ("bias", "residual", "relu")] == [True] * 3


@needs_c
@pytest.mark.parametrize("nchw_cheaper", [True, False])
def test_auto_mode_lets_the_exit_conv_write_nchw_only_when_that_measures_cheaper(
        monkeypatch, nchw_cheaper):
    w = tinyfw.randn(8, 4, 3, 3)
    b = tinyfw.randn(1, 8, 1, 1)

    def f(x):
        return F.relu(F.conv2d(x, w, padding=1) + b)

    def fake(key, fn):  # NHWC convs cheaper than NCHW; the NCHW store as the test says
        if key[0] == "conv_store":
            return (0.1 if nchw_cheaper else 5.0) if key[1] == "nchw" else 1.0
        if key[0] == "conv_nhwc" and key[2] == "nchw":
            return 5.0  # never read the entry in place
        return {"conv": 10.0, "conv_nhwc": 1.0}.get(key[0], 0.5)

    monkeypatch.setattr(layout_cost, "timed", fake)
    x = tinyfw.randn(2, 4, 6, 7)
    with tinyfw.no_grad(), layout.force("auto"):
        tr = tinyfw.jit.trace(f, (x,))
        _close([tr(x)], [f(x)])
        ops = [n.op for n in tr.graph(x)[0].nodes]
        convs = _conv_nodes(tr, x)
    assert [n.attrs.get("y_layout", "nhwc") for n in convs] == \
        ["nchw" if nchw_cheaper else "nhwc"]
    assert ("ToNCHW" in ops) == (not nchw_cheaper) and "ToNHWC" in ops
