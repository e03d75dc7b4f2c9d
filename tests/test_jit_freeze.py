"""jit.freeze and the batch-norm folding rewrites: frozen models against eager, folding
matches and near misses, gradients of the folded graph on a live trace (gradcheck in
float64), frozen values, the prepack hooks, errors."""
from __future__ import annotations

import numpy as np
import pytest

import tinyfw
import tinyfw.nn.functional as F
from tinyfw import jit, nn
from tinyfw.autograd import gradcheck
from tinyfw.jit.passes import prepack
from tinyfw.jit.rewrites_fold import FOLDS
from tests.helpers import explain_text, npy


def _randomise_bn(m: nn.Module, seed: int = 0) -> None:
    """Running statistics and affine parameters away from their defaults, so a fold that
    dropped any of them would show."""
    rs = np.random.RandomState(seed)
    with tinyfw.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = mod.running_mean.shape[0]
                dt = mod.running_mean.dtype
                mod.running_mean.copy_(tinyfw.tensor(rs.normal(0, 1, c), dtype=dt))
                mod.running_var.copy_(tinyfw.tensor(rs.uniform(0.5, 2, c), dtype=dt))
                mod.weight.copy_(tinyfw.tensor(rs.normal(1, 0.5, c), dtype=dt))
                mod.bias.copy_(tinyfw.tensor(rs.normal(0, 0.5, c), dtype=dt))


def _cnn(dtype=tinyfw.float32) -> nn.Module:
    tinyfw.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2, bias=False), nn.BatchNorm2d(6, eps=1e-3), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 1 * 1, 5), nn.BatchNorm1d(5), nn.ReLU(),
        nn.Linear(5, 3, bias=False), nn.BatchNorm1d(3))
    m = m.to(dtype)
    _randomise_bn(m)
    return m.eval()


BN_OPS = {"Rsqrt", "Sub"}


def test_freeze_folds_every_conv_and_linear_batchnorm():
    m = _cnn(tinyfw.float64)
    x = tinyfw.tensor(np.random.RandomState(1).normal(0, 1, (3, 1, 6, 6)),
                      dtype=tinyfw.float64)
    fz = jit.freeze(jit.trace(m, (x,)), (x,))
    text = explain_text(fz, x)
    for name in ("conv_bn_fold", "conv_nobias_bn_fold", "linear_bn_fold",
                 "linear_nobias_bn_fold"):
        assert f"rewrote {name}:" in text, text
    fwd = fz.graph(x)[0]
    ops = {n.op for n in fwd.nodes}
    assert not ops & BN_OPS, ops  # the folded weights were computed at freeze time
    # float64: folding reassociates a handful of products per output
    np.testing.assert_allclose(npy(fz(x)), npy(m(x)), rtol=1e-12, atol=1e-12)


def test_frozen_float32_model_matches_eager():
    m = _cnn()
    x = tinyfw.randn(4, 1, 6, 6)
    fz = jit.freeze(m, (x,))
    y = fz(x)
    assert not y.requires_grad
    np.testing.assert_allclose(npy(y), npy(m(x)), rtol=1e-5, atol=1e-5)


def test_live_trace_with_folds_keeps_gradients():
    """The folds on a live (unfrozen) trace: the folded weight is computed from the
    parameters in the graph, so gradients reach conv, gamma and beta exactly."""
    tinyfw.manual_seed(2)
    m = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3)).to(tinyfw.float64)
    _randomise_bn(m, 3)
    m.eval()
    x = tinyfw.tensor(np.random.RandomState(4).normal(0, 1, (2, 2, 5, 5)),
                      dtype=tinyfw.float64, requires_grad=True)
    tf = jit.trace(m, (x,), rewrites=FOLDS)
    assert "rewrote conv_bn_fold" in explain_text(tf, x)
    assert gradcheck(tf, (x,))
    grads = []
    for fn in (tf, m):
        for p in m.parameters():
            p.grad = None
        (fn(x) ** 2).sum().backward()
        grads.append([npy(p.grad).copy() for p in m.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # and not without asking: the folds are freeze-only when registered
    assert "conv_bn_fold" not in explain_text(jit.trace(m, (x,)), x)


def test_fold_near_misses():
    tinyfw.manual_seed(5)
    conv, bn = nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3)
    _randomise_bn(bn)
    bn.eval()
    x = tinyfw.randn(2, 2, 5, 5)

    def residual(x):  # the conv output is read outside the pattern: no fold
        y = conv(x)
        return bn(y) + y

    def bn_alone(x):  # no product before the batch norm
        return bn(x[:, :1].repeat(1, 3, 1, 1))

    for f in (residual, bn_alone):
        text = explain_text(jit.trace(f, (x,), rewrites=FOLDS), x)
        assert "bn_fold" not in text, f.__name__
    # batch norm in training mode is another op: nothing to fold
    bn.train()
    assert "bn_fold" not in explain_text(jit.trace(lambda x: bn(conv(x)), (x,), rewrites=FOLDS), x)
    bn.eval()
    # BatchNorm1d over (N, C, L) after a linear on the last dim: the channel axis is not
    # the linear's output features (the filter checks the views' channel axis)
    lin, bn1 = nn.Linear(4, 4), nn.BatchNorm1d(3)
    _randomise_bn(bn1)
    bn1.eval()
    x3 = tinyfw.randn(2, 3, 4)
    f3 = lambda x: bn1(lin(x))  # noqa: E731
    tf = jit.trace(f3, (x3,), rewrites=FOLDS)
    assert "bn_fold" not in explain_text(tf, x3)
    np.testing.assert_allclose(npy(tf(x3).detach()), npy(f3(x3).detach()), rtol=1e-6, atol=1e-6)


def test_freeze_keeps_the_values_it_froze():
    m = _cnn()
    x = tinyfw.randn(2, 1, 6, 6)
    fz = jit.freeze(m, (x,))
    before = npy(fz(x)).copy()
    with tinyfw.no_grad():
        for p in m.parameters():
            p.mul_(2)
        m[1].running_var.mul_(3)
    np.testing.assert_array_equal(npy(fz(x)), before)
    # a new signature traced later still uses the frozen values
    x5 = tinyfw.randn(5, 1, 6, 6)
    m2 = _cnn()
    np.testing.assert_allclose(npy(fz(x5)), npy(m2(x5)), rtol=1e-5, atol=1e-5)


def test_freeze_refuses_training_mode():
    m = _cnn().train()
    with pytest.raises(RuntimeError, match="training mode.*call model.eval\\(\\) first"):
        jit.freeze(jit.trace(m, (tinyfw.randn(2, 1, 6, 6),)))


def test_freeze_refuses_non_callables():
    with pytest.raises(TypeError, match="jit.freeze: expected a traced function or a Module"):
        jit.freeze(3)


@pytest.fixture
def on_cpu():
    """Prepacking is a CPU pass (compiler.CPU_ONLY_PASSES): layouts are the CPU kernels'."""
    with tinyfw.device("cpu"):
        yield


def test_gemm_weight_is_stored_row_major_at_freeze(on_cpu):
    tinyfw.manual_seed(1)
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    x = tinyfw.randn(3, 8)
    fz = jit.freeze(m, (x,))
    assert "prepacked: Matmul -> Matmul" in explain_text(fz, x)
    consts = [v for v in fz.graph(x)[0].leaves() if v.kind == "const" and len(v.shape) == 2]
    assert consts and all(v.data.flags.c_contiguous for v in consts)
    np.testing.assert_allclose(npy(fz(x)), npy(m(x)), rtol=1e-6, atol=1e-6)


def test_prepack_hook_sees_constant_inputs_and_may_replace_the_node(on_cpu):
    from tinyfw.ops.nn_conv import Conv2d

    seen = []

    def hook(node, consts):
        seen.append((node.op, sorted(consts)))
        # the same conv on a copied filter: a stand-in for a re-laid-out one
        w = prepack.new_const(np.array(consts[1]))
        return jit.Node(node.op, node.fn, [node.inputs[0], w], dict(node.attrs),
                        list(node.outputs))

    prepack.register_prepack(Conv2d, hook)
    try:
        m = _cnn()
        x = tinyfw.randn(2, 1, 6, 6)
        fz = jit.freeze(m, (x,))
        assert seen == [("Conv2d", [1]), ("Conv2d", [1])]
        assert explain_text(fz, x).count("prepacked: Conv2d -> Conv2d") == 2
        np.testing.assert_allclose(npy(fz(x)), npy(m(x)), rtol=1e-5, atol=1e-5)
    finally:
        prepack._HOOKS[Conv2d].remove(hook)


def test_prepack_hook_returning_other_outputs_is_an_error(on_cpu):
    from tinyfw.ops.nn_conv import Conv2d

    def bad(node, consts):
        return jit.Node(node.op, node.fn, list(node.inputs), {}, [])

    prepack.register_prepack(Conv2d, bad)
    try:
        m = nn.Conv2d(1, 2, 3).eval()
        with pytest.raises(RuntimeError, match="must return a node with the original node's "
                                               "output values"):
            jit.freeze(m, (tinyfw.randn(2, 1, 5, 5),))
    finally:
        prepack._HOOKS[Conv2d].remove(bad)
    with pytest.raises(TypeError, match="must be callable"):
        prepack.register_prepack(Conv2d, 3)


class _Pool(nn.Module):
    def __init__(self, **kw) -> None:
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return F.max_pool2d(x, **self.kw)


def test_frozen_max_pool_equals_eager_bit_for_bit():
    a = np.random.RandomState(0).normal(size=(3, 4, 6, 8)).astype(np.float32)
    a[0, 0, 0, 1], a[1, 2, 3, 3], a[2, 3, 4, 4], a[2, 3, 5, 5] = np.nan, -np.inf, np.inf, np.nan
    x = tinyfw.tensor(a)
    m = _Pool(kernel_size=2).eval()
    fz = jit.freeze(m, (x,))
    np.testing.assert_array_equal(npy(fz(x)), npy(m(x)))  # NaN where max_pool2d has NaN


@pytest.mark.parametrize("shape,kw", [((2, 3, 7, 8), dict(kernel_size=2)),     # odd H
                                      ((2, 3, 6, 6), dict(kernel_size=3)),
                                      ((2, 3, 6, 6), dict(kernel_size=2, stride=1)),
                                      ((2, 3, 6, 6), dict(kernel_size=2, padding=1))])
def test_frozen_max_pools_of_every_geometry(shape, kw):
    x = tinyfw.randn(*shape)
    m = _Pool(**kw).eval()
    fz = jit.freeze(m, (x,))
    np.testing.assert_array_equal(npy(fz(x)), npy(m(x)))
