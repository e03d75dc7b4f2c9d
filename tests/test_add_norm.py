"""layer_norm(gelu(h + b) + x) as one op (tinyfw/ops/add_norm.py, csrc/nn_add_norm.inc)
and the jit rewrite that makes it (tinyfw/jit/rewrites_norm.py).

- the kernels against the composition of eager's own ops: y and the gradients of h, x,
  weight and bias bit for bit (the same row routines), b's gradient (a column sum in its
  own order) within a bound from the float64 sum of |gh|; over vector tails, rows past
  one 32-row block, optional b / weight / bias and both GELU forms (this file also runs
  under TINYFW_ISA=avx2 in CI);
- the reference backend's primitives against float64 finite differences (the spec's
  gradient), and the C++ kernels against the reference;
- the rewrite: where it matches (2-d and 3-d, both GELU forms, any eps), where it must
  not (float64, a bias that is not (N,), a value used outside), traced == eager;
- PyTorch as an oracle; bad input raises an error naming the problem.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyfw
import tinyfw.nn.functional as F
from helpers import explain_text, npy, requires_torch, torch
from tinyfw import jit, nn, ops
from tinyfw.backend import cpu, ref

pytestmark = pytest.mark.skipif(not cpu.KERNELS, reason="tinyfw._C is not built (python setup.py build_ext --inplace)")

EPS32 = float(np.finfo(np.float32).eps)


def _leaves(m, n, rng, has_b=True, has_w=True, has_beta=True, dtype=tinyfw.float32):
    def t(*shape, scale=1.0):
        return tinyfw.tensor((scale * rng.standard_normal(shape)).astype(np.float64),
                             dtype=dtype, requires_grad=True)
    h, x = t(m, n, scale=2.0), t(m, n)
    return (h, t(n, scale=0.5) if has_b else None, x, t(n) if has_w else None,
            t(n) if has_beta else None)


def _composition(h, b, x, w, beta, eps=1e-5, approximate="none"):
    u = h if b is None else h + b
    return F.layer_norm(F.gelu(u, approximate=approximate) + x, (h.shape[-1],), w, beta, eps)


def _grads(y, g, leaves):
    for t in leaves:
        if t is not None:
            t.grad = None
    y.backward(g)
    return [None if t is None else npy(t.grad) for t in leaves]


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 70), n=st.sampled_from([1, 3, 16, 17, 33, 100, 1030]),
       approximate=st.sampled_from(["none", "tanh"]), has_b=st.booleans(), has_w=st.booleans(),
       has_beta=st.booleans(), seed=st.integers(0, 2**31))
def test_fused_equals_composition(m, n, approximate, has_b, has_w, has_beta, seed):
    rng = np.random.default_rng(seed)
    leaves = _leaves(m, n, rng, has_b, has_w, has_beta)
    g = tinyfw.tensor(rng.standard_normal((m, n)).astype(np.float32))
    y0 = _composition(*leaves, approximate=approximate)
    want = _grads(y0, g, leaves)
    y1 = ops.gelu_add_layer_norm(*leaves, approximate=approximate)
    got = _grads(y1, g, leaves)
    np.testing.assert_array_equal(npy(y1), npy(y0))
    for name, a, e in zip(("h", "b", "x", "weight", "bias"), got, want):
        assert (a is None) == (e is None), name
        if e is None:
            continue
        if name != "b":
            np.testing.assert_array_equal(a, e, err_msg=name)
        else:  # two float32 sums of the same terms: each within m eps of sum |terms|
            gh = got[0].astype(np.float64)
            bound = 2 * m * EPS32 * np.abs(gh).sum(0) + 1e-30
            assert np.all(np.abs(a.astype(np.float64) - e.astype(np.float64)) <= bound)
            assert np.all(np.abs(a.astype(np.float64) - gh.sum(0)) <= bound)


def test_results_do_not_depend_on_threads():
    rng = np.random.default_rng(5)
    leaves = _leaves(300, 257, rng)
    g = tinyfw.tensor(rng.standard_normal((300, 257)).astype(np.float32))
    old = tinyfw.get_num_threads()
    try:
        runs = []
        for nt in (1, 2):
            tinyfw.set_num_threads(nt)
            y = ops.gelu_add_layer_norm(*leaves)
            runs.append([npy(y)] + _grads(y, g, leaves))
    finally:
        tinyfw.set_num_threads(old)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_reference_backward_matches_float64_finite_differences(approximate):
    """The spec's backward (ref backend, float64) against central differences of its
    forward: the loss sum(y * g) perturbed in each input element."""
    rng = np.random.default_rng(7)
    m, n = 3, 5
    h, x, g = (rng.standard_normal((m, n)) for _ in range(3))
    b, w, beta = (rng.standard_normal(n) for _ in range(3))

    def loss(h, b, x, w, beta):
        return float((ref.gelu_add_layer_norm(h, b, x, w, beta, 1e-5, approximate)[0] * g).sum())

    _, r, mean, rstd = ref.gelu_add_layer_norm(h, b, x, w, beta, 1e-5, approximate)
    gx, gh, gw, gbeta, gb = ref.gelu_add_layer_norm_backward(g, r, w, mean, rstd, h, b, approximate)
    args = [h, b, x, w, beta]
    for k, analytic in zip(range(5), (gh, gb, gx, gw, gbeta)):
        num = np.zeros_like(args[k])
        for idx in np.ndindex(args[k].shape):
            d = 1e-6
            hi = [a.copy() for a in args]
            lo = [a.copy() for a in args]
            hi[k][idx] += d
            lo[k][idx] -= d
            num[idx] = (loss(*hi) - loss(*lo)) / (2 * d)
        np.testing.assert_allclose(analytic, num, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("m,n", [(1, 1), (5, 17), (70, 1030)])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_kernels_match_reference(m, n, approximate):
    """The C++ kernels against the reference primitives (which round GELU once from
    float64): within float32 tolerances scaled by the row length."""
    rng = np.random.default_rng(m * n)
    h, x, g = (rng.standard_normal((m, n)).astype(np.float32) for _ in range(3))
    b, w, beta = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    got = cpu.gelu_add_layer_norm(h, b, x, w, beta, 1e-5, approximate)
    want = ref.gelu_add_layer_norm(h, b, x, w, beta, 1e-5, approximate)
    for a, e in zip(got, want):
        assert a.dtype == np.float32 and a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=2e-5, atol=2e-5 * np.sqrt(n))
    _, r, mean, rstd = want
    got = cpu.gelu_add_layer_norm_backward(g, r, w, mean, rstd, h, b, approximate)
    want = ref.gelu_add_layer_norm_backward(g, r, w, mean, rstd, h, b, approximate)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=2e-5, atol=2e-5 * np.sqrt(max(m, n)))


def test_second_derivatives_are_the_compositions():
    rng = np.random.default_rng(3)
    leaves = _leaves(4, 6, rng)
    outs = []
    for f in (_composition, ops.gelu_add_layer_norm):
        y = f(*leaves)
        gs = tinyfw.autograd.grad([(y * y).sum()], [leaves[0], leaves[3]], create_graph=True)
        second = tinyfw.autograd.grad([(gs[0] * gs[0]).sum() + gs[1].sum()], [leaves[2]])
        outs.append([npy(t) for t in gs + second])
    for a, e in zip(*outs):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


def test_other_dtypes_run_the_composition():
    rng = np.random.default_rng(4)
    leaves = _leaves(3, 8, rng, dtype=tinyfw.float64)
    y = ops.gelu_add_layer_norm(*leaves)
    assert y.dtype == tinyfw.float64
    np.testing.assert_array_equal(npy(y), npy(_composition(*leaves)))


def test_bad_input_is_refused_with_a_message():
    h = tinyfw.randn(4, 8)
    with pytest.raises(ValueError, match="approximate"):
        ops.gelu_add_layer_norm(h, None, h, None, None, approximate="fast")
    with pytest.raises(ValueError, match="one shape"):
        ops.gelu_add_layer_norm(h, None, tinyfw.randn(4, 7), None, None)
    with pytest.raises(ValueError, match=r"weight must be a Tensor of shape \(8,\)"):
        ops.gelu_add_layer_norm(h, None, h, tinyfw.randn(7), None)
    a = np.zeros((4, 8), np.float32)
    with pytest.raises(TypeError, match="float32"):
        cpu.gelu_add_layer_norm(a.astype(np.float64), None, a, None, None, 1e-5, "none")
    with pytest.raises(ValueError, match=r"x must have shape \(4, 8\)"):
        cpu.gelu_add_layer_norm(a, None, a[:3], None, None, 1e-5, "none")
    with pytest.raises(ValueError, match="approximate"):
        cpu.gelu_add_layer_norm(a, None, a, None, None, 1e-5, "erf")
    with pytest.raises(ValueError, match=r"mean must have shape \(4,\)"):
        cpu.gelu_add_layer_norm_backward(a, a, None, np.zeros(3, np.float32), np.zeros(4, np.float32), a,
                                         None, "none")


# -- the rewrite --------------------------------------------------------------------------------
class _Block(nn.Module):
    def __init__(self, d: int, approximate: str = "none", eps: float = 1e-5):
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=eps)
        self.approximate = approximate

    def forward(self, x):
        h = x @ self.fc.weight.T  # the bias is added in the pattern: gelu(h + b)
        return self.norm(F.gelu(h + self.fc.bias, approximate=self.approximate) + x)


@pytest.mark.parametrize("shape", [(6, 16), (2, 5, 33)])
@pytest.mark.parametrize("approximate,eps", [("none", 1e-5), ("tanh", 1e-3)])
def test_rewrite_matches_and_traced_equals_eager(shape, approximate, eps):
    tinyfw.manual_seed(0)
    model = _Block(shape[-1], approximate, eps)
    x = tinyfw.randn(*shape, requires_grad=True)
    traced = jit.trace(model, (x,))
    assert "rewrote gelu_add_layer_norm" in explain_text(traced, x)
    assert "GeluAddNorm" in [n.op for n in traced.graph(x)[0].nodes]
    params = [x] + list(model.parameters())
    g = tinyfw.randn(*shape)
    want_y = model(x)
    want = _grads(want_y, g, params)
    got_y = traced(x)
    got = _grads(got_y, g, params)
    np.testing.assert_allclose(npy(got_y), npy(want_y), rtol=1e-6, atol=1e-6)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5 * np.sqrt(np.prod(shape)))


def test_rewrite_matches_a_linear_layer_followed_by_gelu_residual_and_norm():
    class Layer(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.fc, self.norm = nn.Linear(d, d), nn.LayerNorm(d)

        def forward(self, x):
            return self.norm(F.gelu(self.fc(x)) + x)

    tinyfw.manual_seed(3)
    model, x = Layer(8), tinyfw.randn(2, 3, 8, requires_grad=True)
    traced = jit.trace(model, (x,))
    assert "rewrote gelu_add_layer_norm" in explain_text(traced, x)
    np.testing.assert_allclose(npy(traced(x)), npy(model(x)), rtol=1e-6, atol=1e-6)


def test_rewrite_leaves_other_programs_alone():
    tinyfw.manual_seed(1)
    ln = nn.LayerNorm(8)
    b = tinyfw.randn(8)

    def f(h, x):
        return ln(F.gelu(h + b) + x)

    ln64, b64 = nn.LayerNorm(8).to(tinyfw.float64), tinyfw.randn(8, dtype=tinyfw.float64)

    def f64(h, x):
        return ln64(F.gelu(h + b64) + x)

    h64, x64 = tinyfw.randn(4, 8, dtype=tinyfw.float64), tinyfw.randn(4, 8, dtype=tinyfw.float64)
    assert "rewrote gelu_add_layer_norm" not in explain_text(jit.trace(f64, (h64, x64)), h64, x64)
    h, x = tinyfw.randn(4, 8), tinyfw.randn(4, 8)
    assert "rewrote gelu_add_layer_norm" in explain_text(jit.trace(f, (h, x)), h, x)
    b2 = tinyfw.randn(4, 8)  # a per-element "bias": not (N,)

    def g(h, x):
        return ln(F.gelu(h + b2) + x)

    assert "rewrote gelu_add_layer_norm" not in explain_text(jit.trace(g, (h, x)), h, x)

    def used_outside(h, x):
        a = F.gelu(h + b)
        return ln(a + x) + a  # the GELU output is needed by another op

    assert "rewrote gelu_add_layer_norm" not in explain_text(jit.trace(used_outside, (h, x)), h, x)


@requires_torch
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_matches_pytorch(approximate):
    rng = np.random.default_rng(11)
    leaves = _leaves(64, 96, rng)
    g = rng.standard_normal((64, 96)).astype(np.float32)
    y = ops.gelu_add_layer_norm(*leaves, approximate=approximate)
    got = [npy(y)] + _grads(y, tinyfw.tensor(g), leaves)
    th, tb, tx, tw, tbeta = (torch.tensor(npy(t), requires_grad=True) for t in leaves)
    ty = torch.nn.functional.layer_norm(
        torch.nn.functional.gelu(th + tb, approximate=approximate) + tx, (96,), tw, tbeta, 1e-5)
    ty.backward(torch.from_numpy(g))
    want = [ty.detach().numpy()] + [t.grad.numpy() for t in (th, tb, tx, tw, tbeta)]
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_onnx_export_matches_onnxruntime(tmp_path, approximate):
    """The op exports as Add, the GELU formula, Add and LayerNormalization."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

    class Direct(_Block):
        def forward(self, x):
            return ops.gelu_add_layer_norm(x @ self.fc.weight.T, self.fc.bias, x, self.norm.weight,
                                           self.norm.bias, 1e-5, self.approximate)

    tinyfw.manual_seed(2)
    model, x = Direct(16, approximate), tinyfw.randn(4, 16)
    path = str(tmp_path / "block.onnx")
    tinyfw.onnx.export(model, (x,), path)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    assert "LayerNormalization" in [n.op_type for n in m.graph.node]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: npy(x)})[0]
    np.testing.assert_allclose(got, npy(model(x)), rtol=1e-5, atol=1e-5)
