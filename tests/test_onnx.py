"""ONNX export round trips: tinyfw -> .onnx (checked) -> onnxruntime, outputs compared."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from tinyfw import nn

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
ort = pytest.importorskip("onnxruntime",
                          reason="onnxruntime is not installed (pip install onnxruntime)")


def _roundtrip(model, x, tmp_path, rtol=1e-4, atol=1e-5):
    path = str(tmp_path / "model.onnx")
    tinyfw.onnx.export(model, (x,), path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"input_0": x._data})
    with tinyfw.no_grad():
        want = model(x)._data
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def test_mlp(tmp_path):
    tinyfw.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 8), nn.Tanh(),
                      nn.Linear(8, 3), nn.Softmax(dim=-1))
    _roundtrip(m, tinyfw.randn(4, 6), tmp_path)


def test_cnn(tmp_path):
    tinyfw.manual_seed(1)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(8, 4, 3, stride=2), nn.ReLU(), nn.AvgPool2d(1),
                      nn.Flatten(), nn.Linear(4 * 3 * 3, 5))
    m.eval()
    _roundtrip(m, tinyfw.randn(2, 3, 16, 16), tmp_path)


def test_transformer_encoder_layer(tmp_path):
    tinyfw.manual_seed(2)
    m = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.1, batch_first=True)
    m.eval()
    _roundtrip(m, tinyfw.randn(2, 7, 16), tmp_path)


def test_unsupported_op_names_it(tmp_path):
    def f(x):
        return tinyfw.cumsum(x, 0)

    with pytest.raises(NotImplementedError, match="Cumsum"):
        tinyfw.onnx.export(f, (tinyfw.randn(3),), str(tmp_path / "m.onnx"))
