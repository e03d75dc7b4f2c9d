"""ONNX export of converted int8 models in QDQ form, run by onnxruntime: exact where the
layer is exact on codes (pooling, ReLU, Flatten), within one output step where ONNX sums
dequantized floats and tinyfw exact integers (Gemm, Conv)."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
from tinyfw import nn
from tinyfw import quantization as Q
from tinyfw.onnx import MAX_OPSET, MIN_OPSET


@pytest.fixture(autouse=True, scope="module")
def _on_the_cpu():
    """tinyfw.quantization is CPU-only (QTensor holds numpy int8/uint8 codes, see
    docs/quantization.md): its tests run on the CPU whatever the suite's device."""
    with tinyfw.device("cpu"):
        yield

onnx = pytest.importorskip("onnx", reason="onnx is not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")


def _quantized(model, x):
    prepared = Q.prepare(Q.QuantWrapper(model.eval()))
    prepared(x)
    return Q.convert(prepared)


def _run(qmodel, x, tmp_path, opset=MIN_OPSET):
    path = str(tmp_path / "q.onnx")
    tinyfw.onnx.export(qmodel, (x,), path, opset_version=opset)
    proto = onnx.load(path)
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert all(i.data_type != onnx.TensorProto.FLOAT or len(i.dims) <= 1  # weights are int8
               for i in proto.graph.initializer)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_0": x.numpy()})[0]
    with tinyfw.no_grad():
        want = qmodel(x).numpy()
    return got, want


def _steps(qmodel):
    """The output scale (the last quantized layer's)."""
    last = [m for m in qmodel.modules() if hasattr(m, "out_qparams")][-1]
    return last.out_qparams[0]


@pytest.mark.parametrize("opset", [MIN_OPSET, MAX_OPSET])
def test_digits_cnn_qdq_agrees_with_onnxruntime(tmp_path, opset):
    tinyfw.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3),
        nn.Linear(512, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10))
    x = tinyfw.rand(128, 1, 8, 8) * 16
    model.train()
    with tinyfw.no_grad():
        model(x)  # running statistics
    fused = Q.fuse_modules(model.eval(), [["0", "1", "2"], ["3", "4", "5"], ["9", "10"]])
    qmodel = _quantized(fused, x)
    got, want = _run(qmodel, x, tmp_path, opset)
    steps = np.abs(got - want) / _steps(qmodel)
    # each int8 layer may round a code differently when its value lies within float32
    # rounding of a half step; three such layers: the output moves by a step at most
    # twice here (measured: at most 1, on ~2% of the outputs)
    assert steps.max() <= 2.0 + 1e-4, steps.max()
    assert np.mean(steps > 0.5) < 0.05
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.97


@pytest.mark.parametrize("stride,padding,relu", [(1, 0, False), (2, 1, True), (1, 2, True)])
def test_conv_and_linear_layers_within_one_step(tmp_path, stride, padding, relu):
    tinyfw.manual_seed(stride * 10 + padding)
    model = nn.Sequential(nn.Conv2d(3, 5, 3, stride=stride, padding=padding), nn.ReLU())
    if relu:
        model = Q.fuse_modules(model, [["0", "1"]])  # ReLU in the conv's epilogue
    x = tinyfw.randn(6, 3, 7, 7)
    q = _quantized(model, x)
    got, want = _run(q, x, tmp_path)
    assert np.abs(got - want).max() <= _steps(q) * (1 + 1e-4)
    q = _quantized(nn.Sequential(nn.Linear(5, 4), nn.Identity()), tinyfw.randn(16, 5))
    x = tinyfw.randn(16, 5) * 1.2  # beyond the calibrated range too: saturation agrees
    got, want = _run(q, x, tmp_path)
    assert np.abs(got - want).max() <= _steps(q) * (1 + 1e-4)


def test_pools_relu_flatten_are_exact(tmp_path):
    tinyfw.manual_seed(3)
    model = nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1), nn.ReLU(),
                          nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False),
                          nn.Flatten())
    x = tinyfw.randn(4, 2, 7, 7)
    prepared = Q.prepare(Q.QuantWrapper(model))
    prepared(x)
    qmodel = Q.convert(prepared)
    got, want = _run(qmodel, x, tmp_path)
    np.testing.assert_array_equal(got, want)


def test_unsupported_models_are_refused(tmp_path):
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.lin = Q.QuantStub(), nn.Linear(4, 4)
            self.add, self.dequant = Q.FloatFunctional(), Q.DeQuantStub()

        def forward(self, x):
            x = self.quant(x)
            return self.dequant(self.add.add(self.lin(x), x))

    x = tinyfw.randn(3, 4)
    p = Q.prepare(Residual())
    p(x)
    with pytest.raises(NotImplementedError, match="Residual is not supported"):
        tinyfw.onnx.export(Q.convert(p), (x,), str(tmp_path / "r.onnx"))
    p = Q.prepare(nn.Sequential(Q.QuantStub(), nn.Linear(4, 2)))
    p(x)
    with pytest.raises(NotImplementedError, match="ends quantized"):
        tinyfw.onnx.export(Q.convert(p), (x,), str(tmp_path / "e.onnx"))
    d = Q.quantize_dynamic(nn.Sequential(nn.Linear(4, 2)))
    with pytest.raises(NotImplementedError, match="DynamicQuantizedLinear"):
        tinyfw.onnx.export(d, (x,), str(tmp_path / "d.onnx"))
