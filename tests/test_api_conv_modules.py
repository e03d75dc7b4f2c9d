"""The issue-16 convolution, padding, fold and shuffle layers against PyTorch's (same
weights: outputs, input gradients and every parameter gradient in float64), their reprs,
initialisation bounds, the lazy convolutions and error messages."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinyfw
from helpers import npy, torch
from nn_oracle import compare

pytestmark = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle)")

LAYERS = [
    ("Conv1d", (4, 6, 3), {"stride": 2, "padding": 1, "groups": 2}, (2, 4, 9)),
    ("Conv1d", (4, 6, 4), {"padding": "same", "padding_mode": "reflect"}, (2, 4, 9)),
    ("Conv1d", (4, 6, 3), {"padding": 2, "padding_mode": "circular", "bias": False}, (4, 9)),
    ("Conv2d", (4, 6, 3), {"padding": 1, "padding_mode": "replicate"}, (2, 4, 5, 6)),
    ("Conv2d", (4, 6, (2, 3)), {"padding": "same", "padding_mode": "circular",
                                "dilation": (2, 1)}, (2, 4, 5, 6)),
    ("Conv3d", (4, 6, 3), {"padding": (1, 0, 1), "padding_mode": "reflect"}, (2, 4, 5, 6, 4)),
    ("Conv3d", (4, 6, (2, 3, 1)), {"stride": (1, 2, 1), "groups": 2, "dilation": (1, 1, 2)},
     (4, 5, 6, 4)),
    ("ConvTranspose1d", (4, 6, 3), {"stride": 2, "output_padding": 1, "groups": 2}, (2, 4, 5)),
    ("ConvTranspose2d", (4, 6, 3), {"stride": 2, "padding": 1, "dilation": 2}, (2, 4, 5, 5)),
    ("ConvTranspose2d", (4, 6, 3), {"stride": (2, 1), "bias": False}, (4, 3, 3)),
    ("ConvTranspose3d", (4, 6, 2), {"stride": 2, "padding": (0, 1, 0), "groups": 2},
     (1, 4, 3, 3, 2)),
    ("ConstantPad1d", ((2, -1), 1.5), {}, (2, 3, 4)),
    ("ConstantPad2d", ((1, -1, 2, 0), -2.0), {}, (2, 3, 4)),
    ("ConstantPad3d", (1, 0.5), {}, (1, 2, 3, 2)),
    ("ZeroPad1d", ((3, 1),), {}, (2, 5)),
    ("ZeroPad2d", ((1, 2, 0, 1),), {}, (2, 3, 4, 5)),
    ("ZeroPad3d", (1,), {}, (2, 3, 4, 2)),
    ("ReflectionPad1d", ((2, 3),), {}, (2, 3, 5)),
    ("ReflectionPad2d", ((1, 2, 0, 1),), {}, (2, 3, 4, 5)),
    ("ReflectionPad3d", (1,), {}, (1, 2, 3, 4, 2)),
    ("ReplicationPad1d", (2,), {}, (3, 4)),
    ("ReplicationPad2d", ((1, 2, 3, 0),), {}, (2, 3, 4, 5)),
    ("ReplicationPad3d", ((1, 0, 2, 1, 0, 2),), {}, (2, 3, 4, 5, 2)),
    ("CircularPad1d", ((2, -1),), {}, (2, 3, 4)),
    ("CircularPad2d", (1,), {}, (3, 4, 5)),
    ("CircularPad3d", ((1, 1, 0, 2, 1, 0),), {}, (1, 2, 3, 4, 2)),
    ("Unfold", ((2, 2),), {"stride": 1, "padding": 1}, (2, 3, 4, 5)),
    ("Fold", ((4, 5), (2, 2)), {}, (2, 12, 12)),
    ("PixelShuffle", (2,), {}, (2, 8, 3, 3)),
    ("PixelUnshuffle", (2,), {}, (2, 2, 4, 6)),
    ("ChannelShuffle", (2,), {}, (2, 4, 3, 3)),
]

_HAS_DTYPE = ("Conv", "ConvTranspose")


def _make(name: str, args: tuple, kw: dict):
    if name.startswith(_HAS_DTYPE):
        return (getattr(torch.nn, name)(*args, **kw, dtype=torch.float64),
                getattr(tinyfw.nn, name)(*args, **kw, dtype=tinyfw.float64))
    return getattr(torch.nn, name)(*args, **kw), getattr(tinyfw.nn, name)(*args, **kw)


@pytest.mark.parametrize("name,args,kw,shape", LAYERS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(LAYERS)])
def test_layer_against_torch(name, args, kw, shape):
    tm, fm = _make(name, args, kw)
    x = np.random.default_rng(0).standard_normal(shape)
    compare(tm, fm, [x], dtype="float64")
    assert repr(fm) == repr(tm)


@pytest.mark.parametrize("name", ["Conv1d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                                  "ConvTranspose3d"])
def test_default_init_stays_in_pytorchs_bounds(name):
    m = getattr(tinyfw.nn, name)(4, 6, 3, groups=2)
    fan_in = m.weight.shape[1] * math.prod(m.kernel_size)
    # kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / 6), bound gain * sqrt(3 / fan_in) = 1/sqrt(fan_in)
    bound = 1 / math.sqrt(fan_in)
    w, b = npy(m.weight), npy(m.bias)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > bound / 2  # drawn, not left at zero
    assert tuple(m.weight.shape) == tuple(getattr(torch.nn, name)(4, 6, 3, groups=2).weight.shape)


@pytest.mark.parametrize("size", [(11, 11), (12, 12), (1, 4, 11, 12)])
def test_conv_transpose_output_size(size):
    tm, fm = _make("ConvTranspose2d", (4, 6, 3), {"stride": 2})
    x = np.random.default_rng(0).standard_normal((1, 4, 5, 5))
    compare(tm, fm, [x], dtype="float64", kwargs_t={"output_size": size},
            kwargs_f={"output_size": size})


LAZY = [
    ("LazyConv1d", (6, 3), {"groups": 2}, (2, 4, 9)),
    ("LazyConv2d", (6, 3), {"padding_mode": "reflect", "padding": 1}, (4, 5, 5)),
    ("LazyConv3d", (6, 2), {"bias": False}, (1, 2, 3, 3, 3)),
    ("LazyConvTranspose1d", (6, 3), {}, (2, 4, 5)),
    ("LazyConvTranspose2d", (6, 3), {"stride": 2, "output_padding": 1}, (2, 4, 5, 5)),
    ("LazyConvTranspose3d", (4, 2), {"groups": 2}, (1, 2, 3, 3, 2)),
]


@pytest.mark.parametrize("name,args,kw,shape", LAZY, ids=[c[0] for c in LAZY])
def test_lazy_layer_infers_in_channels_and_becomes_the_concrete_layer(name, args, kw, shape):
    tm = getattr(torch.nn, name)(*args, **kw, dtype=torch.float64)
    fm = getattr(tinyfw.nn, name)(*args, **kw, dtype=tinyfw.float64)
    assert fm.has_uninitialized_params()
    assert all(isinstance(p, tinyfw.nn.UninitializedParameter) for p in fm.parameters())
    x = np.random.default_rng(0).standard_normal(shape)
    fm(tinyfw.tensor(x))
    tm(torch.tensor(x))
    assert type(fm).__name__ == type(tm).__name__ == name[4:]
    assert type(fm) is getattr(tinyfw.nn, name[4:])
    assert fm.in_channels == tm.in_channels
    assert list(fm.state_dict()) == list(tm.state_dict())
    assert repr(fm) == repr(tm)
    compare(tm, fm, [x], dtype="float64")


def test_lazy_layer_materialises_from_a_state_dict_and_keeps_parameter_identity():
    src = tinyfw.nn.ConvTranspose2d(6, 4, 3, groups=2)
    m = tinyfw.nn.LazyConvTranspose2d(4, 3, groups=2)
    w = m.weight
    opt = tinyfw.optim.SGD(m.parameters(), lr=0.1)  # made before the sizes are known
    m.load_state_dict(src.state_dict())
    assert type(m) is tinyfw.nn.ConvTranspose2d and m.in_channels == 6 and m.weight is w
    assert np.array_equal(npy(m.weight), npy(src.weight))
    m(tinyfw.randn(1, 6, 4, 4)).sum().backward()
    opt.step()
    assert not np.array_equal(npy(m.weight), npy(src.weight))


def test_lazy_layer_trains_after_the_first_call():
    m = tinyfw.nn.LazyConv1d(3, 2)
    x = tinyfw.randn(2, 5, 7)
    m(x)
    opt = tinyfw.optim.SGD(m.parameters(), lr=0.1)
    loss = m(x).square().mean()
    loss.backward()
    opt.step()
    assert m(x).square().mean().item() < loss.item()


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: tinyfw.nn.Conv1d(4, 6, 3, padding_mode="mirror"), ValueError, r"Conv1d: padding_mode must be one of"),
    (lambda: tinyfw.nn.Conv2d(4, 6, 3, padding_mode="mirror"), ValueError, r"Conv2d: padding_mode must be"),
    (lambda: tinyfw.nn.ConvTranspose2d(4, 6, 3, padding_mode="reflect"), ValueError, r"ConvTranspose2d: only padding_mode='zeros'"),
    (lambda: tinyfw.nn.Conv3d(4, 6, 3, groups=4, bias=False)(tinyfw.zeros(1, 4, 3, 3, 3)), ValueError, r"out_channels=6 must both be divisible by groups=4"),
    (lambda: tinyfw.nn.Conv3d(4, 6, 3, stride=2, padding="same"), ValueError, r"Conv3d: padding='same' is not supported for strided"),
    (lambda: tinyfw.nn.Conv1d(4, 6, (3, 3)), ValueError, r"Conv1d: kernel_size must be an int or 1 ints"),
    (lambda: tinyfw.nn.ConvTranspose2d(4, 6, 3, stride=2)(tinyfw.zeros(1, 4, 5, 5), output_size=(13, 11)), ValueError, r"requested output size \[13, 11\] is not reachable: dim 0 must be in \[11, 12\]"),
    (lambda: tinyfw.nn.LazyConv2d(6, 3, groups=4)(tinyfw.zeros(1, 6, 5, 5)), ValueError, r"out_channels=6 must both be divisible by groups=4"),
    (lambda: tinyfw.nn.LazyConv2d(6, 3, groups=2)(tinyfw.zeros(1, 3, 5, 5)), ValueError, r"LazyConv2d: the input's 3 channels .* multiple of groups=2"),
    (lambda: tinyfw.nn.LazyConv1d(6, 3)(tinyfw.zeros(5)), RuntimeError, r"LazyConv1d: expected a 2-d or 3-d input"),
    (lambda: tinyfw.nn.ReflectionPad2d((1, 2, 3)), ValueError, r"ReflectionPad2d: padding must be an int or 4 ints"),
    (lambda: tinyfw.nn.CircularPad2d(1)(tinyfw.zeros(5, 4)), ValueError, r"CircularPad2d: expected a 3-d or 4-d input"),
])
def test_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_conv1d_and_conv3d_export_to_onnx(tmp_path):
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    tinyfw.manual_seed(0)
    for m, x in ((tinyfw.nn.Sequential(tinyfw.nn.Conv1d(3, 4, 3, stride=2, padding=1),
                                       tinyfw.nn.ReLU()), tinyfw.randn(2, 3, 9)),
                 (tinyfw.nn.Conv3d(4, 6, (2, 3, 1), padding=(1, 0, 1), dilation=(1, 2, 1),
                                   groups=2), tinyfw.randn(2, 4, 3, 6, 4))):
        path = str(tmp_path / "m.onnx")
        tinyfw.onnx.export(m, (x,), path)
        onnx.checker.check_model(onnx.load(path), full_check=True)
        (got,) = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
            None, {"input_0": npy(x)})
        with tinyfw.no_grad():
            want = npy(m(x))
        # float32 sums of at most 12 products, reordered
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
