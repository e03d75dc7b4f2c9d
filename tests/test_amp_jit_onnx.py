"""autocast in traced mode and in ONNX export: the casts are ops of the graph, explain
shows them, exact cast pairs fold and inexact ones stay, traced equals eager (values and
gradients), a graph traced in a region is not replayed outside it, and an exported
autocast model has its Cast nodes and matches onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.nn as nn
from tinyfw import jit
from tests.helpers import npy

BF16, F16, F32 = tinyfw.bfloat16, tinyfw.float16, tinyfw.float32


def _mlp(seed=0):
    tinyfw.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def _casts(graph) -> list:
    return [(str(n.inputs[0].dtype), str(n.outputs[0].dtype)) for n in graph.nodes
            if n.op == "Cast"]


@pytest.mark.parametrize("low", [BF16, F16], ids=["bf16", "f16"])
def test_traced_autocast_matches_eager_values_and_gradients(low):
    model = _mlp()
    x = tinyfw.randn(5, 8)
    tf = jit.trace(model, (x,))
    with tinyfw.autocast("cpu", dtype=low):
        y_eager = model(x)
        y_eager.float().sum().backward()
        g_eager = [npy(p.grad) for p in model.parameters()]
        model.zero_grad()
        y_traced = tf(x)
        y_traced.float().sum().backward()
        g_traced = [npy(p.grad) for p in model.parameters()]
        fwd, _ = tf.graph(x)
    assert y_traced.dtype is low and y_eager.dtype is low
    # the same kernels on the same casts: the same bits
    np.testing.assert_array_equal(npy(y_traced), npy(y_eager))
    for a, b in zip(g_traced, g_eager):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    casts = _casts(fwd)
    # x, two weights and two biases to the low dtype; nothing cast back and forth
    assert len(casts) == 5 and all(dst == low.name for _, dst in casts), casts


def test_a_graph_traced_in_a_region_is_not_replayed_outside():
    model = _mlp()
    x = tinyfw.randn(5, 8)
    tf = jit.trace(model, (x,))
    with tinyfw.autocast("cpu"):
        assert tf(x).dtype is BF16
    assert tf(x).dtype is F32
    with tinyfw.autocast("cpu", dtype=F16):
        assert tf(x).dtype is F16
    assert len(tf.cache) == 3


def test_explain_shows_the_casts():
    model = _mlp()
    x = tinyfw.randn(5, 8)

    class Sink:
        def write(self, s):
            return len(s)

    with tinyfw.autocast("cpu"):
        text = jit.explain(model, x, print_graphs=True, file=Sink())
    assert "Cast" in text


def test_exact_cast_pairs_fold_and_inexact_ones_stay():
    x = tinyfw.randn(64)
    exact = jit.trace(lambda t: t.to(BF16).to(F32).to(BF16) * 2, (x,))
    inexact = jit.trace(lambda t: t.to(BF16).to(F32) * 2, (x,))
    fwd, _ = exact.graph(x)
    assert _casts(fwd) == [("float32", "bfloat16")]
    fwd, _ = inexact.graph(x)
    assert _casts(fwd) == [("float32", "bfloat16"), ("bfloat16", "float32")]
    np.testing.assert_array_equal(npy(exact(x)), npy(x.to(BF16).to(F32).to(BF16) * 2))
    np.testing.assert_array_equal(npy(inexact(x)), npy(x.to(BF16).to(F32) * 2))
    # the rounding is real: bf16 -> f32 of a rounded value is not x
    assert not np.array_equal(npy(inexact(x)), npy(x * 2))


def test_cast_exactness_rule():
    from tinyfw.jit.passes.simplify import _exact

    b = BF16.np
    assert _exact(b, np.float32) and _exact(np.float16, np.float32) and _exact(np.int8, b)
    assert _exact(np.int32, np.float64) and _exact(np.bool_, np.float16)
    assert not _exact(np.float32, b) and not _exact(np.float16, b) and not _exact(b, np.float16)
    assert not _exact(np.int32, np.float32) and not _exact(np.float64, np.float32)
    assert not _exact(np.float32, np.int64)


def test_onnx_export_of_an_autocast_model_has_casts_and_matches_onnxruntime(tmp_path):
    """Both low dtypes export; onnxruntime's CPU provider (1.32) has no bfloat16 kernel
    for some ops of the model (Relu: NOT_IMPLEMENTED when the session is created), so the
    bf16 model is run only where onnxruntime can."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    model = _mlp(1)
    x = tinyfw.randn(5, 8)
    for low in (F16, BF16):
        path = str(tmp_path / f"m_{low.name}.onnx")
        with tinyfw.autocast("cpu", dtype=low):
            tinyfw.onnx.export(model, (x,), path)
            with tinyfw.no_grad():
                want = npy(model(x))
        m = onnx.load(path)
        onnx.checker.check_model(m, full_check=True)
        casts = [n for n in m.graph.node if n.op_type == "Cast"]
        assert len(casts) >= 3, [n.op_type for n in m.graph.node]
        try:
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own NotImplemented class
            assert low is BF16 and "NOT_IMPLEMENTED" in str(exc), exc
            continue
        (got,) = sess.run(None, {"input_0": npy(x)})
        assert got.dtype == want.dtype
        # onnxruntime's low-precision MatMul rounds its own way: a few ulps of the dtype
        tol = 4e-3 if low is F16 else 3e-2
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32),
                                   rtol=tol, atol=tol)
