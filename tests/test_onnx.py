"""ONNX export round trips: tinyfw -> .onnx (checked) -> onnxruntime, outputs compared."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from tinyfw import nn
from tinyfw.onnx import MAX_OPSET, MIN_OPSET

from helpers import npy

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
ort = pytest.importorskip("onnxruntime",
                          reason="onnxruntime is not installed (pip install onnxruntime)")


OPSETS = list(range(MIN_OPSET, MAX_OPSET + 1))


def _roundtrip(model, x, tmp_path, rtol=1e-4, atol=1e-5, opset=MIN_OPSET):
    path = str(tmp_path / "model.onnx")
    tinyfw.onnx.export(model, (x,), path, opset_version=opset)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == opset
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"input_0": npy(x)})
    with tinyfw.no_grad():
        want = npy(model(x))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("opset", OPSETS)
def test_mlp(tmp_path, opset):
    tinyfw.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 8), nn.Tanh(),
                      nn.Linear(8, 3), nn.Softmax(dim=-1))
    _roundtrip(m, tinyfw.randn(4, 6), tmp_path, opset=opset)


@pytest.mark.parametrize("opset", OPSETS)
def test_reductions_every_opset(tmp_path, opset):
    """max/min took their axes as an attribute before opset 18 and as an input since (the
    export wrote the attribute at every opset, which failed at 18)."""
    def f(x):
        return x.amax(1) + x.amin((0, 2), keepdim=True).sum() + x.sum(2).mean()

    _roundtrip(f, tinyfw.randn(3, 4, 5), tmp_path, opset=opset)


def test_opsets_outside_the_tested_range_are_refused(tmp_path):
    for bad in (MIN_OPSET - 1, MAX_OPSET + 1):
        with pytest.raises(ValueError, match="opset_version must be in"):
            tinyfw.onnx.export(lambda x: x * 2, (tinyfw.randn(2),), str(tmp_path / "m.onnx"),
                               opset_version=bad)


def test_cnn(tmp_path):
    tinyfw.manual_seed(1)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(8, 4, 3, stride=2), nn.ReLU(), nn.AvgPool2d(1),
                      nn.Flatten(), nn.Linear(4 * 3 * 3, 5))
    m.eval()
    _roundtrip(m, tinyfw.randn(2, 3, 16, 16), tmp_path)


@pytest.mark.parametrize("opset", OPSETS)
def test_transformer_encoder_layer(tmp_path, opset):
    tinyfw.manual_seed(2)
    m = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.1, batch_first=True)
    m.eval()
    _roundtrip(m, tinyfw.randn(2, 7, 16), tmp_path, opset=opset)


def test_unsupported_op_names_it(tmp_path):
    def f(x):
        return tinyfw.cumsum(x, 0)

    with pytest.raises(NotImplementedError, match="Cumsum"):
        tinyfw.onnx.export(f, (tinyfw.randn(3),), str(tmp_path / "m.onnx"))


@pytest.mark.parametrize("opset", [MIN_OPSET, MAX_OPSET])
def test_adaptive_pool_and_interpolate_export(tmp_path, opset):
    """AdaptiveAvgPool2d and interpolate run on the separable resampling op (Gather, Mul,
    ReduceSum in ONNX); a classifier head with a global average pool must export."""
    tinyfw.manual_seed(0)
    m = tinyfw.nn.Sequential(tinyfw.nn.Conv2d(2, 4, 3), tinyfw.nn.AdaptiveAvgPool2d((2, 3)),
                             tinyfw.nn.Flatten(), tinyfw.nn.Linear(24, 5))
    _roundtrip(m, tinyfw.randn(2, 2, 9, 10), tmp_path, opset=opset)
    _roundtrip(lambda x: tinyfw.nn.functional.interpolate(x, scale_factor=2, mode="bilinear"),
               tinyfw.randn(1, 3, 4, 5), tmp_path, opset=opset)
