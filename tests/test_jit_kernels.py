"""The generated C kernels' own float32 exp and erf, against float64 references."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinyfw
from tinyfw import jit
from tinyfw.jit import kernels
from tests.helpers import explain_text


# the CPU-only passes' products (generated C kernels, numpy arena buffers): CPU graphs
pytestmark = pytest.mark.usefixtures("on_the_cpu")


def _grid() -> np.ndarray:
    specials = [0.0, -0.0, 0.5, -0.5, 0.75, -0.75, 1e-30, -1e-30, 88.7, -86.9, -87.5, -103.0,
                1000.0, -1000.0, np.nan, np.inf, -np.inf]
    return np.concatenate([np.linspace(-12, 12, 200_001), np.logspace(-38, 1.9, 20_000),
                           -np.logspace(-38, 1.9, 20_000), specials]).astype(np.float32)


def _fused(op, monkeypatch):
    """A traced x -> op(x * 2) * 0.5 whose graph is one compiled fused kernel (the
    scalings are exact in binary floating point, so the reference is op(2x) / 2).
    Float32 exp stays an eager op in traced graphs (its eager kernel is hand-vectorised,
    kernels.eager_reason), but the kernels' own exp serves erf and GELU: that rule is
    lifted here so that exp itself is measured."""
    from tinyfw.jit.passes import fuse_elementwise

    monkeypatch.setattr(fuse_elementwise, "eager_reason", lambda node: None)
    x = tinyfw.tensor(_grid())
    f = jit.trace(lambda t: op(t * 2.0) * 0.5, (x,))
    fwd, _ = f.graph(x)
    assert len(fwd.nodes) == 1 and fwd.nodes[0].kernel is not None
    if not fwd.nodes[0].kernel.compiled:
        pytest.skip("no C compiler for the jit kernels")
    return f(x).numpy().astype(np.float64)


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    sp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    return np.abs(got - want) / sp


@pytest.mark.parametrize("name", ["exp", "erf"])
def test_exp_and_erf_within_a_few_ulp(name, monkeypatch):
    x = _grid().astype(np.float64)
    if name == "exp":
        got = _fused(lambda t: t.exp(), monkeypatch)
        with np.errstate(over="ignore"):
            want = np.exp(2 * x) * 0.5
        # float32 overflows above ~88.72: compare finite float32 results; below 2^-125 the
        # kernel flushes to 0 (documented)
        ok = np.isfinite(want) & (2 * x < 88.72) & (np.abs(want) > 2.0 ** -124)
        tol = 1.5
    else:
        got = _fused(lambda t: t.erf(), monkeypatch)
        want = np.array([math.erf(2 * v) if np.isfinite(v) else np.sign(v) for v in x]) * 0.5
        want[np.isnan(x)] = np.nan
        ok = np.isfinite(x) & (np.abs(want) > 1e-37)
        tol = 3.0
    assert np.nanmax(_ulps(got[ok], want[ok])) <= tol
    # NaN stays NaN, infinities and the overflow/underflow ends
    assert np.array_equal(np.isnan(got), np.isnan(want))
    spec = ~ok & ~np.isnan(x)
    if name == "exp":
        big = x > 44.37
        assert np.all(got[spec & big] == np.inf)
        assert np.all(np.abs(got[spec & ~big] - want[spec & ~big]) <= 2.0 ** -124)
    else:  # erf of tiny numbers (float32 subnormal results) and of +-inf
        np.testing.assert_allclose(got[spec], want[spec], rtol=1e-6, atol=1e-44)


def test_gelu_backward_kernel_matches_eager():
    """The traced GELU backward agrees with eager's: both run the one GeluBackward kernel
    (the vector math's g * gelu'(x)), not a fused composition of erf/exp ops."""
    tinyfw.manual_seed(0)
    x = tinyfw.randn(64, 33) * 3
    x = x.detach().requires_grad_(True)
    f = jit.trace(lambda t: tinyfw.nn.functional.gelu(t * 1.5), (x,))
    f(x).sum().backward()
    g_traced = x.grad.numpy().copy()
    x.grad = None
    tinyfw.nn.functional.gelu(x * 1.5).sum().backward()
    np.testing.assert_allclose(g_traced, x.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert any(n.op == "GeluBackward" for n in f.graph(x)[1].nodes)


def test_prelude_is_in_every_kernel_source():
    assert "tf_expf" in kernels._PRELUDE and "tf_erff" in kernels._PRELUDE


def _ln_case(shape, affine, dtype=np.float32):
    tinyfw.manual_seed(7)
    ln = tinyfw.nn.LayerNorm(shape[1], elementwise_affine=affine)
    if affine:
        rng = np.random.default_rng(0)
        ln.weight._data[:] = rng.random(shape[1]) + 0.5
        ln.bias._data[:] = rng.random(shape[1])
    ln = ln.to(tinyfw.float64) if dtype == np.float64 else ln
    x = (tinyfw.randn(*shape) * 3 + 1).to(tinyfw.float64 if dtype == np.float64 else
                                          tinyfw.float32)
    return ln, x.detach().requires_grad_(True)


@pytest.mark.parametrize("shape,affine", [((256, 512), True), ((7, 33), False),
                                          ((3, 1), True), ((300, 200), True),
                                          ((520, 512), True)])
def test_layer_norm_stays_eager_and_matches(shape, affine):
    """Eager's layer norm is a hand-vectorised row kernel (Norm.vector_kernel): the traced
    graphs keep it as the op itself, forward and backward, with eager's numbers."""
    ln, x = _ln_case(shape, affine)
    f = jit.trace(lambda t: ln(t * 2.0), (x,))
    fwd, bwd = f.graph(x)
    (norm,) = [n for n in fwd.nodes if n.op == "Norm"]
    assert norm.kernel is None and len(norm.outputs) == 3  # y and the saved statistics
    (nb,) = [n for n in bwd.nodes if n.op == "NormBackward"]
    assert nb.kernel is None
    assert "kept eager: Norm float32" in explain_text(lambda t: ln(t * 2.0), x)
    y = f(x)
    y.sum().backward()
    g = x.grad.numpy().copy()
    params = [p.grad.numpy().copy() for p in ln.parameters()]
    x.grad = None
    for p in ln.parameters():
        p.grad = None
    ye = ln(x * 2.0)
    ye.sum().backward()
    # the same kernels on the same inputs: the same bits
    np.testing.assert_array_equal(y.detach().numpy(), ye.detach().numpy())
    np.testing.assert_array_equal(g, x.grad.numpy())
    for a, p in zip(params, ln.parameters()):
        np.testing.assert_array_equal(a, p.grad.numpy())
    with tinyfw.no_grad():
        f2 = jit.trace(lambda t: ln(t * 2.0), (x,))
        np.testing.assert_array_equal(f2(x).numpy(), ye.detach().numpy())
