"""The one-kernel backward ops of gelu (both forms), silu, tanh and sigmoid (GeluBackward,
SiluBackward, TanhBackward, SigmoidBackward): first and second derivatives against
PyTorch's autograd, on sizes that take the threaded and tail paths, in float32 and float64;
gradgradcheck through them; the primitives' dtype and argument handling.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
import tinyfw.nn.functional as F
from helpers import assert_close, requires_torch, torch
from tinyfw.backend import cpu, ref

ACTS = {
    "gelu": (lambda t: F.gelu(t), lambda t: torch.nn.functional.gelu(t)),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"),
                  lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
    "silu": (lambda t: F.silu(t), lambda t: torch.nn.functional.silu(t)),
    "tanh": (lambda t: t.tanh(), lambda t: t.tanh()),
    "sigmoid": (lambda t: t.sigmoid(), lambda t: t.sigmoid()),
}
BACKWARD_OP = {"gelu": "GeluBackward", "gelu_tanh": "GeluBackward", "silu": "SiluBackward",
               "tanh": "TanhBackward", "sigmoid": "SigmoidBackward"}


@requires_torch
@pytest.mark.parametrize("name", sorted(ACTS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 17, 40000])  # a tail only; a vector and a tail; threaded
def test_first_and_second_derivative_vs_torch(name, dtype, n):
    tf_fn, th_fn = ACTS[name]
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 3).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    # PyTorch in float64 on the same values: its float32 backward of the tanh form cancels
    # for x << 0 (it returns -0.0 where the derivative is 1.7e-6), ours does not
    tx = tinyfw.tensor(x, requires_grad=True)
    px = torch.tensor(x.astype(np.float64), requires_grad=True)
    (gx,) = tinyfw.autograd.grad(tf_fn(tx), (tx,), tinyfw.tensor(g), create_graph=True)
    (pgx,) = torch.autograd.grad(th_fn(px), (px,), torch.tensor(g, dtype=torch.float64), create_graph=True)
    assert gx.grad_fn is not None and type(gx.grad_fn).__name__ == BACKWARD_OP[name]
    rtol, atol = (2e-6, 1e-6) if dtype == "float32" else (1e-12, 1e-13)
    assert_close(gx, pgx, dtype, rtol=rtol, atol=atol, msg=f"{name} first derivative")
    # second order: d/dx of sum(gx * h) and the gradient reaching the upstream g
    h = rng.standard_normal(n).astype(dtype)
    tg = tinyfw.tensor(g, requires_grad=True)
    pg = torch.tensor(g.astype(np.float64), requires_grad=True)
    (gx,) = tinyfw.autograd.grad(tf_fn(tx), (tx,), tg, create_graph=True)
    (pgx,) = torch.autograd.grad(th_fn(px), (px,), pg, create_graph=True)
    ggx, ggg = tinyfw.autograd.grad((gx * tinyfw.tensor(h)).sum(), (tx, tg))
    pggx, pggg = torch.autograd.grad((pgx * torch.tensor(h.astype(np.float64))).sum(), (px, pg))
    rtol, atol = (1e-5, 1e-5) if dtype == "float32" else (1e-10, 1e-12)
    assert_close(ggx, pggx, dtype, rtol=rtol, atol=atol, msg=f"{name} second derivative")
    assert_close(ggg, pggg, dtype, rtol=rtol, atol=atol, msg=f"{name} d/dg")


@pytest.mark.parametrize("name", sorted(ACTS))
def test_gradgradcheck_through_the_backward_op(name):
    x = tinyfw.tensor(np.random.default_rng(3).standard_normal((3, 5)) * 2, requires_grad=True)
    assert tinyfw.gradcheck(ACTS[name][0], (x,))
    assert tinyfw.gradgradcheck(ACTS[name][0], (x,))


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh"])
def test_gelu_backward_is_one_op_in_the_graph(name):
    x = tinyfw.randn(4, 6, requires_grad=True)
    (gx,) = tinyfw.autograd.grad(ACTS[name][0](x).sum(), (x,), create_graph=True)
    node = gx.grad_fn
    assert type(node).__name__ == "GeluBackward"
    assert node.approximate == ("tanh" if name == "gelu_tanh" else "none")


PRIMS = {  # name -> (args after grad and x)
    "gelu_backward": ("none",), "gelu_backward/tanh": ("tanh",), "silu_backward": (),
    "tanh_backward": (), "sigmoid_backward": (),
}


@pytest.mark.skipif(not cpu.KERNELS, reason="tinyfw._C is not built")
@pytest.mark.parametrize("key", sorted(PRIMS))
@given(seed=st.integers(0, 2 ** 16), mixed=st.booleans())
def test_primitives_follow_ref_for_mixed_and_broadcast_operands(key, seed, mixed):
    """Mixed dtypes go to ref (its promotion); a broadcast gradient row is read in place."""
    name, args = key.split("/")[0], PRIMS[key]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 7)).astype(np.float32)
    g = rng.standard_normal((1, 7)).astype(np.float64 if mixed else np.float32)
    out, want = getattr(cpu, name)(g, x, *args), getattr(ref, name)(g, x, *args)
    assert out.dtype == want.dtype and out.shape == want.shape == (5, 7)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not cpu.KERNELS, reason="tinyfw._C is not built")
def test_primitives_reject_bad_operands_with_a_message():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="gelu_backward"):
        cpu.gelu_backward(np.ones((4,), np.float32), x)
    with pytest.raises(ValueError, match="tanh_backward"):
        cpu.tanh_backward(np.ones((2, 2), np.float32), x)
    with pytest.raises(ValueError, match="silu_backward: unsupported dtype"):
        cpu.silu_backward(np.ones((2, 3), np.complex64), np.ones((2, 3), np.complex64))
