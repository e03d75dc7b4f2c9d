"""matmul (1-d, 2-d, batched with broadcasting), mm, bmm, dot, outer, linear against
PyTorch; gradcheck and gradgradcheck in float64."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinyfw
from core_util import FLOAT_DTYPES, HALF_DTYPES, layouts, make, seeds
from helpers import assert_close, npy, requires_torch, torch

# matmul accumulates k products: float32 rounding grows with k, so a few ulps of k
TOL = {"float32": (1e-5, 1e-5), "float64": (1e-10, 1e-12), "float16": (1e-2, 1e-2),
       "bfloat16": (2e-2, 2e-2)}


@st.composite
def matmul_shapes(draw):
    """Operand shapes matmul accepts: 1-d vectors, matrices, broadcast batch dims."""
    m, k, n = (draw(st.integers(0, 4)) for _ in range(3))
    kinds = draw(st.sampled_from(["vv", "vm", "mv", "mm", "bb", "bm", "mb", "bv", "vb"]))
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    bcast = tuple(1 if draw(st.booleans()) else b for b in batch)[draw(st.integers(0, len(batch))):]
    shape = {"v": lambda left: (k,), "m": lambda left: (m, k) if left else (k, n),
             "b": lambda left: (batch + (m, k)) if left else (bcast + (k, n))}
    return shape[kinds[0]](True), shape[kinds[1]](False)


@requires_torch
@given(shapes=matmul_shapes(), la=layouts, lb=layouts, dtype=st.sampled_from(FLOAT_DTYPES),
       seed=seeds)
def test_matmul_vs_torch(shapes, la, lb, dtype, seed):
    sa, sb = shapes
    a = make(sa, la, dtype, seed, requires_grad=True)
    b = make(sb, lb, dtype, seed + 1, requires_grad=True)
    out_tf, out_th = a.tf @ b.tf, a.th @ b.th
    assert out_tf.shape == tuple(out_th.shape)
    r, t = TOL[dtype]
    assert_close(out_tf, out_th, dtype, rtol=r, atol=t)
    assert_close(tinyfw.matmul(a.tf, b.tf), out_th, dtype, rtol=r, atol=t)
    g = np.random.default_rng(seed).standard_normal(tuple(out_th.shape))
    out_tf.backward(tinyfw.tensor(g, dtype=dtype))
    out_th.backward(torch.tensor(g, dtype=out_th.dtype))
    assert_close(a.tf_leaf.grad, a.th_leaf.grad, dtype, rtol=r, atol=t)
    assert_close(b.tf_leaf.grad, b.th_leaf.grad, dtype, rtol=r, atol=t)


@requires_torch
@pytest.mark.parametrize("dtype", HALF_DTYPES + ("int32", "int64"))
def test_matmul_other_dtypes_vs_torch(dtype):
    if dtype.startswith("int"):
        a = tinyfw.arange(12, dtype=dtype).reshape(3, 4)
        b = tinyfw.arange(8, dtype=dtype).reshape(4, 2)
        out = a @ b
        assert out.dtype.name == dtype
        np.testing.assert_array_equal(npy(out), (torch.arange(12).reshape(3, 4) @ torch.arange(8).reshape(4, 2)).numpy())
        return
    a, b = make((3, 8), "T", dtype, 1), make((8, 2), "contig", dtype, 2)
    out = a.tf @ b.tf
    assert out.dtype.name == dtype
    r, t = TOL[dtype]
    assert_close(out, a.th @ b.th, dtype, rtol=r, atol=t)


@requires_torch
@given(batch=st.lists(st.integers(1, 3), max_size=2).map(tuple), i=st.integers(1, 4),
       o=st.integers(1, 4), bias=st.booleans(), dtype=st.sampled_from(FLOAT_DTYPES), seed=seeds)
def test_linear_mm_bmm_dot_outer_vs_torch(batch, i, o, bias, dtype, seed):
    x = make(batch + (i,), "contig", dtype, seed, requires_grad=True)
    w = make((o, i), "T", dtype, seed + 1, requires_grad=True)
    b = make((o,), "sliced", dtype, seed + 2, requires_grad=True)
    out_tf = tinyfw.linear(x.tf, w.tf, b.tf if bias else None)
    out_th = torch.nn.functional.linear(x.th, w.th, b.th if bias else None)
    r, t = TOL[dtype]
    assert_close(out_tf, out_th, dtype, rtol=r, atol=t)
    out_tf.sum().backward()
    out_th.sum().backward()
    for p in (x, w) + ((b,) if bias else ()):
        assert_close(p.tf_leaf.grad, p.th_leaf.grad, dtype, rtol=r, atol=t)
    m1, m2 = make((2, i), "contig", dtype, seed), make((i, o), "T", dtype, seed + 1)
    assert_close(tinyfw.mm(m1.tf, m2.tf), torch.mm(m1.th, m2.th), dtype, rtol=r, atol=t)
    b1, b2 = make((3, 2, i), "contig", dtype, seed), make((3, i, o), "T", dtype, seed + 1)
    assert_close(tinyfw.bmm(b1.tf, b2.tf), torch.bmm(b1.th, b2.th), dtype, rtol=r, atol=t)
    v1, v2 = make((i,), "sliced", dtype, seed), make((i,), "contig", dtype, seed + 1)
    assert_close(tinyfw.dot(v1.tf, v2.tf), torch.dot(v1.th, v2.th), dtype, rtol=r, atol=t)
    assert_close(tinyfw.outer(v1.tf, v2.tf), torch.outer(v1.th, v2.th), dtype, rtol=r, atol=t)


CASES = {
    "vv": ((3,), (3,)), "vm": ((3,), (3, 2)), "mv": ((2, 3), (3,)), "mm": ((2, 3), (3, 2)),
    "batched_broadcast": ((2, 1, 2, 3), (3, 3, 2)), "bv": ((2, 2, 3), (3,)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matmul_gradcheck(name):
    sa, sb = CASES[name]
    a = tinyfw.randn(*sa, dtype=tinyfw.float64, requires_grad=True)
    b = tinyfw.randn(*sb, dtype=tinyfw.float64, requires_grad=True)
    assert tinyfw.gradcheck(tinyfw.matmul, (a, b))


def test_linear_gradcheck_and_gradgradcheck():
    x = tinyfw.randn(2, 3, dtype=tinyfw.float64, requires_grad=True)
    w = tinyfw.randn(4, 3, dtype=tinyfw.float64, requires_grad=True)
    b = tinyfw.randn(4, dtype=tinyfw.float64, requires_grad=True)
    assert tinyfw.gradcheck(tinyfw.linear, (x, w, b))
    assert tinyfw.gradgradcheck(lambda x, w, b: tinyfw.linear(x, w, b).tanh(), (x, w, b))
