"""tinyfw.quantization: observers against torch.ao.quantization's, the straight-through
gradient of fake quantization, and the digits CNN through PTQ and QAT (accuracy, file
size, state-dict round trip)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from tinyfw import quantization as Q
from tinyfw.metrics import accuracy

torch = pytest.importorskip("torch")
tq = pytest.importorskip("torch.ao.quantization")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
from _common import digits_loaders, predict  # noqa: E402
from train_digits import make_model  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _on_the_cpu():
    """tinyfw.quantization is CPU-only (QTensor holds numpy int8/uint8 codes, see
    docs/quantization.md): its tests run on the CPU whatever the suite's device."""
    with tinyfw.device("cpu"):
        yield

FUSE = [["0", "1", "2"], ["3", "4", "5"], ["9", "10"]]


@pytest.mark.parametrize("ours, theirs", [
    (lambda: Q.MinMaxObserver(), lambda: tq.MinMaxObserver()),
    (lambda: Q.MinMaxObserver(qdtype="int8", qscheme="symmetric"),
     lambda: tq.MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)),
    (lambda: Q.MovingAverageMinMaxObserver(averaging_constant=0.1),
     lambda: tq.MovingAverageMinMaxObserver(averaging_constant=0.1)),
    (lambda: Q.PerChannelMinMaxObserver(),
     lambda: tq.PerChannelMinMaxObserver(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)),
    (lambda: Q.MinMaxObserver(reduce_range=True), lambda: tq.MinMaxObserver(reduce_range=True)),
])
def test_observers_equal_torch(ours, theirs):
    a, b = ours(), theirs()
    rng = np.random.default_rng(0)
    for i in range(4):
        x = (rng.standard_normal((6, 5)) * (i + 1) + i * 0.3).astype(np.float32)
        a(tinyfw.from_numpy(x))
        b(torch.from_numpy(x))
    s, z = a.calculate_qparams()
    ts, tz = b.calculate_qparams()
    np.testing.assert_array_equal(np.asarray(s, np.float32).reshape(-1), ts.numpy().reshape(-1))
    np.testing.assert_array_equal(np.asarray(z).reshape(-1), tz.numpy().reshape(-1))


def test_observer_without_data_says_so():
    with pytest.raises(RuntimeError, match="no data observed"):
        Q.MinMaxObserver().calculate_qparams()


def test_histogram_observer_clips_outliers():
    obs = Q.HistogramObserver(percentile=99.0)
    x = np.random.default_rng(0).uniform(0, 1, 10000).astype(np.float32)
    x[0] = 100.0
    obs(tinyfw.from_numpy(x))
    scale, _ = obs.calculate_qparams()
    assert float(scale) < 1.1 / 255  # the outlier did not stretch the range


def test_fake_quantize_gradient_is_straight_through():
    x = tinyfw.tensor([-3.0, -0.26, 0.0, 0.013, 1.0, 2.6], requires_grad=True)
    y = Q.fake_quantize(x, 0.01, 128, 0, 255)
    y.backward(tinyfw.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [0, 2, 3, 4, 5, 0])  # clamped ends get none
    np.testing.assert_allclose(y.detach().numpy(), [-1.28, -0.26, 0, 0.01, 1.0, 1.27], atol=1e-6)


@pytest.fixture(scope="module")
def digits_cnn():
    """The digits CNN trained for 6 epochs, and the data."""
    tinyfw.manual_seed(0)
    loader, x_tr, y_tr, x_te, y_te = digits_loaders(0, 32)
    model = make_model("cnn")
    opt = tinyfw.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(6):
        model.train()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model, x_tr, y_tr, x_te, y_te


def _ptq(model, x_cal):
    prepared = Q.prepare(Q.QuantWrapper(Q.fuse_modules(model.eval(), FUSE)))
    prepared(x_cal)
    return Q.convert(prepared)


def test_ptq_digits_cnn_accuracy_and_file_size(digits_cnn, tmp_path):
    model, x_tr, y_tr, x_te, y_te = digits_cnn
    qmodel = _ptq(model, x_tr[:256])
    base = accuracy(y_te, predict(model, x_te))
    acc = accuracy(y_te, qmodel(x_te).argmax(1))
    assert base > 0.9
    assert base - acc <= 0.005, (base, acc)
    tinyfw.save(model.state_dict(), tmp_path / "f.tinyfw")
    tinyfw.save(qmodel.state_dict(), tmp_path / "q.tinyfw")
    ratio = os.path.getsize(tmp_path / "f.tinyfw") / os.path.getsize(tmp_path / "q.tinyfw")
    assert ratio >= 3.8, ratio
    # the file restores the quantized model exactly (into one calibrated differently)
    other = _ptq(model, x_tr[256:300])
    other.load_state_dict(tinyfw.load(tmp_path / "q.tinyfw"))
    np.testing.assert_array_equal(other(x_te).numpy(), qmodel(x_te).numpy())
    assert qmodel.state_dict()["module.3.weight"].dtype == tinyfw.int8


def test_qat_digits_cnn_accuracy(digits_cnn):
    model, x_tr, y_tr, x_te, y_te = digits_cnn
    base = accuracy(y_te, predict(model, x_te))
    tinyfw.manual_seed(1)
    qat = Q.prepare_qat(Q.QuantWrapper(Q.fuse_modules(model.train(), FUSE)))
    loader = digits_loaders(0, 32)[0]
    opt = tinyfw.optim.Adam(qat.parameters(), lr=2e-4)
    for _ in range(2):
        for xb, yb in loader:
            loss = F.cross_entropy(qat(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    qmodel = Q.convert(qat.eval())
    model.eval()
    acc = accuracy(y_te, qmodel(x_te).argmax(1))
    assert base - acc <= 0.002, (base, acc)


def test_dynamic_linear_is_close_to_float():
    lin = tinyfw.nn.Linear(64, 16)
    x = tinyfw.randn(8, 64)
    d = Q.quantize_dynamic(tinyfw.nn.Sequential(lin))
    assert isinstance(d[0], Q.DynamicQuantizedLinear)
    err = (d(x) - lin(x)).abs().max().item()
    assert err < 0.02 * lin(x).abs().max().item()
    with pytest.raises(NotImplementedError, match="GRU"):
        Q.quantize_dynamic(lin, {tinyfw.nn.GRU})


@pytest.mark.parametrize("layers,bidirectional,batch_first", [(1, False, False),
                                                               (2, True, True)])
def test_dynamic_lstm_is_as_close_to_float_as_torchs(tmp_path, layers, bidirectional,
                                                      batch_first):
    """The int8 LSTM against the float one, next to torch's dynamic int8 LSTM on the same
    weights and input (its weights per tensor, ours per row: ours is no further off)."""
    tinyfw.manual_seed(layers)
    lstm = tinyfw.nn.LSTM(12, 24, num_layers=layers, bidirectional=bidirectional,
                          batch_first=batch_first)
    model = tinyfw.nn.Sequential(lstm)
    q = Q.quantize_dynamic(model)
    assert isinstance(q[0], Q.DynamicQuantizedLSTM) and type(model[0]) is tinyfw.nn.LSTM
    x = tinyfw.randn(7, 5, 12) * 2
    h0 = tinyfw.randn(layers * (2 if bidirectional else 1), 7 if batch_first else 5, 24)
    c0 = tinyfw.randn(*h0.shape)
    with tinyfw.no_grad():
        want, (wh, wc) = lstm(x, (h0, c0))
    got, (gh, gc) = q[0](x, (h0, c0))
    t = torch.nn.LSTM(12, 24, num_layers=layers, bidirectional=bidirectional,
                      batch_first=batch_first)
    t.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy())
                       for k, v in lstm.state_dict().items()})
    tqd = tq.quantize_dynamic(torch.nn.Sequential(t), {torch.nn.LSTM}, dtype=torch.qint8)[0]
    assert type(tqd) is not torch.nn.LSTM  # (torch swaps children, not the model itself)
    th = (torch.from_numpy(h0.numpy().copy()), torch.from_numpy(c0.numpy().copy()))
    with torch.no_grad():
        tout, (_, tc) = tqd(torch.from_numpy(x.numpy().copy()), th)
    for ours, theirs, ref in ((got, tout, want), (gc, tc, wc)):
        err = np.abs(ours.numpy() - ref.numpy()).max()
        terr = np.abs(theirs.numpy() - ref.numpy()).max()
        assert err <= max(terr, 2e-3), (err, terr)
    assert got.shape == want.shape and gh.shape == wh.shape
    tinyfw.save(q.state_dict(), tmp_path / "q.tinyfw")
    again = Q.quantize_dynamic(tinyfw.nn.Sequential(tinyfw.nn.LSTM(
        12, 24, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)))
    again.load_state_dict(tinyfw.load(tmp_path / "q.tinyfw"))
    np.testing.assert_array_equal(again[0](x, (h0, c0))[0].numpy(), got.numpy())


def test_dynamic_lstm_file_shrinks(tmp_path):
    lstm = tinyfw.nn.LSTM(64, 128)
    tinyfw.save(lstm.state_dict(), tmp_path / "f.tinyfw")
    tinyfw.save(Q.quantize_dynamic(lstm).state_dict(), tmp_path / "q.tinyfw")
    # 1 byte per weight against 4, plus a scale and a bias per row (512 rows, two matrices)
    ratio = os.path.getsize(tmp_path / "f.tinyfw") / os.path.getsize(tmp_path / "q.tinyfw")
    assert ratio > 3.5, ratio


def test_convert_refuses_unfused_batchnorm():
    m = tinyfw.nn.Sequential(Q.QuantStub(), tinyfw.nn.Conv2d(1, 2, 3), tinyfw.nn.BatchNorm2d(2),
                             Q.DeQuantStub())
    p = Q.prepare(m)
    p(tinyfw.randn(2, 1, 5, 5))
    with pytest.raises(ValueError, match="fuse"):
        Q.convert(p)
