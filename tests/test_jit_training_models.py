"""Traced mode trains whole models like eager: a CNN with BatchNorm2d + Dropout and a
TransformerEncoderLayer with dropout trained with SGD, every layer with training-mode
behaviour, then eval and ONNX export of the trained model."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from tinyfw import jit, nn
from tinyfw.jit.compiler import DEFAULT_PASSES
from tests.test_jit_training import F32, UNFUSED, _buffers, _close, _run_and_grads
from tests.helpers import DEVICE, npy


# -- whole models trained in both modes -----------------------------------------------------
def _cnn():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * 4 * 4, 5))


def _train(model, step_fn, batches, lr=0.1):
    opt = tinyfw.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for x, y in batches:
        opt.zero_grad()
        loss = F.cross_entropy(step_fn(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    return losses


MODES = [pytest.param("cpu", DEFAULT_PASSES, F32, id="cpu-all-passes"),
         pytest.param("cpu", UNFUSED, {}, id="cpu-unfused-exact"),
         pytest.param("ref", UNFUSED, {}, id="ref-unfused-exact")]


@pytest.mark.parametrize("backend, passes, tol", MODES)
def test_cnn_with_batchnorm_and_dropout_trains_like_eager(backend, passes, tol):
    tinyfw.set_backend(backend)
    tinyfw.manual_seed(0)
    eager_m = _cnn()
    traced_m = copy.deepcopy(eager_m)
    batches = [(tinyfw.randn(6, 2, 8, 8), tinyfw.randint(0, 5, (6,))) for _ in range(4)]
    traced = jit.trace(traced_m, (batches[0][0],), passes=passes)
    tinyfw.manual_seed(9)
    le = _train(eager_m, eager_m, batches)
    tinyfw.manual_seed(9)
    lt = _train(traced_m, traced, batches)
    _close(lt, le, tol)
    assert len(set(le)) == len(le)  # it does train (the loss moves)
    for (name, a), b in zip(traced_m.named_parameters(), eager_m.parameters()):
        _close(a, b, tol, err_msg=name)
    for a, b in zip(_buffers(traced_m), _buffers(eager_m)):
        _close(a, b, tol)
    assert len(traced.cache) == 1
    # then evaluation, retraced in eval mode, reads the trained running stats
    traced_m.eval()
    eager_m.eval()
    x = tinyfw.randn(3, 2, 8, 8)
    np.testing.assert_allclose(npy(traced(x)), npy(eager_m(x)), **F32)


@pytest.mark.parametrize("backend, passes, tol", MODES)
def test_transformer_layer_with_dropout_trains_like_eager(backend, passes, tol):
    tinyfw.set_backend(backend)
    tinyfw.manual_seed(0)
    eager_m = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.1,
                                         batch_first=True)
    traced_m = copy.deepcopy(eager_m)
    xs = [tinyfw.randn(2, 5, 16) for _ in range(3)]
    traced = jit.trace(traced_m, (xs[0],), passes=passes)
    fwd, _ = traced.graph(xs[0])
    assert sum(n.op == "DrawSeed" for n in fwd.nodes) == 4  # attention, ff, two residuals
    results = []
    for m, fn in ((eager_m, eager_m), (traced_m, traced)):
        tinyfw.manual_seed(4)
        opt = tinyfw.optim.SGD(m.parameters(), lr=0.05)
        outs = []
        for x in xs:
            opt.zero_grad()
            out = fn(x)
            (out * out).mean().backward()
            opt.step()
            outs.append(npy(out.detach()))
        results.append((outs, [npy(p).copy() for p in m.parameters()]))
    (eo, ep), (to, tp) = results
    for a, b in zip(to, eo):
        _close(a, b, tol)
    for a, b in zip(tp, ep):
        _close(a, b, tol)


# -- every layer with training-mode behaviour --------------------------------------------------
class _Call(nn.Module):
    """Wraps a module whose call takes or returns more than one tensor."""

    def __init__(self, m, how):
        super().__init__()
        self.m, self.how = m, how

    def forward(self, x):
        return self.how(self.m, x)


def _training_layer(name):
    if name == "batchnorm1d_3d":
        return nn.BatchNorm1d(3), (4, 3, 5)
    if name == "batchnorm2d_no_affine":
        return nn.BatchNorm2d(3, affine=False, momentum=None), (2, 3, 4, 4)
    if name == "batchnorm2d_no_running_stats":
        return nn.BatchNorm2d(3, track_running_stats=False), (2, 3, 4, 4)
    if name == "dropout":
        return nn.Dropout(0.2), (5, 6)
    if name == "mha_dropout":
        return _Call(nn.MultiheadAttention(8, 2, dropout=0.3, batch_first=True),
                     lambda m, x: m(x, x, x)[0]), (2, 5, 8)
    if name == "lstm_dropout":
        # short sequences: with fusion every step's kernels are compiled on first use
        return _Call(nn.LSTM(4, 6, num_layers=2, dropout=0.4, batch_first=True),
                     lambda m, x: m(x)[0]), (2, 3, 4)
    if name == "gru_dropout":
        return _Call(nn.GRU(4, 6, num_layers=2, dropout=0.4), lambda m, x: m(x)[0]), (3, 2, 4)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.2,
                                       activation="gelu", norm_first=True, batch_first=True)
    return nn.TransformerEncoder(layer, 2), (2, 5, 8)


# with every pass: the tolerance of test_jit's layer sweep (the fused GELU's erf/exp are
# within a few ulp of the backend's, and two pre-norm layers' backward amplify that)
LAYER_TOL = dict(rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("passes, tol", [pytest.param(UNFUSED, {}, id="unfused-exact"),
                                         pytest.param(DEFAULT_PASSES, LAYER_TOL, id="all")])
@pytest.mark.parametrize("name", ["batchnorm1d_3d", "batchnorm2d_no_affine",
                                  "batchnorm2d_no_running_stats", "dropout", "mha_dropout",
                                  "lstm_dropout", "gru_dropout", "transformer_encoder"])
def test_training_mode_layers_agree(name, passes, tol):
    tinyfw.manual_seed(5)
    m, shape = _training_layer(name)
    ref = copy.deepcopy(m)
    traced = jit.trace(m, (tinyfw.randn(*shape).requires_grad_(True),), passes=passes)
    tinyfw.manual_seed(6)
    xs = [tinyfw.randn(*shape) * (i + 1) for i in range(3)]
    results = []
    for model, fn in ((ref, ref), (m, traced)):
        tinyfw.manual_seed(7)
        results.append([_run_and_grads(fn, x.detach().requires_grad_(True),
                                       list(model.parameters())) for x in xs])
        results[-1].append(tinyfw.random.default_generator.get_state())
    assert results[0][-1] == results[1][-1]  # as many draws, in the same order
    for (eo, eg), (to, tg) in zip(results[0][:-1], results[1][:-1]):
        _close(to, eo, tol)
        for a, b in zip(tg, eg):
            _close(a, b, tol)
    for a, b in zip(_buffers(m), _buffers(ref)):
        _close(a, b, tol)
    assert len(traced.cache) == 1


# -- after training: eval and export ----------------------------------------------------------
def test_onnx_export_after_traced_training(tmp_path):
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    tinyfw.manual_seed(0)
    m = _cnn()
    traced = jit.trace(m, (tinyfw.randn(6, 2, 8, 8),))
    _train(m, traced, [(tinyfw.randn(6, 2, 8, 8), tinyfw.randint(0, 5, (6,)))
                       for _ in range(3)])
    assert int(m[1].num_batches_tracked.item()) == 3
    m.eval()
    x = tinyfw.randn(3, 2, 8, 8)
    path = str(tmp_path / "cnn.onnx")
    tinyfw.onnx.export(m, (x,), path)
    onnx.checker.check_model(onnx.load(path))
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: npy(x)})[0]
    # the exported model uses the running statistics the traced training wrote back
    np.testing.assert_allclose(got, npy(traced(x)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got, npy(m(x)), rtol=1e-4, atol=1e-5)
